"""How long BFL's result URLs live (pure): 10 minutes for an image, about 2 hours for a video and its draft
cache. Downloads are retried for as long as a URL may still be fetched, and a URL past its life is not
fetched at all: BFL is asked for a fresh one instead."""

from __future__ import annotations

IMAGE_URL_LIFE = 600
VIDEO_URL_LIFE = 7200


def expects_video(model: str | None) -> bool:
    """Whether a model's results are videos (FLUX 3 video: ``flux-3-video`` and its kin)."""
    return model is not None and "video" in model


def url_life(model: str | None) -> int:
    """Seconds a result URL of this model lives after BFL finished the task.

    A job without a model (a task tracked without one) gets the longer life: retrying an image's URL
    for too long costs a few requests, giving up on a video's too early loses it.
    """
    return IMAGE_URL_LIFE if model is not None and not expects_video(model) else VIDEO_URL_LIFE


def past_life(model: str | None, finished_at: float | None, now: float) -> bool:
    """Whether a result URL of a task BFL finished at ``finished_at`` has outlived its life by ``now``."""
    return finished_at is not None and now > finished_at + url_life(model)
