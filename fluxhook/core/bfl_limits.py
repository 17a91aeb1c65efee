"""BFL's limits on time (pure): how long one call to BFL may take, and how long a task may run."""

from __future__ import annotations

# A call to BFL: (connect, read) timeouts, the deadline of one attempt's whole exchange (a BFL, or something on the
# way, that trickles its answer is cut there: a read timeout alone bounds each read, not the answer), and attempts in
# all.
TIMEOUT = (5, 20)
EXCHANGE_DEADLINE = 28
ATTEMPTS = 3
# Longer than one call can take with its retries (every attempt at its timeouts, and the pauses
# between them). A job's check hold, a submission's lock and slot lease, and those tasks' timeouts
# are this long: they outlast a call, and work cut off with its worker is still taken up again
# within the two minutes the sweep promises.
CALL_BOUND = 90
# BFL's limit on a task: a job not ended within this long of its submission times out.
TASK_DEADLINE = 3600
