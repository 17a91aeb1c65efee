"""A job's stored video, its poster frame and its draft cache: ``GET /v1/jobs/{id}/video``,
``/poster`` and ``/draft_cache``, with byte ranges (so a ``<video>`` tag can seek), ETags, and the job's
signed URLs; the poster's variants too (``w``, ``format``, ``q``: ``variants``). The file is streamed in pieces from
the store: memory never grows with its size."""

from __future__ import annotations

import time
from typing import IO, Iterator

from flask import Blueprint, Response, current_app, g, request
from werkzeug.http import is_resource_modified, parse_etags
from werkzeug.wsgi import ClosingIterator

from fluxhook.core.errors import Gone, JobNotFound, NotReady, RangeNotSatisfiable, Unauthorized
from fluxhook.core.job import STORED, Job
from fluxhook.lifecycle import draft_caches
from fluxhook.lifecycle.steps import key_limits, presenting
from fluxhook.media import storage
from fluxhook.media.ranges import ByteRange, Unsatisfiable, parse_range

from . import answers, variants
from .auth import authenticate
from .context import services
from .store_redirects import storage_redirect

bp = Blueprint("media", __name__, url_prefix="/v1")

# Lifetime of a presigned storage URL these endpoints redirect to: the redirect is followed at once,
# and a <video> tag keeps reading from it while it plays.
STORAGE_URL_MAX_SECONDS = 3600
_PIECE = 256 * 1024
_LINKS = {"image": "image.url", "video": "video.url", "poster": "video.poster_url", "draft_cache": "draft_cache.url"}
_NAMES = {"video": "the video", "poster": "the poster frame", "draft_cache": "the draft cache"}


def authorized_job(job_id: str, kind: str) -> Job:
    """The job whose ``kind`` file is asked for, with a bearer token or the signed link of that very file; Gone
    (``stored_elsewhere``, naming both stores) if that file went to a store that is no longer the configured one."""
    svc = services()
    token = request.args.get("token")
    caller = authenticate()
    signed = bool(token and presenting.link_opens(svc.config, token, job_id, kind))
    if caller is None and not signed:
        raise Unauthorized(f"send a bearer token, or use the job's signed {_LINKS[kind]} (it expires)")
    job = svc.jobs.get(job_id)
    # An app key's bearer token opens only its own jobs; the signed link opens the job it was made for.
    if job is None or not (signed or (caller is not None and caller.sees(job))):
        raise JobNotFound(f"no job {job_id[:40]!r}")
    g.job_id = job.id
    if caller is None:
        # Opened by its signed link alone: a read of the job's key all the same, in that key's bucket for links
        # (a request with a key was counted as that key's, ``bulkheads.read_cost``).
        # Its next links wait in its key's lane for links, their refusals repeated from memory (``lanes``).
        current_app.extensions["fluxhook.lanes"].remember_link(job.id, job.key_id)
        key_limits.take_link_read(svc.store.app_keys, svc.config, job.key_id,
                                  current_app.extensions["fluxhook.keys"].record, time.time())
    # Opened by its signed link: an answer any cache may keep (a variant's, ``variants``).
    g.signed_link = signed
    _refuse_other_store(job, kind)
    return job


def _refuse_other_store(job: Job, kind: str) -> None:
    """Gone, naming the store, for a job whose ``kind`` file went to a store that is no longer the configured one (and
    has no copy of it here): one clear answer, never the other store's own error nor "missing"."""
    key = {"image": job.storage_key if job.image else None, "video": job.storage_key if job.video else None,
           "poster": (job.poster or {}).get("key") if job.video else None,
           "draft_cache": (job.draft_cache or {}).get("key")}.get(kind)
    reason = storage.elsewhere(services().storage, job.stored_in, key) if key else None
    if reason:
        raise Gone(reason, code="stored_elsewhere")


def _file_of(job: Job, name: str) -> tuple[str, str, int, str]:
    """(storage key, content type, size, ETag) of the job's ``name`` file; NotReady or Gone if there is none."""
    if name == "video" and job.video and job.storage_key:
        return job.storage_key, job.video["content_type"], job.video["size"], job.video["sha256"]
    if name == "poster" and job.video and job.poster:
        return job.poster["key"], job.poster["content_type"], job.poster["size"], job.poster["sha256"]
    if name == "draft_cache" and job.draft_cache:
        return job.draft_cache["key"], "application/octet-stream", job.draft_cache["size"], job.draft_cache["sha256"]
    if name == "draft_cache" and job.status == STORED and draft_caches.still_coming(job, time.time()):
        raise NotReady(f"{_NAMES[name]} is not stored yet")  # its own task is still fetching it
    if job.terminal and job.image and name != "draft_cache":
        raise Gone(f"job ended {job.status} with an image, not a video: read /v1/jobs/{job.id}/image")
    if job.terminal:
        raise Gone(f"job ended {job.status} without {_NAMES[name]}")
    raise NotReady(f"{_NAMES[name]} is not stored yet")


@bp.get("/jobs/<job_id>/video", defaults={"name": "video"})
@bp.get("/jobs/<job_id>/poster", defaults={"name": "poster"})
@bp.get("/jobs/<job_id>/draft_cache", defaults={"name": "draft_cache"})
def stored_file(job_id: str, name: str):
    """The job's stored video, poster frame or draft cache, whole or a byte range."""
    job = authorized_job(job_id, name)
    # A malformed query answers 400 whatever the job's state.
    ask = variants.asked(name) if name == "poster" else None
    key, content_type, size, etag = _file_of(job, name)
    if ask is not None:  # the poster's variant
        return variants.answer(job, name, ask)
    if not is_resource_modified(request.environ, etag=etag):
        response = Response(status=304)
        response.set_etag(etag)
        return _headers(response)
    moved = storage_redirect(key, content_type, STORAGE_URL_MAX_SECONDS)
    if moved is not None:  # the bucket serves its own ranges
        return moved
    wanted = _range(size, etag)
    part = wanted or ByteRange(0, size - 1)
    stream = services().storage.open_at(key, part.start, part.end) if size else None
    if size and stream is None:
        raise Gone(f"{_NAMES[name]} is missing from the store")
    # The stream is closed with the response, not by the body's generator: on HEAD, or when the client
    # leaves first, the generator never starts.
    body = ClosingIterator(_pieces(stream, part.length), stream.close) if stream is not None else ()
    response = Response(body, status=206 if wanted else 200, mimetype=content_type, direct_passthrough=True)
    response.content_length = part.length if size else 0
    if wanted:
        response.headers["Content-Range"] = wanted.content_range(size)
    response.set_etag(etag)
    return answers.paced(_headers(response), answers.scope_of(job.key_id))


def _range(size: int, etag: str) -> ByteRange | None:
    """The range to send; None for the whole file (no Range, or an If-Range naming another version)."""
    if_range = request.headers.get("If-Range")
    if if_range and not parse_etags(if_range).contains(etag):
        return None
    try:
        return parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(f"the range asked for lies outside the {size} bytes stored", size=size) from None


def _pieces(stream: IO[bytes], left: int) -> Iterator[bytes]:
    while left > 0:
        piece = stream.read(min(_PIECE, left))
        if not piece:
            break
        left -= len(piece)
        yield piece


def _headers(response: Response) -> Response:
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "private, max-age=3600, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
