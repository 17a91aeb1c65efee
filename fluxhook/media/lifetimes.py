"""How long BFL's result URLs live (pure), as the model catalog says per model: 10 minutes for FLUX.1 and FLUX.2
images, about an hour for FLUX 3 Image and BFL's tools, about 2 hours for FLUX 3 video and its draft cache.
Downloads are retried for as long as a URL may still be fetched, and a URL past its life is not fetched at all:
BFL is asked for a fresh one instead."""

from __future__ import annotations

from fluxhook.core.catalog import URL_LIFE_BY_KIND, Catalog, in_force

IMAGE_URL_LIFE = URL_LIFE_BY_KIND["image"]
VIDEO_URL_LIFE = URL_LIFE_BY_KIND["video"]
# FLUX 3 Image's and BFL's tools' URLs, as the catalog gives them: between an image's and a video's.
HOUR_URL_LIFE = 3600


def expects_video(model: str | None, catalog: Catalog | None = None) -> bool:
    """Whether a model's results are videos: its catalog kind; a name the catalog does not know is taken for a
    video when it says so (``flux-3-video`` and its kin)."""
    entry = (catalog or in_force()).get(model)
    if entry is not None:
        return entry.kind == "video"
    return model is not None and "video" in model


def model_url_life(model: str | None, catalog: Catalog | None = None) -> int:
    """Seconds a result URL of this model lives after BFL finished the task, from the catalog (``catalog``, else
    the one in force: the shipped one with BFL_MODELS_FILE merged over it).

    A job without a model (a task tracked without one), or with a name the catalog does not know, gets the
    longer life unless its name says image: retrying an image's URL for too long costs a few requests, giving
    up on a video's too early loses it.
    """
    entry = (catalog or in_force()).get(model)
    if entry is not None:
        return entry.result_url_life
    return IMAGE_URL_LIFE if model is not None and not expects_video(model, catalog) else VIDEO_URL_LIFE


def past_life(model: str | None, finished_at: float | None, now: float) -> bool:
    """Whether a result URL of a task BFL finished at ``finished_at`` has outlived its life by ``now``."""
    return finished_at is not None and now > finished_at + model_url_life(model)
