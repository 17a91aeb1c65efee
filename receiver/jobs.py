"""The ``/v1/jobs`` API: submit, track, read, list, fetch the image, delete."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

from flask import Blueprint, Response, g, jsonify, request, send_file
from werkzeug.http import is_resource_modified

from fluxhook.core.accounts import ACCOUNT_NAME
from fluxhook.core.errors import Gone, InvalidRequest, JobNotFound, NotReady, UnknownModel
from fluxhook.core.job import Job, prompt_warnings
from fluxhook.core.job_filters import JobFilter, parse_listing
from fluxhook.core.json_body import refuse_unknown
from fluxhook.core.models import MODEL
from fluxhook.lifecycle import batching
from fluxhook.lifecycle.creating import Created, JobRequest, create_job
from fluxhook.lifecycle.notifications import ask_events, requested_events, requested_url
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps import callers, key_limits, waits
from fluxhook.lifecycle.steps.admission import unknown_model_message
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.lifecycle.tracking import TrackRequest, track_task
from fluxhook.services import Services

from . import answers, variants
from .auth import require_bearer
from .bulkheads import bfl_calls
from .context import services
from .idempotency import idempotent, key_hold, made_job
from .media import authorized_job
from .replicated import replicated
from .request_input import (
    body_size,
    json_object,
    preference_applied,
    requested_cancel_after,
    requested_end_user,
    requested_strict,
)
from .store_redirects import storage_redirect
from .waiting import waited

bp = Blueprint("jobs", __name__, url_prefix="/v1")

MAX_METADATA_BYTES = 16 * 1024
_BFL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


@bp.before_request
def authenticate():
    # The image endpoint also admits a signed URL; it checks for itself.
    if request.endpoint != "jobs.image":
        require_bearer()


def metadata_of(body: dict) -> dict:
    """The ``metadata`` of a job's or a batch's body, or of a batch's item ({} for none); InvalidRequest unless it is a
    JSON object of at most ``MAX_METADATA_BYTES``."""
    value = body.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("'metadata' must be a JSON object")
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise InvalidRequest(f"'metadata' must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return value


def _present(job: Job) -> dict:
    svc = services()
    return present(svc.config, job, waits.of(svc, job))


def _load(job_id: str) -> Job:
    job = services().jobs.get(job_id)
    # Another key's job is answered as if it did not exist.
    if job is None or not require_bearer().sees(job):
        raise JobNotFound(f"no job {job_id[:40]!r}")
    g.job_id = job.id
    return job


@bp.post("/jobs")
@replicated
@idempotent
def create():
    """Submit a task to BFL with this job's own callback URL and secret, or queue it while BFL's slots are taken."""
    data = json_object()
    refuse_unknown(data, _JOB_FIELDS, where="POST /v1/jobs", hints=_JOB_HINTS, advice=_UNDER_INPUT)
    model, task_input = data.get("model"), data.get("input")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a BFL model name such as 'flux-2-pro'")
    if not isinstance(task_input, dict) or not task_input:
        raise InvalidRequest(f"'input' must be a non-empty JSON object of BFL request fields, as in {_EXAMPLE}")
    if "webhook_url" in task_input or "webhook_secret" in task_input:
        raise InvalidRequest("'input' may not set webhook_url or webhook_secret; fluxhook sets its own")
    account = _account(data)
    if (made := made_job()) is not None:
        return _answer_after_wait(_load(made), 202)
    svc = services()
    notify_url = requested_url(data.get("notify_url"), svc.config, require_bearer().key)
    events = requested_events(data.get("notify_events"))
    request_ = JobRequest(model, task_input, metadata=metadata_of(data), notify_url=notify_url, body_size=body_size(),
                          account=account, idempotency=key_hold(), cancel_after=requested_cancel_after(),
                          strict_input=requested_strict(request.headers.get("Prefer")),
                          end_user=requested_end_user(data.get("end_user")))
    # While as many submissions of this process wait on BFL as it may, a worker sends this one.
    with bfl_calls().enter() as room:
        created = create_job(svc, require_bearer(), request_, submit_here=room)
    g.job_id = created.job.id
    ask_events(svc, created.job, events, require_bearer().key)
    return _answer_after_wait(created.job, 202, [*prompt_warnings(task_input), *created.warnings], created)


# The fields of POST /v1/jobs and POST /v1/jobs/track: anything else at the top level is refused by name.
_JOB_FIELDS = ("model", "input", "metadata", "notify_url", "notify_events", "account", "end_user")
_TRACK_FIELDS = ("bfl_id", "polling_url", "model", "metadata", "notify_url", "notify_events", "account")
_EXAMPLE = '{"model": "flux-2-pro", "input": {"prompt": "a red fox in snow"}}'
# A field of BFL's request sent at the top level, the likeliest unknown field: where it goes.
_UNDER_INPUT = f"BFL's request fields go under 'input', as in {_EXAMPLE}"
_CANCEL_AFTER = "a deadline is the header Cancel-After (such as 'Cancel-After: 5m'), not a field"
_OWN_WEBHOOK = "fluxhook gives BFL its own callback URL; to be called when the job ends, set notify_url"
_JOB_HINTS = {"deadline": _CANCEL_AFTER, "cancel_after": _CANCEL_AFTER, "webhook_url": _OWN_WEBHOOK,
              "webhook_secret": _OWN_WEBHOOK}


def _account(data: dict) -> str | None:
    account = data.get("account")
    if account is not None and (not isinstance(account, str) or not ACCOUNT_NAME.fullmatch(account)):
        raise InvalidRequest("'account' must be the name of a BFL account (GET /v1/accounts lists them), or left out")
    return account


@bp.post("/jobs/track")
@replicated
@idempotent
def track():
    """Follow a task submitted elsewhere; its callbacks come to ``/webhooks/bfl``."""
    data = json_object()
    refuse_unknown(data, _TRACK_FIELDS, where="POST /v1/jobs/track", hints=_JOB_HINTS)
    bfl_id, polling_url, model = data.get("bfl_id"), data.get("polling_url"), data.get("model")
    if not isinstance(bfl_id, str) or not _BFL_ID.fullmatch(bfl_id):
        raise InvalidRequest("'bfl_id' must be BFL's task id (letters, digits, '-', '_', '.', ':')")
    if polling_url is not None and (not isinstance(polling_url, str) or len(polling_url) > 2048
                                    or not polling_url.startswith(("https://", "http://"))):
        raise InvalidRequest("'polling_url' must be an http(s) URL")
    if model is not None and (not isinstance(model, str) or not MODEL.fullmatch(model)):
        raise InvalidRequest("'model' must be a BFL model name such as 'flux-2-pro'")
    svc = services()
    notify_url = requested_url(data.get("notify_url"), svc.config, require_bearer().key)
    events = requested_events(data.get("notify_events"))
    job, created = track_task(svc, require_bearer(), TrackRequest(
        bfl_id, polling_url, model, metadata=metadata_of(data), notify_url=notify_url,
        account=_account(data)))
    g.job_id = job.id
    if created:
        ask_events(svc, job, events, require_bearer().key)
    return _present(job), (201 if created else 200)


@bp.get("/jobs/<job_id>")
def show(job_id: str):
    """One job; with ``Prefer: wait=N``, as soon as it is terminal or after N seconds. A batch item that ended unsent
    keeps no record and is answered from what its batch keeps (``batching.aborted_item``)."""
    try:
        job = _load(job_id)
    except JobNotFound:
        aborted = batching.aborted_item(services(), require_bearer(), job_id)
        if aborted is None:
            raise
        job, g.job_id = aborted, aborted.id
    return _answer_after_wait(job, 200)


def _answer_after_wait(job: Job, status: int, warnings: list[str] | None = None, created: Created | None = None):
    """The job, once it is terminal if the request prefers to wait (``Prefer: wait``), with the
    ``warnings`` of its submission when there are any. ``created``: ``job``'s creation by this request, which found
    why it waits, if it does (the slots are asked only for a job read: one made before, or read after a wait)."""
    after, seconds = waited(job)
    svc = services()
    shown = present(svc.config, after, created.waiting) if created is not None and after is created.job else _present(after)
    response = jsonify({**shown, "warnings": warnings} if warnings else shown)
    response.status_code = status
    return preference_applied(response, seconds)


@bp.get("/jobs")
def index():
    """Jobs newest first, ``limit`` at a time, continued with ``cursor``, filtered as ``core.job_filters`` says;
    an app key lists only its own, a page counting by its ``limit`` against the key's reads
    (``bulkheads.read_cost``)."""
    listing = parse_listing(request.args.items(multi=True))
    filters = listing.filter
    if filters.key_id is not None and not callers.is_key_id(filters.key_id):
        raise InvalidRequest("'key_id' must be an app key's id, such as 'key_0123456789abcdef'")
    caller = require_bearer()
    if not caller.admin:
        if filters.key_id not in (None, caller.key_id):
            return {"jobs": [], "next_cursor": None}  # an app key lists only its own jobs
        filters = replace(filters, key_id=caller.key_id)
    svc = services()
    _refuse_unknown_model(svc, filters)
    svc.jobs.prompt_chars_read()  # this request's searching is counted from here
    try:
        jobs, cursor = batching.list_jobs(svc, filters, listing.limit, listing.cursor)
    finally:
        # A cold search's prompts read from Redis are paid for after the fact, also when it ran past its bound.
        key_limits.charge_search(svc.store.app_keys, svc.config, caller, svc.jobs.prompt_chars_read(), time.time())
    return {"jobs": [present(svc.config, job, wait) for job, wait in zip(jobs, waits.of_jobs(svc, jobs), strict=True)],
            "next_cursor": cursor}


def _refuse_unknown_model(svc: Services, filters: JobFilter) -> None:
    """UnknownModel, as ``POST /v1/jobs`` answers it, for a ``model`` filter that is a typo rather than an empty
    list: a name the catalog lacks and no job in the list's scope has. A task tracked under a name the catalog
    lacks is still listed by it."""
    name = filters.model
    if name is None or name in svc.config.catalog:
        return
    if not svc.jobs.list(JobFilter(model=name, key_id=filters.key_id), 1)[0]:
        raise UnknownModel(unknown_model_message(svc.config.catalog, name), model=name)


@bp.get("/jobs/<job_id>/image")
def image(job_id: str):
    """The stored image, or a variant of it (``w``, ``format``, ``q``), for a bearer token or a signed ``image.url``."""
    job = authorized_job(job_id, "image")
    ask = variants.asked("image")  # a malformed query answers 400 whatever the job's state
    if not job.image or not job.storage_key:
        if job.terminal:
            raise Gone(f"job ended {job.status} with a video, not an image: read /v1/jobs/{job.id}/video"
                       if job.video else f"job ended {job.status} without an image")
        raise NotReady("the image is not stored yet")
    if ask is not None:  # a variant: its width, format and quality
        return variants.answer(job, "image", ask)
    etag, content_type = job.image["sha256"], job.image["content_type"]
    if not is_resource_modified(request.environ, etag=etag):
        # Answered before the store is asked: a client's cached copy costs no storage request.
        response = Response(status=304)
        response.set_etag(etag)
        return _image_headers(response)
    moved = storage_redirect(job.storage_key, content_type)
    if moved is not None:
        return moved
    file = services().storage.open(job.storage_key)
    if file is None:
        raise Gone("the stored image is missing")
    response = send_file(file, mimetype=content_type, etag=etag, conditional=True, max_age=3600)
    if response.status_code == 200:
        response.content_length = job.image["size"]  # send_file cannot know it from an open file
    return answers.paced(_image_headers(response), answers.scope_of(job.key_id))


def _image_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, max-age=3600, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.delete("/jobs/<job_id>")
def delete(job_id: str):
    """Remove the record and its image."""
    job = _load(job_id)
    remove_job(services(), job.id)
    return "", 204
