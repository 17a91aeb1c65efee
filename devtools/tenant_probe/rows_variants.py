"""Row 45: images served to people (SPEC §19 "Bounded"): key A asks for thousands of new variants of its own stored
images at once while key B reads, as rows 41-42 do for reads and searches (``rows_web``)."""

from __future__ import annotations

import random

from .harness import TERMINAL, Probe, Row, wait_job
from .rows_web import ATTACK, CYCLES, FLOODERS, flood_answers, flood_row

VARIANT_JOBS = 12
WIDTHS = (64, 128, 256, 384, 512, 640, 768, 1024)
FORMATS = ("jpeg", "png", "webp", "avif")
QUALITIES = (50, 75, 90)
# What the row takes, about: its images made, then three windows alone and under attack.
ROW_SECONDS = 90


def row_variant_flood(p: Probe) -> Row:
    """45. A's 16 connections ask for every width, format and quality of its 12 stored images (1,152 paths, 960 new
    variants: a PNG takes no quality), ignoring 503 and 429: B's GET /v1/jobs/{id} p50 and p99; A's ask for B's
    image 404."""
    a, b = p.tenant("a-variants"), p.tenant("b-variants")
    jobs = [a.submit(f"A's picture {n}").json()["id"] for n in range(VARIANT_JOBS)]
    for job_id in jobs:
        wait_job(a, job_id, lambda j: j["status"] in TERMINAL, 60)
    paths = [f"/v1/jobs/{job_id}/image?w={w}&format={f}&q={q}"
             for job_id in jobs for w in WIDTHS for f in FORMATS for q in QUALITIES]
    random.Random(45).shuffle(paths)
    b_job = b.submit("B's picture, read while A asks for variants").json()["id"]
    wait_job(b, b_job, lambda j: j["status"] in TERMINAL, 60)
    others = a.get(f"/v1/jobs/{b_job}/image", params={"w": 256, "format": "webp"}).status_code
    holds, victim, base, answers = flood_row(p, a, b, b_job, "", FLOODERS, paths=paths)
    distinct = len(jobs) * len(WIDTHS) * (len(FORMATS) - 1) * len(QUALITIES) + len(jobs) * len(WIDTHS)
    return Row(f"{FLOODERS} connections of A asking for {distinct:,} new variants of its own images ({len(paths):,} "
               "paths), ignoring 503",
               f"{flood_answers(answers, CYCLES * ATTACK)}; B's image asked by A: {others}", victim, base,
               holds and others == 404)


ROWS = (row_variant_flood,)
