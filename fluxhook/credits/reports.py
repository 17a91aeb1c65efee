"""Reports over the usage counters (``fluxhook.credits.accounting`` keeps them): ``GET /v1/usage`` per UTC day,
model and app key, and the dashboard's overview per hour; read from counters and indexes only, never by
scanning jobs."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping

from fluxhook.core.accounts import pool_limit
from fluxhook.core.errors import InvalidRequest
from fluxhook.credits.accounting import (
    HOURLY_COUNTS,
    LATENCY,
    LATENCY_BUCKETS,
    MICRO,
    SPENT,
    from_micro,
    spent_field,
    utc_day,
    utc_hour,
)
from fluxhook.store.effects import END_USER_TTL
from fluxhook.store.owners import owner_of

if TYPE_CHECKING:
    from fluxhook.services import Services

MAX_DAYS = 366
DEFAULT_DAYS = 30
_ROW_COUNTS = frozenset(("jobs", "stored", "failed", "canceled", "credits"))
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# --- GET /v1/usage ----------------------------------------------------------------------------------

def parse_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """``from`` and ``to`` (``YYYY-MM-DD``, both included); by default the last ``DEFAULT_DAYS`` days to today.

    InvalidRequest for a value that is not a date, ``from`` after ``to``, or more than ``MAX_DAYS`` days.
    """
    end = _date("to", last) if last else today
    start = _date("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidRequest(f"'from' ({start.isoformat()}) is after 'to' ({end.isoformat()})")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidRequest(f"'from' to 'to' spans {days} days; at most {MAX_DAYS} may be asked at once")
    return start, end


def _date(name: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise InvalidRequest(f"'{name}' must be a date as YYYY-MM-DD, got {text[:20]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' is not a calendar date: {text!r}") from None


def days_between(start: date, end: date) -> list[str]:
    """Every day from ``start`` to ``end``, both included, as ``YYYY-MM-DD``."""
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def rows(counters: Mapping[str, Mapping[str, int]]) -> list[dict]:
    """One row per day and model with anything counted, by date then model: jobs, stored, failed, canceled, credits."""
    found = []
    for day in sorted(counters):
        models: dict[str, dict[str, int]] = {}
        for name, value in counters[day].items():
            model, sep, counter = name.rpartition(":")
            if sep and counter in _ROW_COUNTS and "@" not in model:
                models.setdefault(model, {})[counter] = value
        for model in sorted(models):
            counts = models[model]
            if any(counts.values()):
                found.append({"date": day, "model": model, "jobs": counts.get("jobs", 0),
                              "stored": counts.get("stored", 0), "failed": counts.get("failed", 0),
                              "canceled": counts.get("canceled", 0),
                              "credits": counts.get("credits", 0) / MICRO})
    return found


def key_rows(counters: Mapping[str, Mapping[str, int]], only: str | None = None) -> list[dict]:
    """Rows like ``rows``, one per day, model and app key (``key_id`` None: the admin tokens' jobs, what the
    account counted beyond its keys); with ``only``, that key's rows alone."""
    found = []
    for day in sorted(counters):
        counts: dict[tuple[str, str | None], dict[str, int]] = {}
        for name, value in counters[day].items():
            owner, sep, counter = name.rpartition(":")
            if not sep or counter not in _ROW_COUNTS:
                continue
            model, _, key = owner.partition("@")
            counts.setdefault((model, key or None), {})[counter] = value
        if only is None:
            for (model, key_id), keyed in list(counts.items()):
                if key_id is not None:
                    rest = counts.setdefault((model, None), {})
                    for counter, value in keyed.items():
                        rest[counter] = rest.get(counter, 0) - value
        for (model, key_id) in sorted(counts, key=lambda k: (k[0], k[1] or "")):
            if only is not None and key_id != only:
                continue
            row = counts[(model, key_id)]
            if any(row.values()):
                found.append({"date": day, "model": model, "key_id": key_id, "jobs": row.get("jobs", 0),
                              "stored": row.get("stored", 0), "failed": row.get("failed", 0),
                              "canceled": row.get("canceled", 0),
                              "credits": row.get("credits", 0) / MICRO})
    return found


