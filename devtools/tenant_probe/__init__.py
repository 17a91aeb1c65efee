"""The tenant probe: an attacker's view of tenancy (docs/api.md, docs/callbacks.md, docs/operating.md,
docs/bfl-compatible.md, docs/keys.md), over HTTP, on a real stack.

    .venv/bin/python -m devtools.tenant_probe [--rows 1,3,12]        (make probe-tenants)

fluxhook serves many apps, each with its own app key. Each row below is one attack by a hostile tenant X (an app
key of its own) on a victim tenant V (another app key on the same service and BFL account), or by a stranger: what
the attacker got, what the victim saw, a figure, and HOLDS or BROKEN. The stack is the one `make run` starts
(devtools.stack): a real Redis, the BFL simulator answering every submission after about a second as BFL does
(tasks of a few seconds), the Procfile's gunicorn web and its worker, with BFL_DAILY_CREDIT_LIMIT and
BFL_WEBHOOK_SECRET set, and the apps' notification receivers (one path per key, each verifying with its key's own
secret). Everything listens on 127.0.0.1 only; every loop is bounded in requests and time (rows 1-38 stop
starting after 570 s, rows 39-44 take up to 330 s more, row 45 about 90 s, rows 46-47 about 60 s, rows 48-50 about
PROBE_CHURN_MINUTES (3) and 200 s, rows 51 and 52 about 90 s each, so a whole run stays under 27 minutes) and the
stack stops at the end. Exits 1 when any row is BROKEN.

Only the Redis rows read Redis (MEMORY USAGE, DBSIZE and a scan of every value), the batch flood its SLOWLOG, the
check flood (46) and the slow account (52) a check line's length and the churn (48) its used_memory for a figure;
everything else an attacker could do is done over HTTP, with the simulator's control API (/_sim) standing in for BFL
finishing a task and counting what BFL was sent.

The rows live by concern: rows_shared (1-5), rows_limits (6-13), rows_notify (14-19), rows_cancel (20-22, 30),
rows_streams (23-25), rows_reads (26-29), rows_bulkheads (31-33), rows_batches (34, 35, 38),
rows_batch_requests (36-37), rows_web (39-44: no key can hold the web), rows_variants (45, 51: images served to
people), rows_checks (46-47: failure reports and the check line), rows_costs (48-50: what a key makes costs that
key) and rows_accounts (52: one BFL account's slow polls hold up no other's checks, on a stack of its own with two
accounts); harness, flood (an attacker's flood in a process of its own), receivers and sse are what they share,
__main__ runs them. Every key reads under a roomy reads_per_minute (harness.ROOMY_READS) but an attacker whose row is about the
read limit, which floods at the deployment's READS_PER_MINUTE.
"""
