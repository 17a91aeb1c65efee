"""A Python client for fluxhook's HTTP API, for apps and for the ``fluxhook`` command.

    from fluxhook.client import Client

    with Client("http://localhost:8000", token) as fluxhook:
        job = fluxhook.submit("flux-2-pro", {"prompt": "a red fox in snow"})
        job = fluxhook.wait(job.id, timeout=120)
        fluxhook.download(job, "fox.png")

        batch = fluxhook.batches.create("flux-2-pro", [{"input": {"prompt": f"a fox, take {n}"}} for n in range(50)])
        batch = fluxhook.batches.wait(batch.id, timeout=3600)
        fluxhook.batches.download(batch.id, "foxes.zip")

It needs only ``requests`` and the standard library: an app uses it without the service's own
dependencies. Every request has a timeout. Transport errors, ``5xx`` and ``429`` are retried with
backoff and jitter on reads and deletes, and on ``submit``/``track``/``batches.create`` through their
``Idempotency-Key`` (one is made when the caller gives none), so a retried submission is never
paid twice. What goes wrong is raised as an :class:`APIError` subclass named for what a caller
would catch.
"""

from __future__ import annotations

import builtins
import email.utils
import hashlib
import json
import os
import random
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, TypedDict, TypeVar, Unpack
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

__all__ = [
    "Client", "Job", "Page", "Batch", "Batches", "STATUSES", "TERMINAL",
    "APIError", "InvalidRequest", "AuthenticationError", "InsufficientCredits", "EndUserCreditsSpent", "NotFound",
    "Gone", "Conflict",
    "ServiceUnavailable", "RateLimited", "ChecksumMismatch", "WaitTimeout",
]

# The API's job statuses; the last four never change.
STATUSES = ("queued", "submitted", "ready", "stored", "failed", "moderated", "expired", "canceled", "aborted")
TERMINAL = frozenset({"stored", "failed", "moderated", "expired", "canceled", "aborted"})

DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds to connect, and to wait for each read
MAX_WAIT = 60  # the longest ``Prefer: wait`` the API allows
# A stream sends a keepalive at least every 15 s: a read waits this much longer than others before it gives up.
STREAM_READ_SECONDS = 30
MAX_BACKOFF = 8.0
# A longer Retry-After is handed to the caller (RateLimited.retry_after) instead of slept through.
MAX_RETRY_AFTER = 30.0
# Between the gets of ``wait`` when the server answers at once (it does not honour ``Prefer: wait``).
FIRST_PAUSE, MAX_PAUSE = 0.25, 2.0
CHUNK = 64 * 1024
USER_AGENT = f"fluxhook-client python-requests/{requests.__version__}"
# A bound of the job list's time filters (``since``, ``until``): see ``Client.list``.
When = datetime | date | str


class ListFilters(TypedDict, total=False):
    """The filters of ``Client.list`` and ``Client.pages``, each one of ``GET /v1/jobs``'s (``since`` is its
    ``from``, ``until`` its ``to``)."""

    status: str
    model: str
    key_id: str
    batch_id: str
    account: str
    end_user: str
    q: str
    since: When
    until: When


_QUERY_NAMES = {"since": "from", "until": "to"}


class SubmitOptions(TypedDict, total=False):
    """``Client.submit``'s further options: ``notify_events``, ``cancel_after`` and ``end_user``."""

    notify_events: list[str] | None
    cancel_after: str | None
    end_user: str | None


# --- errors ------------------------------------------------------------------------------------------

class APIError(Exception):
    """Root of everything the client raises: ``code`` (snake_case), ``message``, and the HTTP ``status``
    of the answer (``None`` when no answer came)."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        # What an ``invalid_items`` answer names: each bad item's ``{"index", "field", "message"}``.
        self.items: list[dict] = []

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return f"{text} (HTTP {self.status})" if self.status else text


class InvalidRequest(APIError):
    """The API refused the request as malformed (400, 422, and other 4xx without a class of their own)."""

    default_code = "invalid_request"


class AuthenticationError(APIError):
    """The bearer token is missing or not accepted (401, 403)."""

    default_code = "unauthorized"


class InsufficientCredits(APIError):
    """402: BFL has no credits left (``insufficient_credits``), or fluxhook's daily limit is spent
    (``budget_exceeded``); ``retry_after``: seconds until it may succeed, when the server said."""

    default_code = "insufficient_credits"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class EndUserCreditsSpent(InsufficientCredits):
    """402 ``budget_exceeded`` from ``submit`` for its ``end_user``: that end user's ``daily_credits`` with the app key
    are spent while the key and its other end users go on; ``retry_after``: seconds until its allowance comes back
    (the next UTC day)."""

    default_code = "budget_exceeded"

    def __init__(self, message: str, *, end_user: str, **kwargs):
        super().__init__(message, **kwargs)
        self.end_user = end_user


class NotFound(APIError):
    """No such job (404), or its file is not stored yet (``code`` ``not_ready``)."""

    default_code = "not_found"


class Gone(NotFound):
    """The job ended without the file asked for, or the file was removed (410)."""

    default_code = "gone"


class Conflict(APIError):
    """409, such as ``idempotency_key_in_use`` while the first request with that key is still handled."""

    default_code = "conflict"


class ServiceUnavailable(APIError):
    """fluxhook could not be reached, answered 5xx, or what answered is not fluxhook; try again later."""

    default_code = "unavailable"


class RateLimited(ServiceUnavailable):
    """429 after the retries; ``retry_after`` is the server's wish in seconds, when it said."""

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ChecksumMismatch(APIError):
    """The downloaded bytes do not match the job's sha256; nothing was written."""

    default_code = "checksum_mismatch"


