"""How long work is held (pure): every lease, claim, lock and hold that keeps a piece of work to whoever took it, and how
long a stopping worker waits for what it holds. One module, so a value that bounds another is seen beside it, and is
written as the expression it is (docs/architecture.md, "Holds", lists them; a test checks the page against this module).

At most ten values are independent, BFL's two limits (``CALL_BOUND``, ``TASK_DEADLINE``) and RQ's one margin
(``RQ_RECORD_MARGIN``) among them; every other is written from them, by what it waits for or what it must outlast
(tests/unit/core/test_holds.py counts them, and fails on a lease, lock, TTL, claim or timeout written as a number
anywhere else in the tree, Python or Lua).

Two rules recover work (docs/architecture.md, "Held one way"): a download-and-store task is RQ's, held by its heartbeat
(``JOB_MONITORING_INTERVAL`` + ``HEARTBEAT_GRACE``); everything else is held by a lease here, and once it lapsed the work
is due again. A request's own place is held the same way, while the request lives: an ``Idempotency-Key``'s hold, a
stream's lease, a variant's making, a waiter in a batch-making line.

Records kept for a time are not work: a day's counters, a job's record past retention, a failed task's record, a
balance's reading, a caller's answered ``Idempotency-Key``. Their lengths are named in the last section, "Records
kept", not counted among the independent values (a record's length is a promise to whoever reads it, written in days
and hours); still no TTL anywhere else is written as a number.
"""

from __future__ import annotations

from fluxhook.core.bfl_limits import CALL_BOUND, TASK_DEADLINE
from fluxhook.core.pacing import RATE_WINDOW

# --- A live holder's hold ---
# How long a hold outlives its holder's last sign of life. A holder whose work goes on renews it every third of it (a
# thread of its own: core/heartbeats.py), or the one short step that holds it ends well within it; so only a holder
# that died lets it lapse, and its work is taken up again then. A renewal missed while Redis fails over (writes stop
# for 4-5 s, docs/operating.md) does not lapse it.
LIVE_LEASE = 15

# --- What the sweep claims ---
# What a sweep claims is held this long: a due job, while it waits in the check line and again as its check starts (the
# check's call to BFL ends within it); a deadline that passed; a batch canceled or whose making stopped. One whose
# process died is due again then, and the sweep claims it again; a check that runs later finds its claim superseded and
# does nothing.
CLAIM_LEASE = float(CALL_BOUND)

# --- Sends (slot lines, the dispatcher, the senders) ---
# A submission's lease on its job, its submit lock: it outlasts one submission to BFL, retries included. A job given a
# slot must reach BFL within it, or the sweep's check hands it back to the line (or reconciles it); the one step that
# ends a job holds the same lock as long (a process that dies frees it by then).
SUBMIT_LEASE = CALL_BOUND
# The submit lock outlives its lease, as the trace of a submission that began and never ended (its process died, or hung
# past the lease): BFL may have its task, so its job is never sent again (submission.recover_lost_send). The job's
# check finds it within SLOT_LEASE while workers run; a day covers an outage of every worker that long, past which a
# job still queued could be sent twice.
LOST_SEND_TRACE = 86_400
# A slot's lease: a job holds its slot from its turn until it ends, which is at the latest its send reaching BFL, BFL's
# limit on the task from there, and the sweep's check that times it out. Past all three the slot is taken as held by a
# job that never ended, and the dispatcher's look frees it.
SLOT_LEASE = SUBMIT_LEASE + TASK_DEADLINE + CLAIM_LEASE

