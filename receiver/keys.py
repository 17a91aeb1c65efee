"""``/v1/keys``: admin tokens create, read, change and revoke app keys (the secret is shown once, on creation)."""

from __future__ import annotations

import time

from flask import Blueprint
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from fluxhook.core.errors import KeyNotFound
from fluxhook.lifecycle import key_admin, notifications, revoking
from fluxhook.lifecycle.steps import callers, key_fields, notify_secrets
from fluxhook.store.app_keys import AppKey

from .auth import require_admin
from .context import services
from .replicated import replicated
from .request_input import json_object

bp = Blueprint("keys", __name__, url_prefix="/v1")


class EndUserConverter(BaseConverter):
    """An end user's name as the rest of its path holds it: any name a job may carry, '/' included (a client sends it
    percent-encoded, the server hands it over decoded), up to the route's own last word (``/block``)."""

    regex = r".+?"
    part_isolating = False


# Its routes keep '//' as sent: merged, '/a' or 'a//b' would name another end user.
END_USER = {"merge_slashes": False}


# Registered before the routes that use it (a blueprint applies its records in order).
@bp.record_once
def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("end_user", EndUserConverter)


@bp.before_request
def authenticate():
    require_admin()


def _shown(key: AppKey) -> dict:
    return key_admin.described(services(), [key], time.time())[0]


@bp.post("/keys")
@replicated
def create():
    """A new app key; its secret is in this answer and never again."""
    svc = services()
    key, secret = key_admin.create_key(svc, json_object(), time.time())
    return key_fields.present_key(key, secret=secret, notify_secret=notify_secrets.current(svc, key)), 201


@bp.get("/keys")
def index():
    """Every key, newest first, without secrets."""
    svc = services()
    return {"keys": key_admin.described(svc, svc.store.app_keys.all(), time.time())}


@bp.get("/keys/<key_id>")
def show(key_id: str):
    return _shown(key_admin.find_key(services(), key_id))


@bp.patch("/keys/<key_id>")
@replicated
def change(key_id: str):
    """Change a key's name and limits (``null`` removes a limit)."""
    return _shown(key_admin.change_key(services(), key_id, json_object(), time.time()))


@bp.post("/keys/<key_id>/notify_secret")
@replicated
def rotate_notify_secret(key_id: str):
    """A new notification secret, in this answer only; for a day both the old and the new one sign."""
    key, notify_secret = key_admin.rotate_notify_secret(services(), key_id, time.time())
    return {**_shown(key), "notify_secret": notify_secret}


@bp.post("/keys/<key_id>/notify/enable")
@replicated
def enable_notifications(key_id: str):
    """Send again to the targets a 410 disabled for this key (their messages meanwhile stay ``disabled``)."""
    svc = services()
    key = key_admin.find_key(svc, key_id)
    return {"id": key.id, "enabled": notifications.enable(svc, key.id)}


@bp.get("/keys/<key_id>/end_users")
def end_users_top(key_id: str):
    """The key's end users of today with the most credits spent."""
    return {"key_id": key_id, "end_users": key_admin.top_end_users(services(), key_admin.find_key(services(), key_id).id,
                                                              time.time())}


@bp.get("/keys/<key_id>/end_users/<end_user:end_user>", **END_USER)
def end_user_show(key_id: str, end_user: str):
    """One end user of the key: its limits, today's counts and spend, its block."""
    return key_admin.show_end_user(services(), key_id, end_user, time.time())


@bp.put("/keys/<key_id>/end_users/<end_user:end_user>", **END_USER)
@replicated
def end_user_set(key_id: str, end_user: str):
    """The end user's own limits, in place of the key's end_user_limits."""
    return key_admin.set_end_user_limits(services(), key_id, end_user, json_object(), time.time())


@bp.post("/keys/<key_id>/end_users/<end_user:end_user>/block", **END_USER)
@replicated
def end_user_block(key_id: str, end_user: str):
    """Block the end user until it is unblocked or the UTC day ends."""
    return key_admin.block_end_user(services(), key_id, end_user, time.time())


@bp.post("/keys/<key_id>/end_users/<end_user:end_user>/unblock", **END_USER)
@replicated
def end_user_unblock(key_id: str, end_user: str):
    """Lift the end user's block of today."""
    return key_admin.unblock_end_user(services(), key_id, end_user, time.time())


@bp.delete("/keys/<key_id>")
@replicated
def revoke(key_id: str):
    """Revoke a key: within a second every process refuses it; its queued jobs end, its submitted ones finish."""
    if not callers.is_key_id(key_id) or not revoking.revoke(services(), key_id):
        raise KeyNotFound(f"no app key {key_id[:40]!r}")
    return "", 204
