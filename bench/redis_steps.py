"""One job under Redis ``MONITOR``: every command it costs, by lifecycle step (part of ``bench.redis_cost``).

    .venv/bin/python -m bench.redis_steps [--tree DIR] [--dump FILE]

A stack of ``tree`` (bench/redis_stack.py: one web, one worker, one simulator account answering after 1 s,
8 s tasks) runs 15 s idle, then one job posted through ``POST /v1/jobs`` until its thumbnail is recorded, then
2 s more, all under ``MONITOR`` from the moment Redis starts. Commands are grouped into round trips: a
``MULTI``..``EXEC`` block, or a script with the commands it runs (``lua`` in MONITOR's lines), or a lone
command. A round trip that names the job (its id, BFL's task id, or RQ's ``download-``/``thumbnail-`` task of
it) belongs to the step its process and moment say: the web's before the callback to *submit*, after it to
*callback*; the worker's to *download* and *thumbnail* (the work line into RQ, RQ's own records of the task,
the job's record), by which of RQ's tasks it names or runs within. Round trips that do not name the job are
the loops (heartbeats, the dispatcher, the feeder, the sweep, RQ's schedulers): beside the same stack's idle
15 s, what the job's seconds ran above the idle rate is *caused by the job, not naming it* (a dispatch that
found it, a feed after each task, RQ's worker state), by kind.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from .redis_stack import TreeStack, post_jobs, wait_thumbnails

ROOT = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 15.0
AFTER_SECONDS = 2.0
STEPS = ("submit (POST /v1/jobs, dispatch, send to BFL)", "callback (web: Ready received)",
         "download: work line -> RQ, RQ task records", "download + store: the job's record",
         "thumbnail: work line -> RQ, RQ task records", "thumbnail: the job's record",
         "caused by the job, not naming it (over idle)")
_VARYING = [(re.compile(r"job_[0-9A-Z]{26}"), "<job>"),
            (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
            (re.compile(r"[0-9a-f]{32}"), "<hex>"), (re.compile(r"\d+(\.\d+)?"), "<n>")]


# --------------------------------------------------------------------------- capture


def capture(tree: Path, submit_delay: float, task_delay: float) -> dict:
    """MONITOR's lines of an idle stack and then of one job; the marks between them and who each client is."""
    stack = TreeStack(tree, 1, submit_delay, task_delay).start_redis()
    lines: list[dict] = []
    db = stack.redis()

    def monitor() -> None:
        try:
            with db.monitor() as m:
                while True:
                    lines.append(m.next_command())
        except Exception:  # noqa: BLE001 -- the server stopping ends the capture
            return

    threading.Thread(target=monitor, daemon=True).start()
    try:
        stack.start()
        time.sleep(3.0)  # the worker's first rounds are not an idle second's cost
        idle_at = time.time()
        time.sleep(IDLE_SECONDS)
        posted_at = time.time()
        ids, refused = post_jobs(stack, 1, threads=1)
        if not ids:
            raise RuntimeError(f"POST /v1/jobs refused the job: {refused}")
        wait_thumbnails(stack, ids, 120)
        while not stack.redis().hstrlen(f"fh:job:{ids[0]}", "thumbnail_key"):
            time.sleep(0.05)
        time.sleep(AFTER_SECONDS)
        ended_at = time.time()
        clients = client_kinds(stack)
    finally:
        stack.stop()
    return {"lines": lines, "idle_at": idle_at, "posted_at": posted_at, "ended_at": ended_at, "job": ids[0],
            "clients": clients, "scripts": script_names(lines, tree)}


def client_kinds(stack: TreeStack) -> dict[str, str]:
    """``web`` or ``worker`` by the client's port, from the sockets the processes hold (/proc)."""
    inodes = {}
    for pid, kind in stack.pids().items():
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = kind
        except OSError:
            continue
    kinds = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(remote.rsplit(":", 1)[1], 16) == stack.redis_server.port and inode in inodes:
                kinds[str(int(local.rsplit(":", 1)[1], 16))] = inodes[inode]
    return kinds


