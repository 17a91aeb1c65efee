"""Benchmark: what jobs held for a day's credits cost Redis while they wait, and how soon a raised limit lets them go,
beside 0e38f28 (issue 104: "held work sleeps until its reason ends").

    .venv/bin/python -m bench.held [--items 2000] [--seconds 60] [--settle 20] [--baseline-commit 0e38f28]
                                   [--baseline-tree /tmp/fluxhook-<commit>|none]

Each tree runs the Procfile's web and one worker on a Redis of their own, with the BFL simulator answering a submission
after 1 s. An app key with ``daily_credits`` 10 posts one batch of ``--items`` flux-2-pro items (3 credits each): three go,
the rest wait with ``waiting.reason`` ``key_daily_credits``. Once nothing moves (``--settle`` s after the last item
was made and refused), the bench reads Redis's own ``INFO commandstats`` over ``--seconds`` s of rest: every command,
those run inside scripts included, less the bench's own ``INFO``. Then the key's ``daily_credits`` is raised by
``PATCH /v1/keys/{id}`` to room for every item, and the bench times how long until no item is held for the day any
more (the key's ``queued_by_reason`` has no ``key_daily_credits``): from the PATCH's answer to each item back in line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "0e38f28"
DAILY_CREDITS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.held", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="the batch's items (issue 104's figure: 10,000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="the rest measured")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds with nothing made or refused before it")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    parser.add_argument("--baseline-tree", default=None, help="checkout to compare with; 'none' skips the baseline")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # one tree, in this process
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    from bench.batches import _key
    from bench.common import BenchStack
    from bench.idle import commandstats
    from devtools.processes import wait_until

    with BenchStack("held", log_level="WARNING") as stack:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=1.0)
        db = stack.redis()
        admin = stack.api_session()
        app = _key(stack, daily_credits=DAILY_CREDITS, max_queued=args.items)
        key_id = next(k["id"] for k in admin.get(f"{stack.base_url}/v1/keys", timeout=30).json()["keys"])
        items = [{"input": {"prompt": f"bench-held {i}", "width": 1024, "height": 1024}} for i in range(args.items)]
        made = app.post(f"{stack.base_url}/v1/batches", json={"model": "flux-2-pro", "items": items}, timeout=300)
        made.raise_for_status()

        def key_view() -> dict:
            return admin.get(f"{stack.base_url}/v1/keys/{key_id}", timeout=30).json()

        def held() -> int:
            return int(key_view().get("queued_by_reason", {}).get("key_daily_credits", 0))

        # Settled: the held count has not moved for --settle seconds.
        last, since, started = -1, time.monotonic(), time.monotonic()
        while time.monotonic() - since < args.settle and time.monotonic() - started < 900:
            now_held = held()
            if now_held != last:
                last, since = now_held, time.monotonic()
            time.sleep(1.0)
        before, rest_started = commandstats(db), time.monotonic()
        time.sleep(args.seconds)
        after = commandstats(db)
        rest = time.monotonic() - rest_started
        held_at_rest = held()
        by_command = {name: after[name] - before.get(name, 0) for name in after
                      if name != "info" and after[name] - before.get(name, 0) > 0}
        # Raised: room for every item; how long until none is held for the day.
        patched = admin.patch(f"{stack.base_url}/v1/keys/{key_id}", json={"daily_credits": 3 * args.items + 100},
                              timeout=30)
        patched.raise_for_status()
        raised = time.monotonic()
        wait_until(lambda: held() == 0, timeout=600, interval=0.05, message="every held item to go")
        gone = time.monotonic() - raised
    return {"items": args.items, "held": held_at_rest, "seconds": rest, "by_command": by_command,
            "per_second": sum(by_command.values()) / rest, "woken_all_after": gone}


def run_in(tree: Path, args: argparse.Namespace) -> dict:
    """One measure in its own process, with ``tree``'s code (and its Procfile's processes) first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(Path(__file__).resolve()), "--run", "--items", str(args.items),
               "--seconds", str(args.seconds), "--settle", str(args.settle)]
    child = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                           timeout=args.seconds + args.settle + 2400)
    if child.returncode != 0:
        raise RuntimeError(f"the measure in {tree} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.run:
        print(json.dumps(measure(args)))
        return 0
    from bench.latency import ensure_baseline

    tree = args.baseline_tree or f"/tmp/fluxhook-{args.baseline_commit}"
    baseline = None if tree == "none" else ensure_baseline(Path(tree), args.baseline_commit)
    print(f"bench-held: one batch of {args.items:,} items, a key's daily_credits {DAILY_CREDITS}, "
          f"{args.seconds:.0f} s at rest; one web, one worker, BFL answering a submission after 1 s", flush=True)
    results: dict[str, dict] = {}
    for label, path in (("fluxhook", ROOT), (args.baseline_commit, baseline)):
        if path is not None:
            results[label] = run_in(path, args)
            print(f"  {label}: {results[label]['held']:,} items held at rest", flush=True)
    print(f"\n  {'':<44}" + "".join(f"{label:>14}" for label in results))
    rows = [("items held for the day at rest", lambda r: f"{r['held']:,}"),
            ("Redis commands a second at rest", lambda r: f"{r['per_second']:.2f}"),
            ("PATCH raising the limit -> none held, s", lambda r: f"{r['woken_all_after']:.2f}")]
    for title, cell in rows:
        print(f"  {title:<44}" + "".join(f"{cell(r):>14}" for r in results.values()))
    for label, figures in results.items():
        top = sorted(figures["by_command"].items(), key=lambda pair: -pair[1])[:8]
        print(f"\n  {label} at rest, by command (a second): "
              + ", ".join(f"{name} {calls / figures['seconds']:.2f}" for name, calls in top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
