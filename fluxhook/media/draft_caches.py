"""Draft caches (SPEC §4): the opaque bundle BFL returns with a FLUX 3 video draft (``result.draft_cache``),
kept beside the sample so it can be sent back in a ``draft_enhance`` request after BFL's URL has expired.

Fetched with the same rules as a result (allowlisted hosts, checked redirects, ``MAX_VIDEO_BYTES``), but
never at the sample's expense: a draft cache that cannot be had (a host off the allowlist, an expired URL,
too large, a host that keeps failing) is noted on the job's timeline, and the job is stored without it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fluxhook import timeline
from fluxhook.backoff import backoff_delay
from fluxhook.errors import FluxhookError, HostNotAllowed, RetryableError, StorageError
from fluxhook.job import Job
from fluxhook.media.fetch import fetch_file
from fluxhook.net.hosts import check_url

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.draft_caches")

EXTENSION = "bin"
# Tries of a draft cache whose host fails for a while, within one download of the sample.
ATTEMPTS = 3


def key_for(job_id: str) -> str:
    """The storage key of a job's draft cache (beside its video, ``{job_id}.mp4``)."""
    return f"{job_id}-draft.{EXTENSION}"


def fetch_and_store(svc: "Services", job: Job) -> dict | None:
    """Download and store the job's draft cache, if BFL gave one; the record's ``draft_cache`` fields
    (key, size, sha256), or None when there is none to keep (the reason on the timeline).

    A store that fails for a while propagates (StorageError): the download is retried, sample and all.
    """
    url = job.draft_cache_source
    if not url:
        return None
    try:
        check_url(url, svc.config.result_host_allowlist)
    except HostNotAllowed as exc:
        return _skipped(svc, job, exc)  # not one request is sent there
    key = key_for(job.id)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with fetch_file(svc.http, url, svc.config.result_host_allowlist, svc.config.max_video_bytes,
                            svc.storage.new_upload) as fetched:
                svc.storage.put(key, fetched.file, sha256=fetched.sha256)
                timeline.record(svc, job.id, "draft_cache", outcome="stored", size=fetched.size)
                return {"key": key, "size": fetched.size, "sha256": fetched.sha256}
        except StorageError:
            raise
        except RetryableError as exc:
            if attempt == ATTEMPTS:
                return _skipped(svc, job, exc)
            time.sleep(backoff_delay(attempt, base=1.0, cap=8.0))  # a host failing for a moment: nothing to wait on
        except FluxhookError as exc:
            return _skipped(svc, job, exc)
    return None


def _skipped(svc: "Services", job: Job, exc: FluxhookError) -> None:
    timeline.record(svc, job.id, "draft_cache", outcome="skipped", error=exc.code, reason=exc.message[:200])
    log.warning("draft cache not kept", extra={"job_id": job.id, "error": exc.code})
    return None