# --- Credits (lifecycle/steps/submission.py, credits/budget.py) ---
# A reservation of credits: as long as a job may wait in line for a slot, and its submission take.
RESERVATION_LEASE = TASK_DEADLINE + SUBMIT_LEASE
# A job waiting to go alone holds later submissions back this long after its last look: a live hold renewed by its
# looks (every budget.ALONE_RECHECK), twice as long, since the looks come through the check line, which a backlog of
# polls may hold up, and a record that lapsed lets later submissions past the job.
WAITING_LEASE = 2 * LIVE_LEASE
# A boundable job that waited keeps its place ahead of the next job to go alone this long after its last look, the
# next job alone waiting meanwhile: a live hold kept short. Its looks come at each sweep (budget.BOUNDED_RECHECK),
# more often than a live holder's thread renews its lease (every third of it); one such third is past a few of them,
# and not much more.
NEXT_LEASE = LIVE_LEASE / 3
# A balance's re-read (an account's jobs ended, or it has no reading): one process asks BFL, holding it while it asks; a
# read that failed (or a process that died) lets it lapse, and it is tried again then.
REREAD_LOCK = LIVE_LEASE

# --- Downloads (work lines, then RQ) ---
# One download attempt may last this long (RQ's task timeout): a video of MAX_VIDEO_BYTES (2 GiB) at fetch's slowest
# accepted rate (1 MiB/s) takes 35 minutes; an image's own deadline is 2 minutes.
DOWNLOAD_TIMEOUT = 3600
# A job's download lock outlives the download's retries and its last attempt: a duplicate callback meanwhile queues
# nothing. The retries' pauses (enqueueing's schedule) come to at most about 4.1 hours, under five attempts' timeouts;
# with the last attempt's own, six (test_enqueueing checks it against the schedule).
DOWNLOAD_LOCK_TTL = 6 * DOWNLOAD_TIMEOUT
# A move from a work line into RQ: its job is due this long after the take (lua/work_moves.lua), its one hold; a move
# whose task was never queued (its process died, or a Redis primary failed over between the take and the queueing) is
# then put back in line by the job's check. The take and the queueing are one
# short step of a live holder.
MOVE_LEASE = float(LIVE_LEASE)
# RQ's rule for a task in a lane is a live hold of two live leases: its heartbeat is beaten every third of it
# (JOB_MONITORING_INTERVAL, a command each, so a download of seconds beats once or not at all), from a thread of its own
# (worker/inprocess.py); a killed worker's task is found abandoned (and retried by RQ's maintenance) HEARTBEAT_GRACE s
# after the beat it missed: two beats missed. Whole seconds: RQ writes them as a key's TTL.
JOB_MONITORING_INTERVAL = 2 * LIVE_LEASE // 3
HEARTBEAT_GRACE = 2 * JOB_MONITORING_INTERVAL
# The longest one lane's claim on cleaning a queue's registries lasts (kept until the next maintenance is due). A lane
# killed with it stops the retry of abandoned tasks until it lapses: with the heartbeat's lapse before it, no longer
# than a check cut off with its worker waits for its claim (CLAIM_LEASE, CALL_BOUND s).
CLEANING_LOCK_TTL = CALL_BOUND - (JOB_MONITORING_INTERVAL + HEARTBEAT_GRACE)

# A purge of what retention drops (worker/cron.py queues it hourly) runs as a task in a download lane: half of what a
# download attempt may take, so it ends, or is cut, well before the next one is queued.
PURGE_TIMEOUT = DOWNLOAD_TIMEOUT // 2

# --- A lane's record in RQ (worker/lanes.py, worker/inprocess.py) ---
# RQ's own: a worker's record lives this long past its worker_ttl after each beat (Worker.heartbeat, register_birth).
RQ_RECORD_MARGIN = 60
# A lane's worker_ttl: the watching lane beats once per wait for a task, its wait lasting WORKER_TTL - IDLE_BEAT_MARGIN,
# two live leases (30 s: /readyz wants a beat within 60 s, so one missed beat is not a lane gone); its record outlives
# each beat by a live lease more, as RQ's own by 15 s.
IDLE_BEAT_MARGIN = LIVE_LEASE
WORKER_TTL = 3 * LIVE_LEASE
# A quiet lane (every lane of a process but the one /readyz reads) beats this often while idle: a beat is three
# commands, and at rest a process's quiet lanes beat side by side (RQ's own idle worker beats every 420 s). Its record
# outlives its next quiet beat by RQ's margin, as RQ's own outlives its.
QUIET_BEAT_EVERY = 300
QUIET_RECORD_TTL = QUIET_BEAT_EVERY + RQ_RECORD_MARGIN

