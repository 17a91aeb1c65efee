"""``GET /v1/usage``: credits and jobs per UTC day and model, and today's spend against the daily limit."""

from __future__ import annotations

import time

from flask import Blueprint, request

from fluxhook.core.end_users import parse_end_user
from fluxhook.core.errors import InvalidRequest
from fluxhook.credits.reports import end_user_report, usage_report
from fluxhook.lifecycle.steps.callers import is_key_id

from .auth import require_bearer
from .context import services

bp = Blueprint("usage", __name__, url_prefix="/v1")


@bp.before_request
def authenticate():
    require_bearer()


@bp.get("/usage")
def show():
    """Usage from ``from`` to ``to`` (``YYYY-MM-DD``, at most 366 days; by default the last 30): an app key's
    own, or for an admin the account's (by key), or one key's with ``key_id``."""
    svc = services()
    caller = require_bearer()
    key_id = request.args.get("key_id") or None
    if key_id is not None and not is_key_id(key_id):
        raise InvalidRequest("'key_id' must be an app key's id, such as 'key_0123456789abcdef'")
    if not caller.admin:
        key_id = caller.key_id
    group_by, end_user = request.args.get("group_by") or None, request.args.get("end_user") or None
    if group_by not in (None, "end_user"):
        raise InvalidRequest("'group_by' may be 'end_user' (rows per end user and day), or left out")
    days = request.args.get("from") or None, request.args.get("to") or None
    if group_by or end_user:
        return end_user_report(svc, *days, time.time(), key_id, parse_end_user(end_user))
    limit = None
    if key_id is not None:
        key = caller.key if caller.key_id == key_id else svc.store.app_keys.get(key_id)
        limit = key.daily_credits if key is not None else None
    return usage_report(svc, *days, time.time(), key_id=key_id, daily_limit=limit)