def report(counters: Mapping[str, Mapping[str, int]], start: date, end: date, spent_today: int,
           daily_limit: float | None, key_id: str | None = None) -> dict:
    """The body of ``GET /v1/usage``: the account's, or with ``key_id`` one app key's."""
    days = key_rows(counters, key_id)
    total = sum(round(row["credits"] * MICRO) for row in days)
    return {"from": start.isoformat(), "to": end.isoformat(), "days": days, "total_credits": from_micro(total),
            "daily_limit": daily_limit, "spent_today": from_micro(spent_today)}


def spent_today(svc: "Services", now: float, counters: Mapping[str, Mapping[str, int]] | None = None,
                key_id: str | None = None) -> int:
    """Micro-credits spent on ``now``'s UTC day, as the daily limit counts them (by app key ``key_id`` if
    named); from ``counters`` (per day, as ``UsageStore.days`` gives them) when they hold that day, else read."""
    day = utc_day(now)
    if counters is None or day not in counters:
        counters = svc.store.usage.days([day])
    return counters[day].get(spent_field(key_id), 0)


def jobs_today(counters: Mapping[str, int], key_id: str) -> int:
    """How many jobs app key ``key_id`` had submitted in a day's ``counters``."""
    tail = f"@{key_id}:jobs"
    return sum(value for name, value in counters.items() if name.endswith(tail))


def usage_report(svc: "Services", first: str | None, last: str | None, now: float, key_id: str | None = None,
                 daily_limit: float | None = None) -> dict:
    """``GET /v1/usage?from=&to=``: credits and jobs per UTC day, model and app key, read from the day
    counters; with ``key_id``, that key's alone against its own ``daily_limit``."""
    today = datetime.fromtimestamp(now, timezone.utc).date()
    start, end = parse_range(first, last, today)
    names = days_between(start, end)
    today_name = today.isoformat()
    counters = svc.store.usage.days(names if today_name in names else [*names, today_name])
    shown = {day: counters[day] for day in names}
    limit = daily_limit if key_id else svc.config.bfl_daily_credit_limit
    return report(shown, start, end, spent_today(svc, now, counters, key_id), limit, key_id)


# The most rows ``GET /v1/usage?group_by=end_user`` answers: those with the most credits first.
MAX_END_USER_ROWS = 1000
# What an end user's row counts, besides its credits (``store.end_users.COUNTERS``).
_END_USER_COUNTS = ("jobs", "stored", "failed", "canceled", "moderated")


def owner_totals(counters: Mapping[str, int], key_id: str | None) -> dict[str, int]:
    """What one day's usage ``counters`` hold of app key ``key_id``'s jobs (None: the admin tokens', the account's
    beyond its keys): jobs, stored, failed (moderated among them), canceled, and its spend in micro-credits as its
    end users' credits count it (``credits``: BFL's price, or what was reserved when BFL stated none)."""
    rows = [row for row in key_rows({"": counters}, key_id) if row["key_id"] == key_id]
    totals = {counter: sum(row[counter] for row in rows) for counter in ("jobs", "stored", "failed", "canceled")}
    # The account's spend holds every key's: the admin tokens' is what is left of it.
    keys_spend = 0 if key_id else sum(value for name, value in counters.items() if name.startswith(f"{SPENT}@"))
    totals["credits"] = counters.get(spent_field(key_id), 0) - keys_spend
    return totals


