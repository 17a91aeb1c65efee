"""How the dashboard's overview reads: ``fluxhook.credits.accounting.overview``'s counters as charts and figures.

Plain functions from the counters to what the template shows; the drawing is ``charts``'.
"""

from __future__ import annotations

import math
import time
from typing import Mapping

from markupsafe import Markup

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL
from fluxhook.core.batch import Batch, BatchStatus
from fluxhook.core.pacing import BULK, NONE
from fluxhook.credits.figures import epoch, format_credits, read_ago
from fluxhook.store.pacing import Judged

from .charts import Column, Series, bar_chart, gauge_bar, line_chart
from .dashboard_view import batch_done, clock, duration

# What each range reads: the 24 hours hour by hour (and the credits of the days they touch), or 30 days day by day.
RANGES: dict[str, dict] = {"24h": {"hours": 24, "days": 2, "by_day": False}, "30d": {"days": 30, "by_day": True}}
RANGE_WORDS = {"24h": "the last 24 hours", "30d": "the last 30 days"}
# Credits are counted per UTC day: the 24-hour view's figure is that of the days it touches.
CREDIT_WORDS = {"24h": "credits, today and yesterday (UTC)", "30d": "credits"}
DEFAULT_RANGE = "24h"
OUTCOMES = (Series(st.STORED, "stored", "s-stored"), Series(st.FAILED, "failed", "s-failed"),
            Series(st.MODERATED, "moderated", "s-moderated"), Series(st.EXPIRED, "expired", "s-expired"),
            Series(st.CANCELED, "canceled", "s-canceled"), Series(st.ABORTED, "aborted", "s-aborted"))
SUBMITTED = Series("submitted", "submitted", "s-submitted")
LATENCY = (Series("latency_p50", "p50", "s-p50"), Series("latency_p95", "p95", "s-p95"))
# Models take the palette's colours in name order; more models than colours share them.
MODEL_COLOURS = 6
# At most this many labels under a full-width chart's columns (half as many under a half-width one, and under
# a full-width one in a narrow window: see minor_label): no overlap.
MAX_LABELS = 12


def period_label(period: str, index: int, count: int, most: int = MAX_LABELS) -> str:
    """The axis label of column ``index`` of ``count``: ``10:00`` for an hour, ``11-05`` for a day; '' between,
    so that at most ``most`` are shown. Counted back from the last column, the current hour or today, which
    always has its label."""
    if (count - 1 - index) % math.ceil(count / most):
        return ""
    return f"{period[11:13]}:00" if "T" in period else period[5:]


def minor_label(index: int, count: int) -> bool:
    """Whether column ``index``'s label (see period_label) is every other one, left out in a narrow window."""
    return (count - 1 - index) % (2 * math.ceil(count / MAX_LABELS)) != 0


def period_title(period: str) -> str:
    """``2026-11-22 10:00–11:00 UTC`` for an hour, ``2026-11-22 (UTC)`` for a day."""
    if "T" in period:
        hour = int(period[11:13])
        return f"{period[:10]} {hour:02d}:00–{(hour + 1) % 24:02d}:00 UTC"
    return f"{period} (UTC)"


def outcome_words(counts: Mapping[str, int]) -> str:
    """``4 stored, 1 failed; 5 submitted``: what a column of the jobs chart stands for."""
    ended = ", ".join(f"{counts.get(s.key, 0)} {s.label}" for s in OUTCOMES if counts.get(s.key)) or "none ended"
    return f"{ended}; {counts.get('submitted', 0)} submitted"


def seconds(value: float | None) -> str:
    """A latency as the figures show it, '—' for none."""
    return "—" if value is None else duration(value)


def _columns(periods: list[dict], describe, most: int = MAX_LABELS) -> list[Column]:
    count = len(periods)
    full_width = most == MAX_LABELS  # in a narrow window, room for half its labels
    return [Column(p["period"], period_label(p["period"], n, count, most), f"{period_title(p['period'])}: {describe(p)}",
                   p, minor=full_width and minor_label(n, count)) for n, p in enumerate(periods)]


def jobs_chart(periods: list[dict], span: str) -> Markup:
    """Jobs ended per period, stacked by outcome, with the number submitted as a tick across each bar."""
    unit = "hour" if span == "24h" else "day"
    return bar_chart(_columns(periods, outcome_words), OUTCOMES, marker=SUBMITTED.key,
                     label=f"Jobs per {unit} by outcome, {RANGE_WORDS[span]}")


