"""The events a notification may be of, and the one rule for a ``notify_events`` setting (pure).

``job.ended`` goes to every target, asked or not; ``job.submitted`` and ``job.progress`` only where a job's or its
key's ``notify_events`` names them (a job's own list, when it has one, else its key's).
"""

from __future__ import annotations

from fluxhook.core.errors import InvalidRequest

SUBMITTED, PROGRESS, ENDED = "job.submitted", "job.progress", "job.ended"
EVENTS = (SUBMITTED, PROGRESS, ENDED)
# What a target asks for beyond the end, kept on the job and the key.
OPTIONAL = (SUBMITTED, PROGRESS)
# At most one job.progress per job this often (seconds): a job reporting progress every second is not a message each.
PROGRESS_GAP = 5.0


def parse_events(value: object, field: str = "notify_events") -> tuple[str, ...]:
    """The optional events ``value`` asks for (a list of event names; ``job.ended`` is always sent), in ``EVENTS``'
    order; InvalidRequest naming ``field`` for anything else."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v in EVENTS for v in value):
        raise InvalidRequest(f"'{field}' must be a list of event names: {', '.join(EVENTS)}")
    return tuple(event for event in OPTIONAL if event in value)


def wanted(job_events: tuple[str, ...] | None, key_events: tuple[str, ...] | None) -> tuple[str, ...]:
    """The optional events a job's notifications carry: its own list when it has one, else its key's."""
    return tuple(job_events if job_events is not None else key_events or ())


# A batch's end: sent to its notify_url whatever its notify_events say.
BATCH_ENDED = "batch.ended"
BATCH_EVENTS = (BATCH_ENDED, *EVENTS)


def parse_batch_events(value: object) -> tuple[str, ...]:
    """The ``job.*`` events a batch's ``notify_events`` asks its items' messages for (none: its items send none), in
    ``EVENTS``' order; ``batch.ended`` is always sent. InvalidRequest for anything else."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v in BATCH_EVENTS for v in value):
        raise InvalidRequest(f"'notify_events' of a batch must be a list of event names: {', '.join(BATCH_EVENTS)}")
    return tuple(event for event in EVENTS if event in value)
