"""The dashboard's Keys page (``/keys``): each app key's limits, spend today and jobs in line and at BFL;
create a key (its secret shown on the answering page only) and revoke one, both CSRF-protected forms.

Its routes belong to the dashboard's blueprint, so its session check and headers apply to them."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import redirect, render_template, request, url_for

from fluxhook.core.errors import InvalidRequest
from fluxhook.lifecycle import app_keys, revoking

from . import dashboard_session as auth
from .context import services
from .dashboard import bp
from .errors import error_response

log = logging.getLogger("fluxhook.dashboard")

_WHOLE = ("max_active", "requests_per_minute", "weight")


def form_body(form: Any) -> dict[str, Any]:
    """The create form's fields as a ``POST /v1/keys`` body (a field left blank is not sent).

    InvalidRequest, naming the field, for a number that is not one.
    """
    body: dict[str, Any] = {"name": form.get("name", "")}
    models = [m for m in form.get("models", "").replace(",", " ").split() if m]
    if models:
        body["models"] = models
    for name in ("daily_credits", *_WHOLE):
        text = form.get(name, "").strip()
        if not text:
            continue
        try:
            body[name] = int(text) if name in _WHOLE else float(text)
        except ValueError:
            raise InvalidRequest(f"'{name}' must be a {'whole ' if name in _WHOLE else ''}number") from None
    expires = form.get("expires_at", "").strip()
    if expires:
        body["expires_at"] = expires
    return body


def _page(created: dict | None = None, error: str | None = None, status: int = 200):
    svc = services()
    now = time.time()
    keys = app_keys.described(svc, svc.store.app_keys.all(), now)
    for key in keys:
        key["state"] = ("revoked" if key["revoked_at"] else
                        "expired" if key["expires_at"] and key["expires_at"] <= app_keys.iso(now) else "active")
    return render_template("dashboard/keys.html", keys=keys, created=created, error=error,
                           form=request.form if error else {}), status


@bp.get("/keys")
def keys():
    """Every app key, newest first, and the form that creates one."""
    return _page()


@bp.post("/keys")
def create_key():
    """Create a key; the answering page shows its secret, this once."""
    if not auth.csrf_valid(request.form.get("csrf_token")):
        return error_response(400, "csrf_failed", "the form did not carry this session's CSRF token")
    now = time.time()
    try:
        key, secret = app_keys.create_key(services(), form_body(request.form), now)
    except InvalidRequest as exc:
        return _page(error=exc.message, status=400)
    return _page(created=app_keys.present_key(key, secret=secret), status=201)


@bp.post("/keys/<key_id>/revoke")
def revoke_key(key_id: str):
    """Revoke a key, then back to the Keys page."""
    if not auth.csrf_valid(request.form.get("csrf_token")):
        return error_response(400, "csrf_failed", "the form did not carry this session's CSRF token")
    if not app_keys.is_key_id(key_id) or not revoking.revoke(services(), key_id):
        return error_response(404, "not_found", "no such app key")
    log.info("app key revoked on the dashboard", extra={"key_id": key_id})
    return redirect(url_for("dashboard.keys"), 303)
