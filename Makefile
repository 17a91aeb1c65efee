# The two commands: `make run` starts everything locally, `make test` lints and runs the whole suite
# (`make test-fast`: the same lint and the unit tests alone, tests/unit/, in under a minute).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast bench bench-suite bench-keys bench-waiting bench-fairness bench-bulkheads bench-hostile bench-video bench-usage bench-compat soak image-check screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fluxhook needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m devtools.run

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo
	@sh devtools/chromium.sh
	$(PY) -m pytest

# Everything but the end-to-end tests (tests/e2e/, marked e2e): no Procfile process, browser or command as a process.
test-fast: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -m "not e2e"

# The dashboard's screenshots in docs/, remade by its layout tests in Chromium.
screenshots: $(VENV)/.installed
	@sh devtools/chromium.sh
	FLUXHOOK_SCREENSHOTS=1 $(PY) -m pytest -q tests/e2e/dashboard/test_dashboard_fit.py tests/e2e/dashboard/test_overview_browser.py

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
bench-fairness: $(VENV)/.installed
	$(PY) -m bench.fairness

# Callbacks and reads while 0, 16 and 64 submissions hang at BFL, with and without the web's rooms.
bench-bulkheads: $(VENV)/.installed
	$(PY) -m bench.bulkheads

# Callbacks and reads under 300 slowloris + 50 slow bodies, beside commit 194e639 (its checkout at /tmp/fluxhook-194e639).
bench-hostile: $(VENV)/.installed
	@test -d /tmp/fluxhook-194e639 || git worktree add /tmp/fluxhook-194e639 194e639
	$(PY) -m bench.hostile

# A 500 MB MP4 to stored (filesystem and the moto S3 server) beside a plain streaming copy; RSS of worker and web.
bench-video: $(VENV)/.installed
	$(PY) -m bench.video

# GET /v1/usage for 366 days over a million jobs' counters, beside a scan of job records.
bench-usage: $(VENV)/.installed
	$(PY) -m bench.usage

# The BFL-compatible API: POST /v1/{model} beside POST /v1/jobs, and get_result under 200 polling clients (wrk).
bench-compat: $(VENV)/.installed
	$(PY) -m bench.compat

# The chaos soak: faults injected at random for SOAK_MINUTES (default 10) while jobs are submitted.
soak: $(VENV)/.installed
	$(PY) -m devtools.soak

# The container image built from deploy/Dockerfile and run like users run it (web, worker, Redis,
# the simulator, a graceful stop, docker-compose.yml). Not part of `make test`: needs root on
# Debian 12, installs podman & co. with apt-get when missing; see README "Running it for real".
image-check: $(VENV)/.installed
	$(PY) -m devtools.image_check

clean:
	rm -rf $(VENV) var .pytest_cache