class WaitTimeout(APIError, TimeoutError):
    """``wait`` ran out of time before the job ended; ``job`` is the job as last seen (it goes on). From
    ``batches.wait``: ``batch`` is the batch as last seen (``job`` is ``None``)."""

    default_code = "wait_timeout"

    def __init__(self, message: str, *, job: "Job | None" = None, batch: "Batch | None" = None, **kwargs):
        super().__init__(message, **kwargs)
        self.job = job
        self.batch = batch


_ERROR_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest, 401: AuthenticationError, 402: InsufficientCredits, 403: AuthenticationError,
    404: NotFound, 409: Conflict, 410: Gone, 422: InvalidRequest, 429: RateLimited,
}


# --- results -----------------------------------------------------------------------------------------

class _Record(dict):
    """A plain dict, so it goes to ``json.dumps`` as it came, whose fields also read as attributes; one of ``FIELDS``
    the server did not send reads as ``None``."""

    FIELDS: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name in self.FIELDS:
                return None
            raise AttributeError(f"a {type(self).__name__.lower()} has no field {name!r}") from None


class Job(_Record):
    """A job as the API returns it, a dict whose fields also read as attributes: ``job.status``,
    ``job.image["sha256"]``; one the server did not send reads as ``None``."""

    FIELDS = ("id", "bfl_id", "model", "status", "bfl_status", "source", "created_at", "updated_at",
              "completed_at", "image", "error", "metadata", "attempts", "prompt", "seed", "progress", "cost",
              "video", "draft_cache", "batch_id", "batch_index", "end_user")

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (stored, failed, moderated, expired, canceled or aborted); it never changes
        again."""
        return self.get("status") in TERMINAL


@dataclass(frozen=True)
class Page:
    """One page of ``GET /v1/jobs``: its jobs, newest first, and the cursor of the next (``None``: the last)."""

    jobs: list[Job]
    next_cursor: str | None


class Batch(_Record):
    """A batch as the API returns it (``/v1/batches``), a dict whose fields also read as attributes: ``batch.status``
    (``running``, ``ended``, ``canceled``), ``batch.counts["stored"]`` (each job status's count of its items, and
    ``total``), ``batch.progress`` (0-1: ended items over all); one the server did not send reads as ``None``."""

    FIELDS = ("id", "model", "status", "counts", "cost", "progress", "created_at", "ended_at", "canceled_at",
              "metadata", "key_id", "notify_url", "notify_events", "error", "warnings")

    @property
    def ended(self) -> bool:
        """Whether every item has ended (``ended_at`` is set): its counts never change again. A canceled batch ends
        once the items BFL had when it was canceled have."""
        return self.get("ended_at") is not None


_R = TypeVar("_R", Job, Batch)


class _Bearer(AuthBase):
    """The bearer token; as the session's auth it also keeps ~/.netrc from replacing it."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


# --- the client --------------------------------------------------------------------------------------

