"""Draft caches: the opaque bundle BFL returns with a FLUX 3 video draft (``result.draft_cache``), kept beside the
sample so it can be sent back in a ``draft_enhance`` request once BFL's URL has expired.

Fetched by a task of its own, queued with the job's move to ``stored``: the job never waits for it, and it is retried
like a download while its URL lives, under the same rules (allowlisted hosts, checked redirects, ``MAX_VIDEO_BYTES``).
One that cannot be had (a host off the allowlist, a URL that stays expired, too large, a host failing past its URL's
life) is noted on the job's timeline and fails nothing; ``draft_cache_source`` (BFL's URL) stays until the task ends.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fluxhook.core import job as st
from fluxhook.core.errors import DownloadError, FluxhookError, ResultURLExpired, RetryableError
from fluxhook.core.hosts import check_url
from fluxhook.core.job import Job
from fluxhook.core.outcomes import DraftOutcome
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.media.draft_caches import key_for
from fluxhook.media.fetch import VIDEO_URL_LIFE, fetch_file
from fluxhook.media.storage import where

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.draft_caches")

# After its URL's life, how long a draft cache may still be on its way (its task's last retries) before
# the job's /draft_cache answers 410 rather than 404.
GRACE = 3600


def past_life(job: Job, now: float, grace: float = 0.0) -> bool:
    """Whether the job's draft cache URL has outlived its 2 hours (and ``grace`` more) by ``now``: counted
    from when a poll renewed it, else from when BFL finished the task."""
    since = job.draft_cache_since or job.finished_at
    return since is not None and now > since + VIDEO_URL_LIFE + grace


def still_coming(job: Job, now: float) -> bool:
    """Whether the stored job's draft cache may still arrive: its task has a URL to fetch and time to do it."""
    return bool(job.draft_cache_source) and not past_life(job, now, GRACE)


def store_draft_cache(svc: "Services", job_id: str, *, last_attempt: bool) -> str:
    """Fetch and store a stored job's draft cache, filling in its ``draft_cache``; ``kept`` or ``skipped``. Transient
    failures propagate (the queue retries them) while the URL lives; after that, or on the ``last_attempt``, the draft
    cache is given up, the reason on the timeline."""
    job = svc.jobs.get(job_id)
    if job is None or job.status != st.STORED or not job.draft_cache_source:
        return DraftOutcome.SKIPPED  # deleted meanwhile, or an earlier run of this task ended it
    if job.stored_in and job.stored_in != svc.storage.location:
        # The store changed since the job's files were stored: its draft cache goes with them or nowhere.
        return _give_up(svc, job, FluxhookError(
            f"the job's files are in {where(job.stored_in)}, not in this service's store", code="stored_elsewhere"))
    return _fetch(svc, job, job.draft_cache_source, last_attempt, renew=True)


def _fetch(svc: "Services", job: Job, url: str, last_attempt: bool, *, renew: bool) -> str:
    """Fetch and store the draft cache at ``url``; with ``renew``, one expired is worth a poll for a fresh URL."""
    try:
        check_url(url, svc.config.result_host_allowlist)  # else not one request is sent there
        if renew and past_life(job, time.time()):
            # Not worth a request: BFL mints a fresh URL on a poll.
            raise ResultURLExpired("the draft cache URL outlived its life")
        return _fetch_and_store(svc, job, url)
    except RetryableError as exc:
        return _retry_or_give_up(svc, job, exc, last_attempt)
    except ResultURLExpired as exc:
        return _renew_with_bfl(svc, job, exc, last_attempt) if renew else _give_up(svc, job, exc)
    except FluxhookError as exc:
        return _give_up(svc, job, exc)
    except Exception as exc:
        if last_attempt:  # RQ records it, but the job must not wait for its draft cache forever
            _give_up(svc, job, DownloadError(f"the draft cache could not be stored: {type(exc).__name__}"))
        raise


def _renew_with_bfl(svc: "Services", job: Job, failure: FluxhookError, last_attempt: bool) -> str:
    """Poll BFL once for a fresh draft cache URL and fetch that; give up if BFL has none."""
    try:
        report = poll_job(svc, job)
    except RetryableError as exc:
        return _retry_or_give_up(svc, job, exc, last_attempt)
    except FluxhookError:
        return _give_up(svc, job, failure)
    fresh = report.draft_cache_url
    if report.status != st.BFL_READY or not fresh or fresh == job.draft_cache_source:
        return _give_up(svc, job, failure)
    # Kept for the retries: the next attempt starts from the fresh URL.
    if not svc.jobs.update(job.id, only_in=(st.STORED,), draft_cache_source=fresh, draft_cache_since=time.time()):
        return DraftOutcome.SKIPPED
    return _fetch(svc, svc.jobs.get(job.id) or job, fresh, last_attempt, renew=False)


def _fetch_and_store(svc: "Services", job: Job, url: str) -> str:
    key = key_for(job.id)
    with fetch_file(svc.http, url, svc.config.result_host_allowlist, svc.config.max_video_bytes,
                    svc.storage.new_upload) as fetched:
        svc.storage.put(key, fetched.file, sha256=fetched.sha256)
        draft = {"key": key, "size": fetched.size, "sha256": fetched.sha256}
    if not svc.jobs.update(job.id, only_in=(st.STORED,), draft_cache=draft, draft_cache_source=None,
                           draft_cache_since=None):
        svc.storage.delete(key)  # the job was deleted meanwhile: leave no stray file
        return DraftOutcome.SKIPPED
    timeline.record(svc, job.id, "draft_cache", outcome="stored", size=draft["size"])
    return DraftOutcome.KEPT


def _retry_or_give_up(svc: "Services", job: Job, exc: RetryableError, last_attempt: bool) -> str:
    if last_attempt or past_life(job, time.time()):
        return _give_up(svc, job, exc)
    log.warning("draft cache will be retried", extra={"job_id": job.id, "error": exc.message})
    raise exc


def _give_up(svc: "Services", job: Job, exc: FluxhookError) -> str:
    if svc.jobs.update(job.id, only_in=(st.STORED,), draft_cache_source=None, draft_cache_since=None):
        timeline.record(svc, job.id, "draft_cache", outcome="skipped", error=exc.code, reason=exc.message[:200])
        log.warning("draft cache not kept", extra={"job_id": job.id, "error": exc.code})
    return DraftOutcome.SKIPPED
