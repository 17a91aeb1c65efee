"""Benchmark 4, footprint: Redis per job record, RSS of web and worker after the runs, BFL calls per job.

Nothing is run here: the other benchmarks sample what they leave behind before stopping
their stacks, and this module turns that into rows.

- Redis: ``MEMORY USAGE fh:job:{id} SAMPLES 0`` of the throughput bench's last stored jobs
  (median), plus each job's other keys (``fh:bfl:`` index, ``fh:events:`` timeline, RQ's task
  hash, which RQ drops after an hour) and its share of the sorted-set indexes, and the growth
  of Redis's ``used_memory`` per job over a repetition.
- RSS: VmRSS summed over the process tree (``web`` = gunicorn master + its workers; ``worker``
  = ``python -m worker`` and any child process; its cron and RQ's scheduler are threads), sampled after each benchmark's
  runs: the web after the ingest load, the others, and workers right after their downloads;
  the largest of each is reported. PSS (shared pages shared out) is given beside it.
- BFL calls per job: from the simulator's counts in the callback -> stored bench.
"""

from __future__ import annotations

import math

from .common import Row, Section, fmt

TARGET_RECORD_BYTES = 2048
TARGET_RSS_MB = 250.0


def _max(samples: list[dict[str, float]], key: str) -> float:
    values = [s[key] for s in samples if s and not math.isnan(s.get(key, math.nan))]
    return max(values) if values else math.nan


def section(ingest=None, to_stored=None, throughput=None) -> Section:
    sec = Section("4. footprint")
    notes = []
    if throughput is not None and throughput.redis_figures:
        r = throughput.redis_figures
        per_job = r["record"] + r["bfl"] + r["events"] + r["index"]
        sec.rows += [
            Row("Redis per job record (fh:job hash), bytes", fmt(r["record"], 0), "", "", f"<= {TARGET_RECORD_BYTES}",
                r["record"] <= TARGET_RECORD_BYTES),
            Row("  + bfl index, timeline, sorted-set entries, bytes", fmt(per_job, 0), "", "", "(info)"),
            Row("  + RQ task hash (kept 1 h), bytes", fmt(per_job + r["rq_task"], 0), "", "", "(info)"),
        ]
        notes.append(f"Redis, stored jobs of the last throughput rep (n={r['jobs']:.0f}), medians: record "
                     f"{r['record']:.0f} B (max {r['record_max']:.0f}), fh:bfl {r['bfl']:.0f} B, fh:events "
                     f"{r['events']:.0f} B, fh:jobs + fh:status:stored entries {r['index']:.0f} B, RQ task "
                     f"{r['rq_task']:.0f} B; used_memory grew {r['used_per_job']:.0f} B per job over a rep "
                     "(includes RQ's task records, results and allocator overhead). Redis server "
                     f"{r['redis_version']} (the one the dev run and tests use); the records' encoding: {r['encoding']}.")
    named = [(name, b.memory) for name, b in (("after ingest", ingest), ("after to-stored", to_stored),
                                              ("after throughput", throughput)) if b is not None and b.memory]
    webs = [memory for _, memory in named]
    workers = [m for b in (to_stored, throughput) if b is not None for m in b.worker_memory]
    if webs or workers:
        web_rss, worker_rss = _max(webs, "rss"), _max(workers, "rss")
        total = web_rss + worker_rss
        sec.rows += [
            Row("RSS web (gunicorn master + workers), MB", fmt(web_rss, 0)),
            Row("RSS one worker (python -m worker), MB", fmt(worker_rss, 0)),
            Row("RSS web + one worker, MB", fmt(total, 0), "", "", f"<= {TARGET_RSS_MB:g}", total <= TARGET_RSS_MB),
        ]
        notes.append("RSS in MB of 10^6 bytes, VmRSS summed over each process tree (pages shared after fork counted "
                     f"in every process); PSS of the same trees: web {fmt(_max(webs, 'pss'), 0)} MB, worker "
                     f"{fmt(_max(workers, 'pss'), 0)} MB. Web samples: "
                     + ", ".join(f"{name} {w['rss']:.0f} MB ({w['processes']:.0f} processes)" for name, w in named)
                     + "; worker samples (processes), MB: "
                     + ", ".join(f"{w['rss']:.0f} ({w['processes']:.0f})" for w in workers)
                     + "; a worker is one process (its cron and RQ's scheduler are threads of it).")
        if ingest is not None and ingest.memory.get("bare_rss"):
            notes.append(f"for scale: the bare Flask baseline under the same gunicorn settings, "
                         f"{ingest.memory['bare_rss']:.0f} MB RSS after its runs.")
    if to_stored is not None and to_stored.calls:
        poller_calls = to_stored.poller_calls
        sec.rows.append(Row("BFL calls per job (submit + polls)", fmt(to_stored.calls["fh_calls"], 2),
                            fmt(poller_calls, 2), fmt(to_stored.calls["fh_calls"] / poller_calls, 2), "(info)"))
        notes.append("BFL calls: fluxhook's from the simulator's per-task counts in the callback -> stored bench "
                     "(callbacks arriving); baseline = BFL's naive 0.5 s poller in the same bench.")
    sec.notes = notes
    return sec
