"""The dashboard's notifications: the Deliveries page lists the failed and disabled messages of every app
(each with its attempts and a replay button), replays every failed one at once, and enables the targets a 410
disabled; a job's page lists its own messages with the same replay button. Every form is CSRF-protected.

Its routes belong to the dashboard's blueprint, so its session check and headers apply to them."""

from __future__ import annotations

import logging
import time

from flask import redirect, render_template, request, url_for

from fluxhook.core.errors import DeliveryNotFound
from fluxhook.core.job import is_job_id
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.steps.callers import is_key_id
from fluxhook.store.deliveries import DISABLED, FAILED

from . import dashboard_session as auth
from .context import services
from .dashboard import bp
from .errors import error_response
from .replicated import replicated

log = logging.getLogger("fluxhook.dashboard")

# Most messages of each state the page lists.
LISTED = 200
_ADMIN = "admin"
_REFUSED = "the form did not carry this session's CSRF token: reload the page and try again"


@bp.get("/deliveries")
def deliveries():
    """The failed and disabled notifications of every app, newest first, and the disabled targets to enable."""
    svc = services()
    names = {key.id: key.name for key in svc.store.app_keys.all()}
    shown = {state: [_row(m, names) for m in notifications.of_everyone(svc, state, LISTED)]
             for state in (FAILED, DISABLED)}
    disabled = [{"owner": key_id or _ADMIN, "name": names.get(key_id, key_id) if key_id else "admin tokens' jobs",
                 "count": count} for key_id, count in notifications.disabled_targets(svc).items()]
    return render_template("dashboard/deliveries.html", failed=shown[FAILED], disabled=shown[DISABLED],
                           targets=disabled, replayed=request.args.get("replayed", ""),
                           enabled=request.args.get("enabled", ""))


def _row(message, names: dict[str, str]) -> dict:
    row = notifications.shown(message)
    row["app"] = "admin" if message.owner == _ADMIN else names.get(message.owner, message.owner)
    last = row["attempts"][-1] if row["attempts"] else None
    row["last"] = "" if last is None else (str(last["status"]) if last["status"] is not None else last["error"])
    return row


@bp.post("/deliveries/<message_id>/replay")
@replicated
@auth.csrf_checked(_REFUSED)
def replay_delivery(message_id: str):
    """Send one message again now, with its own webhook-id; back to the page the button was on."""
    svc = services()
    try:
        message = notifications.find(svc, None, message_id)
    except DeliveryNotFound:
        return error_response(404, "not_found", "no such delivery")
    notifications.replay(svc, [message], time.time())
    log.info("notification replayed on the dashboard", extra={"job_id": message.job_id, "message_id": message.id})
    back = request.form.get("job", "")
    if is_job_id(back) and back == message.job_id:
        return redirect(url_for("dashboard.job_page", job_id=back, _anchor="deliveries"), 303)
    return redirect(url_for("dashboard.deliveries", replayed=1), 303)


@bp.post("/deliveries/replay")
@replicated
@auth.csrf_checked(_REFUSED)
def replay_failed():
    """Send every failed message of every app again (at most 10,000), each with its own webhook-id."""
    svc = services()
    count = notifications.replay(svc, notifications.of_everyone(svc, FAILED, notifications.MAX_REPLAY), time.time())
    log.info("failed notifications replayed on the dashboard", extra={"count": count})
    return redirect(url_for("dashboard.deliveries", replayed=count), 303)


@bp.post("/deliveries/enable/<owner>")
@replicated
@auth.csrf_checked(_REFUSED)
def enable_targets(owner: str):
    """Enable the targets a 410 disabled for a key (``admin``: admin tokens' jobs)."""
    if owner != _ADMIN and not is_key_id(owner):
        return error_response(404, "not_found", "no such app key")
    count = notifications.enable(services(), None if owner == _ADMIN else owner)
    return redirect(url_for("dashboard.deliveries", enabled=count), 303)
