"""Prometheus metrics kept in Redis, so the counts add up across every web and worker process and dyno.

prometheus_client's multiprocess mode shares files on one machine only; a PaaS runs web and
worker on different machines. So the counts go to one Redis hash (``Keys.metrics``): each process adds its
events up and writes them every few seconds, one HINCRBY per field however many events
(``store/effects.py``'s ``Tallies``), and ``/metrics`` renders that hash (plus gauges read from Redis at scrape time) with
prometheus_client: the scraping process's own counts up to date, the others' up to ``FLUSH_INTERVAL`` late.
Recording never raises: a metric must not fail the work it describes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from fluxhook.store.effects import CountMetrics, Effect

if TYPE_CHECKING:
    from fluxhook.services import Services
    from fluxhook.store import Store

log = logging.getLogger("fluxhook.metrics")

_SEP = "\x1f"

# name: (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fluxhook_callbacks": ("Callbacks received, by outcome (accepted, duplicate, kept, refused) and refusal reason.",
                           ("outcome", "reason")),
    "fluxhook_downloads": ("Download-and-store attempts by outcome.", ("outcome",)),
    "fluxhook_polls": ("Polls of BFL by outcome and BFL account.", ("outcome", "account")),
    "fluxhook_submissions": ("Submissions to BFL by outcome and BFL account (empty: refused before one was "
                             "chosen).", ("outcome", "account")),
    "fluxhook_account_cooldowns": ("BFL accounts cooled down after a refusal to a submission, by account and "
                                   "error.", ("account", "reason")),
    "fluxhook_notifications": ("Notification attempts to the user's app by outcome (delivered, retry, rejected, "
                               "disabled, exhausted, host_not_allowed, not_signed, skipped).", ("outcome",)),
    "fluxhook_credits_spent": ("BFL credits charged for the tasks fluxhook submitted, by model and app key (its "
                               "name; empty for admin tokens' jobs), as BFL stated them (a later, lower price in a "
                               "result is not subtracted).", ("model", "key", "account")),
    "fluxhook_end_user_refusals": ("New jobs of an app key's end user refused by what its key set for it, by app key "
                                   "(its name) and reason (blocked, moderated: blocked for BFL's moderations today, "
                                   "rate_limited, queue_full, budget_exceeded).", ("key", "reason")),
    "fluxhook_price_over_catalog": ("Submissions BFL charged more than the model catalog's bound, by model (its "
                                    "requests then go alone until the catalog is corrected).", ("model",)),
}
# name: (help, bucket upper bounds in seconds)
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "fluxhook_download_seconds": ("Duration of one download attempt, fetch and store.",
                                  (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)),
    "fluxhook_completion_to_stored_seconds": (
        "Seconds from BFL finishing a task (its end_time, else when fluxhook learned of it) to the image stored.",
        (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)),
}


def _field(name: str, labels: dict[str, str]) -> str:
    return name + _SEP + _SEP.join(f"{k}={labels[k]}" for k in sorted(labels))


def counted(name: str, **labels: str) -> CountMetrics:
    """One more of counter ``name`` with ``labels``, as an effect to record with other work."""
    return CountMetrics(((_field(name, labels), 1),))


def added(name: str, amount: float, **labels: str) -> CountMetrics:
    """``amount`` more of counter ``name`` with ``labels`` (a fraction, as credits are), as an effect."""
    return CountMetrics(((_field(name, labels), float(amount)),))


def observed(name: str, seconds: float, **labels: str) -> CountMetrics:
    """One observation of histogram ``name``, as an effect to record with other work."""
    _, buckets = HISTOGRAMS[name]
    bound = next((str(b) for b in buckets if seconds <= b), "+Inf")
    return CountMetrics(((_field(name, {**labels, "le": bound}), 1), (_field(name + "_sum", labels), float(seconds))))


def count(svc: "Services", name: str, **labels: str) -> None:
    """Add one to counter ``name`` with ``labels`` now."""
    record(svc, [counted(name, **labels)])


def record(svc: "Services", effects: Sequence[Effect]) -> None:
    """Record metrics (tallied in the process) and timeline entries (now, in one round trip); a failure is logged,
    never raised."""
    try:
        svc.store.effects.apply(effects)
    except RedisError as exc:
        log.warning("metric not recorded", extra={"error": type(exc).__name__})


def _parse(raw: dict) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The hash as {name: [(labels, value)]}."""
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for field, value in raw.items():
        field = field.decode() if isinstance(field, bytes) else field
        name, *pairs = field.split(_SEP)
        labels = dict(p.split("=", 1) for p in pairs if "=" in p)
        series.setdefault(name, []).append((labels, float(value)))
    return series


def recorded_families(store: "Store") -> Iterable:
    """Every counter and histogram in Redis as prometheus_client metric families."""
    series = _parse(store.metrics_fields())
    for name, (help_text, label_names) in COUNTERS.items():
        family = CounterMetricFamily(name, help_text, labels=label_names)
        for labels, value in series.get(name, []):
            family.add_metric([labels.get(n, "") for n in label_names], value)
        yield family
    for name, (help_text, buckets) in HISTOGRAMS.items():
        histogram = HistogramMetricFamily(name, help_text)
        counts = {labels.get("le"): value for labels, value in series.get(name, [])}
        running, cumulative = 0.0, []
        for bound in [str(b) for b in buckets] + ["+Inf"]:
            running += counts.get(bound, 0.0)
            cumulative.append((bound, running))
        total = sum(v for _, v in series.get(name + "_sum", []))
        histogram.add_metric([], cumulative, total)
        yield histogram


def gauge(name: str, help_text: str, values: dict[tuple[str, ...], float], label_names: tuple[str, ...] = ()):
    """A gauge family from ``{label values: value}``."""
    family = GaugeMetricFamily(name, help_text, labels=label_names)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


def redis_families(connection: Redis) -> Iterable:
    """Commands the Redis server processed (``INFO stats``), in all and by command (``INFO commandstats``), as
    counters read at scrape time: what fluxhook asks of Redis, every client of that server's included."""
    total = CounterMetricFamily("fluxhook_redis_commands_processed", "Commands the Redis server processed since it "
                                                                     "started (INFO stats total_commands_processed).")
    by_command = CounterMetricFamily("fluxhook_redis_command_calls", "Calls of each Redis command since the server "
                                                                     "started (INFO commandstats).", labels=("command",))
    try:
        total.add_metric([], float(connection.info("stats")["total_commands_processed"]))
        for section, stats in connection.info("commandstats").items():
            by_command.add_metric([section.removeprefix("cmdstat_")], float(stats["calls"]))
    except ResponseError:
        # A managed Redis may refuse INFO or a section of it: the families then have no series, the scrape goes on.
        log.warning("Redis refused INFO: no Redis command metrics")
    yield total
    yield by_command
