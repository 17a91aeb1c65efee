"""Worker steps that must outlive a Redis failover because they stand for something done elsewhere.

A task BFL accepted is paid for. With ``REDIS_MIN_REPLICAS``, a worker sends a job to BFL only once the replicas have
the job as it read it (else a job lost with a dying primary would be paid for, then created and paid for again by the
client's retry), and the worker holding BFL's answer makes sure its record reached the replicas, writing it again on a
new primary when it did not (else the job would read ``queued`` there and be sent again).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from redis.exceptions import RedisError

from fluxhook.core.errors import FailedOver, NotReplicated, ReplicasMissing
from fluxhook.services import Services

log = logging.getLogger("fluxhook.durable")

# Long enough for a Sentinel failover and the old primary's return as a replica.
PATIENCE_SECONDS = 20.0
# Between two tries while Redis fails over: nothing to wait on but the clock.
PAUSE_SECONDS = 0.5


def primary_before_reading(svc: Services) -> str | None:
    """With replicas required, the primary as known before a job is read for sending (see ``confirm_before_sending``)."""
    return svc.store.replication.primary() if svc.store.replication.required else None


def confirm_before_sending(svc: Services, primary: str | None) -> None:
    """Return once the replicas have everything the primary ``primary`` took so far (the job read for
    sending among it); raise ``NotReplicated`` or ``FailedOver`` (retryable) if not. Nothing without replicas required."""
    if primary is not None:
        svc.store.replication.confirm(primary)


def record_durably(svc: Services, record: Callable[[], object]) -> bool:
    """Run ``record``, a guarded write that changes nothing once applied (``only_from``), until it is kept: through a
    Redis outage or failover (up to ``PATIENCE_SECONDS``, then the last error is raised) and, with replicas required,
    until they confirm it, running it again on a new primary. Whether any run applied it.

    A replica that is only slow (attached, behind) is not waited on beyond one ``WAIT``: the record is on a live
    primary. A primary with fewer replicas attached than required (``ReplicasMissing``) may be the old primary of a
    planned failover, still taking writes until the sentinels make it a replica and it drops them: the record is run
    again until the replicas confirm it (on the new primary); past ``PATIENCE_SECONDS`` it stands as written (a replica
    lost, no failover: nothing better to do).
    """
    replication = svc.store.replication
    deadline = time.monotonic() + PATIENCE_SECONDS
    applied = False
    while True:
        try:
            primary = replication.primary() if replication.required else None
            applied = bool(record()) or applied
            if primary is not None:
                replication.confirm(primary)
            return applied
        except NotReplicated as exc:
            if not isinstance(exc, (FailedOver, ReplicasMissing)):
                log.warning("record not yet on Redis's replicas", extra={"error": exc.code})
                return applied
            failure: Exception = exc  # the record may be missing on the new primary: write it there
        except RedisError as exc:
            failure = exc  # Redis away, or failing over: write it once it answers
        if time.monotonic() > deadline:
            if isinstance(failure, ReplicasMissing):
                log.warning("record kept on a primary without its replicas", extra={"error": failure.code})
                return applied
            log.error("record of work done elsewhere not kept", extra={"error": type(failure).__name__})
            raise failure
        time.sleep(PAUSE_SECONDS)
