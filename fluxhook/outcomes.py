"""The words for what became of a piece of work: reports applied, downloads, checks, submissions.

They appear in logs, metrics labels, timelines and the webhook's answer; each is defined once, here.
"""

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
# Nothing to do: the job is gone, moved on, or another process has it in hand.
SKIPPED = "skipped"
