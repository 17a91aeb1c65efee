"""BFL's callbacks: verify, record, enqueue, answer in milliseconds."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint, g, request

from fluxhook import metrics
from fluxhook.core import signing
from fluxhook.core.errors import CallbackRefused
from fluxhook.lifecycle import receiving

from .context import services
from .errors import error_response
from .replicated import replicated

_PREFIX = "/webhooks"
bp = Blueprint("webhooks", __name__, url_prefix=_PREFIX)


@bp.after_request
def count_callback(response):
    """Count every callback by what became of it; refusals by the reason given."""
    if g.get("callback_counted"):
        return response
    outcome = g.get("callback_outcome")
    reason = ""
    if outcome is None:
        outcome = "refused"
        reason = g.get("refusal") or _error_code(response)
    metrics.count(services(), "fluxhook_callbacks", outcome=outcome, reason=reason)
    return response


def _error_code(response) -> str:
    body = response.get_json(silent=True) if response.is_json else None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", "error")) if isinstance(error, dict) else f"http_{response.status_code}"


@bp.post("/bfl/<token>")
@replicated
def job_callback(token: str):
    """A callback on the URL minted for one job."""
    # The token before the body: a URL fluxhook did not issue is refused without reading a byte of it
    # (the web worker hands such a request on before its body arrives: refused_before_body).
    return _answer(receiving.receive_job_callback(services(), token, request.headers, request.stream,
                                                  request.content_length))


def refused_before_body(secret_keys, method: str, target: str) -> bool:
    """Whether the request (its method and request-target) is refused whatever its body: a callback on a URL fluxhook
    did not issue. The web worker asks this once a request's head is in, and hands such a request on at once, its body
    unread, for the app to refuse (and count with the callbacks) instead of storing a body nobody will read."""
    prefix = _PREFIX + "/bfl/"
    path = unquote(target.partition("?")[0])
    if method != "POST" or not path.startswith(prefix):
        return False
    token = path[len(prefix):]
    return "/" not in token and signing.job_id_from_webhook_token(secret_keys, token) is None


@bp.post("/bfl")
@replicated
def static_callback():
    """A callback for a task submitted elsewhere with BFL_WEBHOOK_SECRET."""
    return _answer(receiving.receive_static_callback(services(), request.headers, request.stream,
                                                     request.content_length))


def _answer(receipt: receiving.Receipt):
    g.job_id = receipt.job_id
    g.callback_outcome = receipt.counted_as
    # Counted with its report already: count_callback must not count it again.
    g.callback_counted = receipt.counted
    if receipt.detail:
        # Said in the request's one log line, not a second one: at callback rates, log lines cost.
        g.log_detail = receipt.detail
    return receipt.answer, receipt.status


@bp.errorhandler(CallbackRefused)
def refused(exc: CallbackRefused):
    g.refusal = exc.reason
    if exc.job_id is not None:
        g.job_id = exc.job_id
    return error_response(exc.status, exc.code, exc.message)
