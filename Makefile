# The two commands: `make run` starts everything locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test bench bench-suite clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fluxhook needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m devtools.run

test: $(VENV)/.installed
	@sh devtools/chromium.sh
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) -m bench.core_loop

# Every benchmark beside its baseline (needs wrk: apt-get install wrk).
bench-suite: $(VENV)/.installed
	$(PY) -m bench.suite

clean:
	rm -rf $(VENV) var .pytest_cache