def script_names(lines: list[dict], tree: Path) -> dict[str, str]:
    """Each script's SHA -> its file in the tree's ``fluxhook/store/lua`` (the last of the files concatenated),
    from the ``SCRIPT LOAD`` redis-py sends after a NOSCRIPT (the EVALSHA just before it names the SHA)."""
    markers = {}
    for path in sorted((tree / "fluxhook" / "store" / "lua").glob("*.lua")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("-- needs:") and line.isascii():
                markers[path.stem] = line[:50].replace("\\", "\\\\")
                break
    names: dict[str, str] = {}
    last_sha: dict[str, str] = {}
    for line in lines:
        words = line["command"].split(" ", 2)
        if words[0].upper() == "EVALSHA" and len(words) > 1:
            last_sha[line["client_port"]] = words[1]
        elif words[0].upper() == "SCRIPT" and len(words) > 2 and words[1].upper() == "LOAD":
            text = words[2]
            found = [(text.rfind(marker), stem) for stem, marker in markers.items() if marker in text]
            sha = last_sha.get(line["client_port"])
            if sha:
                names.setdefault(sha, max(found)[1] if found else "rq")
    return names


# --------------------------------------------------------------------------- attribution


def round_trips(lines: list[dict], start: float, end: float) -> list[dict]:
    """The lines between ``start`` and ``end`` as round trips: {port, commands (the lines), at}."""
    trips: list[dict] = []
    open_multi: dict[str, dict] = {}
    last_script: dict | None = None
    for line in lines:
        if line is None or not start <= line["time"] <= end:
            continue
        name = line["command"].split(" ", 1)[0].upper()
        if line["client_type"] == "lua":
            if last_script is not None:
                last_script["commands"].append(line["command"])
            continue
        port = line["client_port"]
        if name in ("INFO", "HSTRLEN", "MONITOR"):
            continue  # the bench's own
        if port in open_multi:
            trip = open_multi[port]
            trip["commands"].append(line["command"])
            if name in ("EXEC", "DISCARD"):
                del open_multi[port]
        else:
            trip = {"port": port, "commands": [line["command"]], "at": line["time"]}
            trips.append(trip)
            if name == "MULTI":
                open_multi[port] = trip
        if name in ("EVALSHA", "EVAL"):
            last_script = trip
    return trips


def signature(trip: dict, scripts: dict[str, str]) -> str:
    """What kind of round trip this is, ids left out: the script's name, or the commands' names and first key."""
    parts = []
    for command in trip["commands"]:
        words = command.split(" ")
        if words[0].upper() in ("EVALSHA", "EVAL"):
            parts.append(f"script {scripts.get(words[1], words[1][:8])}")
        elif words[0].upper() not in ("MULTI", "EXEC") and not parts:
            key = words[1] if len(words) > 1 else ""
            for regex, word in _VARYING:
                key = regex.sub(word, key)
            parts.append(f"{words[0].upper()} {key}")
    scripted = [p for p in parts if p.startswith("script")]
    kind = ", ".join(dict.fromkeys(scripted)) if scripted else parts[0] if parts else "?"
    return ("MULTI: " if trip["commands"][0].upper() == "MULTI" else "") + kind


def attribute(captured: dict) -> dict:
    """Commands, round trips and the commands that weigh most, by step; the idle rate beside."""
    lines, job = captured["lines"], captured["job"]
    clients, scripts = captured["clients"], captured["scripts"]
    trips = round_trips(lines, captured["posted_at"], captured["ended_at"])
    names = {job}
    for trip in trips:
        for command in trip["commands"]:
            if command.startswith("SET fh:bfl:") and job in command:
                names.add(command.split(" ")[1].removeprefix("fh:bfl:"))
    callback_at = min((t["at"] for t in trips if clients.get(t["port"]) == "web" and
                       any("bfl_status Ready" in c for c in t["commands"])), default=float("inf"))
    steps: dict[str, dict] = {step: {"commands": 0, "trips": 0, "kinds": Counter()} for step in STEPS}
    others: list[dict] = []
    for trip in trips:
        text = " ".join(trip["commands"])
        if not any(n in text for n in names):
            others.append(trip)
            continue
        kind = clients.get(trip["port"], "?")
        if kind == "web":
            step = STEPS[0] if trip["at"] < callback_at else STEPS[1]
        elif f"thumbnail-{job}" in text:
            step = STEPS[4]
        elif f"download-{job}" in text:
            step = STEPS[2]
        elif "status stored" in text:
            step = STEPS[3]  # the transition to stored (which also puts the job in the thumbnail line)
        elif "thumbnail_key" in text:
            step = STEPS[5]
        elif "fh:work:thumbnail" in text:
            step = STEPS[4]
        elif "fh:work:download" in text:
            step = STEPS[2]
        else:
            step = STEPS[3] if trip["at"] >= callback_at else STEPS[0]
        add(steps[step], trip, scripts)
    idle = Counter()
    idle_trips = Counter()
    for trip in round_trips(lines, captured["idle_at"], captured["posted_at"]):
        idle[signature(trip, scripts)] += len(trip["commands"])
        idle_trips[signature(trip, scripts)] += 1
    window = captured["ended_at"] - captured["posted_at"]
    scale = window / (captured["posted_at"] - captured["idle_at"])
    during = Counter()
    during_trips = Counter()
    for trip in others:
        during[signature(trip, scripts)] += len(trip["commands"])
        during_trips[signature(trip, scripts)] += 1
    caused = steps[STEPS[6]]
    for kind in during:
        extra = during[kind] - idle[kind] * scale
        if extra > 0.5:
            caused["commands"] += extra
            caused["trips"] += max(0.0, during_trips[kind] - idle_trips[kind] * scale)
            caused["kinds"][kind] += extra
    idle_total = sum(idle.values()) / (captured["posted_at"] - captured["idle_at"])
    return {"steps": {s: {"commands": v["commands"], "trips": v["trips"],
                          "kinds": v["kinds"].most_common(4)} for s, v in steps.items()},
            "idle_per_s": idle_total, "window": window,
            "idle_kinds": [(k, v / (captured["posted_at"] - captured["idle_at"])) for k, v in idle.most_common(8)]}


def add(step: dict, trip: dict, scripts: dict[str, str]) -> None:
    step["commands"] += len(trip["commands"])
    step["trips"] += 1
    step["kinds"][signature(trip, scripts)] += len(trip["commands"])


def single_job(tree: Path, submit_delay: float = 1.0, task_delay: float = 8.0) -> dict:
    return attribute(capture(tree, submit_delay, task_delay))


def print_steps(results: dict[str, dict]) -> None:
    labels = list(results)
    print("\nOne job under MONITOR, commands (round trips) by step:\n")
    print("| step | " + " | ".join(labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    for step in STEPS:
        cells = [f"{r['steps'][step]['commands']:.0f} ({r['steps'][step]['trips']:.0f})" for r in results.values()]
        print(f"| {step} | " + " | ".join(cells) + " |")
    totals = [sum(s["commands"] for s in r["steps"].values()) for r in results.values()]
    print("| **the job's own** | " + " | ".join(f"**{t:.0f}**" for t in totals) + " |")
    print("| idle loops, commands/s | " + " | ".join(f"{r['idle_per_s']:.0f}" for r in results.values()) + " |")
    for label, r in results.items():
        print(f"\n{label}: what weighs most in each step (commands)")
        for step in STEPS:
            kinds = "; ".join(f"{k} {v:.0f}" for k, v in r["steps"][step]["kinds"])
            print(f"  {step}: {kinds}")
        print("  idle loops, commands/s: " + "; ".join(f"{k} {v:.1f}" for k, v in r["idle_kinds"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_steps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(ROOT), help="the checkout whose web and worker run")
    args = parser.parse_args(argv)
    print_steps({Path(args.tree).name: single_job(Path(args.tree))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
