"""Download a ready job's image and store it, then make its thumbnail: the work behind the download task.

The thumbnail is made in the same task, right after the job is stored, not before: decoding a full-size image costs
as much as the download itself, and a preview must not delay an image. Not in a task of its own either: a second RQ
task per job cost Redis about 60 commands and its records. It is best effort: a thumbnail that cannot be made or
stored never fails the job. A task cut off between the two (its worker killed, a Redis error) is retried by RQ as any
download, and the retry, finding the job stored without its thumbnail, makes it.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import replace

from fluxhook import metrics
from fluxhook.core import job as st
from fluxhook.core import stopping, tracing
from fluxhook.core.errors import BFLError, DownloadError, FluxhookError, HostNotAllowed, ResultURLExpired, RetryableError
from fluxhook.core.job import Job
from fluxhook.core.outcomes import DownloadOutcome, ReportOutcome
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.applying import POLLED, apply_report
from fluxhook.lifecycle.steps.enqueueing import draft_cache_task, queue_handed, release_download
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.media import posters, thumbnails
from fluxhook.media.fetch import VIDEO, FetchedResult, SizeLimits, fetch_result, past_life
from fluxhook.services import Services
from fluxhook.store.effects import CountStored, Effect
from fluxhook.store.jobs import Terms

log = logging.getLogger("fluxhook.storing")
thumbnail_log = logging.getLogger("fluxhook.thumbnailing")


def download_and_store(svc: Services, job_id: str, *, last_attempt: bool) -> DownloadOutcome:
    """Fetch, verify and store the job's result, ending the job ``stored``, ``failed`` or ``expired``; what became of it
    (``DownloadOutcome``: the status the job ended in, or why it did not end). Retryable errors propagate (the queue
    retries them); on the ``last_attempt`` any error ends the job. A job stored (by this attempt or by one cut off
    before its thumbnail) then gets its thumbnail."""
    outcome = _attempt(svc, job_id, last_attempt)
    job = svc.jobs.get(job_id) if outcome == DownloadOutcome.SKIPPED else None
    if job is not None:
        _thumbnail(svc, job)  # stored by an attempt cut off before its thumbnail, maybe
    return outcome


def _attempt(svc: Services, job_id: str, last_attempt: bool) -> DownloadOutcome:
    started = time.perf_counter()
    outcome, error = DownloadOutcome.ERROR, None
    try:
        outcome = _download_and_store(svc, job_id, last_attempt)
        return outcome
    except RetryableError as exc:
        outcome, error = DownloadOutcome.RETRY, exc.message
        raise
    except stopping.StopRequested:
        outcome = DownloadOutcome.HANDED_BACK
        raise
    finally:
        if outcome != DownloadOutcome.STORED:  # a stored image was noted with the job's change to stored
            metrics.record(svc, _notes(job_id, outcome, time.perf_counter() - started, error))


def _notes(job_id: str, outcome: str, seconds: float, error: str | None = None) -> list[Effect]:
    notes: list[Effect] = [metrics.counted("fluxhook_downloads", outcome=outcome)]
    if outcome != DownloadOutcome.SKIPPED:
        notes += [metrics.observed("fluxhook_download_seconds", seconds),
                  timeline.entry(job_id, "download", outcome=outcome, seconds=round(seconds, 3), error=error)]
    return notes


def _download_and_store(svc: Services, job_id: str, last_attempt: bool) -> DownloadOutcome:
    try:
        # Twice at most: a proven Ready may replace the URL while an unproven one is being fetched. Each read of a
        # ready job counts a download attempt.
        for _ in range(2):
            job = svc.jobs.get_counting(job_id, "downloads", st.READY)
            if job is None or job.status != st.READY:
                return DownloadOutcome.SKIPPED
            outcome = _download(svc, job, last_attempt)
            if outcome != DownloadOutcome.RESTART:
                return outcome
        return DownloadOutcome.SKIPPED
    except Exception as exc:
        if last_attempt:
            job = svc.jobs.get(job_id)
            reason = exc.message if isinstance(exc, FluxhookError) else type(exc).__name__
            if job is not None:
                _finish(svc, job, st.FAILED, "download_failed", f"download failed after retries: {reason}")
        raise


def _download(svc: Services, job: Job, last_attempt: bool) -> DownloadOutcome:
    started = time.perf_counter()
    if past_life(job.model, job.finished_at, time.time()):
        # BFL's URL has outlived its life (10 minutes for an image, 2 hours for a video): not worth a
        # request; BFL mints a fresh one on a poll.
        return _recheck_with_bfl(svc, job, ResultURLExpired("the result URL outlived its life"), started,
                                 last_attempt)
    return _fetch_and_store(svc, job, job.result_url or "", started, last_attempt, recheck=True)


def _fetch_and_store(svc: Services, job: Job, url: str, started: float, last_attempt: bool, *,
                     recheck: bool) -> DownloadOutcome:
    """Fetch ``url`` and store it as the job's result. A failure for good ends the job at once, unless (with
    ``recheck``) the URL expired, worth one poll for a fresh one, or the Ready report never proved its secret: then
    BFL has the last word."""
    try:
        with tracing.job_span("fluxhook.download", job.id, job.traceparent):
            image = fetch_result(svc.http, url, svc.config.result_host_allowlist,
                                 SizeLimits(svc.config.max_image_bytes, svc.config.max_video_bytes),
                                 svc.storage.new_upload)
    except RetryableError as exc:
        return _retry_or_fail(svc, job, exc, last_attempt)
    except (DownloadError, HostNotAllowed) as exc:
        if recheck and (isinstance(exc, ResultURLExpired) or not job.ready_proven):
            return _recheck_with_bfl(svc, job, exc, started, last_attempt)
        return _finish_on(svc, job, exc)
    with image, tracing.job_span("fluxhook.store", job.id, job.traceparent):
        return _store(svc, job, url, image, started)


def _retry_or_fail(svc: Services, job: Job, exc: RetryableError, last_attempt: bool) -> DownloadOutcome:
    if last_attempt or past_life(job.model, job.finished_at, time.time()):
        return _finish(svc, job, st.FAILED, "download_failed", f"download failed after retries: {exc.message}")
    log.warning("download will be retried", extra={"job_id": job.id, "error": exc.message})
    raise exc


def _recheck_with_bfl(svc: Services, job: Job, failure: FluxhookError, started: float, last_attempt: bool) -> DownloadOutcome:
    """Ask BFL once before a result URL that failed for good ends the job: BFL mints a fresh signed URL on every
    get_result of a Ready task, which saves an expired one; and an unproven Ready (a URL that is refused or not an
    image) must not end a job that BFL says is still running."""
    try:
        report = poll_job(svc, job)
    except RetryableError as exc:
        return _retry_or_fail(svc, job, exc, last_attempt)
    except (BFLError, FluxhookError):
        return _finish_on(svc, job, failure)
    if report.status == st.BFL_READY and report.sample_url and report.sample_url != job.result_url:
        if not svc.jobs.update(job.id, only_in=(st.READY,), result_url=report.sample_url, ready_proven=True,
                               draft_cache_source=report.draft_cache_url):
            return DownloadOutcome.SKIPPED
        svc.jobs.count(job.id, "downloads")  # a second attempt, of BFL's fresh URL
        fresh = svc.jobs.get(job.id) or job
        return _fetch_and_store(svc, fresh, report.sample_url, started, last_attempt, recheck=False)
    if st.is_running(report.status) and not job.ready_proven:
        # BFL has not finished: the unproven Ready this download came from was not BFL's.
        # Only if no proven report replaced that URL meanwhile.
        if svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.READY,),
                               terms=Terms(if_equal=("result_url", job.result_url)),
                               bfl_status=st.BFL_PENDING, source=None, result_url=None):
            release_download(svc, job.id)
            log.warning("ready report refuted by BFL", extra={"job_id": job.id, "error": failure.message})
            return DownloadOutcome.REFUTED
        return DownloadOutcome.RESTART
    if report.status in st.BFL_FAILURES:
        if apply_report(svc, job.id, report, POLLED, job=job) != ReportOutcome.FINISHED:
            return DownloadOutcome.SKIPPED
        ended = svc.jobs.get(job.id)
        return DownloadOutcome(ended.status) if ended is not None and ended.terminal else DownloadOutcome.SKIPPED
    return _finish_on(svc, job, failure)


def _store(svc: Services, job: Job, url: str, image: FetchedResult, started: float) -> DownloadOutcome:
    key = f"{job.id}.{image.extension}"
    result: dict = {"image": image.describe()}
    if image.kind == VIDEO:
        assert image.info is not None  # a video's result always carries its info
        # The poster first: a job that reads stored always has its poster.
        result = {"video": image.describe(), "poster": posters.store(svc.storage, job.id, image.info.poster)}
    svc.storage.put(key, image.file, sha256=image.sha256)
    # In the job's move to stored: its draft cache's task (the job does not wait for it; draft_cache_source stays for it).
    now = time.time()
    latency = max(0.0, now - (job.finished_at or job.updated_at))
    # A dearer price in BFL's result adds to the credits metric under the job's key, as its submission did.
    app_key = svc.store.app_keys.get(job.key_id) if job.key_id else None
    effects = [*_notes(job.id, DownloadOutcome.STORED, time.perf_counter() - started),
               metrics.observed("fluxhook_completion_to_stored_seconds", latency), CountStored(now),
               *accounting.on_end(job, st.STORED, now, latency, key_name=app_key.name if app_key else "")]
    if job.draft_cache_source:
        effects.append(draft_cache_task(job.id))
    # Only the image of the URL the job still names: a proven report may have replaced it meanwhile.
    change = svc.jobs.transition(job.id, st.STORED, terms=Terms(if_equal=("result_url", url)), storage_key=key,
                                 stored_in=svc.storage.location, effects=effects, **result)
    queue_handed(svc, change.handed)
    if change:
        log.info("image stored", extra={
            "job_id": job.id, "bfl_id": job.bfl_id, "size": image.size,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        })
        _thumbnail(svc, replace(job, status=st.STORED, storage_key=key, stored_in=svc.storage.location, **result))
        return DownloadOutcome.STORED
    current = svc.jobs.get(job.id)
    if current is None or current.storage_key != key:
        svc.storage.delete(key)  # the job was deleted or ended otherwise meanwhile: leave no stray file
        if "poster" in result:
            svc.storage.delete(result["poster"]["key"])
    return DownloadOutcome.RESTART if current is not None and current.status == st.READY else DownloadOutcome.SKIPPED


def _thumbnail(svc: Services, job: Job) -> str | None:
    """Make and store the thumbnail of a stored job's image, the job as its caller knows it; its key, or None if there
    is none (logged)."""
    if job.status != st.STORED or not job.storage_key or job.thumbnail_key:
        return None
    key = thumbnails.key_for(job.id)
    # A video's thumbnail is made from its poster frame.
    source_key = job.poster["key"] if job.video and job.poster else job.storage_key
    try:
        with tracing.job_span("fluxhook.thumbnail", job.id, job.traceparent):
            source = svc.storage.open(source_key)
            if source is None:
                return None
            with source:
                svc.storage.put(key, io.BytesIO(thumbnails.make_thumbnail(source)))
    except Exception as exc:  # a preview is never worth failing anything over, whatever went wrong
        thumbnail_log.warning("thumbnail not made",
                              extra={"job_id": job.id, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return None
    if not svc.jobs.set_thumbnail(job.id, key):
        svc.storage.delete(key)  # the job was deleted meanwhile: leave no stray file
        return None
    return key


def _finish_on(svc: Services, job: Job, failure: FluxhookError) -> DownloadOutcome:
    if isinstance(failure, ResultURLExpired):
        return _finish(svc, job, st.EXPIRED, failure.code, "the result URL expired before it could be downloaded")
    return _finish(svc, job, st.FAILED, failure.code, failure.message)


def _finish(svc: Services, job: Job, status: str, code: str, message: str) -> DownloadOutcome:
    svc.jobs.transition(job.id, status, only_from=(st.READY,), error={"code": code, "message": message},
                        draft_cache_source=None, effects=accounting.on_end(job, status, time.time()))
    log.warning("download ended the job", extra={"job_id": job.id, "status": status, "code": code})
    return DownloadOutcome(status)
