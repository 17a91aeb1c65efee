"""Benchmark: an app's receiver holds only its own messages (docs/operating.md, bulkheads).

    .venv/bin/python -m bench.receivers [--messages 100] [--jobs 5] [--task 3] [--submit-delay 1]

The Procfile's web and one worker, the simulator answering a submission after ``--submit-delay`` s with tasks of
``--task`` s. Key B's notify_url is a receiver that answers at once; B makes ``--jobs`` jobs one after another, each
timed from its creation to ``stored`` and from its end to its notification's arrival. Baseline, in the same run: B's
jobs with nothing else going on. Then key A's receiver answers ``HTTP/1.1 200 OK`` and then a byte every 4 s (or, for
key C, never answers), A makes ``--messages`` notifications that cost no credits (jobs canceled while they wait for
A's one slot), and B's jobs are timed again while A's receiver holds its attempts. The receiver says how many
attempts it held at once. Not part of the test suite; it prints a table and changes nothing outside temporary
directories.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

import requests

from devtools.processes import wait_until
from devtools.slow_receivers import SILENT, TRICKLE, PromptReceiver, SlowReceiver
from fluxhook.store.keys import KEYS

from .common import BenchStack, Row, Section, fmt, log, print_report


def _key(stack: BenchStack, notify_url: str, **limits) -> requests.Session:
    created = stack.api_session().post(f"{stack.base_url}/v1/keys", json={"name": notify_url[-30:], "notify_url":
                                                                         notify_url, **limits}, timeout=10)
    created.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {created.json()['key']}"
    return session


def _timed_jobs(stack: BenchStack, app: requests.Session, receiver: PromptReceiver, count: int, task: float,
                label: str) -> tuple[list[float], list[float]]:
    """Each of ``count`` jobs' seconds from creation to stored, and from its end to its notification's arrival."""
    stored, notified = [], []
    for n in range(count):
        job = app.post(f"{stack.base_url}/v1/jobs", timeout=30, json={"model": "flux-2-pro", "input": {
            "prompt": f"[seconds-{task:g}] {label} {n}"}}).json()
        url = f"{stack.base_url}/v1/jobs/{job['id']}"
        done = wait_until(lambda url=url: (lambda j: j if j["status"] == "stored" else None)(app.get(url, timeout=10).json()),
                          timeout=120, interval=0.05, message=f"{label} {n} stored")
        arrived = wait_until(lambda job=job: receiver.arrived.get(f"msg_{job['id']}"), timeout=120, interval=0.05,
                             message=f"{label} {n} notified")
        # The record's own times: the API's are whole seconds.
        created, completed = (float(t) for t in stack.redis().hmget(KEYS.job(done["id"]), "created_at", "completed_at"))
        stored.append(completed - created)
        notified.append(arrived - completed)
    return stored, notified


def _flood(stack: BenchStack, app: requests.Session, messages: int) -> None:
    """``messages`` job.ended messages of ``app`` that cost no credits: jobs canceled while they wait for its slot."""
    post = lambda path, **body: app.post(f"{stack.base_url}{path}", json=body or None, timeout=30).json()  # noqa: E731
    holder = post("/v1/jobs", model="flux-2-pro", input={"prompt": "[pending] holds the slot"})
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda n: post("/v1/jobs", model="flux-2-pro", input={"prompt": f"waits {n}"}),
                             range(messages)))
        list(pool.map(lambda job: post(f"/v1/jobs/{job['id']}/cancel"), made))
    post(f"/v1/jobs/{holder['id']}/cancel")


def run(args) -> Section:
    good = PromptReceiver()
    slow = {mode: SlowReceiver(mode, every=4.0) for mode in (TRICKLE, SILENT)}
    allowed = ",".join([good.host, *(r.host for r in slow.values())])
    stack = BenchStack("receivers", log_level=args.log_level, NOTIFY_HOST_ALLOWLIST=allowed)
    section = Section("worker bulkheads: another key's job while a receiver holds its notifications")
    try:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay)
        other = _key(stack, good.url())
        log("receivers: baseline, no such receiver")
        base_stored, base_notified = _timed_jobs(stack, other, good, args.jobs, args.task, "baseline")
        for mode, receiver in slow.items():
            log(f"receivers: {args.messages} messages to a receiver that {'trickles' if mode == TRICKLE else 'never answers'}")
            _flood(stack, _key(stack, receiver.url(), max_active=1), args.messages)
            wait_until(lambda receiver=receiver: receiver.open >= 2, timeout=60, message="the receiver holding attempts")
            stored, notified = _timed_jobs(stack, other, good, args.jobs, args.task, mode)
            section.rows += [
                Row(f"{mode}: B's job created -> stored, max s", fmt(max(stored), 2), fmt(max(base_stored), 2), "",
                    "<= baseline + 2", max(stored) <= max(base_stored) + 2),
                Row(f"{mode}: B's notification after its end, max s", fmt(max(notified), 2),
                    fmt(max(base_notified), 2), "", "<= baseline + 2", max(notified) <= max(base_notified) + 2),
                Row(f"{mode}: A's attempts in flight at once, most", str(receiver.most_open), "", "", "<= 2",
                    receiver.most_open <= 2),
            ]
        section.notes.append(f"B: {args.jobs} jobs one after another, each a task of {args.task:g} s at a BFL that "
                             f"answers after {args.submit_delay:g} s; A: {args.messages} messages to a receiver that "
                             "answers a byte every 4 s, then as many from another key to one that never answers; "
                             "one worker process at its default capacities.")
        return section
    finally:
        stack.stop()
        stack.cleanup()
        good.stop()
        for receiver in slow.values():
            receiver.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.receivers", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="A's notifications to its slow receiver (100)")
    parser.add_argument("--jobs", type=int, default=5, help="B's jobs timed per setting (5)")
    parser.add_argument("--task", type=float, default=3.0, help="seconds each of B's tasks runs at BFL (3)")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission (1)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the processes")
    args = parser.parse_args(argv)
    print_report([run(args)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
