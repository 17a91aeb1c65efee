"""The words for what became of a piece of work: reports applied, checks, downloads, submissions,
notifications and the balance's refresh.

They appear in logs, metrics labels, timelines and the webhook's answer; each is defined once, here.
"""

from enum import StrEnum


class Outcome(StrEnum):
    """What became of one piece of work."""

    # A report was applied.
    DOWNLOAD_QUEUED = "download_queued"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    CONFIRM_QUEUED = "confirm_queued"
    FINISHED = "finished"
    # A report that could not be applied to the job named: it is gone, does not know its task yet, or
    # tracks another task.
    GONE = "gone"
    NOT_SUBMITTED = "not_submitted"
    OTHER_TASK = "other_task"
    # The sweep's check of a job: it timed out, is polled again later, went back in line for a slot,
    # or had its lost download queued again.
    TIMEOUT = "timeout"
    RESCHEDULED = "rescheduled"
    REQUEUED = "requeued"
    REPAIRED = "download_requeued"
    # A download found BFL took back the Ready it acted on: the job waits for BFL again.
    RESTART = "restart"
    # A draft cache the job already has.
    KEPT = "kept"
    # One notification attempt, as counted in fluxhook_notifications_total{outcome}.
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, timeout or connection error: RQ tries again later
    REJECTED = "rejected"  # any other answer (3xx, 4xx): the app refuses it, so it is not sent again
    EXHAUSTED = "exhausted"  # still failing on the last retry
    HOST_NOT_ALLOWED = "host_not_allowed"  # the URL is no longer allowed, or resolves to a private address
    NOT_SIGNED = "not_signed"  # NOTIFY_SECRET was unset when it was due
    # The balance's refresh.
    REFRESHED = "refreshed"
    FAILED = "failed"
    # Nothing to do: the job is gone, moved on, or another process has it in hand.
    SKIPPED = "skipped"

    @property
    def applied(self) -> bool:
        """Whether a report with this outcome was applied to its job (else it names no job it can change)."""
        return self not in (Outcome.GONE, Outcome.NOT_SUBMITTED, Outcome.OTHER_TASK)
