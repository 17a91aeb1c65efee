"""The BFL-compatible API: BFL's own routes and shapes beside fluxhook's under ``/v1``, so an app written for
BFL (its SDK, code from its docs, low-code HTTP nodes) works by changing its base URL and key.

A thin adapter: a submission goes through the very path of ``POST /v1/jobs`` (``lifecycle.creating``), so
budgets, per-model limits, idempotency, video and drafts behave the same, and the job is like any other
in the API, the CLI and the dashboard. ``get_result`` is one Redis read. Errors leave in BFL's shape,
``{"detail": ...}``; BFL's own refusals (a 422 listing the fields it refused) pass through as BFL gave them.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from datetime import datetime, timezone
from functools import wraps

import redis
from flask import Blueprint, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, ValidationError

from fluxhook.core.end_users import FIELD
from fluxhook.core.errors import BFLRejected, EndUserBlocked, FluxhookError, InvalidRequest, QueueFull, Unauthorized, UnknownModel
from fluxhook.core.job import is_job_id
from fluxhook.core.models import MODEL, MODEL_NAME
from fluxhook.credits import balance
from fluxhook.lifecycle import accounts_view
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.notifications import ask_events, requested_url
from fluxhook.lifecycle.steps import app_webhooks, bfl_presenting, key_limits
from fluxhook.lifecycle.steps.admission import usable_model
from fluxhook.lifecycle.watching import watch

from .auth import presented_token, require_bearer
from .bulkheads import bfl_calls
from .context import services
from .errors import retry_after_header
from .idempotency import idempotent, key_hold, made_job
from .replicated import replicated
from .request_input import (
    body_size,
    json_object,
    preference_applied,
    read_untyped_as_json,
    requested_cancel_after,
    requested_end_user,
)
from .waiting import waited

bp = Blueprint("bfl_compat", __name__, url_prefix="/v1")
log = logging.getLogger("fluxhook.bfl_compat")

# fluxhook's own paths under /v1: never taken for a model's name.
OWN_PATHS = frozenset({"jobs", "usage", "keys", "accounts", "models", "get_result", "credits", "events",
                       "deliveries"})
# An answer that names no error code leaves with one of these (BFL's words for the status).
_STATUS_WORDS = {401: "Not authenticated", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


class ModelConverter(BaseConverter):
    """A model name as BFL's paths have them (``flux-2-pro``, ``flux-tools/video-edit-v1``); one under fluxhook's
    own paths is no model (its route answers)."""

    regex = MODEL_NAME
    part_isolating = False  # a name may hold one '/'

    def to_python(self, value: str) -> str:
        if value.split("/", 1)[0] in OWN_PATHS:
            raise ValidationError()
        return value


class OtherPathConverter(BaseConverter):
    """Any other path BFL's API may have under /v1 (its account routes: ``delete_finetune``, ``my_finetunes``,
    ``finetune_details``; ``flux-tools/../finetune``...): never a model, never fluxhook's own path."""

    regex = r"[^?#]*"
    part_isolating = False
    weight = 300  # below every other rule: a model's or fluxhook's own route answers first

    def to_python(self, value: str) -> str:
        if value.split("/", 1)[0] in OWN_PATHS or MODEL.fullmatch(value):
            raise ValidationError()
        return value