# --- Batches ---
# A batch's making goes on while its request lives (a thread says so every third of it); one not heard of for this
# long (its process died) lapses, and the sweep cuts the batch short.
BATCH_MAKING_LEASE = float(LIVE_LEASE)
# Room held for a batch's items while none of them is made: four of its making's leases, so the sweep cuts a making
# that stopped short before its room goes back.
QUEUE_ROOM_LEASE = 4 * BATCH_MAKING_LEASE

# --- Notifications ---
# The whole of one attempt, from connecting to the receiver's last byte.
ATTEMPT_DEADLINE = 15.0
# How long an attempt holds its message and its room (and an outbox claim its events): four of its deadlines, so
# only a process that died lets it lapse.
ATTEMPT_LEASE = 4 * ATTEMPT_DEADLINE

# --- A request's own place (receiver/, store/streams.py, store/batch_turns.py, lifecycle/variants.py) ---
# An open stream's lease in its caller's limit: its request renews it every third of it while the stream lives, so only
# a process that died lets it lapse. Four live leases: a web worker's renewals share it with its requests' work.
STREAM_LEASE = 4 * LIVE_LEASE
# A waiter in a batch-making line: a request that no longer looks for this long (its process died) leaves the line.
# It looks as often as a live holder renews, a third of a live lease at most apart, two of them missed.
WAITER_LEASE = 2 * LIVE_LEASE / 3
# A wake-up pushed to a waiter in that line is kept this long: it blocks on it within its lease, or it has given up.
WAKE_KEPT = 4 * LIVE_LEASE
# The longest a variant is waited for once a maker has it: a 2048-px AVIF of the largest image takes a few seconds; one
# far past that is stuck, and its request is answered rather than held. As long as an open stream's lease.
VARIANT_MAKE_BOUND = STREAM_LEASE
# How long a maker holds a variant's lock: the longest make and half as long again for its turn among the makers, so it
# lapses only with a process that died, never under a make still running (which another process would make again).
VARIANT_MAKING_LEASE = 3 * VARIANT_MAKE_BOUND // 2
# The longest ``Prefer: wait`` the API allows (docs/api.md): a request's own wait for its job.
PREFER_WAIT_LONGEST = STREAM_LEASE
# An ``Idempotency-Key``'s hold outlasts the longest a first request can take (a BFL call, then a Prefer: wait, then a
# live holder's two leases), so a repeat never acts while the first may still; a process that dies with it frees the key
# after it.
KEY_HOLD_LEASE = CALL_BOUND + PREFER_WAIT_LONGEST + 2 * LIVE_LEASE
# The longest one blocking wait on Redis lasts (store/wakes.py): a wait for longer waits again. As long as a quiet lane
# sleeps between beats: a process at rest sends a command or two each five minutes. The waits' connection's socket
# timeout must outlast it.
LONGEST_WAIT = float(QUIET_BEAT_EVERY)

# --- A migration ---
# The migrating process holds its lock as a live holder, renewed every third of it; one that died frees it by then.
MIGRATION_LOCK_SECONDS = LIVE_LEASE

