"""A request refused from its head alone, answered before its body is received: a refusal costs less than the work it
refuses.

The web worker (``receiver/buffering_worker.py``) asks ``refusal_before_body`` in a thread once a request's head is in
and its body still coming, and the head is judged for all it tells: no usable token (401); a batch announced larger than
``MAX_BATCH_BYTES`` (413) or whose key fills its places in this process's batch room (503 ``batches_busy``); and, for a
body announced at least ``JUDGED_FROM_BYTES``, an end user named by the X-End-User header that its key blocked today (403
``end_user_blocked``) or a header the app refuses (400), or an app key whose counters refuse the job, track or batch (429
``rate_limited`` or ``queue_full``, 402 ``budget_exceeded``: ``lifecycle/steps/head_limits.py``). Each is a refusal the
request would meet after its body too, answered with the API's error (BFL's shape on its drop-in routes) and
``Connection: close``, its body never read. It costs nothing for a token that is no key's or a full batch room, one Redis
round trip for the rest, and one more for an end user of a key that blocks end users. BFL's callbacks (``/webhooks``)
are never judged here; with Redis unreachable nothing is refused here, and the app answers as it can once the body is in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from redis.exceptions import RedisError

from fluxhook.core.end_users import HEADER
from fluxhook.core.errors import FluxhookError, InvalidIdempotencyKey, InvalidRequest
from fluxhook.core.json_body import decimal
from fluxhook.core.models import MODEL
from fluxhook.lifecycle.steps import end_user_limits, head_limits
from fluxhook.lifecycle.steps.callers import KeyResolver, key_id_in
from fluxhook.lifecycle.steps.head_limits import Asks
from fluxhook.services import Services
from fluxhook.store.app_keys import AppKey
from fluxhook.store.key_counters import Counters

from . import auth, batch_body, idempotency_keys
from .batch_room import DividedRoom, key_busy
from .bfl_compat import OWN_PATHS, bfl_shaped
from .errors import closing_answer
from .request_input import header_end_user

Header = Callable[[str], str | None]
# The paths of fluxhook's own routes that make jobs; a BFL model's path is any other name under /v1 (bfl_compat).
_ASKS = {"/v1/jobs": Asks.JOB, "/v1/jobs/track": Asks.TRACK, batch_body.BATCHES_PATH: Asks.BATCH}
_NOT_MODELS = OWN_PATHS | {"batches"}
# A key's counters judge a body announced at least this large (or of no announced length) from its head. A smaller
# one costs less to receive than the judgement's Redis step, and is judged by the app in its own order (a model the
# key may not use is a 403 before a spent budget's 402), so one request gets one answer however its bytes arrive.
JUDGED_FROM_BYTES = 64 * 1024


@dataclass(frozen=True)
class HeadRefusal:
    """A request's refusal from its head: the error, and whether it leaves in BFL's shape (its drop-in routes)."""

    error: FluxhookError
    bfl: bool = False
    token_sent: bool = True

    def answer(self) -> bytes:
        """The whole HTTP answer, after which the connection closes (its body unread)."""
        if self.bfl:
            status, detail, retry = bfl_shaped(self.error, self.token_sent)
            return closing_answer(status, {"detail": detail}, retry)
        error = self.error
        temporary = error.status in (429, 503) and error.retry_after is not None
        return closing_answer(error.status, {"error": {"code": error.code, "message": error.message}},
                              error.retry_after if temporary else None)


def asked(method: str, target: str) -> tuple[Asks | None, bool]:
    """What a request asks for (None: nothing its key's counters judge), and whether it is one of BFL's drop-in routes
    (``POST /v1/{model}``)."""
    if method != "POST":
        return None, False
    path = unquote(target.partition("?")[0])
    if path in _ASKS:
        return _ASKS[path], False
    name = path.removeprefix("/v1/")
    if name != path and MODEL.fullmatch(name) and name.split("/", 1)[0] not in _NOT_MODELS:
        return Asks.JOB, True
    return None, False


@dataclass(frozen=True)
class Judge:
    """What ``refusal_before_body`` reads: the services, this process's key resolver and batch room."""

    svc: Services
    keys: KeyResolver
    batch_room: Callable[[], DividedRoom]


def refusal_before_body(judge: Judge, method: str, target: str, header: Header) -> HeadRefusal | None:
    """The refusal of a request whose head is in and whose body is not (None: its body is received), judged in the
    order the app judges it: its token, then a batch's size and place, then its key's counters."""
    asks, bfl = asked(method, target)
    config = judge.svc.config
    token = auth.token_in(header)
    key_id = key_id_in(token) if token is not None and asks is not None else None
    counters = None
    now = time.time()
    length = decimal((header("Content-Length") or "").strip(), batch_body.MOST_LENGTH)
    large = length is None or length >= JUDGED_FROM_BYTES
    try:
        if key_id is not None and large and not judge.keys.cached(key_id)[0]:
            # One read for both: the key's record (kept for the token's judgement, and the app's) and its counters.
            counters = _counters(judge, key_id, token or "", header, now)
            judge.keys.remember(key_id, AppKey.from_hash(counters.record) if counters.record else None, now)
        unauthorized = auth.unauthorized_before_body(config.api_tokens, judge.keys, method, target, header)
        if unauthorized is not None:
            return HeadRefusal(unauthorized, bfl, token_sent=token is not None)
        if asks is Asks.BATCH:
            if length is not None and length > config.max_batch_bytes:
                return HeadRefusal(batch_body.too_large(config.max_batch_bytes))
            if not judge.batch_room().has_place(key_id or ""):
                return HeadRefusal(key_busy())
        key = judge.keys.cached(key_id)[1] if key_id is not None else None
        if key is None or asks is None or not large:
            return None
        blocked = _end_user_blocked(judge, key, header, now)
        if blocked is not None:
            return HeadRefusal(blocked, bfl)
        if counters is None:
            counters = _counters(judge, key_id or "", token or "", header, now)
        refused = head_limits.refusal(asks, key, counters, now)
    except RedisError:
        return None
    return None if refused is None else HeadRefusal(refused, bfl)


def _end_user_blocked(judge: Judge, key: AppKey, header: Header, now: float) -> FluxhookError | None:
    """The refusal of the end user the X-End-User header names when its key blocked it today (403
    ``end_user_blocked``), or of a header the app would refuse whatever the body (400); None for none (an end user
    named in the body is judged with the body)."""
    try:
        end_user = header_end_user(header(HEADER))
    except InvalidRequest as exc:
        return exc
    return None if end_user is None else end_user_limits.blocked_refusal(judge.svc, key, end_user, now)


def _counters(judge: Judge, key_id: str, token: str, header: Header, now: float) -> Counters:
    """The key's record and counters; with an Idempotency-Key, whether it has a record (its answer is replayed)."""
    key = header(idempotency_keys.HEADER)
    record = None
    if key is not None:
        try:
            record = judge.svc.store.keys.idempotency(*idempotency_keys.named(token, key))
        except InvalidIdempotencyKey:
            pass  # refused 400 after the body anyway: the counters may refuse it first
    return head_limits.read_counters(judge.svc, key_id, record, now)
