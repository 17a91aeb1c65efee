"""Accounting: what a job's transitions count, per UTC day and model and per hour, and the arithmetic of credits.

Counted with transitions that happen anyway, as effects of the same atomic step, never by scanning jobs:

- A job fluxhook submits counts on the UTC day BFL accepted it (kept on the job as ``usage_day``):
  ``jobs`` +1 and its ``credits`` (BFL's ``cost``) with its move to ``submitted``, and the budget's
  ``spent`` by the same credits, or by what was reserved for it when BFL stated no price.
- When it ends, ``stored`` +1, ``canceled`` +1 (canceled after BFL took it: paid, no result), or ``failed`` +1 for
  any other end (failed, moderated, expired), on that same day's row, so a row tells how that day's jobs went
  (``jobs`` minus the three is still running). If
  BFL's result stated another price than its answer to the submission, the difference comes with it.
- A job BFL ran (and charged its account for) marks its account as it ends (``AccountJobEnded``): the account's
  balance, read before, is read again soon (``fluxhook.credits.balance``).
- Every job's submission and end also count in the UTC hour they happen (outcomes, and the
  completion-to-stored latency in histogram buckets), for the dashboard. Tracked tasks, which your app
  submitted and paid for itself, count there only.

A job created with an app key counts also under that key: its fields again with ``@<key id>`` after
the model (``flux-2-pro@key_0123:credits``), and its budget spend as ``spent@<key id>``, in the same
day's hash and the same atomic step, so a key's spend is one more field a limit can read.

A job made for an end user (``core.end_users``) counts also in its owner's end users' day (``CountEndUser``):
``<end user>:jobs`` and ``<end user>:credits`` (its spend: BFL's price, or its reservation when BFL stated none) as it
is submitted, and how it ended (``stored``, ``canceled``, ``moderated``, else ``failed``), on the day it was
submitted; its credits are what its end user's daily limit reads.

Credits are counted as whole micro-credits, so sums are exact.

The reports read from these counters are ``fluxhook.credits.reports``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fluxhook import metrics
from fluxhook.bfl.reports import Cost
from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_ACCOUNT
from fluxhook.core.job import Job
from fluxhook.store.effects import (
    AccountJobEnded,
    CountEndUser,
    CountHourly,
    CountMetrics,
    CountUsage,
    Effect,
    WakeEndUserWaiting,
)
from fluxhook.store.owners import owner_of

MICRO = 1_000_000
# The budget's spend, a field of each day's counters beside the per-model ones.
SPENT = "spent"
# The hourly outcome counters: one per status reached, and completion-to-stored latency buckets.
HOURLY_COUNTS = ("submitted", st.STORED, st.FAILED, st.MODERATED, st.EXPIRED, st.CANCELED, st.ABORTED)
LATENCY_BUCKETS: tuple[float, ...] = metrics.HISTOGRAMS["fluxhook_completion_to_stored_seconds"][1]
# The hourly counters of completion-to-stored latency: one per histogram bucket, and their sum.
LATENCY = "latency:"
LATENCY_SUM = "latency_ms"


def to_micro(credits: float) -> int:
    return round(credits * MICRO)


def from_micro(amount: int) -> float:
    return round(amount / MICRO, 6)


def field(model: str, counter: str, key_id: str | None = None) -> str:
    """The field of a day's counters that holds ``counter`` (jobs, stored, failed, credits) of ``model``,
    of the jobs of app key ``key_id`` if one is named."""
    return f"{model}@{key_id}:{counter}" if key_id else f"{model}:{counter}"


def spent_field(key_id: str | None = None) -> str:
    """The field of a day's counters that holds the budget's spend: the account's, or app key ``key_id``'s."""
    return f"{SPENT}@{key_id}" if key_id else SPENT


def account_spent_field(account: str) -> str:
    """The field of a day's counters that holds what one BFL account was charged (its daily_credit_limit reads it)."""
    return f"{SPENT}#{account}"


def _with_key(increments: list[tuple[str, int]], key_id: str | None) -> tuple[tuple[str, int], ...]:
    """The increments of account fields, and the same again on the key's fields when the job has a key."""
    if not key_id:
        return tuple(increments)
    keyed = []
    for name, amount in increments:
        model, _, counter = name.rpartition(":")
        keyed.append((spent_field(key_id) if name == SPENT else field(model, counter, key_id), amount))
    return (*increments, *keyed)


def utc_day(when: float) -> str:
    """The UTC day of an epoch time, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d")


def utc_hour(when: float) -> str:
    """The UTC hour of an epoch time, ``YYYY-MM-DDTHH``."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H")