# --- Stopping (SIGTERM): each wait counted from the stop signal (worker/run.py), within the platform's grace ---
# What a PaaS waits between SIGTERM and SIGKILL (Heroku; Kubernetes' default terminationGracePeriodSeconds is 30): the
# platform's, which the waits below share.
PLATFORM_STOP_GRACE = 30.0
# A process's stop list (store/wakes.py), pushed once per waiting thread: its threads take their items within a second,
# and none outlives the platform's SIGKILL.
STOP_LIST_TTL = PLATFORM_STOP_GRACE
# The tasks in hand get the first third of it to finish before they are asked back (to run again, the attempt not
# counted)...
IMMINENT_SHUTDOWN_DELAY = PLATFORM_STOP_GRACE / 3
# ... and a task asked back this long to stop by itself, before its lane gives it back while still in a read.
HAND_BACK_GRACE = 2.0
# The submissions under way get two thirds to finish (BFL may be charging for them); one cut off is its lock's case.
SEND_STOP_TIMEOUT = 2 * PLATFORM_STOP_GRACE / 3
# The notification attempts under way get as long: each ends within its deadline, one taken as the stop came too.
NOTIFY_STOP_TIMEOUT = SEND_STOP_TIMEOUT
# How long a supervisor (WORKER_PROCESSES above 1) waits for its members before it kills them: halfway from the longest
# wait a member's stop makes (they run side by side, each from the signal) to the platform's SIGKILL, the first half for
# a member's threads' joins and exit, the second for the supervisor's own; a member killed at it would have its sends
# and attempts in flight taken up again only when their leases lapse.
STOP_TIMEOUT = (max(IMMINENT_SHUTDOWN_DELAY + HAND_BACK_GRACE, SEND_STOP_TIMEOUT, NOTIFY_STOP_TIMEOUT)
                + PLATFORM_STOP_GRACE) / 2
assert NOTIFY_STOP_TIMEOUT >= ATTEMPT_DEADLINE + 1  # an attempt taken up to a second after the signal ends within it
assert STOP_TIMEOUT < PLATFORM_STOP_GRACE  # every wait ends before the platform kills the lot


# --- Records kept ---
# Not holds of work: how long a record is kept for whoever reads it, not counted among the independent values above
# (tests/unit/core/test_holds.py reads this section as the module's last). Whole seconds, as Redis keeps a key's TTL.
HOUR = 3600
DAY = 24 * HOUR
# Usage counters outlive the year GET /v1/usage can ask for; hourly outcomes serve the dashboard's recent view.
USAGE_TTL = 400 * DAY
HOURLY_TTL = 35 * DAY
# An owner's end users' counters of a day: what GET /v1/usage?group_by=end_user reads, and what an end user's daily
# limits read today; a few weeks, so an app with a million end users a month holds a bounded amount (docs/scaling.md).
END_USER_TTL = 35 * DAY
# A minute's stored counts outlive the window a key's rate is read over (core/pacing.py), and the minute before it.
STORED_TTL = 3 * RATE_WINDOW
# What goes with a job's record kept without a TTL (tests, tools), its timeline and its variants' hash, expires after
# the longest default retention.
DEFAULT_TTL = 32 * DAY
# A job's record outlives its retention by two days: the retention task removes records (and their images) first.
PAST_RETENTION_DAYS = 2
# An end user's queued ids (and its ids at BFL) are kept after its last: longer than a queued job may wait (its hour),
# and than a task BFL runs (its hour).
QUEUED_LIFE = 2 * HOUR
# A caller's refusals by a pool in a row are forgotten an hour after the last.
STRIKES_TTL = HOUR
# The static URL's reports of tasks no job tracks yet, per UTC hour: each kept the hour it is read for, the one after,
# and a minute for a clock's drift.
REPORTS_HOUR = HOUR
REPORTS_KEPT = 2 * REPORTS_HOUR + 60
# A key's items of the day are counted until an hour past its day's end (a clock's drift, a day read late).
DAY_ITEMS_PAST = HOUR
# A caller's set of its live ``Idempotency-Key``s outlives the last answer it holds by a minute.
KEYS_INDEX_PAST = 60
# An answered ``Idempotency-Key`` is kept a day for its replay (docs/api.md).
ANSWER_KEPT = DAY
# A balance not refreshed for this many of its refresh intervals (at least an hour) is forgotten: no figure beats a
# stale one.
BALANCE_KEPT_INTERVALS = 10
BALANCE_KEPT_AT_LEAST = HOUR
# A signed image link's default life (IMAGE_URL_TTL_SECONDS).
IMAGE_URL_TTL = HOUR
# RQ's records of a task: a retention purge's run kept a day, a failed task's (any kind) a week, to look at; a purge
# queued waits no longer than the hour to the next one.
PURGE_RESULT_KEPT = DAY
FAILED_TASK_KEPT = 7 * DAY
PURGE_QUEUED_TTL = HOUR
