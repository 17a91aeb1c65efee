"""Streams of job events (docs/api.md "Streams"): ``GET /v1/jobs/{id}/events`` and ``GET /v1/events`` as
``text/event-stream``, and the dashboard's own two (signed in, for its job page and job list).

The request is checked and answered here like any other: the job looked up (404 for one the caller does not see),
the caller's stream leased (429 past ``MAX_STREAMS_PER_CALLER``, over every web process: ``store.streams``). Its
answer is only the head and a ``retry:``; the web worker then hands the socket to this process's hub
(``stream_hub``), which writes the events, so an open stream holds no thread and no work permit
(``buffering_worker.BufferingWorker`` sees a stream's path, ``STREAM_PATH``, and the hand-over in the environ).
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, current_app, g, request

from fluxhook.core.errors import InvalidRequest, JobNotFound, StreamsBusy, TooManyStreams
from fluxhook.core.job import is_job_id
from fluxhook.lifecycle.batching import get_batch
from fluxhook.lifecycle.steps import waits
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.presenting import present

from . import event_frames as frames
from . import scopes
from .auth import require_bearer
from .context import services
from .dashboard import bp as dashboard_bp
from .stream_hub import RETRY_MS, Hub, Stream

bp = Blueprint("events", __name__, url_prefix="/v1")

# The paths of streams: their answers are handed over to the hub (the web worker asks before it serves one).
STREAM_PATH = re.compile(r"^/(?:v1|live)/(?:(?:jobs|batches)/[^/]+/)?events$")
# Set by the web worker in a stream's environ: it takes the hand-over (``HAND_OVER``: the hub and the stream).
HAND_OVER_READY = "fluxhook.stream_ready"
HAND_OVER = "fluxhook.stream"
_LAST_EVENT_ID_CHARS = 64


def init_app(app: Flask) -> None:
    app.extensions["fluxhook.streams"] = Hub(app.extensions["fluxhook"])


@bp.before_request
def authenticate():
    require_bearer()


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str):
    """One job's events until it is terminal."""
    return _stream(require_bearer(), _api_scope(), job_id)


@bp.get("/batches/<batch_id>/events")
def batch_events(batch_id: str):
    """One batch's object each time its counts change (at most once a second), until it ends."""
    return _stream(require_bearer(), _api_scope(), None, batch_id=batch_id)


@bp.get("/events")
def all_events():
    """Every job the caller sees: an app key its own, an admin token all."""
    return _stream(require_bearer(), _api_scope(), None)


@dashboard_bp.get("/live/jobs/<job_id>/events")
def dashboard_job_events(job_id: str):
    """The job page's stream (the signed-in session is an admin's)."""
    return _stream(ADMIN, scopes.of_session(), job_id)


@dashboard_bp.get("/live/batches/<batch_id>/events")
def dashboard_batch_events(batch_id: str):
    """The batch page's stream (``dashboard_batches``): its batch as its counts change, until it ends."""
    return _stream(ADMIN, scopes.of_session(), None, batch_id=batch_id)


@dashboard_bp.get("/live/events")
def dashboard_events():
    """The job list's stream."""
    return _stream(ADMIN, scopes.of_session(), None)


def _api_scope() -> str:
    return scopes.of_caller(require_bearer())


def _stream(viewer: Caller, scope: str, job_id: str | None, *, batch_id: str | None = None) -> Response:
    svc = services()
    last_event_id = _last_event_id()
    if batch_id is not None:
        batch = get_batch(svc, viewer, batch_id)  # another key's is answered as if it did not exist
        if batch.ended_at is not None and not frames.owed(last_event_id, frames.event_id(
                0, frames.shown_batch(batch.to_api()))):
            return Response(status=204)  # it saw the batch's end: nothing more will come
    elif job_id is not None:
        job = svc.jobs.get(job_id) if is_job_id(job_id) else None
        if job is None or not viewer.sees(job):  # another key's job is answered as if it did not exist
            raise JobNotFound(f"no job {job_id[:40]!r}")
        g.job_id = job.id
        if job.terminal and not frames.owed(last_event_id, frames.version(job.updated_at,
                                                                            present(svc.config, job, waits.of(svc, job)))):
            return Response(status=204)  # it saw the job's end: nothing more will come (a client stops reconnecting)
    if not request.environ.get(HAND_OVER_READY):
        raise StreamsBusy("this server cannot hold streams: serve fluxhook with its web: process (Procfile)")
    streams: Hub = current_app.extensions["fluxhook.streams"]
    if streams.full():
        raise StreamsBusy("this web process holds as many streams as it may; retry", retry_after=5)
    stream = Stream(scope=scope, viewer=viewer, job_id=job_id, last_event_id=last_event_id, batch_id=batch_id)
    limit = svc.config.max_streams_per_caller
    if not streams.open(stream, limit):
        raise TooManyStreams(f"this caller holds {limit} open streams (MAX_STREAMS_PER_CALLER); close one first",
                             retry_after=5)
    request.environ[HAND_OVER] = (streams, stream)
    # An iterable, not bytes: an answer of no stated length, which the hub goes on writing (chunked).
    response = Response(iter([frames.retry(RETRY_MS)]), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must pass each event on at once
    return response


def _last_event_id() -> str | None:
    value = request.headers.get("Last-Event-ID")
    if value is not None and len(value) > _LAST_EVENT_ID_CHARS:
        raise InvalidRequest("'Last-Event-ID' must be the id of an event this service sent")
    return value or None
