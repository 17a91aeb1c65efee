"""Rows 48-50: what a key makes costs that key (issue 92). Key A floods at its limits as they are by default (its
items_per_minute and items_per_day, READS_PER_MINUTE, its queue), key B is the victim, measured alone and under
attack in alternating windows of the same row (``rows_web``'s windows): B's reads of its job, and BFL's callbacks for
B's jobs, each acknowledged within CALLBACK_BOUND.

48. A makes and cancels batches as fast as it is let for PROBE_CHURN_MINUTES (3 by default): what Redis keeps of them
is bounded by the items A's limits admitted; 49. A, its queue full, floods ``POST /v1/batches`` with 600 KB bodies,
each refused from its head before a byte of its body is sent; 50. A's cheap reads at full speed, its job and its
image. Row 51 (already made variants) is ``rows_variants``'. Row 48 reads Redis's ``used_memory``, nothing else."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from fluxhook.core.config import field_default
from fluxhook.lifecycle.steps.key_limits import items_burst

from .flood import Flood
from .harness import TERMINAL, Api, Probe, Row, codes, finish, settle, wait_job
from .rows_batches import percentile
from .rows_cancel import running_job
from .rows_web import ATTACK, CYCLES, FLOODERS, Reads, ack_seconds, alternate, flood_answers, judged, sorted_codes

# How soon a callback is acknowledged while another key floods, the contract's figure.
CALLBACK_BOUND = 0.1
# Row 48: minutes of A's churn (a quicker run may ask for less), its batches' sizes, and each size's connections.
CHURN_MINUTES = float(os.environ.get("PROBE_CHURN_MINUTES", "3"))
CHURN_SIZES = (1000, 10)
CHURN_CONNECTIONS = 4
# What an item that ended unsent may keep (its two bits, the allocator's share), and a batch's own record besides its
# items: its hash (counts, cost, metadata, times), its items' bitmap, its place in its key's and every batch's index,
# its batch.ended in the outbox.
UNSENT_ITEM_BYTES = 256
BATCH_BYTES = 2048
# Row 49: A's queued jobs (its max_queued: the queue full), its bodies (items of long prompts, about 600 KB), and its
# connections (half of them waiting out each Retry-After, half at once again).
REFUSED_QUEUE = 5
REFUSED_ITEMS, REFUSED_PROMPT = 300, 2000
# What the rows take, about: row 48's churn and its windows alone, then rows 49 and 50 (B's held jobs, three windows).
ROW_SECONDS = int(CHURN_MINUTES * 60) + 200


# --------------------------------------------------------------------------- B alone and under attack


def under_attack(p: Probe, b: Api, start: Callable[[int], None], stop: Callable[[int], None],
                 attack_seconds: float = ATTACK) -> tuple[bool, str, str]:
    """B alone and under A's attack (``start``/``stop``) in CYCLES turns: B reads its job every 20 ms, and in each
    window BFL ends one of B's jobs 2 s in. Whether B's reads kept within rows_web's bounds of alone and every callback
    was acknowledged 2xx within CALLBACK_BOUND under attack, each of B's jobs stored by it; what B saw, and alone."""
    with ThreadPoolExecutor(4) as pool:
        held = list(pool.map(lambda n: running_job(b, f"B's job {n} whose callback is timed"), range(2 * CYCLES + 1)))
    tasks = {job_id: b.job(job_id).get("bfl_id") or "" for job_id in held}
    acks: dict[str, list] = {"alone": [], "attack": []}

    def during(kind: str, n: int, ends: float) -> None:
        time.sleep(2.0)
        job_id = held[2 * n + (kind == "attack")]
        p.bfl.complete(tasks[job_id])
        acks[kind].append((job_id, time.time()))

    # B's images are BFL's smallest, so its callback, not a poll that learns the result first, ends each (rows_web).
    p.bfl.settings(image_bytes=1)
    reads = Reads(b, f"/v1/jobs/{held[-1]}")
    try:
        alone, attack = alternate(start, stop, during, attack_seconds=attack_seconds)
    finally:
        reads.stop()
        p.bfl.settings(image_bytes=None)
    timed = {kind: [ack_seconds(p, tasks[job_id], at) for job_id, at in done] for kind, done in acks.items()}
    ended = [wait_job(b, job_id, lambda j: j["status"] in TERMINAL, 20)[0] for done in acks.values()
             for job_id, _ in done]
    finish(p, b, held[-1])
    holds, victim, base = judged(reads, alone, attack)
    slowest = max((s for s, _ in timed["attack"]), default=float("inf"))
    calls = (all(ok for _, ok in timed["attack"]) and slowest <= CALLBACK_BOUND
             and all(job.get("status") == "stored" and job.get("source") == "webhook" for job in ended))
    shown = {kind: ", ".join(f"{s * 1000:.0f}" for s, _ in timed[kind]) for kind in timed}
    return (holds and calls, f"{victim}; callbacks acked in {shown['attack']} ms, B's jobs stored by callback "
            f"{sum(j.get('source') == 'webhook' for j in ended)}/{len(ended)}",
            f"{base}; callbacks alone {shown['alone']} ms, bound {CALLBACK_BOUND * 1000:.0f} ms")


