"""Which of the service's modules one job runs (`make trace-modules`).

    .venv/bin/python -m devtools.module_trace [--submit-delay 1] [--settle 3]

Starts the whole stack as the benches do (Redis, the simulator answering each submission after ``--submit-delay``
seconds, the Procfile's web with its gunicorn workers and one ``python -m worker``), every Python process of the
service recording which files' code runs on each of its threads (devtools/module_trace_hook.py, put on their
PYTHONPATH as ``sitecustomize``: the service's code is unchanged). Once the stack has been idle ``--settle`` seconds,
the records are emptied, ONE job is posted (POST /v1/jobs with a ``notify_url`` to a receiver of this tool's own),
and when the job is ``stored`` and its ``job.ended`` notification delivered, each process's record is read: the
modules (files under fluxhook/, receiver/, worker/) that ran code in that window, by process and by package, and
the threads that ran them. Then, for comparison, the same number of seconds with nothing posted: what runs at rest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .processes import ROOT, wait_until

PACKAGES = ("fluxhook", "receiver", "worker")
HOOK = Path(__file__).with_name("module_trace_hook.py")


def service_modules(root: Path = ROOT) -> set[str]:
    """Every module of the service: its .py files under PACKAGES, relative to ``root``."""
    return {str(path.relative_to(root)) for package in PACKAGES for path in (root / package).rglob("*.py")}


@dataclass
class ProcessRecord:
    """What one process ran in the window: its service modules, and the threads that ran any of them."""

    pid: int
    role: str
    modules: set[str]
    threads: set[str]


def role(argv: list[str], pid: int, web_master: int) -> str:
    if argv and Path(argv[0]).name == "gunicorn":
        return "web master" if pid == web_master else "web"
    return "worker" if argv and Path(argv[0]).parent.name == "worker" else f"other ({' '.join(argv)[:40]})"


def record(dump: dict, web_master: int, modules: set[str], root: Path = ROOT) -> ProcessRecord:
    """One process's dump (devtools/module_trace_hook.py) narrowed to the service's modules."""
    ran: set[str] = set()
    threads: set[str] = set()
    for ident, filenames in dump["files"].items():
        mine = {str(Path(f).relative_to(root)) for f in filenames if f.startswith(f"{root}/")} & modules
        if mine:
            ran |= mine
            threads.add(f"{dump['pid']}:{dump['names'].get(ident, '?')}:{ident}")
    return ProcessRecord(dump["pid"], role(dump["argv"], dump["pid"], web_master), ran, threads)


def by_package(modules: Iterable[str]) -> dict[str, list[str]]:
    """Modules grouped by their directory (``fluxhook/store``...), each group's names sorted."""
    groups: dict[str, list[str]] = {}
    for module in sorted(modules):
        package, _, name = module.rpartition("/")
        groups.setdefault(package, []).append(name.removesuffix(".py"))
    return groups


class Recorders:
    """The service's recording processes, told through the control file of their directory."""

    def __init__(self, directory: Path, root: Path = ROOT):
        self.directory = directory
        self.root = root
        self.count = 0

    def live(self) -> list[int]:
        pids = [int(path.stem) for path in self.directory.glob("*.ack")]
        return [pid for pid in pids if Path(f"/proc/{pid}").exists()]

    def tell(self, command: str) -> list[int]:
        """Write ``command`` (reset, dump) and wait until every live process has acted on it; their pids."""
        self.count += 1
        line = f"{self.count} {command}"
        (self.directory / "control.part").write_text(line)
        os.replace(self.directory / "control.part", self.directory / "control")

        def acknowledged() -> list[int]:
            pids = self.live()
            return pids if all((self.directory / f"{pid}.ack").read_text() == line for pid in pids) else []

        return wait_until(acknowledged, timeout=30, message=f"every process to {command}")

    def read(self, web_master: int, modules: set[str]) -> list[ProcessRecord]:
        """Every live process's record of what ran since the last reset."""
        return [record(json.loads((self.directory / f"{pid}.json").read_text()), web_master, modules, self.root)
                for pid in self.tell("dump")]