class Client:
    """The ``/v1`` API of one fluxhook, at ``url`` with a bearer ``token``.

    ``timeout``: seconds, or (connect, read) seconds, for every request. ``retries``: how many times a
    retryable failure is tried again, after ``backoff`` seconds, doubling, with jitter.
    """

    def __init__(self, url: str, token: str, *, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 retries: int = 3, backoff: float = 0.5):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be an http(s) URL such as http://localhost:8000, got {url!r}")
        if not token or not token.strip():
            raise ValueError("token must be one of fluxhook's API_TOKENS")
        self.url = url.rstrip("/")
        self.timeout = (float(timeout), float(timeout)) if isinstance(timeout, (int, float)) else tuple(timeout)
        self.retries = retries
        self.backoff = backoff
        self._session = requests.Session()
        self._session.auth = _Bearer(token.strip())
        self._session.headers["User-Agent"] = USER_AGENT
        self.batches = Batches(self)

    def __repr__(self) -> str:  # never the token
        return f"Client({self.url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # --- jobs ---

    def submit(self, model: str, input: Mapping[str, Any], *, metadata: Mapping[str, Any] | None = None,
               notify_url: str | None = None, idempotency_key: str | None = None, wait: int | None = None,
               **more: Unpack[SubmitOptions]) -> Job:
        """Submit a task to BFL through fluxhook (``POST /v1/jobs``); ``input`` holds BFL's request fields.

        ``end_user`` names your app's own user the job is for (an opaque id of at most 128 characters, never sent to
        BFL): the key's limits per end user apply to it, and usage is counted by it.

        ``wait`` (1-60 s) asks the server to answer once the job ends or that time has passed; ``notify_events``
        the notifications beyond its end (``job.submitted``, ``job.progress``); ``cancel_after`` (``30s``, ``5m``,
        ``1h30m``) the job's deadline: not sent by then it ends ``aborted``, sent but not stored ``canceled``.
        """
        body: dict[str, Any] = {"model": model, "input": dict(input)}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if notify_url is not None:
            body["notify_url"] = notify_url
        unknown = sorted(set(more) - set(SubmitOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown option {unknown[0]!r}: submit() takes {', '.join(SubmitOptions.__annotations__)}")
        notify_events, cancel_after, end_user = more.get("notify_events"), more.get("cancel_after"), more.get("end_user")
        if notify_events is not None:
            body["notify_events"] = list(notify_events)
        if end_user is not None:
            body["end_user"] = end_user
        try:
            return Job(self._json("POST", "/v1/jobs", json=body, wait=wait, idempotency_key=_key(idempotency_key),
                                  headers={"Cancel-After": cancel_after} if cancel_after is not None else None))
        except InsufficientCredits as exc:
            if end_user is None or not _end_users_day(exc):
                raise
            raise EndUserCreditsSpent(exc.message, code=exc.code, status=exc.status, end_user=end_user,
                                      retry_after=exc.retry_after) from None

    def track(self, bfl_id: str, *, polling_url: str | None = None, model: str | None = None,
              metadata: Mapping[str, Any] | None = None, notify_url: str | None = None,
              idempotency_key: str | None = None) -> Job:
        """Follow a task your app submitted to BFL itself (``POST /v1/jobs/track``); a known ``bfl_id``
        gives its existing job."""
        body: dict[str, Any] = {"bfl_id": bfl_id}
        for name, value in (("polling_url", polling_url), ("model", model), ("notify_url", notify_url)):
            if value is not None:
                body[name] = value
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return Job(self._json("POST", "/v1/jobs/track", json=body, idempotency_key=_key(idempotency_key)))

    def get(self, job_id: str, *, wait: int | None = None) -> Job:
        """One job. ``wait`` (1-60 s) asks the server to answer once the job ends or that time has passed."""
        return Job(self._json("GET", f"/v1/jobs/{_part(job_id)}", wait=wait))

    def pages(self, *, page_size: int = 100, cursor: str | None = None,
              **filters: Unpack[ListFilters]) -> Iterator[Page]:
        """The pages of the job list, newest first, each fetched when the iteration reaches it, with the filters of
        ``list``. A filtered page may hold fewer than ``page_size`` jobs before the last (the server reads a bounded
        number of jobs a page): follow the pages until ``next_cursor`` is ``None``."""
        # Checked now, not at the first page: a bad filter is the caller's line's error.
        return self._pages(_list_params(filters), filters.get("model"), page_size, cursor)

    def _pages(self, given: dict[str, str], model: str | None, page_size: int, cursor: str | None) -> Iterator[Page]:
        for body, next_cursor in self._paged("/v1/jobs", {"limit": page_size, **given}, cursor):
            jobs = [Job(job) for job in body.get("jobs") or []]
            # The server filters by model; against an older one that ignores the parameter, this keeps the promise.
            if model:
                jobs = [job for job in jobs if job.get("model") == model]
            yield Page(jobs, next_cursor)

    def _paged(self, path: str, params: dict[str, Any], cursor: str | None) -> Iterator[tuple[dict, str | None]]:
        """Each page of a list read a page at a time from ``cursor``: its body and the next page's cursor (None: the
        last)."""
        while True:
            body = self._json("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            cursor = body.get("next_cursor") or None
            yield body, cursor
            if cursor is None:
                return

    def list(self, *, page_size: int = 100, **filters: Unpack[ListFilters]) -> Iterator[Job]:
        """Every job, newest first, fetched a page at a time; each filter given narrows it (``GET /v1/jobs``):
        ``status``, ``model``, ``key_id`` (an admin's: an app key lists only its own), ``account`` (the BFL account
        that ran it), ``end_user`` (the app's own user it was made for), ``q`` (text its prompt holds, in any case),
        ``since`` (created at or after) and ``until`` (created before). ``since`` and ``until`` take a timezone-aware
        ``datetime``, a ``date`` (its whole UTC day: ``since=d, until=d`` is that day) or the API's own string
        (``"2026-11-21T10:00:00Z"``)."""
        pages = self.pages(page_size=page_size, **filters)
        return (job for page in pages for job in page.jobs)

    def wait(self, job_id: str, timeout: float, *,
             on_update: Callable[[Job | None, APIError | None], None] | None = None) -> Job:
        """The job once it has ended; ``WaitTimeout`` (with the job as last seen) after ``timeout`` seconds.

        While it waits, fluxhook being unreachable for a while is not an error: the job goes on.
        ``on_update(job, error)`` is called after every answer that does not end the wait, with the job
        as last seen and the error when fluxhook could not be reached.
        """
        if not timeout > 0:
            raise ValueError("timeout must be more than 0 seconds")
        deadline = time.monotonic() + timeout
        pause, job, error = FIRST_PAUSE, None, None
        while (remaining := deadline - time.monotonic()) > 0:
            asked = max(1, min(MAX_WAIT, int(remaining)))
            started = time.monotonic()
            try:
                job, error = self.get(job_id, wait=asked), None
            except ServiceUnavailable as exc:
                error = exc
            else:
                if job.terminal:
                    return job
            if on_update:
                on_update(job, error)
            if time.monotonic() - started < asked:
                # An early answer without an end: the server does not hold the request, so pace the gets.
                time.sleep(max(min(pause, deadline - time.monotonic()), 0))
                pause = min(pause * 1.5, MAX_PAUSE)
        if job is None:
            raise error or WaitTimeout(f"no answer about job {job_id} within {timeout:g} s", job=Job(id=job_id))
        raise WaitTimeout(f"job {job_id} is still {job.status} after {timeout:g} s", job=job)

    def events(self, job_id: str) -> Iterator[Job]:
        """The job at once, then again at each change (``GET /v1/jobs/{id}/events``), until it has ended: the last
        one yielded is terminal. A dropped connection is opened again (with ``Last-Event-ID``, so only a change
        missed meanwhile is yielded), after the usual backoff, ``retries`` times in a row at most."""
        return self._events(f"/v1/jobs/{_part(job_id)}/events", Job, lambda: self.get(job_id))

    def download(self, job: str | Job, path: str | os.PathLike) -> Path:
        """Save the job's stored image (or video) at ``path`` once its sha256 matches; ``job`` is a
        :class:`Job` or a job id. The file appears whole or not at all."""
        if not isinstance(job, Job) or not (job.video or job.image):
            job = self.get(job if isinstance(job, str) else job.id)
        kind, media = ("video", job.video) if job.video else ("image", job.image)
        if not media:
            if job.terminal:
                raise Gone(f"job {job.id} ended {job.status} without an image or a video")
            raise NotFound(f"job {job.id} is {job.status}: its result is not stored yet", code="not_ready")
        url_path = f"/v1/jobs/{_part(job.id)}/{kind}"
        return self._save(lambda number: self._send("GET", url_path, stream=True), Path(path), media.get("sha256"))

    def cancel(self, job_id: str) -> Job:
        """Cancel the job (``POST /v1/jobs/{id}/cancel``): a queued one ends ``canceled``, never sent and nothing
        charged; a submitted or ready one ``canceled`` at once (BFL's charge stays, its result is not downloaded).
        The job as canceled; ``Conflict`` (``already_ended``) for a job that had ended, which stays as it was."""
        return Job(self._cancel(f"/v1/jobs/{_part(job_id)}/cancel", lambda: self.get(job_id)))

    def delete(self, job_id: str) -> None:
        """Remove the job and its stored files (``DELETE /v1/jobs/{id}``)."""
        def attempt(number: int) -> None:
            try:
                self._send("DELETE", f"/v1/jobs/{_part(job_id)}").close()
            except NotFound:
                if number == 1:
                    raise
                # An earlier attempt may have deleted it and lost only the answer.

        self._retrying(True, attempt)

    def credits(self) -> dict:
        """What this token may still spend (``GET /v1/credits``, BFL's answer): ``{"credits", "read_at"}``;
        ``read_at`` is when the BFL balance it adds up was read (``2026-11-21T10:00:00Z``, from ``Last-Modified``),
        ``None`` for what is left of an app key's own daily_credits."""
        body, headers = self._json("GET", "/v1/credits", with_headers=True)
        modified = headers.get("Last-Modified")
        read_at = email.utils.parsedate_to_datetime(modified).strftime("%Y-%m-%dT%H:%M:%SZ") if modified else None
        return {"credits": body.get("credits"), "read_at": read_at}

    # --- notifications: every message and attempt kept, replay ---

    def deliveries(self, job_id: str | None = None, *, state: str | None = None, since: str | None = None,
                   until: str | None = None, limit: int | None = None, key_id: str | None = None) -> builtins.list[dict]:
        """Notification messages with each attempt: a job's (``GET /v1/jobs/{id}/deliveries``), else the caller's
        (an admin token's: every key's, or ``key_id``'s), newest first (``GET /v1/deliveries``; ``state``,
        ``since``/``until`` as ISO 8601 times)."""
        if job_id is not None:
            return self._json("GET", f"/v1/jobs/{_part(job_id)}/deliveries")["deliveries"]
        params = {name: value for name, value in (("state", state), ("from", since), ("to", until),
                                                   ("limit", limit), ("key_id", key_id)) if value is not None}
        return self._json("GET", "/v1/deliveries", params=params)["deliveries"]

    def replay(self, message_id: str | None = None, *, state: str | None = None, since: str | None = None,
               until: str | None = None, key_id: str | None = None) -> int:
        """Send notifications again with their own ``webhook-id``s: one message, or every one of the caller's in
        ``state`` from ``since`` to ``until`` (at most 10,000 a call); how many."""
        if message_id is not None:
            return self._json("POST", f"/v1/deliveries/{_part(message_id)}/replay")["replayed"]
        if state is None:
            raise ValueError("replay needs a message id or a state, such as 'failed'")
        body = {name: value for name, value in (("state", state), ("from", since), ("to", until),
                                                 ("key_id", key_id)) if value is not None}
        return self._json("POST", "/v1/deliveries/replay", json=body)["replayed"]

    # --- BFL accounts (admin tokens only) ---

    def accounts(self) -> builtins.list[dict]:
        """Every BFL account (``GET /v1/accounts``): region, host, tasks in flight, jobs queued, its cooldown,
        balance and spend today; never its key."""
        return self._json("GET", "/v1/accounts")["accounts"]

    # --- app keys (admin tokens only) ---

    def create_key(self, name: str, **limits: Any) -> dict:
        """A new app key (``POST /v1/keys``) with ``limits`` (models, daily_credits, max_active, max_queued,
        requests_per_minute, reads_per_minute, items_per_minute, items_per_day, weight, expires_at, accounts, region,
        strict_input); its ``key`` is the secret, shown this once."""
        return self._json("POST", "/v1/keys", json={"name": name, **limits})

    def end_users(self, key_id: str) -> builtins.list[dict]:
        """App key ``key_id``'s end users of today with the most credits spent, each with today's counts (an admin's;
        ``GET /v1/keys/{id}/end_users``)."""
        return self._json("GET", f"/v1/keys/{_part(key_id)}/end_users")["end_users"]

    def end_user(self, key_id: str, end_user: str, *, block: bool | None = None) -> dict:
        """One end user of app key ``key_id``: its limits, today's counts and spend, its block; ``block`` True blocks
        it for the rest of the UTC day, False lifts its block (an admin's)."""
        path = f"/v1/keys/{_part(key_id)}/end_users/{_part(end_user)}"
        if block is None:
            return self._json("GET", path)
        return self._json("POST", path + ("/block" if block else "/unblock"))

    def set_end_user_limits(self, key_id: str, end_user: str, **limits: float | None) -> dict:
        """Set one end user's own limits of app key ``key_id`` (``PUT /v1/keys/{id}/end_users/{end_user}``, an
        admin's): ``requests_per_minute``, ``max_active``, ``max_queued``, ``daily_credits``; each left out (or
        ``None``) is the key's ``end_user_limits``' again. The end user as ``end_user`` reads it."""
        return self._json("PUT", f"/v1/keys/{_part(key_id)}/end_users/{_part(end_user)}", json=limits)

    def keys(self) -> builtins.list[dict]:
        """Every app key, newest first, without secrets."""
        return self._json("GET", "/v1/keys")["keys"]

    def update_key(self, key_id: str, **changes: Any) -> dict:
        """Change a key's name and limits (``None`` removes a limit; ``max_queued``, ``reads_per_minute``,
        ``items_per_minute`` and ``items_per_day`` set to ``None`` return to the service's ``MAX_QUEUED_PER_KEY``,
        ``READS_PER_MINUTE``, ``ITEMS_PER_MINUTE``, ``ITEMS_PER_DAY``); the key as changed."""
        return self._json("PATCH", f"/v1/keys/{_part(key_id)}", json=changes)

    def rotate_notify_secret(self, key_id: str) -> dict:
        """A new notification secret for the key (its ``notify_secret``, shown this once); both sign for a day."""
        return self._json("POST", f"/v1/keys/{_part(key_id)}/notify_secret")

    def enable_notifications(self, key_id: str) -> int:
        """Enable the key's notification targets a 410 disabled; how many there were."""
        return self._json("POST", f"/v1/keys/{_part(key_id)}/notify/enable")["enabled"]

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key: it answers 401 from then on; its queued jobs end, its submitted ones finish."""
        self._retrying(True, lambda number: self._send("DELETE", f"/v1/keys/{_part(key_id)}").close())

    # --- transport ---

    def _json(self, method: str, path: str, *, idempotency_key: str | None = None, wait: int | None = None,
              with_headers: bool = False, headers: Mapping[str, str] | None = None, retry: bool = True,
              **kwargs) -> Any:
        """One call's JSON object; retried (``retry``) when it is safe to (a read, a delete, an Idempotency-Key)."""
        headers = dict(headers or {})
        if wait is not None:
            if not isinstance(wait, int) or not 1 <= wait <= MAX_WAIT:
                raise ValueError(f"wait must be a whole number of seconds from 1 to {MAX_WAIT}")
            headers["Prefer"] = f"wait={wait}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key

        def attempt(number: int) -> Any:
            with self._send(method, path, headers=headers, wait=wait or 0, **kwargs) as response:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise ServiceUnavailable(f"{self.url} answered {response.status_code} without a JSON object; "
                                             "is the URL fluxhook's?", code="not_fluxhook",
                                             status=response.status_code)
                return (body, response.headers) if with_headers else body

        if not retry:
            return attempt(1)
        return self._retrying(method in ("GET", "DELETE") or idempotency_key is not None, attempt)

    def _send(self, method: str, path: str, *, wait: int = 0, read_timeout: float | None = None,
              **kwargs) -> requests.Response:
        """One request; a non-2xx answer or a failed transport raised as an APIError. ``read_timeout``: the seconds
        each read may wait, instead of the client's."""
        connect, read = self.timeout
        if read_timeout is not None:
            read = read_timeout
        try:
            # A request with ``Prefer: wait`` may rightly be held that much longer before its answer.
            response = self._session.request(method, self.url + path, timeout=(connect, read + wait), **kwargs)
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"cannot reach fluxhook at {self.url}: {_reason(exc)}",
                                     code="unreachable") from exc
        if 200 <= response.status_code < 300:
            return response
        with response:
            raise _error_from(response)

    def _cancel(self, path: str, current: Callable[[], dict]) -> dict:
        """A cancel's answer, retried: ``already_ended`` after an earlier attempt is the cancel that attempt made
        when what ``current`` reads is canceled."""
        def attempt(number: int) -> dict:
            try:
                return self._json("POST", path, retry=False)
            except Conflict as exc:
                if number == 1 or exc.code != "already_ended":
                    raise
                # An earlier attempt may have canceled it and lost only the answer.
                seen = current()
                if seen.get("status") != "canceled":
                    raise
                return seen

        return self._retrying(True, attempt)

    def _events(self, path: str, record: type[_R], current: Callable[[], _R]) -> Iterator[_R]:
        """``_follow``'s records; its error once the stream could not be read ``retries`` times in a row."""
        return (seen for seen, _ in self._follow(path, record, current, None, give_up=True) if seen is not None)

    def _follow(self, path: str, record: type[_R], current: Callable[[], _R], deadline: float | None, *,
                give_up: bool = False) -> Iterator[tuple[_R | None, APIError | None]]:
        """The stream of a job's or a batch's events at ``path``, opened again (with ``Last-Event-ID``) whenever it
        breaks: ``(record, None)`` at each event, ``(None, None)`` at each keepalive, ``(None, error)`` each time it
        could not be read (then it is opened again, after a backoff that grows with the failures in a row; ``give_up``:
        the error is raised once it could not be read ``retries`` times in a row). Ends with the record that has
        ended, or as the deadline passes."""
        name = record.__name__.lower()
        last_id: str | None = None
        failures = 0
        while deadline is None or time.monotonic() < deadline:
            headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
            read = self.timeout[1] + STREAM_READ_SECONDS
            if deadline is not None:
                read = max(min(read, deadline - time.monotonic()), 0.01)
            try:
                with self._send("GET", path, headers=headers, stream=True, read_timeout=read) as response:
                    if response.status_code == 204:
                        # It had ended when the stream was opened again: as it is now.
                        yield current(), None
                        return
                    for event, event_id, data in _stream_events(response):
                        if event is None:
                            yield None, None
                        elif event == name and data:
                            last_id, failures = event_id or last_id, 0
                            seen = record(_json_object(data, self.url, "sent an event"))
                            yield seen, None
                            if _ended(seen):
                                return
                raise ServiceUnavailable(f"the stream from {self.url} ended before the {name} did", code="unreachable")
            except (ServiceUnavailable, requests.RequestException) as exc:
                error = exc if isinstance(exc, APIError) else ServiceUnavailable(
                    f"the stream from {self.url} broke: {_reason(exc)}", code="unreachable")
                failures += 1
                if not _retryable(error) or (give_up and failures > self.retries):
                    raise error from None
                if deadline is not None and time.monotonic() >= deadline:
                    return
                yield None, error
                pause = self._delay(failures, error)
                if deadline is not None:
                    pause = min(pause, max(deadline - time.monotonic(), 0.0))
                time.sleep(pause)

    def _retrying(self, idempotent: bool, attempt: Callable[[int], Any]) -> Any:
        number = 1
        while True:
            try:
                return attempt(number)
            except APIError as exc:
                if not (idempotent and number <= self.retries and _retryable(exc)):
                    raise
                time.sleep(self._delay(number, exc))
            number += 1

    def _delay(self, number: int, exc: APIError) -> float:
        delay = min(self.backoff * 2 ** (number - 1), MAX_BACKOFF)
        delay = random.uniform(delay / 2, delay)  # jitter: clients that failed together do not return together
        return max(delay, getattr(exc, "retry_after", None) or 0.0)

    def _save(self, opened: Callable[[int], requests.Response], path: Path, sha256: str | None) -> Path:
        """``path``, holding what the answer ``opened`` gives once it is whole (and matches ``sha256``); retried."""
        def attempt(number: int) -> None:
            with opened(number) as response:
                digest = hashlib.sha256()
                # Beside the target, so the rename that publishes it is atomic; created as any new file would be
                # (the umask applies), since it becomes the result.
                partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                try:
                    with os.fdopen(fd, "wb") as out:
                        try:
                            for chunk in response.iter_content(CHUNK):
                                digest.update(chunk)
                                out.write(chunk)
                        except requests.RequestException as exc:
                            raise ServiceUnavailable(f"the download from {self.url} broke off: {_reason(exc)}",
                                                     code="unreachable") from exc
                    if sha256 and digest.hexdigest() != sha256:
                        raise ChecksumMismatch(f"the file downloaded for {path.name} does not match the job's sha256")
                    os.replace(partial, path)
                finally:
                    partial.unlink(missing_ok=True)

        self._retrying(True, attempt)
        return path


# --- batches (``client.batches``) ----------------------------------------------------------------------

class Batches:
    """Batches of one fluxhook (``/v1/batches``), as ``client.batches``: many jobs of one model made by one request,
    each item a job like any other (``client.get`` shows it, with ``batch_id`` and ``batch_index``;
    ``client.list(batch_id=...)`` lists them). A key's batch items wait behind its own single jobs."""

    def __init__(self, client: Client):
        self._client = client

    def __repr__(self) -> str:
        return f"Batches({self._client.url!r})"

    def create(self, model: str, items: Iterable[Mapping[str, Any]], *, metadata: Mapping[str, Any] | None = None,
               notify_url: str | None = None, notify_events: builtins.list[str] | None = None,
               cancel_after: str | None = None, idempotency_key: str | None = None,
               end_user: str | None = None) -> Batch:
        """Make a batch of ``model`` (``POST /v1/batches``); each item is ``{"input": {BFL's request fields},
        "metadata"?: {...}, "end_user"?: "..."}``, 1 to 10,000 of them, sent as one JSON body; ``end_user`` names the
        end user of every item that names none of its own.

        Every item is checked as ``submit`` checks one before anything is made: ``InvalidRequest`` (``invalid_items``)
        names each refused item by its index, and nothing is made. ``notify_url`` gets ``batch.ended`` (the batch)
        when its last item ends, and the ``job.*`` messages of its items ``notify_events`` asks for (``job.submitted``,
        ``job.progress``, ``job.ended``); ``cancel_after`` (``30s``, ``5m``, ``1h30m``) each item's deadline, as
        ``submit``'s. Retried through its ``Idempotency-Key`` (one is made when none is given): a retry never makes a
        second batch.
        """
        # One JSON body: notify_url (which may hold the app's own token) and metadata stay out of the URL, and so out
        # of every access log on the way.
        body: dict[str, Any] = {"model": model, "items": [dict(item) for item in items]}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if notify_url is not None:
            body["notify_url"] = notify_url
        if notify_events is not None:
            body["notify_events"] = builtins.list(notify_events)
        if end_user is not None:
            body["end_user"] = end_user
        headers = {"Cancel-After": cancel_after} if cancel_after is not None else {}
        return Batch(self._client._json("POST", "/v1/batches", json=body, headers=headers,
                                        idempotency_key=_key(idempotency_key)))

    def get(self, batch_id: str) -> Batch:
        """One batch, its counts as they are now (``GET /v1/batches/{id}``); ``NotFound`` for another key's."""
        return Batch(self._client._json("GET", f"/v1/batches/{_part(batch_id)}"))

    def list(self, *, page_size: int = 100) -> Iterator[Batch]:
        """Every batch the token sees (an app key its own, an admin token all), newest first, fetched a page at a
        time (``GET /v1/batches``)."""
        for body, _ in self._client._paged("/v1/batches", {"limit": page_size}, None):
            yield from (Batch(batch) for batch in body.get("batches") or [])

    def results(self, batch_id: str) -> Iterator[dict]:
        """Each item's result, in the items' order (``GET /v1/batches/{id}/results``): ``{"index", "job_id",
        "status", "metadata"`` (the item's own, as given: what maps a result back to the app's item), ``"image"`` or
        ``"video"`` (with a signed ``url``, ``None`` until stored), ``"cost", "error"}``.

        Read a line at a time as the iteration reaches it: memory stays flat whatever the batch's size. A dropped
        connection is opened again after the usual backoff, ``retries`` times in a row at most, going on after the
        last result yielded. A batch still running gives each item as it is now.
        """
        client, path = self._client, f"/v1/batches/{_part(batch_id)}/results"
        last, failures = -1, 0
        while True:
            try:
                with client._retrying(True, lambda number: client._send("GET", path, stream=True)) as response:
                    for raw in response.iter_lines():
                        if not raw:
                            continue
                        result = _json_object(raw, client.url, "answered a results line")
                        index = result.get("index")
                        if isinstance(index, int):
                            if index <= last:
                                continue  # yielded before the connection dropped
                            last = index
                        failures = 0
                        yield result
                return
            except requests.RequestException as exc:
                failures += 1
                error = ServiceUnavailable(f"the results from {client.url} broke off: {_reason(exc)}",
                                           code="unreachable")
                if failures > client.retries:
                    raise error from None
                time.sleep(client._delay(failures, error))

    def download(self, batch_id: str, target: str | os.PathLike | IO[bytes], *,
                 name_from: str | None = None) -> Path | IO[bytes]:
        """Save the ZIP of the batch's stored files (``GET /v1/batches/{id}/results?format=zip``): each file named by
        its item's index (``00042.png``), or with ``name_from`` from that field of its item's metadata (``sku-1.png``,
        as ``fluxhook batch download --name-from`` names them), then ``results.jsonl`` (as ``results`` gives it); a
        batch still running gives what is stored so far. Streamed a piece at a time: memory stays flat whatever its
        size.

        ``target``: a path, where the archive appears whole or not at all (a download that breaks off is tried again
        from its start); or a binary file open for writing, which a download that breaks off leaves holding part of
        the archive (``ServiceUnavailable``). Returns ``target`` (a path as a ``Path``).
        """
        client, path = self._client, f"/v1/batches/{_part(batch_id)}/results"

        def opened(number: int) -> requests.Response:
            params = {"format": "zip", **({"name_from": name_from} if name_from is not None else {})}
            response = client._send("GET", path, params=params, stream=True)
            kind = response.headers.get("Content-Type", "").split(";")[0].strip()
            if kind != "application/zip":
                response.close()
                raise ServiceUnavailable(f"{client.url} answered {response.status_code} with {kind or 'no content type'}"
                                         ", not a ZIP; is the URL fluxhook's?", code="not_fluxhook",
                                         status=response.status_code)
            return response

        if isinstance(target, (str, os.PathLike)):
            return client._save(opened, Path(target), None)
        with client._retrying(True, opened) as response:
            try:
                for chunk in response.iter_content(CHUNK):
                    target.write(chunk)
            except requests.RequestException as exc:
                raise ServiceUnavailable(f"the download from {client.url} broke off: {_reason(exc)}; what was "
                                         "written is part of the archive only", code="unreachable") from exc
        return target

    def cancel(self, batch_id: str) -> Batch:
        """Cancel the batch (``POST /v1/batches/{id}/cancel``): each item not yet sent ends ``aborted`` (nothing
        charged); each one BFL has goes on and is stored as any item is (it is paid for: BFL has no cancel), and the
        batch ends (``ended``) once they have. The batch as canceled, its counts as they stand; ``Conflict``
        (``already_ended``) for a batch that had ended or was canceled before, which stays as it was."""
        return Batch(self._client._cancel(f"/v1/batches/{_part(batch_id)}/cancel", lambda: self.get(batch_id)))

    def events(self, batch_id: str) -> Iterator[Batch]:
        """The batch within a second, then again each time its counts change (``GET /v1/batches/{id}/events``, at
        most once a second), until every item has ended: the last one yielded has ended. A dropped connection is
        opened again (with ``Last-Event-ID``), after the usual backoff, ``retries`` times in a row at most."""
        return self._client._events(f"/v1/batches/{_part(batch_id)}/events", Batch, lambda: self.get(batch_id))

    def wait(self, batch_id: str, timeout: float | None, *,
             on_update: Callable[[Batch | None, APIError | None], None] | None = None) -> Batch:
        """The batch once every item has ended, followed on its event stream; ``WaitTimeout`` (with ``batch`` as
        last seen) after ``timeout`` seconds (``None``: as long as it takes).

        While it waits, fluxhook being unreachable for a while is not an error: the batch goes on. ``on_update(batch,
        error)`` is called after every event and every keepalive (at least every 15 s), with the batch as last seen
        (``None`` before the first) and the error when fluxhook could not be reached; its last call is with the ended
        batch, so a progress bar drawn from it ends full.
        """
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be more than 0 seconds (or None)")
        deadline = None if timeout is None else time.monotonic() + timeout
        batch: Batch | None = None
        error: APIError | None = None
        followed = self._client._follow(f"/v1/batches/{_part(batch_id)}/events", Batch, lambda: self.get(batch_id),
                                        deadline)
        for seen, error in followed:
            batch = seen or batch
            if on_update:
                on_update(batch, error)
            if batch is not None and batch.ended:
                return batch
        if batch is None:
            raise error or WaitTimeout(f"no answer about batch {batch_id} within {timeout:g} s",
                                       batch=Batch(id=batch_id))
        raise WaitTimeout(f"batch {batch_id} is still {batch.status} after {timeout:g} s "
                          f"({_ended_items(batch)} of {(batch.counts or {}).get('total')} items ended)", batch=batch)


def _stream_events(response: requests.Response) -> Iterator[tuple[str | None, str | None, str | None]]:
    """A text/event-stream answer read as it comes: each event's name, id and data, and ``(None, None, None)`` for
    each comment (a keepalive), so a reader learns the stream is alive."""
    event: str | None = None
    event_id: str | None = None
    data: list[str] = []
    for raw in response.iter_lines():
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            yield None, None, None
            continue
        if line:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
            continue
        if event and data:
            yield event, event_id, "\n".join(data)
        event, data = None, []


def _json_object(raw: str | bytes, url: str, what: str) -> dict:
    """An event's data or a line of a batch's results (``what`` it was): a JSON object, or ``ServiceUnavailable`` for
    what is not fluxhook's."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ServiceUnavailable(f"{url} {what} that is not a JSON object; is the URL fluxhook's?",
                                 code="not_fluxhook", status=200)
    return value


def _ended(record: Job | Batch) -> bool:
    return record.terminal if isinstance(record, Job) else record.ended


def _ended_items(batch: Mapping[str, Any]) -> int:
    counts = batch.get("counts") or {}
    return sum(n for status, n in counts.items() if status in TERMINAL and isinstance(n, int))


def _error_from(response: requests.Response) -> APIError:
    """The API's ``{"error": {"code", "message"}}`` as the exception for its status."""
    status = response.status_code
    cls = _ERROR_BY_STATUS.get(status) or (InvalidRequest if 400 <= status < 500 else ServiceUnavailable)
    code: str | None = None
    message = ""
    items: list[dict] = []
    try:
        error = response.json()["error"]
        if isinstance(error["code"], str) and isinstance(error["message"], str):
            code, message = error["code"], error["message"]
            items = [item for item in error.get("items") or [] if isinstance(item, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    if code is None:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
        code, message = f"http_{status}", f"the server answered {status} ({kind}), not a fluxhook error; " \
                                          "is the URL right?"
    if cls is RateLimited:
        return RateLimited(message, code=code, status=status, retry_after=_retry_after(response))
    if cls is InsufficientCredits:
        return InsufficientCredits(message, code=code, status=status, retry_after=_retry_after(response))
    refused = cls(message, code=code, status=status)
    refused.items = items
    return refused


def _end_users_day(exc: InsufficientCredits) -> bool:
    """Whether a 402 is an end user's spent day: of fluxhook's ``budget_exceeded`` answers, the one that says when
    (its key's and the service's days say nothing)."""
    return exc.code == "budget_exceeded" and exc.retry_after is not None


def _retryable(exc: APIError) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after is None or exc.retry_after <= MAX_RETRY_AFTER
    if isinstance(exc, Conflict):
        return exc.code == "idempotency_key_in_use"  # the first request's answer will be replayed
    # A 2xx that is not fluxhook's JSON stays so.
    return isinstance(exc, ServiceUnavailable) and not (exc.status and exc.status < 300)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None  # absent, or an HTTP date: the backoff decides


def _key(given: str | None) -> str:
    if given is None:
        return str(uuid.uuid4())
    if not 1 <= len(given) <= 255 or not all(" " <= c <= "~" for c in given):
        raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters (as the server accepts)")
    return given


def _list_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """``list``'s filters as ``GET /v1/jobs``'s query: the ones given, by the API's names; an unknown one refused
    here, as the server would refuse it."""
    unknown = sorted(set(filters) - set(ListFilters.__annotations__))
    if unknown:
        raise TypeError(f"unknown filter {unknown[0]!r}: list() and pages() take {', '.join(ListFilters.__annotations__)}")
    params = {}
    for name, value in filters.items():
        if value is None or value == "":
            continue
        params[_QUERY_NAMES.get(name, name)] = _instant(value, name) if name in _QUERY_NAMES else value
    return params


def _instant(value: When, name: str) -> str:
    """``since``/``until`` as the API's ``from``/``to`` read them: an aware datetime in UTC to the microsecond, a
    date as the day (the server takes it as the whole UTC day), a string as given. A naive datetime is refused:
    the server would read it as UTC, and ``datetime.now()`` is the machine's local time."""
    if isinstance(value, datetime):  # before date: a datetime is a date too
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} needs a timezone-aware datetime, such as datetime.now(timezone.utc), "
                             f"not {value.isoformat()!r} (a naive one could be local time or UTC)")
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a datetime, a date or a string such as '2026-11-21T10:00:00Z', "
                    f"not {type(value).__name__}")


def _part(value: str) -> str:
    """``value`` as one segment of a path, whatever it holds: '/' encoded, and '.' or '..' encoded too, which a URL
    would otherwise resolve away (an end user may be named so)."""
    part = quote(str(value), safe="")
    return "%2E" * len(part) if part in (".", "..") else part


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (is it running, and is the URL right?)"
    return type(exc).__name__
