"""``Idempotency-Key`` on the submitting endpoints: the first answer is replayed, not acted on again."""

from __future__ import annotations

import logging
import threading
import time
from functools import wraps
from typing import Callable

import redis
from flask import Flask, Response, g, make_response, request

from fluxhook.core.end_users import HEADER as END_USER_HEADER
from fluxhook.core.errors import IdempotencyKeyInUse, IdempotencyKeyReused, NotReplicated, RateLimited
from fluxhook.core.holds import KEY_HOLD_LEASE
from fluxhook.store.idempotency import DONE, FULL, IN_USE, MADE, MAX_KEYS_PER_CALLER, REUSED, Hold, IdempotencyStore
from fluxhook.store.replication import Replication
from receiver import idempotency_keys

from .auth import presented_token
from .context import services
from .replicated import in_error_shape
from .request_input import json_object

log = logging.getLogger("fluxhook.idempotency")

REPLAYED = "Idempotent-Replayed"
# A key whose release Redis refused or its replicas did not confirm (a failover, Redis out of reach a moment) is freed
# again from a thread, every RELEASE_INTERVAL s for RELEASE_TRIES tries (a failover's worth): else the client's retry
# of the 5xx, which docs/api.md allows, is answered 409 until the whole hold lapses.
RELEASE_INTERVAL = 0.5
RELEASE_TRIES = 60
# Keys waiting to be freed at once, at most; past it one waits for its hold's lease.
RELEASE_BACKLOG = 1000


def release(keys: IdempotencyStore, replication: Replication, *held: Hold) -> None:
    """Give the keys up where the client's retry will look for them: with ``REDIS_MIN_REPLICAS``, confirmed by the
    replicas, as a job's writes are (a release only the old primary of a failover took is lost with it, while the
    hold it freed reached the new one); one confirmation for them all. Raises ``redis.RedisError`` or
    ``NotReplicated`` when that is not sure."""
    primary = replication.primary() if replication.required else None
    for hold in held:
        keys.abandon(hold.use, hold.ticket)
    if primary is not None:
        replication.confirm(primary)


class LateReleases:
    """Keys not surely freed when their request ended, freed again by one thread until Redis confirms, then left."""

    def __init__(self, interval: float = RELEASE_INTERVAL, tries: int = RELEASE_TRIES):
        self.interval, self.tries = interval, tries
        self._waiting: list[tuple[IdempotencyStore, Replication, Hold, int]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, keys: IdempotencyStore, replication: Replication, held: Hold) -> bool:
        """Free ``held`` once Redis accepts and confirms the write; False when too many wait already."""
        with self._lock:
            if len(self._waiting) >= RELEASE_BACKLOG:
                return False
            self._waiting.append((keys, replication, held, self.tries))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="idempotency-release", daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                waiting, self._waiting = self._waiting, []
            by_store: dict[tuple[IdempotencyStore, Replication], list[tuple[Hold, int]]] = {}
            for keys, replication, held, tries in waiting:
                by_store.setdefault((keys, replication), []).append((held, tries))
            again = [(keys, replication, held, tries - 1) for (keys, replication), entries in by_store.items()
                     if not _freed(keys, replication, [held for held, _ in entries])
                     for held, tries in entries if tries > 1]
            with self._lock:
                self._waiting.extend(again)
                if not self._waiting:
                    self._thread = None
                    return


def _freed(keys: IdempotencyStore, replication: Replication, held: list[Hold]) -> bool:
    try:
        release(keys, replication, *held)
    except (redis.RedisError, NotReplicated):
        return False
    log.info("idempotency keys freed once Redis took and confirmed the writes", extra={"keys": len(held)})
    return True


LATE_RELEASES = LateReleases()


