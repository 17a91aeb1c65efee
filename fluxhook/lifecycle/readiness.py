"""Whether the service can do its work: Redis answers, a worker is alive, storage takes writes; and whether this
host's clock agrees with Redis's.

``GET /readyz`` answers with the first three and ``fluxhook doctor`` prints them, so the two never disagree. The
clock's check never fails, so ``/readyz`` (whose answer names failures only) does not pay its round trip at every
probe: the doctor and each worker's start run it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import RedisError
from rq import Worker

from fluxhook.core.errors import StorageError
from fluxhook.core.holds import MOVE_LEASE

log = logging.getLogger("fluxhook.readiness")

HEARTBEAT_MAX_AGE = 60  # seconds: /readyz wants a worker heartbeat seen in the last 60 s
# Leases, due times and deadlines one process writes are read against another host's clock (a worker repairs a move into
# RQ a web process began ``holds.MOVE_LEASE`` after it began it): hosts off by more than this shorten or lengthen every
# one of them by as much. Each host is measured against Redis's clock (``TIME``), the one clock every process reaches.
CLOCK_SKEW_MAX = 2.0

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``state`` is ok, FAIL, warn or skip; ``detail`` is for an operator (it may name hosts,
    never a secret); ``reason`` says what is wrong in words fit for ``/readyz``, which anyone may read (nothing of the
    setup)."""

    name: str
    state: str
    detail: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.state == FAIL


def check(svc) -> list[Check]:
    """The Redis, worker and storage checks of ``svc`` (a ``Services``), in that order."""
    redis_check = _redis(svc)
    worker_check = _worker(svc) if not redis_check.failed else Check("worker", SKIP, "needs Redis")
    return [redis_check, worker_check, _storage(svc)]


def clock(svc, local: Callable[[], float] = time.time) -> Check:
    """How far this host's clock (``local``) is from Redis's: ``warn`` past ``CLOCK_SKEW_MAX`` seconds, counting
    only what the round trip cannot explain. Never a failure: the service runs, its leases are off by as much."""
    try:
        before = local()
        seconds, micros = svc.redis.time()
        after = local()
    except RedisError as exc:
        return Check("clock", SKIP, f"cannot read Redis's clock: {type(exc).__name__}: {exc}")
    skew = seconds + micros / 1e6 - (before + after) / 2
    beyond = abs(skew) - (after - before) / 2
    side = "behind" if skew > 0 else "ahead of"
    if beyond > CLOCK_SKEW_MAX:
        return Check("clock", WARN, f"this host's clock is {abs(skew):.1f} s {side} Redis's: every lease and due time "
                                    f"another host reads is off by as much (a take for RQ is restored as lost after "
                                    f"{MOVE_LEASE:.0f} s); keep every host's clock in step (NTP, chrony)")
    return Check("clock", OK, f"within {max(abs(skew), 0.001):.3f} s of Redis's")


def log_clock(svc, local: Callable[[], float] = time.time) -> None:
    """Say in the log, as a process starts, when this host's clock is off Redis's (``clock``): its leases and due
    times are read by other hosts. Nothing when it is in step, or when Redis does not answer (the process says so)."""
    found = clock(svc, local)
    if found.state == WARN:
        log.warning(found.detail)


def redact_url(url: str) -> str:
    """The URL without its password (a Redis URL may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _redis(svc) -> Check:
    config = svc.config
    where = redact_url(config.redis_url) if not config.redis_sentinels else (
        f"Sentinel master {config.redis_sentinel_master} at "
        + ",".join(_address(host, port) for host, port in config.redis_sentinels))
    try:
        if config.redis_sentinels:
            # REDIS_URL's host is not used: name the primary the sentinels send this process to now.
            where = f"primary {_address(*svc.redis.connection_pool.get_master_address())} ({where})"
        svc.redis.ping()  # opens the connection, so the timed PING below measures Redis alone
        start = time.perf_counter()
        svc.redis.ping()
        latency = (time.perf_counter() - start) * 1000
    except RedisError as exc:
        return Check("redis", FAIL, f"{where}: {type(exc).__name__}: {exc}",
                     f"redis unreachable: {type(exc).__name__}")
    return Check("redis", OK, f"{where}: PING {latency:.1f} ms")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _worker(svc) -> Check:
    try:
        workers = Worker.all(queue=svc.queue)
    except RedisError as exc:
        return Check("worker", FAIL, f"cannot read the workers: {type(exc).__name__}: {exc}",
                     f"redis unreachable: {type(exc).__name__}")
    now = time.time()
    ages = sorted(now - w.last_heartbeat.timestamp() for w in workers if w.last_heartbeat)
    alive = [w for w in workers if w.last_heartbeat and now - w.last_heartbeat.timestamp() < HEARTBEAT_MAX_AGE]
    if alive:
        # Each worker process runs several RQ workers (its lanes): people count processes.
        processes = {(w.hostname, w.pid) for w in alive}
        return Check("worker", OK, f"{len(processes)} worker process(es) alive ({len(alive)} RQ workers: their "
                                   f"lanes), latest heartbeat {max(ages[0], 0):.0f} s ago")
    seen = f"; the latest, {ages[0]:.0f} s ago" if ages else ""
    return Check("worker", FAIL, f"no worker heartbeat in the last {HEARTBEAT_MAX_AGE} s ({len(workers)} "
                                 f"registered{seen}): start one with `python -m worker`",
                 f"no worker heartbeat in the last {HEARTBEAT_MAX_AGE} s")


def _storage(svc) -> Check:
    where = svc.config.storage_url
    try:
        svc.storage.check_writable()
    except Exception as exc:  # noqa: BLE001 (any failure of the store means it cannot take an image)
        said = exc.message if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
        return Check("storage", FAIL, f"{where} is not writable: {said}", "storage is not writable")
    return Check("storage", OK, f"{where} is writable")