def without_end_user(totals: Mapping[str, int], end_users: Mapping[str, Mapping[str, int]]) -> dict[str, Any] | None:
    """The day's row of the jobs that named no end user (``end_user`` None): its owner's ``totals`` (``owner_totals``)
    less what its ``end_users`` counted, so a day's rows add up to the owner's; None when none was made. Its
    ``moderated`` is None: the usage counters count a moderated job as failed, apart only for an end user's."""
    named = {counter: sum(counts.get(counter, 0) for counts in end_users.values())
             for counter in (*_END_USER_COUNTS, "credits")}
    rest = {counter: totals.get(counter, 0) - named[counter] for counter in ("jobs", "stored", "canceled", "credits")}
    rest["failed"] = totals.get("failed", 0) - named["failed"] - named["moderated"]
    if not any(rest.values()):
        return None
    return {"end_user": None, "jobs": rest["jobs"], "stored": rest["stored"], "failed": rest["failed"],
            "canceled": rest["canceled"], "moderated": None, "credits": from_micro(rest["credits"])}


def end_user_report(svc: "Services", first: str | None, last: str | None, now: float, key_id: str | None,
                    end_user: str | None = None) -> dict:
    """``GET /v1/usage?group_by=end_user`` (``&end_user=`` for one): jobs, how they ended and credits per end user of
    app key ``key_id`` (None: the admin tokens) and UTC day, from the end users' day counters (kept
    ``END_USER_TTL``: older days read as none); without ``end_user``, each day's jobs that named none in a row of
    their own (``without_end_user``), so the rows add up to the key's spend. At most ``MAX_END_USER_ROWS`` rows,
    those with the most credits first; ``truncated`` says some were left out."""
    today = datetime.fromtimestamp(now, timezone.utc).date()
    start, end = parse_range(first, last, today)
    names = days_between(start, end)
    kept = [day for day in names if (today - date.fromisoformat(day)).days * 86400 < END_USER_TTL]
    usage = svc.store.usage.days(kept) if end_user is None else {}
    found: list[dict[str, Any]] = []
    for day, users in svc.store.end_users.counters(owner_of(key_id), names).items():
        for name, counts in users.items():
            if end_user is None or name == end_user:
                found.append({"date": day, "end_user": name, **{c: counts.get(c, 0) for c in _END_USER_COUNTS},
                              "credits": from_micro(counts.get("credits", 0))})
        rest = without_end_user(owner_totals(usage[day], key_id), users) if day in usage else None
        if rest is not None:
            found.append({"date": day, **rest})
    found.sort(key=lambda row: (-row["credits"], -row["jobs"], row["date"], row["end_user"] or ""))
    shown = sorted(found[:MAX_END_USER_ROWS], key=lambda row: (row["date"], -row["credits"], row["end_user"] or ""))
    return {"from": start.isoformat(), "to": end.isoformat(), "group_by": "end_user", "days": shown,
            "total_credits": from_micro(sum(round(row["credits"] * MICRO) for row in found)),
            "truncated": len(found) > MAX_END_USER_ROWS}


def credits_by_key(counters: Mapping[str, Mapping[str, int]], names: Mapping[str, str]) -> list[dict]:
    """Credits per app key over ``counters``' days, most first: ``{"key_id", "name", "credits"}``, the admin
    tokens' jobs as ``key_id`` None; ``names`` are the keys' names by id."""
    totals: dict[str | None, int] = {}
    for row in key_rows(counters):
        totals[row["key_id"]] = totals.get(row["key_id"], 0) + round(row["credits"] * MICRO)
    found = [{"key_id": key_id, "name": names.get(key_id, key_id) if key_id else "admin tokens",
              "credits": from_micro(amount)} for key_id, amount in totals.items() if amount]
    return sorted(found, key=lambda k: (-k["credits"], k["name"] or ""))


# --- the dashboard's hourly view ----------------------------------------------------------------------

def hours_before(now: float, count: int) -> list[str]:
    """The last ``count`` UTC hours up to the one of ``now``, oldest first, as ``YYYY-MM-DDTHH``."""
    return [utc_hour(now - 3600 * n) for n in range(count - 1, -1, -1)]


def hourly_outcomes(counts: Mapping[str, int]) -> dict[str, int]:
    """An hour's counts of jobs submitted and ended by status."""
    return {name: counts.get(name, 0) for name in HOURLY_COUNTS}