def idempotent_on(body: Callable[[], idempotency_keys.Parsed]):
    """Answer a repeated request (same bearer token and key, and the same ``body()``: the request's body as the
    fingerprint takes it) with the first request's answer."""

    def idempotent_view(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(idempotency_keys.HEADER)
            if key is None:
                return view(*args, **kwargs)
            return _keyed(view, key, body, *args, **kwargs)

        return wrapper

    return idempotent_view


# Most views: their body is one JSON object, parsed whole (``request_input``).
idempotent = idempotent_on(lambda: idempotency_keys.Parsed(json_object()))


def _keyed(view, key: str, body: Callable[[], idempotency_keys.Parsed], *args, **kwargs):
    """``view``'s answer to a request with the ``Idempotency-Key`` ``key``: the first one's if it was kept."""
    # The blueprint has checked the token already; only its digest is used from here on.
    token = presented_token() or ""
    idempotency_keys.check_key(key)  # a bad key is refused before the body is read
    # The end user a header names is part of the request, as the body's would be: another one is another request.
    end_user = request.headers.get(END_USER_HEADER)
    path = request.path if end_user is None else f"{request.path}\n{END_USER_HEADER}: {end_user}"
    use = idempotency_keys.key_use(token, key, request.method, path, body())
    # The primary the request began on (``replicated``): a hold taken on a primary since replaced has lapsed.
    primary = g.get("replication_primary") or ""
    first = services().store.idempotency.begin(use, KEY_HOLD_LEASE, primary)
    if first.state == DONE:
        replay = Response(first.body, status=first.status, mimetype="application/json")
        replay.headers[REPLAYED] = "true"
        return replay
    if first.state == REUSED:
        raise IdempotencyKeyReused(f"this {idempotency_keys.HEADER} was first used with another request body "
                                   "or on another endpoint")
    if first.state == FULL:
        raise RateLimited(f"this token holds {MAX_KEYS_PER_CALLER} {idempotency_keys.HEADER}s kept "
                          "for replay; retry after Retry-After seconds, or send the request without a key",
                          retry_after=first.retry_after)
    if first.state == IN_USE:
        if primary:
            # The hold read may be one a switch left on the old primary, its release taken by the new one: the retry
            # is refused 503 until this process reaches the new primary, where that hold has lapsed.
            services().store.replication.check_settled(primary)
        raise IdempotencyKeyInUse(f"the first request with this {idempotency_keys.HEADER} is still being handled; "
                                  "retry shortly")
    if first.state == MADE:
        # The first request made its job but its answer was not kept (it failed after, or is still
        # waiting): the view answers with that job, as it is now.
        g.idempotent_job = first.job_id
        answer = make_response(view(*args, **kwargs))
        answer.headers[REPLAYED] = "true"
        return answer
    g.idempotency_hold = Hold(use, first.ticket, first.until_ms, primary)
    return view(*args, **kwargs)


def made_job() -> str | None:
    """The id of the job a first request with this request's key made, when the view is to answer with it."""
    return g.get("idempotent_job")


def key_hold() -> Hold | None:
    """This request's hold on its Idempotency-Key, for the job it makes to name itself in (None: no key)."""
    return g.get("idempotency_hold")


def init_app(app: Flask) -> None:
    """Keep the answer of each request that holds a key if it succeeded; give the key up otherwise (nothing was
    done, or a 5xx may be retried), so that what one caller makes Redis keep grows only with its jobs."""

    @app.after_request
    def keep_answer(response):
        held = g.get("idempotency_hold")
        if held is None or not idempotency_keys.keeps(response.status_code):
            return response  # nothing to keep: free_key gives any key up
        try:
            if not services().store.idempotency.finish(held.use, held.ticket, response.status_code,
                                                       response.get_data()):
                log.warning("idempotency key's hold lapsed before the answer: it is not kept")
        except redis.RedisError as exc:
            # Not kept, so not acknowledged: the client's retry with this key must not read a success
            # that a repeat could not replay. free_key tries to give the key up.
            return in_error_shape(exc)
        g.pop("idempotency_hold")
        return response

    @app.teardown_request
    def free_key(exc):
        # No answer was kept (nothing was done, a 5xx, this process failed, or Redis did while keeping it): the
        # client may retry. Flask runs this before the server sends the answer, so the retry finds the key free.
        held = g.pop("idempotency_hold", None)
        if held is not None:
            store = services().store
            try:
                release(store.idempotency, store.replication, held)
            except (redis.RedisError, NotReplicated) as error:
                later = LATE_RELEASES.add(store.idempotency, store.replication, held)
                log.warning("idempotency key not surely freed; tried again until Redis confirms" if later else
                            "idempotency key not surely freed; it is free once its hold lapses",
                            extra={"error": type(error).__name__})
