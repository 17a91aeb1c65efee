"""The notifications console over HTTP: every message of a job with each attempt, the caller's messages
by state and time, and replay, one or many, each with its own ``webhook-id``.

Its routes join the jobs blueprint (``/v1``), so they are authenticated as the job routes are. A key sees and
replays only its own messages; an admin token, which sees every job, every key's and its own jobs' (``key_id=`` names
one key's)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import request

from fluxhook.core.errors import Forbidden, InvalidRequest
from fluxhook.core.json_body import decimal
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.steps.callers import Caller, is_key_id
from fluxhook.store.deliveries import Message

from .auth import require_bearer
from .context import services
from .jobs import _load, bp
from .replicated import replicated
from .request_input import json_object

MAX_LISTED = 1000
_LIST_PARAMS = ("state", "from", "to", "limit", "key_id")
_REPLAY_FIELDS = ("state", "from", "to", "key_id")


@bp.get("/jobs/<job_id>/deliveries")
def job_deliveries(job_id: str):
    """Every notification message of the job, with each attempt."""
    return {"deliveries": notifications.of_job(services(), _load(job_id))}


@bp.get("/deliveries")
def deliveries_index():
    """The caller's messages, newest first: ``state``, ``from``/``to`` (ISO 8601 times or dates), ``limit``."""
    unknown = sorted(set(request.args) - set(_LIST_PARAMS))
    if unknown:
        raise InvalidRequest(f"unknown parameter {unknown[0]!r}; this list takes {', '.join(_LIST_PARAMS)}",
                             code="unknown_field")
    args = request.args
    limit = _limit(args.get("limit"))
    found = _listed(_owner(args.get("key_id")), state=args.get("state") or None,
                    since=_time(args.get("from"), "from", 0.0), until=_time(args.get("to"), "to", float("inf")),
                    limit=limit)
    return {"deliveries": [notifications.shown(m) for m in found]}


@bp.post("/deliveries/<message_id>/replay")
@replicated
def replay_delivery(message_id: str):
    """Send the message again now, with its own ``webhook-id``."""
    svc = services()
    message = notifications.find(svc, require_bearer().key_id, message_id)
    notifications.replay(svc, [message], time.time())
    return {"replayed": 1, "id": message.id}, 202


@bp.post("/deliveries/replay")
@replicated
def replay_deliveries():
    """Send again every message of the caller's matching ``{"state", "from", "to"}`` (at most 10,000 a call)."""
    body = json_object()
    unknown = sorted(set(body) - set(_REPLAY_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}; a replay takes {', '.join(_REPLAY_FIELDS)}",
                             code="unknown_field")
    state = body.get("state")
    if not isinstance(state, str):
        raise InvalidRequest("'state' is required: the state of the messages to send again, such as 'failed'")
    found = _listed(_owner(body.get("key_id")), state=state, since=_time(body.get("from"), "from", 0.0),
                    until=_time(body.get("to"), "to", float("inf")), limit=notifications.MAX_REPLAY)
    return {"replayed": notifications.replay(services(), found, time.time())}, 202


# An admin token that names no key: every owner's messages, as it sees every job.
EVERYONE = "*"


def _listed(owner: str | None, *, state: str | None, since: float, until: float, limit: int) -> list[Message]:
    """Up to ``limit`` messages of ``owner`` (``_owner``'s answer) in ``state`` made from ``since`` to ``until``,
    newest first."""
    if owner == EVERYONE:
        return notifications.listed_for_everyone(services(), state=state, since=since, until=until, limit=limit)
    return notifications.listed(services(), owner, state=state, since=since, until=until, limit=limit)


def _owner(key_id: object) -> str | None:
    """Whose messages: the calling key's; for an admin token, the key it names, else everyone's (``EVERYONE``)."""
    caller: Caller = require_bearer()
    if key_id is None or key_id == "":
        return EVERYONE if caller.admin else caller.key_id
    if not caller.admin:
        raise Forbidden("'key_id' is for admin tokens; an app key sees its own deliveries")
    if not isinstance(key_id, str) or not is_key_id(key_id):
        raise InvalidRequest("'key_id' must be an app key's id, key_...")
    return key_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    limit = decimal(raw, MAX_LISTED)
    if limit is None or limit < 1:
        raise InvalidRequest(f"'limit' is {raw[:40]!r}: it must be a whole number from 1 to {MAX_LISTED}")
    return limit


def _time(raw: object, name: str, default: float) -> float:
    """An ISO 8601 time (a date: its start, UTC) as epoch seconds; ``default`` when not given."""
    if raw is None or raw == "":
        return default
    try:
        when = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        when = None
    if when is None:
        raise InvalidRequest(f"'{name}' must be an ISO 8601 time such as '2026-11-21T10:00:00Z' or a date")
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
