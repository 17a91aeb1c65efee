"""The job JSON (SPEC §3): the one function that makes it, for the API and for notifications alike."""

from __future__ import annotations

from fluxhook import signing
from fluxhook.config import Config
from fluxhook.job import Job


def image_url(config: Config, job_id: str) -> str:
    """A signed link to the job's stored image, valid ``IMAGE_URL_TTL_SECONDS`` from now, no token needed."""
    token = signing.image_token(config.secret_keys, job_id)
    return f"{config.public_base_url}/v1/jobs/{job_id}/image?token={token}"


def present(config: Config, job: Job) -> dict:
    """The job as ``GET /v1/jobs/{id}`` answers it, with a fresh signed ``image.url`` once stored."""
    return job.to_api(image_url(config, job.id) if job.image else None)
