"""Small WebP previews of images, for the dashboard: the bytes of one, and where it is stored beside its image.

A real small file, so a list of jobs never makes the browser fetch and scale full-size images.
"""

from __future__ import annotations

import io
from typing import IO

from PIL import Image, ImageOps

from fluxhook.media.storage import seekable, spool
from fluxhook.media.variants import MAX_SOURCE_PIXELS

MAX_SIDE = 256
CONTENT_TYPE = "image/webp"


def key_for(job_id: str) -> str:
    """The storage key of a job's thumbnail (beside its image, ``{job_id}.{ext}``)."""
    return f"{job_id}-thumb.webp"


def make_thumbnail(source: IO[bytes]) -> bytes:
    """WebP bytes of ``source`` (a JPEG, PNG or WebP) fitted in MAX_SIDE x MAX_SIDE, never enlarged.

    ``source`` is a file, or a stream that cannot seek (an S3 object's), which is first copied to a temporary file:
    decoding seeks, and Pillow would otherwise read the whole stream into memory.
    """
    if seekable(source):
        source.seek(0)
        return _thumbnail(source)
    with spool(source) as copy:
        return _thumbnail(copy)


def _thumbnail(source: IO[bytes]) -> bytes:
    with Image.open(source) as image:
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise ValueError(f"{image.width}x{image.height} is too large to make a thumbnail of")
        # draft() lets a JPEG decode at a reduced scale; a no-op for other formats.
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        image.load()
        # Browsers show the full image turned by its EXIF orientation: the thumbnail must match.
        # In place: a copy of the full-size image would cost as much again as decoding it.
        ImageOps.exif_transpose(image, in_place=True)
        small: Image.Image = image
        if small.mode not in ("RGB", "RGBA"):
            small = small.convert("RGBA" if "A" in small.getbands() or "transparency" in small.info else "RGB")
        # reducing_gap: a fast box reduction first, LANCZOS only over the last factor of 3.
        small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        out = io.BytesIO()
        small.save(out, format="WEBP", quality=80, method=2)
    return out.getvalue()
