"""bench-peers' figures from what one run recorded: no process, no clock, no network (tests/unit/bench/test_peers.py).

A run is one gateway (fluxhook or LiteLLM's proxy) through one scenario. What it hands here: each request's
``Outcome``, the simulator's counters before and after (``/_sim/stats``), its tasks (``/_sim/tasks``), the gateway's
CPU seconds and peak RSS, and Redis's command count before and after where the gateway has a Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .common import fmt, percentile


@dataclass
class Outcome:
    """One client request: when it was sent, when its image opened (None: never), and what the client held."""

    app: str
    prompt: str
    sent: float
    opened_at: float | None = None  # the image's first byte-complete fetch, right after the answer
    url: str | None = None
    error: str | None = None  # "client gone", "HTTP 429", ...
    gone: bool = False  # the client gave up on the request (it may come back, where the gateway allows)
    later: bool = False  # the image opened again once BFL's URL had expired
    job_id: str | None = None  # fluxhook's job, for a client that gave up to come back to

    @property
    def seconds(self) -> float | None:
        return None if self.opened_at is None else self.opened_at - self.sent


@dataclass
class RunFigures:
    """What the table prints for one gateway in one scenario."""

    requests: int
    usable_now: int
    usable_later: int
    p50: float
    p99: float
    slots_busy: float
    submissions: int
    polls: int
    rejected_429: int
    paid: int
    lost_expired: int
    lost_gone: int
    duplicated: int
    cpu: float
    rss: float
    redis_per_image: float | None
    app_p99: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    opens_refused: int = 0  # the gateway's 429s to a client opening an image (waited out, asked again)

    @property
    def calls_per_image(self) -> float:
        """Per image a client got: at once, or (a client that gave up and came back) later."""
        images = max(self.usable_now, self.usable_later)
        return (self.submissions + self.polls) / images if images else math.nan

    @property
    def lost(self) -> int:
        return self.paid - self.usable_later


def slots_busy(tasks: list[dict], slots: int) -> float:
    """The share of the account's slot-time BFL spent running tasks, from the first task's start to the last's end:
    each task holds a slot from ``created_at`` to ``completed_at`` (a task not ended holds it to the window's end)."""
    spans = [(t["created_at"], t.get("completed_at")) for t in tasks if t.get("created_at") is not None]
    if not spans:
        return math.nan
    start = min(a for a, _ in spans)
    end = max(b if b is not None else a for a, b in spans)
    if end <= start:
        return math.nan
    held = sum((b if b is not None else end) - a for a, b in spans)
    return held / (slots * (end - start))


def duplicated(tasks: list[dict]) -> int:
    """Tasks BFL ran beyond one per prompt: every request carries a prompt of its own, so a second task of a prompt
    is the same request paid twice."""
    prompts = [t.get("prompt") for t in tasks]
    return len(prompts) - len(set(prompts))


def stat_delta(before: dict, after: dict, name: str) -> int:
    return int(after.get(name, 0)) - int(before.get(name, 0))


def commandstats_calls(info: dict) -> int:
    """Every command Redis has run, from ``INFO commandstats`` as redis-py parses it."""
    return sum(int(v.get("calls", 0)) for k, v in info.items() if k.startswith("cmdstat_") and isinstance(v, dict))


def figures(outcomes: list[Outcome], stats_before: dict, stats_after: dict, tasks: list[dict], slots: int,
            cpu: float, rss: float, redis_calls: int | None) -> RunFigures:
    """One run's figures. ``tasks``: only this run's (the simulator's tasks of its prompts)."""
    times = [o.seconds for o in outcomes if o.seconds is not None]
    usable_now = sum(o.opened_at is not None for o in outcomes)
    usable_later = sum(o.later for o in outcomes)
    prompts_of_tasks = {t.get("prompt") for t in tasks}
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.error:
            errors[o.error] = errors.get(o.error, 0) + 1
    by_app: dict[str, list[float]] = {}
    for o in outcomes:
        if o.seconds is not None:
            by_app.setdefault(o.app, []).append(o.seconds)
    return RunFigures(
        requests=len(outcomes), usable_now=usable_now, usable_later=usable_later,
        p50=percentile(times, 50), p99=percentile(times, 99), slots_busy=slots_busy(tasks, slots),
        submissions=stat_delta(stats_before, stats_after, "received"),
        polls=stat_delta(stats_before, stats_after, "polls_total"),
        rejected_429=stat_delta(stats_before, stats_after, "rejected_429"),
        paid=stat_delta(stats_before, stats_after, "submitted"),
        lost_expired=sum(o.opened_at is not None and not o.later for o in outcomes),
        lost_gone=sum(o.gone and not o.later and o.prompt in prompts_of_tasks for o in outcomes),
        duplicated=duplicated(tasks), cpu=cpu, rss=rss,
        redis_per_image=None if redis_calls is None or not usable_later else redis_calls / usable_later,
        app_p99={app: percentile(values, 99) for app, values in by_app.items()}, errors=errors)


def rows(flux: RunFigures | None, lite: RunFigures | None,
         alone: dict[str, float] | None = None) -> list[tuple[str, str, str]]:
    """The table's lines for one scenario: (figure, fluxhook, LiteLLM); a gateway not run (None) reads "-"."""

    def both(label: str, get) -> tuple[str, str, str]:
        return label, "-" if flux is None else get(flux), "-" if lite is None else get(lite)

    lines = [
        both("completed, image opens later", lambda f: f"{f.usable_later}/{f.requests}"),
        both("completed, image opened at once", lambda f: f"{f.usable_now}/{f.requests}"),
        both("request -> usable image p50", lambda f: fmt(f.p50, 1, " s")),
        both("request -> usable image p99", lambda f: fmt(f.p99, 1, " s")),
        both("BFL slots busy", lambda f: fmt(f.slots_busy * 100, 0, " %")),
        both("BFL calls per image (subm.+polls)",
             lambda f: f"{fmt(f.calls_per_image, 2)} ({f.submissions}+{f.polls})"),
        both("BFL 429 answers", lambda f: str(f.rejected_429)),
        both("gateway CPU seconds", lambda f: fmt(f.cpu, 1, " s")),
        both("gateway peak RSS", lambda f: fmt(f.rss, 0, " MB")),
        both("Redis commands per image", lambda f: "no Redis" if f.redis_per_image is None else fmt(f.redis_per_image, 0)),
        both("paid / lost (expired, gone, dup.)",
             lambda f: f"{f.paid} / {f.lost} ({f.lost_expired}, {f.lost_gone}, {f.duplicated})"),
        both("client reads answered 429 (retried)", lambda f: str(f.opens_refused)),
        both("failed requests", lambda f: ", ".join(f"{k} x{v}" for k, v in sorted(f.errors.items())) or "0"),
    ]
    if alone is not None:
        def second(figures: RunFigures | None, name: str) -> str:
            return "-" if figures is None else f"{fmt(figures.app_p99.get('b'), 1, ' s')} ({fmt(alone.get(name), 1, ' s')})"

        lines.append(("second app p99 (alone)", second(flux, "fluxhook"), second(lite, "litellm")))
    return lines


def render(title: str, lines: list[tuple[str, str, str]]) -> str:
    headers = ("figure", "fluxhook", "LiteLLM")
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = [f"[{title}]", " | ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(headers)),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
            for line in lines]
    return "\n".join(out)
