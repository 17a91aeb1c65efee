"""A web process's variant makers end with it (receiver/variant_makers.py): the Procfile's web on a stack of its
own makes variants, so each gunicorn worker that served one has its maker processes and multiprocessing's resource
tracker; then that worker is killed outright (``kill -9``, as an out-of-memory kill does). Its makers and tracker
are gone soon after, never left running under PID 1 with their memory. (A killed gunicorn master is not tried:
its workers see it gone, exit on their own and stop their makers as they do.)"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import API
from devtools.processes import wait_until
from key_helpers import make_key

# Widths asked for, each a variant made: enough requests that the kernel hands some to each of the two workers.
WIDTHS = (64, 128, 256, 384, 512, 640, 768, 1024)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (ended, waiting for a parent to reap it) holds nothing and counts as ended."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """``pid``'s children, whichever of its threads started them (``fault_helpers.children`` reads the main
    thread's alone, and a maker is spawned by a request thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def test_killing_a_web_worker_ends_its_variant_makers_and_their_resource_tracker(faults, sim):
    api = API(faults.base_url)
    _, as_a = make_key(api)
    answer = as_a.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "a fox", "width": 1024,
                                                                          "height": 1024}})
    assert answer.status_code == 202, answer.text
    job = as_a.wait_for(answer.json()["id"], timeout=30)
    assert job["status"] == "stored", job
    for width in WIDTHS:
        made = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": width, "format": "webp"})
        assert made.status_code == 200, made.text
    master = faults.processes["web"].pid
    workers = sorted(_children(master))
    busy = [worker for worker in workers if _descendants(worker)]
    assert busy, "no web worker has started variant makers"

    left = _descendants(busy[0])
    commands = [_command(pid) for pid in left]  # read first: once it is killed, they end within milliseconds
    os.kill(busy[0], signal.SIGKILL)
    assert any("resource_tracker" in c for c in commands) and any("spawn_main" in c for c in commands), commands

    running = wait_until(lambda: not [pid for pid in left if _running(pid)] or None, timeout=30, interval=0.1,
                         message="the killed web worker's makers and resource tracker to end")
    assert running is True
    # The master replaces the worker: the web still answers, a new variant made by new makers.
    assert as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 1280, "format": "avif"}).status_code == 200