def one_job(stack, receiver) -> float:
    """Post one job whose notification goes to ``receiver``; the seconds until it is stored and notified."""
    from fluxhook.store.keys import KEYS

    started = time.monotonic()
    answer = stack.api_session().post(stack.base_url + "/v1/jobs", timeout=30, json={
        "model": "flux-2-pro", "input": {"prompt": "module trace"}, "notify_url": receiver.url("/hook")})
    answer.raise_for_status()
    job_id, db = answer.json()["id"], stack.redis()
    wait_until(lambda: db.hget(KEYS.job(job_id), "status") == "stored", timeout=60, message="the job to be stored")
    wait_until(lambda: db.hget(KEYS.message(f"msg_{job_id}"), "state") == "delivered", timeout=60,
               message="its notification to be delivered")
    return time.monotonic() - started


def report(title: str, records: list[ProcessRecord], total: int) -> set[str]:
    union = set().union(*(r.modules for r in records))
    threads = set().union(*(r.threads for r in records))
    print(f"\n{title}: {len(union)} of {total} service modules ran, on {len(threads)} threads")
    for name in ("web", "worker"):
        mine = sorted((r for r in records if r.role.startswith(name)), key=lambda r: (r.role, r.pid))
        ran = set().union(*(r.modules for r in mine))
        print(f"  {name:<7} {len(ran):>4} modules, {sum(len(r.threads) for r in mine):>3} threads")
        for r in mine:
            names = sorted(thread.split(":")[1] for thread in r.threads)
            print(f"    {r.role} {r.pid}: {len(r.modules)} modules on {', '.join(names) or 'no thread'}")
    return union


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.module_trace", description=__doc__.split("\n\n")[0])
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds after the start, before the window")
    parser.add_argument("--most", type=int, default=None,
                        help="exit 1 when the job runs more modules than this (make trace-modules: 80)")
    args = parser.parse_args(argv)
    from bench.common import BenchStack, exit_on_sigterm
    from devtools.slow_receivers import PromptReceiver
    from fluxhook.lifecycle.steps.notify_secrets import new_secret

    exit_on_sigterm()
    modules = service_modules()
    hooks = Path(tempfile.mkdtemp(prefix="fluxhook-module-trace-"))
    shutil.copy(HOOK, hooks / "sitecustomize.py")
    receiver = PromptReceiver()
    env = {"PYTHONPATH": f"{hooks}{os.pathsep}{ROOT}", "MODULE_TRACE_DIR": str(hooks),
           "NOTIFY_SECRET": new_secret(), "NOTIFY_HOST_ALLOWLIST": receiver.host}
    try:
        with BenchStack("module-trace", log_level="WARNING", **env) as stack:
            stack.start(workers=1)
            stack.sim_settings(submit_delay=args.submit_delay)
            recorders = Recorders(hooks)
            time.sleep(args.settle)  # the start's own work (first sweep, balance look) out of the window
            recorders.tell("reset")
            seconds = one_job(stack, receiver)
            job = recorders.read(stack.web.pid, modules)
            recorders.tell("reset")
            time.sleep(seconds)
            rest = recorders.read(stack.web.pid, modules)
    finally:
        receiver.stop()
        shutil.rmtree(hooks, ignore_errors=True)
    print(f"module trace: one job (POST /v1/jobs to stored, its job.ended delivered) in {seconds:.1f} s, "
          f"BFL answering submissions after {args.submit_delay:g} s")
    union = report("One job", job, len(modules))
    at_rest = report(f"At rest, the same {seconds:.1f} s with nothing posted", rest, len(modules))
    print(f"\nThe job's modules by package ({len(union)}; * also ran at rest):")
    everything = by_package(modules)
    for package, names in by_package(union).items():
        marked = [f"{name}*" if f"{package}/{name}.py" in at_rest else name for name in names]
        print(f"  {package} ({len(names)} of {len(everything[package])}): {', '.join(marked)}")
    over = over_limit(len(union), args.most)
    if over:
        print(f"\n{over}")
    return 1 if over else 0


def over_limit(ran: int, most: int | None) -> str | None:
    """What to say when one job ran more than ``most`` modules (a newcomer follows a job through every one of them),
    else None."""
    if most is None or ran <= most:
        return None
    return (f"one job ran {ran} modules, more than the {most} allowed: merge what holds one thing, "
            "or skip what finds nothing to do")


if __name__ == "__main__":
    sys.exit(main())