# Registered before the routes that use them (a blueprint applies its records in order).
@bp.record_once
def _add_converters(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("bfl_model", ModelConverter)
    state.app.url_map.converters.setdefault("bfl_other", OtherPathConverter)


@bp.before_request
def authenticate():
    require_bearer()
    read_untyped_as_json()


def _escaped_name() -> bool:
    """Whether the path as sent spelled a '/' or a '.' of the model's name as a %-escape (``flux-tools%2F..``): the
    server decoded it before routing, and BFL would not read it as the same path."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    return "%2f" in raw.lower() or "%2e" in raw.lower() or "%5c" in raw.lower()


# Every method: a path this rule declines (fluxhook's own) must not read as "this method is not allowed here".
@bp.route("/<bfl_other:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], merge_slashes=False)
def other_path(path: str):
    """A path BFL may serve that is no generation endpoint fluxhook sends to (its account and finetune routes):
    BFL's own 404, nothing created and nothing sent."""
    return _error(404, _not_found(path))


def _served(view):
    """BFL's 404 for a path it does not serve, whatever the request's body or headers: before anything reads them
    (an ``Idempotency-Key``'s fingerprint included). ``ModelNotAllowed`` for a model the caller's key may not use."""

    @wraps(view)
    def wrapper(model: str):
        if _escaped_name():
            return _error(404, _STATUS_WORDS[404])
        usable_model(services(), require_bearer(), model)
        return view(model)

    return wrapper


@bp.post("/<bfl_model:model>", merge_slashes=False)
@_served
@replicated
@idempotent
def submit(model: str):
    """BFL's submission: the body is the request for BFL (its ``webhook_url``/``webhook_secret`` are the app's own,
    kept by fluxhook); answers BFL's ``{id, polling_url, cost, input_mp, output_mp}``."""
    svc = services()
    body = json_object()
    # The app's own user is fluxhook's to keep: BFL never sees it.
    end_user = requested_end_user(body.pop(FIELD, None))
    task_input, app_webhook = app_webhooks.split_body(body, svc.config)
    if not task_input:
        raise InvalidRequest("the body must hold BFL request fields, such as 'prompt'")
    if (made := made_job()) is not None:
        job = svc.jobs.get(made)
        if job is None or not require_bearer().sees(job):
            return bfl_presenting.not_found(made)
        return bfl_presenting.submission(svc.config, job)
    notify_url = requested_url(None, svc.config, require_bearer().key)
    request_ = JobRequest(model, task_input, notify_url=notify_url, app_webhook=app_webhook,
                          body_size=body_size(), idempotency=key_hold(), cancel_after=requested_cancel_after(),
                          as_bfl=True, end_user=end_user)
    with bfl_calls().enter() as room:
        job = create_job(svc, require_bearer(), request_, submit_here=room).job
    ask_events(svc, job, None, require_bearer().key)
    return bfl_presenting.submission(svc.config, job)


@bp.route("/<bfl_model:model>", methods=["GET", "PUT", "PATCH", "DELETE"], merge_slashes=False)
def model_path_other_method(model: str):
    """Any method but POST on a model's path: BFL's 405 for a model it serves (its endpoint takes POST alone), its
    404 for any other name, naming fluxhook's own path when the name is a slip of one (``GET /v1/job/<id>``)."""
    if not _escaped_name() and services().config.catalog.get(model) is not None:
        return _error(405, "Method Not Allowed", {"Allow": "POST"})
    return _error(404, _not_found(model))


@bp.get("/get_result")
def get_result():
    """The job in BFL's ``get_result`` shape (``Prefer: wait=N`` waits for its end, as on ``/v1/jobs/{id}``)."""
    task_id = request.args.get("id")
    if not task_id:
        return _error(422, [{"loc": ["query", "id"], "msg": "Field required", "type": "missing"}])
    svc = services()
    job = svc.jobs.get(task_id) if is_job_id(task_id) else None
    if job is None or not require_bearer().sees(job):  # another key's job is one BFL would not know
        return bfl_presenting.not_found(task_id[:200])
    watch(svc, job.id)  # an app polling get_result watches its job (docs/api.md "Live")
    job, seconds = waited(job)
    return preference_applied(jsonify(bfl_presenting.result(svc.config, job)), seconds)


@bp.get("/credits")
def credits():
    """What the caller may still spend: for an app key with daily_credits, what is left of them today;
    else the balance of the BFL accounts it may use (an admin token: every one), each account's last reading (the
    one every view shows, a worker's or the doctor's) added up, asked now if one is not kept. The answer is BFL's
    own, ``{"credits"}``; ``Last-Modified`` says when the oldest reading of the sum was taken."""
    svc = services()
    caller = require_bearer()
    if caller.key is not None and caller.key.daily_credits is not None:
        return {"credits": key_limits.credits_left_today(svc, caller.key, time.time())}
    kept = accounts_view.callers_balance(svc, caller)
    if kept is None:
        with bfl_calls().enter() as inside:
            if inside:
                balance.refresh(svc)
        kept = accounts_view.callers_balance(svc, caller)
    if kept is None:
        return _error(503, "BFL's balance is not known yet; retry shortly", {"Retry-After": "5"})
    response = jsonify({"credits": kept.credits})
    response.last_modified = datetime.fromtimestamp(kept.at, timezone.utc)
    return response


def _error(status: int, detail, headers: dict[str, str] | None = None):
    response = jsonify({"detail": detail})
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(FluxhookError)
def fluxhook_error(exc: FluxhookError):
    if isinstance(exc, BFLRejected) and exc.bfl_status:
        return _error(exc.bfl_status, exc.detail if exc.detail else exc.message)
    if isinstance(exc, UnknownModel):
        return _error(404, _not_found(exc.model))  # as BFL answers a path it does not serve
    status, detail, retry_after = bfl_shaped(exc, presented_token() is not None)
    return _error(status, detail, {} if retry_after is None else {"Retry-After": retry_after_header(retry_after)})


def bfl_shaped(exc: FluxhookError, token_sent: bool) -> tuple[int, str, float | None]:
    """A refusal as BFL answers it: its status, its ``detail``, and its Retry-After (None: none), for the answers
    made here and those made before a request's body is read alike."""
    retry_after = getattr(exc, "retry_after", None)
    retry = retry_after or 0 if exc.status == 429 or (exc.status == 503 and retry_after) else None
    if isinstance(exc, Unauthorized):
        # No key at all is 401; a key sent but refused is 403, as BFL answers it.
        return (403 if token_sent else 401), exc.message, retry
    if isinstance(exc, InvalidRequest):
        return 422, exc.message, None  # BFL's status for a body it refuses
    # A budget's 402 and a full queue's 429 name their code, as fluxhook's own error does: an app told to wait can
    # tell a full queue (wait for its jobs) from a rate limit (wait the Retry-After) in BFL's one-string shape.
    named = exc.status == 402 or isinstance(exc, (QueueFull, EndUserBlocked))
    return exc.status, f"{exc.code}: {exc.message}" if named else exc.message, retry


def _not_found(path: str) -> str:
    """BFL's words for an unknown path; naming fluxhook's own path when its first part is a slip of one (``job``,
    ``job/<id>``)."""
    first, slash, rest = path.partition("/")
    meant = difflib.get_close_matches(first[:64].lower(), sorted(OWN_PATHS), n=1, cutoff=0.75)
    if not meant:
        return _STATUS_WORDS[404]
    # The rest of the path is named back only when it reads as an id: the answer says nothing a caller did not mean.
    rest = rest if _ID_LIKE.fullmatch(rest) else "..." if rest else ""
    return f"{_STATUS_WORDS[404]}: did you mean /v1/{meant[0]}{slash}{rest}?"


_ID_LIKE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return _error(exc.code or 500, exc.description or _STATUS_WORDS.get(exc.code or 500, exc.name))


@bp.errorhandler(redis.RedisError)
def redis_error(exc: redis.RedisError):
    log.error("redis unavailable", extra={"error": type(exc).__name__})
    return _error(503, "the job store is unavailable; retry later", {"Retry-After": retry_after_header(1)})


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    log.exception("unhandled error")
    return _error(500, _STATUS_WORDS[500])