def latency_quantile(counts: Mapping[str, int], quantile: float) -> float | None:
    """The completion-to-stored latency at ``quantile`` (0-1) among one or more hours' counts, interpolated
    within its histogram bucket as Prometheus does; None if nothing was stored."""
    buckets = [(bound, counts.get(LATENCY + str(bound), 0)) for bound in LATENCY_BUCKETS]
    overflow = counts.get(LATENCY + "+Inf", 0)
    total = sum(n for _, n in buckets) + overflow
    if total == 0:
        return None
    rank, seen, lower = quantile * total, 0, 0.0
    for bound, n in buckets:
        if n and seen + n >= rank:
            return round(lower + (bound - lower) * (rank - seen) / n, 3)
        seen += n
        lower = bound
    return LATENCY_BUCKETS[-1]


def merged(hours: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Several hours' counts added up (to take a quantile over them)."""
    total: dict[str, int] = {}
    for counts in hours.values():
        for name, value in counts.items():
            total[name] = total.get(name, 0) + value
    return total


def hours_of_days(days: list[str]) -> list[str]:
    """Every UTC hour of ``days`` (``YYYY-MM-DD``), oldest first, as ``YYYY-MM-DDTHH``."""
    return [f"{day}T{hour:02d}" for day in days for hour in range(24)]


def periods(by_hour: Mapping[str, Mapping[str, int]], names: list[str], by_day: bool) -> list[dict]:
    """Outcomes and latency p50/p95 per hour of ``names``, or per UTC day (its hours added up) if ``by_day``."""
    groups: dict[str, dict[str, Mapping[str, int]]] = {}
    for name in names:
        groups.setdefault(name[:10] if by_day else name, {})[name] = by_hour.get(name, {})
    found = []
    for period, hours in groups.items():
        counts = merged(hours)
        found.append({"period": period, **hourly_outcomes(counts), "latency_p50": latency_quantile(counts, 0.5),
                      "latency_p95": latency_quantile(counts, 0.95)})
    return found


def overview(svc: "Services", now: float, *, hours: int = 24, days: int = 14, by_day: bool = False) -> dict:
    """What the dashboard's overview shows, from counters and indexes only (a few round trips, no scan).

    ``hours``: per UTC hour, jobs submitted and ended by status, and the completion-to-stored latency
    p50/p95 over them all (``by_day``: the ``days``' hours added up into ``periods``, one per day, and no ``hours``);
    ``days``: credits per UTC day and model; and now: today's spend against the limit, BFL tasks in flight and jobs
    queued per pool against its limit. Each account's balance is ``lifecycle.accounts_view``'s.
    """
    today = datetime.fromtimestamp(now, timezone.utc).date()
    start = today - timedelta(days=days - 1)
    day_names = days_between(start, today)
    # Hourly counters carry every outcome and the latency buckets (kept 35 days): a day's are its hours added up.
    hour_names = hours_of_days(day_names) if by_day else hours_before(now, hours)
    by_hour = svc.store.usage.hours(hour_names)
    counters = svc.store.usage.days(day_names)
    snapshot = svc.store.snapshot(now)
    everything = merged(by_hour)
    return {
        "hours": [] if by_day else [{"hour": name, **hourly_outcomes(by_hour[name])} for name in hour_names],
        "periods": periods(by_hour, hour_names, by_day),
        "latency_p50": latency_quantile(everything, 0.5), "latency_p95": latency_quantile(everything, 0.95),
        "day_names": day_names,
        "days": rows(counters),
        "keys": credits_by_key(counters, {key.id: key.name for key in svc.store.app_keys.all()}),
        "spent_today": from_micro(spent_today(svc, now, counters)),
        "reserved": from_micro(svc.store.usage.reserved(now)),
        "daily_limit": svc.config.bfl_daily_credit_limit,
        "pools": [{"pool": pool, "in_flight": snapshot.in_flight[pool], "queued": snapshot.waiting[pool],
                   "limit": pool_limit(svc.config, pool)} for pool in svc.store.pools],
        "max_active": svc.config.bfl_max_active,
    }