def both(floods: list[Flood], word: str) -> Callable[[int], None]:
    """Tell every flood ``on`` or ``off`` (``off`` waits until each has what it sent answered)."""
    return lambda n: [getattr(flood, word)(n) for flood in floods] and None


# --------------------------------------------------------------------------- 48: create and cancel


def used_memory(p: Probe) -> int:
    return int(p.redis.info("memory")["used_memory"])


def cancel_all(api: Api) -> int:
    """Cancel every batch of the key still running (those whose cancel A's flood was refused): how many."""
    canceled, cursor = 0, None
    while True:
        page = api.get("/v1/batches", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        for batch in page.get("batches", []):
            if batch["status"] == "running":
                api.post(f"/v1/batches/{batch['id']}/cancel", timeout=120)
                canceled += 1
        cursor = page.get("next_cursor")
        if not cursor:
            return canceled


def row_churn(p: Probe) -> Row:
    """48. A makes and cancels 1,000-item and 10-item batches as fast as its limits let it (4 connections each) for 3
    minutes: Redis keeps at most 256 bytes an item admitted and a batch's record; B's reads and callbacks as alone."""
    a, b = p.tenant("a-churn", max_active=1), p.tenant("b-churn")
    holder = running_job(a, "holds A's one slot: its batches' items wait queued, never sent")
    per_minute = int(field_default("items_per_minute"))  # A's: the probe's stack sets no ITEMS_PER_MINUTE
    before = used_memory(p)
    with p.default_reads(a):
        floods = [Flood(a, method="POST", path="/v1/batches", connections=CHURN_CONNECTIONS, items=size)
                  for size in CHURN_SIZES]
        began = time.monotonic()
        try:
            holds, victim, base = under_attack(p, b, both(floods, "on"), both(floods, "off"),
                                               attack_seconds=CHURN_MINUTES * 60 / CYCLES)
        finally:
            answers = [flood.result() for flood in floods]
    # A's bucket refills through the windows alone too: its limits admit a full bucket and the rate over the whole.
    ceiling = items_burst(per_minute) + per_minute * (time.monotonic() - began) / 60
    left = cancel_all(a)
    # Every batch ended and its items pruned: nothing of A's churn is on its way out any more.
    settle(lambda: all(batch["status"] == "ended" for batch in a.get("/v1/batches", params={"limit": 100})
                       .json()["batches"]), 120, interval=1.0)
    time.sleep(2.0)
    grown = used_memory(p) - before
    made = [int(answer["statuses"].get("202", 0)) for answer in answers]
    items = sum(count * size for count, size in zip(made, CHURN_SIZES, strict=True))
    bound = items * UNSENT_ITEM_BYTES + sum(made) * BATCH_BYTES
    finish(p, a, holder)
    statuses = [sorted_codes(answer["statuses"]) for answer in answers]
    cancels = sum((Counter(answer["cancels"]) for answer in answers), Counter())
    holds = holds and 0 <= grown <= bound and items <= ceiling
    return Row(f"A makes and cancels {' and '.join(f'{s:,}' for s in CHURN_SIZES)}-item batches for "
               f"{CHURN_MINUTES:g} min ({CHURN_CONNECTIONS} connections each)",
               "; ".join(f"{size:,}-item: {codes(s)}" for size, s in zip(CHURN_SIZES, statuses, strict=True))
               + f"; cancels {codes(sorted_codes(cancels))}, {left} left running canceled after; items admitted "
               f"{items:,} (its limits: {ceiling:,.0f})",
               victim, f"Redis grew {grown:,} B ({grown / max(items, 1):,.0f} B an item) for {items:,} items in "
               f"{sum(made):,} batches, bound {bound:,} B ({UNSENT_ITEM_BYTES} B an item, {BATCH_BYTES:,} a batch); "
               f"{base}", holds)


# --------------------------------------------------------------------------- 49: refused from the head


def row_refused_batches(p: Probe) -> Row:
    """49. A (max_queued 5, its queue full) floods POST /v1/batches with 600 KB bodies from 16 connections, half of
    them honouring Retry-After: each refused before its body is sent; B's reads and callbacks as alone."""
    a = p.tenant("a-refused", max_active=1, max_queued=REFUSED_QUEUE, reads_per_minute=None)
    b = p.tenant("b-refused")
    holder = running_job(a, "holds A's one slot")
    queued = [a.submit(f"A's queued job {n}").json().get("id") for n in range(REFUSED_QUEUE)]
    config = {"method": "POST", "path": "/v1/batches", "connections": FLOODERS // 2, "items": REFUSED_ITEMS,
              "prompt_chars": REFUSED_PROMPT, "head_first": True}
    floods = [Flood(a, **config, honour=honour) for honour in (True, False)]
    try:
        holds, victim, base = under_attack(p, b, both(floods, "on"), both(floods, "off"))
    finally:
        answers = [flood.result() for flood in floods]
    made = a.get("/v1/batches", params={"limit": 100}).json().get("batches", [])
    for job_id in queued:
        a.call("DELETE", f"/v1/jobs/{job_id}")
    finish(p, a, holder)
    sent = [n for answer in answers for n in answer.get("sent", [])]
    counted = sum((Counter(answer["statuses"]) for answer in answers), Counter())
    statuses = sorted_codes(counted)
    body = REFUSED_ITEMS * (REFUSED_PROMPT + 80)
    early = [n for n in sent if n > 0]
    holds = holds and not made and bool(sent) and not early and set(statuses) <= {429, 503}
    return Row(f"A, its queue full, floods POST /v1/batches with ~{body // 1000:,} KB bodies from {FLOODERS} "
               "connections (half honouring Retry-After)",
               f"{flood_answers({'statuses': counted}, CYCLES * ATTACK)}"
               f"; batches made {len(made)}; answered before any body byte {len(sent) - len(early)}/{len(sent)}, "
               f"body bytes sent before an answer: most {max(sent, default=0):,}, p50 {percentile(sent, 0.5):,.0f}",
               victim, base, holds)


# --------------------------------------------------------------------------- 50: cheap reads


def row_cheap_reads(p: Probe) -> Row:
    """50. A's 16 connections read its own job and its image (GET /v1/jobs/{id}, /image) at full speed, ignoring 429:
    B's reads and callbacks as alone; A's 429s."""
    a, b = p.tenant("a-cheap"), p.tenant("b-cheap")
    job_id = a.submit("A's picture it reads").json()["id"]
    wait_job(a, job_id, lambda j: j["status"] in TERMINAL, 60)
    with p.default_reads(a):
        flood = Flood(a, paths=[f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/image"], connections=FLOODERS)
        try:
            holds, victim, base = under_attack(p, b, flood.on, flood.off)
        finally:
            answers = flood.result()
    limited = int(answers["statuses"].get("429", 0))
    return Row(f"{FLOODERS} connections of A reading its job and its image at full speed, ignoring 429",
               f"{flood_answers(answers, CYCLES * ATTACK)}; 429s {limited:,}", victim, base, holds and limited > 0)


ROWS = (row_churn, row_refused_batches, row_cheap_reads)