def latency_chart(periods: list[dict], span: str) -> Markup:
    """Completion-to-stored latency p50 and p95 per period, a gap where nothing was stored."""
    def describe(p: dict) -> str:
        return f"p50 {seconds(p['latency_p50'])}, p95 {seconds(p['latency_p95'])}"
    return line_chart(_columns(periods, describe, MAX_LABELS // 2), LATENCY, tick_text=lambda v: f"{v:g} s",
                      label=f"Time from BFL finishing to stored, p50 and p95, {RANGE_WORDS[span]}")


def credit_series(rows: list[dict]) -> list[Series]:
    """One series per model with credits counted, in name order, each with its palette colour."""
    models = sorted({row["model"] for row in rows})
    return [Series(model, model, f"m{n % MODEL_COLOURS}") for n, model in enumerate(models)]


def credits_chart(day_names: list[str], rows: list[dict], span: str) -> tuple[Markup, list[Series]]:
    """Credits per UTC day, stacked by model; and the models, for the legend."""
    series = credit_series(rows)
    per_day: dict[str, dict[str, float]] = {day: {} for day in day_names}
    for row in rows:
        per_day.setdefault(row["date"], {})[row["model"]] = row["credits"]

    def describe(values: dict) -> str:
        spent = [f"{values[s.key]:g} {s.key}" for s in series if values.get(s.key)]
        return f"{sum(values.values()):g} credits" + (f" ({', '.join(spent)})" if spent else "")

    columns = [Column(day, period_label(day, n, len(day_names), MAX_LABELS // 2),
                      f"{period_title(day)}: {describe(per_day[day])}", per_day[day]) for n, day in enumerate(day_names)]
    chart = bar_chart(columns, series, whole=False, tick_text=lambda v: f"{v:g}",
                      label=f"Credits per day by model, {RANGE_WORDS[span]}")
    return chart, series


def totals(periods: list[dict]) -> dict[str, int]:
    """Jobs submitted and ended by outcome over all the periods."""
    return {key: sum(p[key] for p in periods) for key in (SUBMITTED.key, *(s.key for s in OUTCOMES))}


def pools(data: dict) -> list[dict]:
    """Each slot pool now, and all of them against BFL_MAX_ACTIVE: in flight, queued, the limit, a gauge,
    and a label that says which models count in it."""
    shown = [{"name": p["pool"], "in_flight": p["in_flight"], "queued": p["queued"], "limit": p["limit"],
              **_pool_words(p["pool"], len(data["pools"]))} for p in data["pools"]]
    if len(shown) > 1:
        shown.append({"name": "all models", "label": "All models", "note": "BFL_MAX_ACTIVE",
                      "in_flight": sum(p["in_flight"] for p in shown),
                      "queued": sum(p["queued"] for p in shown), "limit": data["max_active"]})
    for pool in shown:
        pool["gauge"] = gauge_bar(pool["in_flight"], pool["limit"],
                                  label=f"{pool['in_flight']} of {pool['limit']} in flight")
    return shown


def _pool_words(pool: str, count: int) -> dict[str, str]:
    """A pool's label: the default pool holds every model without a limit of its own (BFL_MODEL_LIMITS)."""
    if pool != DEFAULT_POOL:
        return {"label": pool, "note": "its own limit (BFL_MODEL_LIMITS)"}
    if count == 1:
        return {"label": "All models", "note": "BFL_MAX_ACTIVE"}
    return {"label": "Other models", "note": "every model without a limit of its own"}


# Why an account cools down, as the panel says it (``CoolingReason``'s values).
COOLING_WORDS = {"unavailable": "BFL unavailable", "insufficient_credits": "out of credits",
                 "daily_credit_limit": "its daily credit limit is spent"}


def accounts_panel(accounts: list[dict], now: float) -> list[dict]:
    """The accounts as ``GET /v1/accounts`` lists them (``lifecycle.accounts_view``), in the panel's words: tasks in
    flight by model, whether it takes tasks or why and until when not, and its balance as ``fluxhook doctor`` writes it."""
    shown = []
    for account in accounts:
        in_flight, cooling, balance = account["in_flight"], account["cooling"], account["balance"]
        read_at = epoch(account["balance_at"])
        if cooling is None:
            state = "takes tasks"
        else:
            until = cooling["until"].replace("T", " ").removesuffix("Z")
            # A 402's cooldown lasts until the balance reads above zero: its "until" is only the next look.
            when = f"next look at the balance {until} UTC" if cooling["reason"] == "insufficient_credits" \
                else f"until {until} UTC"
            state = f"cooling: {COOLING_WORDS.get(cooling['reason'], cooling['reason'])}, {when}"
        shown.append({
            "name": account["name"], "region": account["region"] or "—", "host": account["host"],
            "in_flight": sum(in_flight.values()),
            "models": ", ".join(f"{model} {n}" for model, n in sorted(in_flight.items())) if len(in_flight) > 1 else "",
            "canceled_running": account["canceled_running"],
            "queued": account["queued"], "cooling": cooling is not None, "state": state,
            "balance": "not read lately" if balance is None else format_credits(balance),
            "balance_read": "" if balance is None or read_at is None else read_ago(read_at, now),
            "spent_today": format_credits(account["spent_today"]),
        })
    return shown


def balances(accounts: list[dict], now: float) -> list[dict]:
    """The spend panel's balances: one per configured account, read from that account (``GET /v1/accounts``' figures),
    as ``fluxhook doctor`` writes them (``1,000,000``), with when each was read."""
    shown = []
    for account in accounts:
        at = epoch(account["balance_at"]) if account["balance"] is not None else None
        shown.append({"name": account["name"], "credits": format_credits(account["balance"]) if at is not None else None,
                      "read": read_ago(at, now) if at is not None else "", "at": clock(at) if at is not None else ""})
    return shown


def storage_panel(judged: Judged, level: str) -> dict:
    """Storage now: the results BFL finished that fluxhook has not stored, how long storing them takes at the rate it
    stored over the last minute, and what waits for it (``level``, the mark's: waiting reason ``storage``)."""
    backlog = judged.backlog
    rate = f"{backlog.rate:.1f} a second over the last minute" if backlog.rate > 0 else "none stored in the last minute"
    if backlog.waiting == 0:
        seconds = "nothing waits to be stored"
    elif backlog.seconds == math.inf:
        seconds = "storing them: not measured yet"
    else:
        seconds = f"about {duration(backlog.seconds)} of storing"
    what = "batch items' sends wait" if level == BULK else "new sends wait"
    if level == NONE:
        state = "sends go"
    elif judged.until is not None:
        state = f"{what} for storage (waiting reason storage), until about {clock(judged.until)} UTC"
    else:
        state = f"{what} for storage (waiting reason storage) until it stores again"
    if level == BULK:
        state += "; single jobs still go"
    return {"waiting": backlog.waiting, "seconds": seconds, "rate": rate, "held": level != NONE, "state": state}


def running_batches(batches: list[Batch]) -> list[dict]:
    """The running batches among ``batches``: each with its items sent beside those ended."""
    return [{"id": b.id, "model": b.model, "done": batch_done(b)} for b in batches if b.status == BatchStatus.RUNNING]


def overview_page(data: dict, span: str, now: float | None = None, accounts: list[dict] | None = None,
                  storage: dict | None = None, batches: list[dict] | None = None) -> dict:
    """Everything the overview page shows for ``span`` (a key of RANGES), from ``usage.overview``'s answer and the
    ``accounts`` as ``GET /v1/accounts`` lists them."""
    periods = data["periods"]
    credits, models = credits_chart(data["day_names"], data["days"], span)
    counted = totals(periods)
    now = time.time() if now is None else now
    return {
        "span": span,
        "words": RANGE_WORDS[span],
        "ranges": [{"key": key, "words": RANGE_WORDS[key]} for key in RANGES],
        "totals": counted,
        # A job canceled or aborted ended as its caller asked: not badly.
        "ended_badly": sum(counted[s.key] for s in OUTCOMES if s.key not in (st.STORED, st.CANCELED, st.ABORTED)),
        "empty": not any(counted.values()),
        "latency_p50": seconds(data["latency_p50"]),
        "latency_p95": seconds(data["latency_p95"]),
        "credits": round(sum(row["credits"] for row in data["days"]), 6),
        "credit_words": CREDIT_WORDS[span],
        "spent_today": data["spent_today"],
        "reserved": data["reserved"],
        "daily_limit": data["daily_limit"],
        "balances": balances(accounts or [], now),
        "jobs_chart": jobs_chart(periods, span),
        "latency_chart": latency_chart(periods, span),
        "credits_chart": credits,
        "outcomes": OUTCOMES,
        "submitted": SUBMITTED,
        "latency": LATENCY,
        "models": models,
        "pools": pools(data),
        "keys": data["keys"],
        "accounts": accounts_panel(accounts or [], now),
        "storage": storage,
        "batches": batches or [],
    }
