"""The words for what became of a piece of work, one enum per kind of work: a BFL report applied, the sweep's
check of a job, a download, a draft cache, a notification, the balance's refresh.

They appear in logs, metrics labels, timelines and the webhook's answer; each is defined once, here.
"""

from enum import StrEnum

# Nothing to do: the job is gone, moved on, or another process has it in hand. Every kind of work can end so.
SKIPPED = "skipped"


class ReportOutcome(StrEnum):
    """What became of a report of BFL's on a task (a callback or a poll's answer)."""

    DOWNLOAD_QUEUED = "download_queued"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    CONFIRM_QUEUED = "confirm_queued"
    FINISHED = "finished"
    # The task of a job that ended on purpose (canceled) ended at BFL: the slot the job kept for it is free.
    SLOT_FREED = "slot_freed"
    # A report that could not be applied to the job named: it is gone, does not know its task yet, or
    # tracks another task.
    GONE = "gone"
    NOT_SUBMITTED = "not_submitted"
    OTHER_TASK = "other_task"

    @property
    def applied(self) -> bool:
        """Whether a report with this outcome was applied to its job (else it names no job it can change)."""
        return self not in (ReportOutcome.GONE, ReportOutcome.NOT_SUBMITTED, ReportOutcome.OTHER_TASK)


class CheckOutcome(StrEnum):
    """The sweep's check of a job: it timed out, is polled again later, went back in line for a slot, had its lost
    download (or draft cache) queued again, awaits BFL's word on a task its lost submission may have made, or (ended)
    gave back the slot it kept while BFL ran its task on."""

    TIMEOUT = "timeout"
    RESCHEDULED = "rescheduled"
    REQUEUED = "requeued"
    DOWNLOAD_REQUEUED = "download_requeued"
    # A stored job's draft cache, whose move into RQ a process that died left unfinished, is back in its line.
    DRAFT_CACHE_REQUEUED = "draft_cache_requeued"
    # Its submission began and never ended: it may be at BFL, so it awaits BFL's word on its task, never sent again.
    AWAITING_TASK = "awaiting_task"
    # An ended job's task ended at BFL, or had its hour: the slot the job kept for it is free.
    SLOT_FREED = "slot_freed"
    SKIPPED = SKIPPED


class DownloadOutcome(StrEnum):
    """What became of a download, counted in fluxhook_downloads_total{outcome}: the job it ended, by the status it
    ended in; or why it did not end it."""

    STORED = "stored"
    FAILED = "failed"
    MODERATED = "moderated"
    EXPIRED = "expired"
    # BFL refuted the unproven Ready it acted on: the job went back to wait for BFL (named by that status).
    REFUTED = "submitted"
    # BFL took back the Ready it acted on: the job waits for BFL again.
    RESTART = "restart"
    # A passing failure: the queue tries again later.
    RETRY = "retry"
    # The worker stopped part-way and put the task back in its queue, no attempt spent.
    HANDED_BACK = "handed_back"
    # Any other error, on an attempt that was not the last.
    ERROR = "error"
    SKIPPED = SKIPPED


class DraftOutcome(StrEnum):
    """A draft cache's task."""

    KEPT = "kept"  # the job already has it
    SKIPPED = SKIPPED


class DeliveryOutcome(StrEnum):
    """One notification attempt, as counted in fluxhook_notifications_total{outcome}."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, timeout or connection error: tried again later
    REJECTED = "rejected"  # any other answer (3xx, 4xx): the app refuses it, so it is not sent again
    DISABLED = "disabled"  # 410 Gone, or sent to a target a 410 disabled: kept, not sent
    EXHAUSTED = "exhausted"  # still failing on the last retry: the message is failed
    HOST_NOT_ALLOWED = "host_not_allowed"  # the URL is no longer allowed, or resolves to a private address
    NOT_SIGNED = "not_signed"  # no secret to sign with when it was due (NOTIFY_SECRET unset, its key gone)
    SKIPPED = SKIPPED


class RefreshOutcome(StrEnum):
    """The balance's refresh."""

    REFRESHED = "refreshed"
    FAILED = "failed"
    SKIPPED = SKIPPED
