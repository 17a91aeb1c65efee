"""How long work is held (pure): every lease, claim, lock and hold that keeps a piece of work to whoever took it, and how
long a stopping worker waits for what it holds. One module, so a value that bounds another is seen beside it, and is
written as the expression it is (docs/architecture.md, "Holds", lists them; a test checks the page against this module).

Two rules recover work (SPEC §15, "Held one way"): a download-and-store task is RQ's, held by its heartbeat
(``JOB_MONITORING_INTERVAL`` + ``HEARTBEAT_GRACE``); everything else is held by a lease here, and once it lapsed the work
is due again. Not here: what holds a request's own place while the request lives (an ``Idempotency-Key``'s hold, a
stream's lease, a variant's making, a waiter in a batch-making line), and records kept for a time (not work).
"""

from __future__ import annotations

from fluxhook.core.bfl_limits import CALL_BOUND, TASK_DEADLINE

# --- Sends (slot lines, the dispatcher, the senders) ---
# A submission's lease on its job, its submit lock: it outlasts one submission to BFL, retries included. A job given a
# slot must reach BFL within it, or the sweep's check hands it back to the line (or reconciles it); the one step that
# ends a job holds the same lock as long (a process that dies frees it by then).
SUBMIT_LEASE = CALL_BOUND
# A slot's lease: BFL's limit on a task, plus the sweep's margin to time the job out first.
SLOT_LEASE = TASK_DEADLINE + 120

# --- Credits (lifecycle/steps/submission.py, credits/budget.py) ---
# A reservation of credits: as long as a job may wait in line for a slot, and its submission take.
RESERVATION_LEASE = TASK_DEADLINE + CALL_BOUND
# A job waiting to go alone holds later submissions back this long after its last look.
WAITING_LEASE = 30.0
# A boundable job that waited keeps its place ahead of the next job to go alone this long after its last look: past a
# few looks of a job waiting out of line (budget.BOUNDED_RECHECK, at each sweep), not much more.
NEXT_LEASE = 5.0
# A balance's re-read (an account's jobs ended, or it has no reading): one process asks BFL; a read that failed is
# tried again as the lock lapses.
REREAD_LOCK = 10

# --- Downloads (work lines, then RQ) ---
# One download attempt may last this long (RQ's task timeout): a video of MAX_VIDEO_BYTES (2 GiB) at fetch's slowest
# accepted rate (1 MiB/s) takes 35 minutes; an image's own deadline is 2 minutes.
DOWNLOAD_TIMEOUT = 3600
# A job's download lock outlives the download's retries (at most ~4 hours) and its last attempt: a duplicate callback
# meanwhile queues nothing.
DOWNLOAD_LOCK_TTL = 4 * 3600 + 600 + DOWNLOAD_TIMEOUT
# A member taken from a work line this long ago whose task was never queued is taken as lost with its process (or
# with a Redis primary that failed over between the take and the queueing): the sweep's restore_work puts it back.
MOVE_LEASE = 10.0
# RQ's rule for a task in a lane: its heartbeat is beaten every JOB_MONITORING_INTERVAL s; a killed worker's task is
# found abandoned (and retried by RQ's maintenance) HEARTBEAT_GRACE s after the beat it missed.
JOB_MONITORING_INTERVAL = 10
HEARTBEAT_GRACE = 20
# The longest one lane's claim on cleaning a queue's registries lasts (kept until the next maintenance is due).
CLEANING_LOCK_TTL = 60

# --- What the sweep claims ---
# What a sweep claims is held this long: a due job, while it waits in the check line and again as its check starts (the
# check's call to BFL ends within it); a deadline that passed; a batch canceled or whose making stopped. One whose
# process died is due again then, and the sweep claims it again; a check that runs later finds its claim superseded and
# does nothing.
CLAIM_LEASE = float(CALL_BOUND)

# --- Batches ---
# A batch's making goes on while its request lives (a thread says so every third of it); one not heard of for this
# long (its process died) lapses, and the sweep cuts the batch short.
BATCH_MAKING_LEASE = 15.0
# Room held for a batch's items while none of them is made: four of its making's leases, so the sweep cuts a making
# that stopped short before its room goes back.
QUEUE_ROOM_LEASE = 4 * BATCH_MAKING_LEASE

# --- Notifications ---
# The whole of one attempt, from connecting to the receiver's last byte (SPEC §7).
ATTEMPT_DEADLINE = 15.0
# How long an attempt holds its message and its room (and an outbox claim its events): four of its deadlines, so
# only a process that died lets it lapse.
ATTEMPT_LEASE = 4 * ATTEMPT_DEADLINE

# --- A migration ---
# The migrating process holds its lock this long, renewed every third of it; one that died frees it by then.
MIGRATION_LOCK_SECONDS = 10

# --- Stopping (SIGTERM): each wait counted from the stop signal (worker/run.py) ---
# The tasks in hand get this long to finish before they are asked back (to run again, the attempt not counted)...
IMMINENT_SHUTDOWN_DELAY = 10
# ... and a task asked back this long to stop by itself, before its lane gives it back while still in a read.
HAND_BACK_GRACE = 2.0
# How long the submissions under way get to finish (BFL may be charging for them); one cut off is its lock's case.
SEND_STOP_TIMEOUT = 20.0
# How long the notification attempts under way get: one's deadline, and a second for one taken as the stop came.
NOTIFY_STOP_TIMEOUT = ATTEMPT_DEADLINE + 1.0
# What a PaaS waits between SIGTERM and SIGKILL (Heroku; Kubernetes' default terminationGracePeriodSeconds is 30).
PLATFORM_STOP_GRACE = 30.0
# How long a supervisor (WORKER_PROCESSES above 1) waits for its members before it kills them: longer than the longest
# wait a member's stop makes (they run side by side, each from the signal), plus 5 s for its threads' joins and exit;
# a member killed at it would have its sends and attempts in flight taken up again only when their leases lapse.
STOP_TIMEOUT = max(IMMINENT_SHUTDOWN_DELAY + HAND_BACK_GRACE, SEND_STOP_TIMEOUT, NOTIFY_STOP_TIMEOUT) + 5.0
