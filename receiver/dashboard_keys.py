"""The dashboard's Keys page (``/keys``): each app key's limits, the BFL accounts it may use, spend today, jobs at BFL
and waiting, and why they wait; CSRF-protected forms create a key (its secret shown on the answering page only),
change the accounts it may use, and revoke one (asked once more, then said done on the page it returns to).

Its routes belong to the dashboard's blueprint, so its session check and headers apply to them."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import redirect, render_template, request, url_for

from fluxhook.core.errors import InvalidRequest, KeyNotFound, KeyRevoked
from fluxhook.core.job import iso
from fluxhook.core.json_body import decimal
from fluxhook.lifecycle import key_admin, revoking
from fluxhook.lifecycle.steps import callers, key_fields, notify_secrets

from . import dashboard_session as auth
from .context import services
from .dashboard import bp
from .dashboard_view import clock, waiting_counts
from .errors import error_response
from .replicated import replicated

log = logging.getLogger("fluxhook.dashboard")

_WHOLE = ("max_active", "max_queued", "requests_per_minute", "reads_per_minute", "items_per_minute", "items_per_day",
          "weight")
# Above any bound of those fields: the API names the bound of a number read here.
MOST_WHOLE = 10**12
_REFUSED = "the form did not carry this session's CSRF token"


def form_body(form: Any) -> dict[str, Any]:
    """The create form's fields as a ``POST /v1/keys`` body (a field left blank is not sent); InvalidRequest, naming
    the field, for a number that is not one."""
    body: dict[str, Any] = {"name": form.get("name", "")}
    models = [m for m in form.get("models", "").replace(",", " ").split() if m]
    if models:
        body["models"] = models
    for name in ("daily_credits", *_WHOLE):
        text = form.get(name, "").strip()
        if not text:
            continue
        try:
            number = decimal(text, MOST_WHOLE) if name in _WHOLE else float(text)
        except ValueError:
            number = None
        if number is None:
            raise InvalidRequest(f"'{name}' is {text[:40]!r}: it must be a {'whole ' if name in _WHOLE else ''}number")
        body[name] = number
    expires = form.get("expires_at", "").strip()
    if expires:
        body["expires_at"] = expires
    # A new key may use any account unless told otherwise: blank or 'any' is left out.
    return {**body, **{name: value for name, value in places_body(form).items() if value is not None}}


def places_body(form: Any) -> dict[str, Any]:
    """The form's BFL accounts (comma- or space-separated names) and region as the API takes them: blank
    or ``any`` is ``null``, any account; the API says what is wrong with a name."""
    names = [a for a in form.get("accounts", "").replace(",", " ").split() if a]
    region = form.get("region", "").strip()
    return {"accounts": None if not names or [n.lower() for n in names] == ["any"] else names,
            "region": None if not region or region.lower() == "any" else region}


def _page(created: dict | None = None, error: str | None = None, status: int = 200, revoked: str | None = None):
    svc = services()
    now = time.time()
    records = svc.store.app_keys.all()
    keys = key_admin.described(svc, records, now)
    for record, key in zip(records, keys, strict=True):
        key["state"] = ("revoked" if key["revoked_at"] else
                        "expired" if key["expires_at"] and key["expires_at"] <= iso(now) else "active")
        # Times as every other page writes them (UTC), not the API's ISO form.
        key["expires"], key["last_used"] = clock(record.expires_at), clock(record.last_used_at)
        key["waiting"] = waiting_counts(key["queued_by_reason"])
    return render_template("dashboard/keys.html", keys=keys, created=created, error=error, revoked=revoked,
                           form=request.form if error else {}, max_queued=svc.config.max_queued_per_key,
                           defaults=svc.config), status


@bp.get("/keys/<key_id>")
def key_page(key_id: str):
    """One key: its spend, what its end users may do, and its end users of today with the most credits spent."""
    svc = services()
    try:
        record = key_admin.find_key(svc, key_id)
    except KeyNotFound:
        return error_response(404, "not_found", "no such app key")
    now = time.time()
    return render_template("dashboard/key.html", key=key_admin.described(svc, [record], now)[0],
                           end_users=key_admin.top_end_users(svc, record.id, now))


@bp.get("/keys")
def keys():
    """Every app key, newest first, and the form that creates one; after a revocation (``?revoked=``), a word
    that it was done."""
    return _page(revoked=_revoked_name(request.args.get("revoked", "")))


def _revoked_name(key_id: str) -> str | None:
    """The name of the key ``?revoked=`` names, if it is a key and revoked (a made-up link says nothing)."""
    key = services().store.app_keys.get(key_id) if callers.is_key_id(key_id) else None
    return key.name if key is not None and key.revoked_at is not None else None


@bp.post("/keys")
@replicated
@auth.csrf_checked(_REFUSED)
def create_key():
    """Create a key; the answering page shows its secret, this once."""
    svc = services()
    try:
        key, secret = key_admin.create_key(svc, form_body(request.form), time.time())
    except InvalidRequest as exc:
        return _page(error=exc.message, status=400)
    return _page(created=key_fields.present_key(key, secret=secret, notify_secret=notify_secrets.current(svc, key)),
                 status=201)


@bp.post("/keys/<key_id>/places")
@replicated
@auth.csrf_checked(_REFUSED)
def change_places(key_id: str):
    """Change which BFL accounts a key's jobs may use (its accounts and region), then back to the Keys page."""
    try:
        key_admin.change_key(services(), key_id, places_body(request.form), time.time())
    except KeyNotFound:
        return error_response(404, "not_found", "no such app key")
    except (InvalidRequest, KeyRevoked) as exc:
        return _page(error=exc.message, status=400 if isinstance(exc, InvalidRequest) else 409)
    log.info("app key's accounts changed on the dashboard", extra={"key_id": key_id})
    return redirect(url_for("dashboard.keys"), 303)


@bp.post("/keys/<key_id>/revoke")
@replicated
@auth.csrf_checked(_REFUSED)
def revoke_key(key_id: str):
    """Revoke a key (the page asked first), then back to the Keys page, which says so."""
    if not callers.is_key_id(key_id) or not revoking.revoke(services(), key_id):
        return error_response(404, "not_found", "no such app key")
    log.info("app key revoked on the dashboard", extra={"key_id": key_id})
    return redirect(url_for("dashboard.keys", revoked=key_id), 303)
