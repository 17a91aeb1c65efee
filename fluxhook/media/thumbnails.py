"""Small WebP previews of stored images, for the dashboard: a task of their own, queued when a job is stored.

A real small file, so a list of jobs never makes the browser fetch and scale full-size images.
Making one is best effort: a thumbnail that cannot be made or stored never fails the job. It is
made after the job is stored, not before, and workers take thumbnails after every download: decoding
a full-size image costs as much as the download itself, and a preview must not delay an image.
"""

from __future__ import annotations

import io
import logging
from typing import BinaryIO

from PIL import Image, ImageOps

from fluxhook import transitions as st
from fluxhook.services import Services

log = logging.getLogger("fluxhook.thumbnails")

MAX_SIDE = 256
CONTENT_TYPE = "image/webp"
# Decoding costs memory in proportion to pixels; FLUX images are a few megapixels, never this many.
MAX_SOURCE_PIXELS = 40_000_000


def key_for(job_id: str) -> str:
    """The storage key of a job's thumbnail (beside its image, ``{job_id}.{ext}``)."""
    return f"{job_id}-thumb.webp"


def make_thumbnail(source: BinaryIO) -> bytes:
    """WebP bytes of ``source`` (a JPEG, PNG or WebP) fitted in MAX_SIDE x MAX_SIDE, never enlarged."""
    source.seek(0)
    with Image.open(source) as image:
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise ValueError(f"{image.width}x{image.height} is too large to make a thumbnail of")
        # draft() lets a JPEG decode at a reduced scale; a no-op for other formats.
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        image.load()
        # Browsers show the full image turned by its EXIF orientation: the thumbnail must match.
        # In place: a copy of the full-size image would cost as much again as decoding it.
        ImageOps.exif_transpose(image, in_place=True)
        small = image
        if small.mode not in ("RGB", "RGBA"):
            small = small.convert("RGBA" if "A" in small.getbands() or "transparency" in small.info else "RGB")
        # reducing_gap: a fast box reduction first, LANCZOS only over the last factor of 3.
        small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        out = io.BytesIO()
        small.save(out, format="WEBP", quality=80, method=2)
    return out.getvalue()


def make_for_job(svc: Services, job_id: str) -> str | None:
    """Make and store the thumbnail of a stored job's image; its key, or None if there is none (logged)."""
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.STORED or not job.storage_key or job.thumbnail_key:
        return None
    key = key_for(job_id)
    # A video's thumbnail is made from its poster frame.
    source_key = job.poster["key"] if job.video and job.poster else job.storage_key
    try:
        source = svc.storage.open(source_key)
        if source is None:
            return None
        with source:
            svc.storage.put(key, io.BytesIO(make_thumbnail(source)))
    except Exception as exc:  # a preview is never worth failing anything over, whatever went wrong
        log.warning("thumbnail not made", extra={"job_id": job_id, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return None
    if not svc.jobs.set_thumbnail(job_id, key):
        svc.storage.delete(key)  # the job was deleted meanwhile: leave no stray file
        return None
    return key