# --- what transitions count ---------------------------------------------------------------------------

def on_submitted(model: str, cost: Cost | None, reserved: int, now: float, key_id: str | None = None,
                 key_name: str = "", account: str = DEFAULT_ACCOUNT,
                 end_user: str | None = None) -> tuple[dict[str, Any], list[Effect]]:
    """What a job records and counts when BFL accepted its task at ``now``: the job's fields and the effects.

    ``reserved`` (micro-credits) is what the budget held for it, counted as spend when BFL stated no price;
    ``key_id`` and ``key_name`` are the app key that created the job (none for an admin token's); ``account``
    the BFL account that was charged; ``end_user`` the job's end user, whose day counts the job and its spend.
    """
    day = utc_day(now)
    credits = to_micro(cost.credits) if cost is not None and cost.credits is not None else None
    spend = credits if credits is not None else reserved
    fields: dict[str, Any] = {"usage_day": day, "counted_credits": credits or 0, "counted_spend": spend,
                              **(cost.fields() if cost else {})}
    effects: list[Effect] = [
        CountUsage(day, (*_with_key([(field(model, "jobs"), 1), (field(model, "credits"), credits or 0),
                                     (SPENT, spend)], key_id), (account_spent_field(account), spend))),
        CountHourly(utc_hour(now), (("submitted", 1),)),
    ]
    if end_user:
        effects.append(CountEndUser(owner_of(key_id), day, ((f"{end_user}:jobs", 1), (f"{end_user}:credits", spend))))
    if credits:
        effects.append(_credits_metric(model, credits, key_name, account))
    return fields, effects


# The usage counter a job's end counts in: stored, canceled (sent, paid, no result), else failed.
_ENDED_AS: dict[str, str] = {st.STORED: "stored", st.CANCELED: "canceled"}
# An end user's day tells its moderated jobs apart too: its key may block it for them.
_END_USER_ENDED_AS: dict[str, str] = {**_ENDED_AS, st.MODERATED: "moderated"}


def on_end(job: Job, status: str, now: float, latency: float | None = None, key_name: str = "") -> list[Effect]:
    """What a job's move to terminal ``status`` at ``now`` counts (``latency``: BFL done to stored, in seconds;
    ``key_name``: the name of the job's app key, for the credits metric)."""
    hourly = [(status, 1)]
    if latency is not None:
        bound = next((b for b in LATENCY_BUCKETS if latency <= b), None)
        hourly += [(LATENCY + (str(bound) if bound is not None else "+Inf"), 1),
                   (LATENCY_SUM, round(latency * 1000))]
    effects: list[Effect] = [CountHourly(utc_hour(now), tuple(hourly))]
    if job.usage_day and job.model:
        counts = [(field(job.model, _ENDED_AS.get(status, "failed")), 1)]
        if job.cost_credits is not None:
            # BFL's result stated a price other than its answer to the submission: the result's stands.
            credits = to_micro(job.cost_credits)
            if credits != (job.counted_credits or 0):
                counts += [(field(job.model, "credits"), credits - (job.counted_credits or 0)),
                           (SPENT, credits - (job.counted_spend or 0))]
                if credits > (job.counted_credits or 0):
                    effects.append(_credits_metric(job.model, credits - (job.counted_credits or 0), key_name,
                                                   job.account))
        effects.append(CountUsage(job.usage_day, _with_key(counts, job.key_id)))
        if job.end_user:
            ended = [(f"{job.end_user}:{_END_USER_ENDED_AS.get(status, 'failed')}", 1)]
            if job.cost_credits is not None and to_micro(job.cost_credits) != (job.counted_spend or 0):
                ended.append((f"{job.end_user}:credits", to_micro(job.cost_credits) - (job.counted_spend or 0)))
            # The same day's hash its acceptance counted the job in: its life is set.
            effects.append(CountEndUser(owner_of(job.key_id), job.usage_day, tuple(ended), life_set=True))
    if job.usage_day and job.account:
        # A job the account ran (and was charged for) ended: its balance is read again soon (``credits.balance``).
        effects.append(AccountJobEnded(job.account, now))
    if job.end_user_max_active is not None and job.key_id and job.end_user:
        # Its place at BFL under its end user's max_active is free: the jobs waiting for one are looked at now.
        effects.append(WakeEndUserWaiting(job.key_id, job.end_user))
    return effects


def _credits_metric(model: str, amount: int, key_name: str, account: str | None = None) -> CountMetrics:
    return metrics.added("fluxhook_credits_spent", from_micro(amount), model=model, key=key_name,
                         account=account or "")


