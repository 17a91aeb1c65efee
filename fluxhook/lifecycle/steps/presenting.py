"""The job JSON: the one function that makes it, for the API and for notifications alike."""

from __future__ import annotations

import time

from fluxhook.core import signing, variants
from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import Waiting


def file_path(config: Config, job_id: str, name: str) -> str:
    """The path and query of a signed link to one of the job's stored files (``image``, ``video``, ``poster``,
    ``draft_cache``) that works without a bearer token and for no other job or file: the same for every read within
    the job's own window of ``IMAGE_URL_WINDOW_SECONDS``, valid at least ``IMAGE_URL_TTL_SECONDS`` from now
    (``signing.link_times``)."""
    times = signing.link_times(time.time(), config.image_url_ttl_seconds, config.image_url_window_seconds, job_id)
    return f"/v1/jobs/{job_id}/{name}?token={signing.file_token(config.secret_keys, job_id, name, times.signed_at)}"


def file_url(config: Config, job_id: str, name: str) -> str:
    """``file_path``'s link, absolute under ``PUBLIC_BASE_URL``."""
    return config.public_base_url + file_path(config, job_id, name)


def link_opens(config: Config, token: str, job_id: str, name: str) -> bool:
    """Whether ``token`` is a link's to the job's ``name`` file, signed with one of the keys and still in its time."""
    max_age = signing.link_times(time.time(), config.image_url_ttl_seconds, config.image_url_window_seconds,
                                 job_id).max_age
    return signing.file_token_valid(config.secret_keys, token, job_id, name, max_age)


def present(config: Config, job: Job, waiting: Waiting | None = None) -> dict:
    """The job as ``GET /v1/jobs/{id}`` answers it, with the window's signed URLs of its stored files (and its image's
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
        # Ready for <img srcset>: the signed link at each width a screen may need, its format by Accept.
        shown["image"]["srcset"] = variants.srcset(image_url, int(shown["image"]["width"]))
    return shown
