"""Download a ready job's image and store it (SPEC §5): the work behind the download task."""

from __future__ import annotations

import logging
import time

from . import status as st
from .errors import DownloadError, HostNotAllowed, ResultURLExpired, RetryableError
from .images import FetchedImage, fetch_image
from .jobs import Job
from .polling import poll_job
from .services import Services

log = logging.getLogger("fluxhook.results")


def download_and_store(svc: Services, job_id: str, *, last_attempt: bool) -> str:
    """Fetch, verify and store the job's result; end the job ``stored``, ``failed`` or ``expired``.

    Retryable errors propagate (the queue retries them) unless this is the ``last_attempt``.
    """
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.READY:
        return "skipped"
    svc.jobs.count(job.id, "downloads")
    started = time.perf_counter()
    try:
        image = _fetch_renewing_expired_url(svc, job)
    except ResultURLExpired as exc:
        return _finish(svc, job, st.EXPIRED, exc.code, "the result URL expired before it could be downloaded")
    except (DownloadError, HostNotAllowed) as exc:
        if not isinstance(exc, RetryableError):
            return _finish(svc, job, st.FAILED, exc.code, exc.message)
        if last_attempt:
            return _finish(svc, job, st.FAILED, "download_failed", f"download failed after retries: {exc.message}")
        log.warning("download will be retried", extra={"job_id": job.id, "error": exc.message})
        raise
    except RetryableError as exc:  # BFL unreachable while renewing the URL
        if last_attempt:
            return _finish(svc, job, st.FAILED, "download_failed", exc.message)
        raise
    with image:
        return _store(svc, job, image, started)


def _fetch_renewing_expired_url(svc: Services, job: Job) -> FetchedImage:
    config = svc.config
    try:
        return fetch_image(svc.http, job.result_url or "", config.result_host_allowlist, config.max_image_bytes)
    except ResultURLExpired:
        # BFL mints a fresh signed URL on every get_result of a Ready task: one poll may save the image.
        event = poll_job(svc, job)
        if event.status != st.BFL_READY or not event.sample_url or event.sample_url == job.result_url:
            raise
        svc.jobs.update(job.id, result_url=event.sample_url)
        return fetch_image(svc.http, event.sample_url, config.result_host_allowlist, config.max_image_bytes)


def _store(svc: Services, job: Job, image: FetchedImage, started: float) -> str:
    key = f"{job.id}.{image.extension}"
    svc.storage.put(key, image.file)
    if not svc.jobs.transition(job.id, st.STORED, image=image.describe(), storage_key=key):
        current = svc.jobs.get(job.id)
        if current is None:
            svc.storage.delete(key)  # deleted while downloading: leave no orphan file
        return "skipped"
    log.info("image stored", extra={
        "job_id": job.id, "bfl_id": job.bfl_id, "size": image.size,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    })
    return st.STORED


def _finish(svc: Services, job: Job, status: str, code: str, message: str) -> str:
    svc.jobs.transition(job.id, status, error={"code": code, "message": message})
    log.warning("download ended the job", extra={"job_id": job.id, "status": status, "code": code})
    return status
