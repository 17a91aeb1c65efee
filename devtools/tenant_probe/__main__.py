"""`python -m devtools.tenant_probe` (make probe-tenants): run the rows and print their table."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import (
    rows_accounts,
    rows_batch_requests,
    rows_batches,
    rows_bulkheads,
    rows_cancel,
    rows_checks,
    rows_costs,
    rows_limits,
    rows_notify,
    rows_reads,
    rows_shared,
    rows_streams,
    rows_variants,
    rows_web,
)
from .harness import BFL_ANSWERS_AFTER, RUN_LIMIT, TASK_SECONDS, Probe, Row

# Every row in the order they run and are numbered: each module's rows, one concern each.
ROWS: tuple[Callable[[Probe], Row], ...] = (*rows_shared.ROWS, *rows_limits.ROWS, *rows_notify.ROWS, *rows_cancel.ROWS,
                                          *rows_streams.ROWS, *rows_reads.ROWS, *rows_cancel.LATER_ROWS,
                                          *rows_bulkheads.ROWS, *rows_batches.ROWS, *rows_batch_requests.ROWS,
                                          *rows_batches.LATER_ROWS, *rows_web.ROWS,
                                          *rows_variants.ROWS, *rows_checks.ROWS, *rows_costs.ROWS,
                                          *rows_variants.LATER_ROWS, *rows_accounts.ROWS)
# Rows that would start past this are not run: harness.RUN_LIMIT for rows 1-38, and the time of the later rows' own.
RUN_SECONDS = (RUN_LIMIT + rows_web.ROWS_SECONDS + rows_variants.ROW_SECONDS + rows_checks.ROW_SECONDS
               + rows_costs.ROW_SECONDS + rows_variants.LATER_SECONDS + rows_accounts.ROW_SECONDS)


# --------------------------------------------------------------------------- the run


def run_row(p: Probe, number: int, row: Callable[[Probe], Row]) -> Row:
    title = (row.__doc__ or "").split(":")[0].split(". ", 1)[-1]
    if RUN_SECONDS - (time.monotonic() - p.started) < 60:
        return Row(title, "-", "-", "not run: out of time", False)
    started = time.monotonic()
    try:
        result = row(p)
    except Exception as exc:  # a row that cannot finish is reported, and the next one runs
        result = Row(title, "-", "-", f"error: {type(exc).__name__}: {str(exc)[:100]}", False)
    print(f"[{time.monotonic() - p.started:5.0f} s] {number:>2}. {verdict(result):6} {result.attack} "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    return result


def verdict(row: Row) -> str:
    return "HOLDS" if row.holds else "BROKEN"


def print_rows(numbered: list[tuple[int, Row]]) -> None:
    headers = ("#", "attack", "attacker got", "victim saw", "figure", "")
    cells = [(str(n), r.attack, r.attacker, r.victim, r.figure, verdict(r)) for n, r in numbered]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    for line in (headers, tuple("-" * w for w in widths), *cells):
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def chosen_rows(text: str) -> list[int]:
    """``1,3,39-44`` as the row numbers it names, in that order."""
    chosen = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or not (last or first).isdigit():
            raise argparse.ArgumentTypeError(f"not a row number or range: {part!r}")
        chosen += range(int(first), int(last or first) + 1)
    if not all(1 <= n <= len(ROWS) for n in chosen):
        raise argparse.ArgumentTypeError(f"rows are numbered 1 to {len(ROWS)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.tenant_probe",
                                     description=(sys.modules[__package__].__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=chosen_rows, help="the rows to run, by number and range (1,3,39-44); default all")
    args = parser.parse_args()
    chosen = args.rows or list(range(1, len(ROWS) + 1))
    probe = Probe(Path(tempfile.mkdtemp(prefix="fluxhook-tenant-probe-")))
    numbered = []
    try:
        probe.start()
        print(f"stack up at {probe.stack.base_url} in {time.monotonic() - probe.started:.0f} s; "
              f"BFL answers after {BFL_ANSWERS_AFTER:g} s, tasks take {TASK_SECONDS:g} s", flush=True)
        probe.warm_up()
        numbered = [(n, run_row(probe, n, ROWS[n - 1])) for n in chosen]
    finally:
        probe.stop()
    print()
    print_rows(numbered)
    broken = sum(not row.holds for _, row in numbered)
    kept = f" (the stack's logs: {probe.var_dir})" if broken else ""
    print(f"\n{len(numbered) - broken} hold, {broken} broken; {time.monotonic() - probe.started:.0f} s{kept}")
    if not broken:
        shutil.rmtree(probe.var_dir, ignore_errors=True)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
