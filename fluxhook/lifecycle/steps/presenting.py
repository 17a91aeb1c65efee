"""The job JSON: the one function that makes it, for the API and for notifications alike."""

from __future__ import annotations

from fluxhook.core import signing, variants
from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import Waiting


def file_url(config: Config, job_id: str, name: str) -> str:
    """A signed link to one of the job's stored files (``image``, ``video``, ``poster``, ``draft_cache``), valid
    ``IMAGE_URL_TTL_SECONDS`` from now, that works without a bearer token and for no other job or file."""
    token = signing.file_token(config.secret_keys, job_id, name)
    return f"{config.public_base_url}/v1/jobs/{job_id}/{name}?token={token}"


def present(config: Config, job: Job, waiting: Waiting | None = None) -> dict:
    """The job as ``GET /v1/jobs/{id}`` answers it, with fresh signed URLs of its stored files (and its image's
    ``srcset``) and, while it is ``queued``, why it waits (``waits.of``; a terminal job, as notifications send it,
    waits for nothing)."""
    links: dict[str, str | None] = {}
    if job.video:
        links.update(video_url=file_url(config, job.id, "video"), poster_url=file_url(config, job.id, "poster"))
    if job.draft_cache:
        links["draft_cache_url"] = file_url(config, job.id, "draft_cache")
    image_url = file_url(config, job.id, "image") if job.image else None
    shown = job.to_api(image_url, waiting=waiting.to_api() if waiting is not None else None, **links)
    if image_url is not None and shown["image"].get("width"):
        # Ready for <img srcset> (SPEC §19): the signed link at each width a screen may need, its format by Accept.
        shown["image"]["srcset"] = variants.srcset(image_url, int(shown["image"]["width"]))
    return shown
