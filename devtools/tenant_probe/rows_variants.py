"""Rows 45 and 51: images served to people (variants made in a room of their own per web process):
key A asks for thousands of new variants of its own
stored images at once while key B reads, as rows 41-42 do for reads and searches (``rows_web``); and (51) asks for
variants already made at full speed, by their signed links and with its key, against its read limits
(``rows_costs``)."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

from .flood import Flood
from .harness import TERMINAL, Api, Probe, Row, settle, wait_job
from .rows_costs import both, under_attack
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


# --------------------------------------------------------------------------- 51: variants already made

MADE_JOBS = 4
MADE_WIDTHS = (256, 512)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def row_made_variants(p: Probe) -> Row:
    """51. A asks for variants already made of its 4 stored images at full speed, 8 connections by their signed links
    (srcset) and 8 with its key, ignoring 429: B's reads and callbacks as alone; A's 429s."""
    a, b = p.tenant("a-made-variants"), p.tenant("b-made-variants")
    jobs = [a.submit(f"A's picture {n}, its variants made").json()["id"] for n in range(MADE_JOBS)]
    shown = [wait_job(a, job_id, lambda j: j["status"] in TERMINAL, 60)[0] for job_id in jobs]
    signed = [path_of(entry.split()[0]) for job in shown
              for entry in ((job.get("image") or {}).get("srcset") or "").split(", ") if entry]
    bearer = [f"/v1/jobs/{job_id}/image?w={w}&format=webp" for job_id in jobs for w in MADE_WIDTHS]
    anyone = Api(p.stack.base_url)
    # Each made once, before the flood: a variant's first ask makes it (503 variants_busy meanwhile).
    made = sum(bool(settle(lambda api=api, path=path: api.get(path).status_code == 200, 30, interval=0.2))
               for api, paths in ((a, bearer), (anyone, signed)) for path in paths)
    with p.default_reads(a):
        floods = [Flood(a, paths=bearer, connections=FLOODERS // 2),
                  Flood(a, token=None, paths=signed, connections=FLOODERS // 2)]
        try:
            holds, victim, base = under_attack(p, b, both(floods, "on"), both(floods, "off"))
        finally:
            answers = [flood.result() for flood in floods]
    limited = [int(answer["statuses"].get("429", 0)) for answer in answers]
    return Row(f"{FLOODERS} connections of A asking for {len(bearer) + len(signed)} variants already made, half by "
               "signed link, ignoring 429",
               f"with its key {flood_answers(answers[0], CYCLES * ATTACK)}; by signed link "
               f"{flood_answers(answers[1], CYCLES * ATTACK)}; made first {made}/{len(bearer) + len(signed)}",
               victim, base, holds and all(limited) and made == len(bearer) + len(signed))


# Numbered after the rows of what a key makes (rows_costs, 48-50), whose helper it shares.
LATER_ROWS = (row_made_variants,)
# What row 51 takes, about: its images made, then three windows alone and under attack.
LATER_SECONDS = 90
