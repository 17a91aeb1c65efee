"""A stored video's poster frame: its storage key and how it is kept beside the video."""

from __future__ import annotations

import hashlib
import io

from fluxhook.media.storage import Storage
from fluxhook.media.video import POSTER_CONTENT_TYPE, POSTER_MAX_SIDE


def key_for(job_id: str) -> str:
    """The storage key of a job's poster (beside its video, ``{job_id}.mp4``)."""
    return f"{job_id}-poster.jpg"


def store(storage: Storage, job_id: str, poster: bytes) -> dict:
    """Store the poster's JPEG bytes; the record's ``poster`` fields (key, size, sha256, content type)."""
    digest = hashlib.sha256(poster).hexdigest()
    key = key_for(job_id)
    storage.put(key, io.BytesIO(poster), sha256=digest)
    return {"key": key, "size": len(poster), "sha256": digest, "content_type": POSTER_CONTENT_TYPE}


def width_of(video_width: int, video_height: int) -> int:
    """The width of the poster of a video ``video_width`` x ``video_height``: its own, unless its longer side passes
    ``POSTER_MAX_SIDE`` (then fitted in it, as ``video._encode_poster`` fits it)."""
    longest = max(video_width, video_height)
    if longest <= POSTER_MAX_SIDE:
        return video_width
    return max(1, round(video_width * POSTER_MAX_SIDE / longest))
