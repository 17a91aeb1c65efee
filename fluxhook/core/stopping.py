"""The worker process's call for its tasks back: once a stopping worker's grace for the tasks in hand is over, it sets
``REQUESTED``; a task that can stop part-way (a download, between two pieces) looks at it, and ends by raising
``StopRequested``; the worker then puts it back in its queue as it was, to run again after the restart.

A flag the task looks at, not an exception forced into its thread: the task stops where it chose to, with its
files and connections closed by its own ``finally`` blocks.
"""

from __future__ import annotations

import threading

# Set (never in a signal handler: setting the flag takes a lock) for every task of this process that can stop
# part-way to stop at its next chance. Cleared only by a process whose work goes on after a stop of some of it (tests).
REQUESTED = threading.Event()


class StopRequested(BaseException):
    """The worker is stopping and wants the task in hand back: not a failure of the task, so not a FluxhookError.

    A BaseException, as SystemExit is: a task's ``except Exception`` (which, on a last attempt, ends the job
    failed) lets it through, to the worker, which re-queues the task without counting an attempt.
    """

    def __init__(self) -> None:
        super().__init__("the worker is stopping: the task goes back to the queue")
