"""Client for BFL's API: submit a task and read its result, with timeouts, retries and clear errors.

One client per BFL account (``core.accounts``): its key goes only to its own endpoint or to a ``polling_url``
whose host is in its allowed hosts (``API_HOST_ALLOWLIST``) and is not another configured account's endpoint;
any other polling URL is replaced by ``{base}/v1/get_result``. A poll that BFL redirects (to a regional host)
is followed here, hop by hop, at most ``MAX_REDIRECTS`` times and only to such hosts: requests would carry
``x-key`` to wherever a redirect points.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable
from urllib.parse import quote, urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from fluxhook.bfl.reports import parse_cost, words
from fluxhook.core.accounts import Account
from fluxhook.core.backoff import backoff_delay, retry_after_seconds
from fluxhook.core.bfl_limits import ATTEMPTS, EXCHANGE_DEADLINE, TIMEOUT
from fluxhook.core.catalog import without_webhook
from fluxhook.core.config import Config
from fluxhook.core.errors import (
    BFLAccountDown,
    BFLAuthFailed,
    BFLError,
    BFLRateLimited,
    BFLRedirectRefused,
    BFLRejected,
    BFLSubmissionUncertain,
    BFLUnavailable,
    HostNotAllowed,
    InsufficientCredits,
)
from fluxhook.core.hosts import Target, check_url
from fluxhook.core.json_body import StreamedJSON
from fluxhook.core.models import MODEL
from fluxhook.net.deadlines import within
from fluxhook.net.http_client import HTTPClient, check_resolves_public

_RETRY_STATUSES = (500, 502, 503, 504)
MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)


class BFLClient:
    """BFL's task API at one account's endpoint (``account``; the first configured when None)."""

    def __init__(self, config: Config, http: HTTPClient, *, attempts: int = ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep, account: Account | None = None):
        self.account = account or config.accounts[0]
        self.catalog = config.catalog
        self.api_base = self.account.api_base
        self.http = http
        self.attempts = attempts
        self.sleep = sleep
        # The base URL is the operator's own choice, so it is trusted like an exact allowlist entry.
        self._base = _endpoint(self.api_base)
        # Another account's endpoint is never this account's host, whatever the allowlist's patterns cover: a tracked
        # task's polling_url is the app's word, and one account's key must not reach another account's endpoint.
        self._others = frozenset(_place(_endpoint(a.api_base)) for a in config.accounts
                                 if a.name != self.account.name) - {_place(self._base)}

    def submit(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a task to ``/v1/{model}``; return BFL's ``{"id", "polling_url"}`` and its price as ``cost``
        (a ``costs.Cost``, None when BFL stated none usably)."""
        if not MODEL.fullmatch(model):
            raise BFLRejected(f"invalid model name {model[:64]!r}")
        # A model whose schema refuses webhook fields (BFL's tools) gets none: its task is followed by polling.
        body = without_webhook(self.catalog.get(model), body)
        data = self._request("POST", self._base, f"{self.api_base}/v1/{model}", json=body)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise BFLUnavailable("BFL's answer to the submission has no task id")
        return {"id": data["id"], "polling_url": data.get("polling_url") if isinstance(data.get("polling_url"), str) else None,
                "cost": parse_cost(data)}

    def get_result(self, bfl_id: str, polling_url: str | None = None) -> dict[str, Any]:
        """GET the task's current state from its polling URL (if allowed) or ``/v1/get_result``."""
        target, url = self.poll_target(bfl_id, polling_url)
        data = self._request("GET", target, url, not_found_ok=True)
        if not isinstance(data, dict):
            raise BFLUnavailable("BFL's result answer is not a JSON object")
        return data

    def credits(self) -> float:
        """GET ``/v1/credits``: the credits left on the account of ``BFL_API_KEY``."""
        data = self._request("GET", self._base, f"{self.api_base}/v1/credits")
        credits = data.get("credits") if isinstance(data, dict) else None
        if isinstance(credits, bool) or not isinstance(credits, (int, float)) or not math.isfinite(credits):
            raise BFLUnavailable("BFL's credits answer has no number of credits")
        return float(credits)

    def poll_target(self, bfl_id: str, polling_url: str | None) -> tuple[Target, str]:
        """Where to poll: the task's own ``polling_url`` when its host is allowed, else the base URL."""
        if polling_url:
            try:
                target = self._mine(check_url(polling_url, self.account.api_host_allowlist))
                if not target.exact:
                    check_resolves_public(target.host, target.port)
                return target, polling_url
            except HostNotAllowed:
                pass  # the key must not go there: BFL's own base URL answers for every task
        return self._base, f"{self.api_base}/v1/get_result?id={quote(bfl_id, safe='')}"

    def _mine(self, target: Target) -> Target:
        """``target`` if it is none of the other accounts' endpoints; HostNotAllowed otherwise."""
        if _place(target) in self._others:
            raise HostNotAllowed(f"{target.host}:{target.port} is another BFL account's endpoint")
        return target

    def _request(self, method: str, target: Target, url: str, *, json: Any = None, not_found_ok: bool = False) -> Any:
        headers = {"accept": "application/json"}
        if self.account.api_key:
            headers["x-key"] = self.account.api_key
        for attempt in range(1, self.attempts + 1):
            try:
                with within(EXCHANGE_DEADLINE):
                    response = self._send(method, target, url, json, headers)
            except (HostNotAllowed, requests.RequestException) as exc:
                error = _unanswered(method, exc)
            else:
                if response.status_code < 300 or (not_found_ok and response.status_code == 404):
                    try:
                        return response.json()
                    except ValueError:
                        error = BFLUnavailable(f"BFL answered {response.status_code} without JSON")
                else:
                    error = _refused(method, response)
            if attempt < self.attempts:
                self.sleep(backoff_delay(attempt, base=0.5, cap=4))
        raise error

    def _send(self, method: str, target: Target, url: str, json: Any, headers: dict) -> requests.Response:
        """One request; a GET that BFL redirects is followed to allowed hosts only (HostNotAllowed otherwise)."""
        for _ in range(MAX_REDIRECTS + 1):
            # A submission's body may carry 100 MB of images: sent as it is encoded, not encoded whole first.
            body, sent = (None, headers) if json is None else \
                (StreamedJSON(json), {**headers, "content-type": "application/json"})
            response = self.http.session_for(target).request(
                method, url, data=body, headers=sent, timeout=TIMEOUT, allow_redirects=False
            )
            if method != "GET" or response.status_code not in _REDIRECTS:
                return response
            response.close()
            target = self._mine(redirect_target(url, response.headers.get("Location", ""),
                                                self.account.api_host_allowlist))
            url = target.url
        raise BFLError(f"BFL redirected a request more than {MAX_REDIRECTS} times")


def _unanswered(method: str, exc: HostNotAllowed | requests.RequestException) -> BFLError:
    """The error of a request that got no answer: raised here when it must not be tried again, else returned
    for another try."""
    if isinstance(exc, HostNotAllowed):
        # A redirect to a host the key must not go to, or an address that changed between the
        # allowlist check and the connection: nothing was sent there.
        raise BFLRedirectRefused(f"refused to contact BFL there: {exc.message}") from exc
    if method == "POST":
        if isinstance(exc, requests.ReadTimeout):
            # BFL may have accepted the task and be slow to say so: sending it again could pay twice.
            raise BFLSubmissionUncertain("BFL did not answer the submission in time; "
                                         "it was not sent again") from None
        if never_sent(exc):
            # Not connected, so not sent: another account may take the task now.
            raise BFLAccountDown(f"BFL unreachable: {type(exc).__name__}") from None
        # Cut after the connection was made: BFL may have the task, so it is not sent again.
        raise BFLSubmissionUncertain(f"the connection to BFL broke during the submission "
                                     f"({type(exc).__name__}); it was not sent again") from None
    return BFLUnavailable(f"BFL unreachable: {type(exc).__name__}")


def _refused(method: str, response: requests.Response) -> BFLError:
    """The error of an answer that is not a success: raised here when it must not be tried again, else returned
    for another try."""
    if response.status_code == 504 and method == "POST":
        # A gateway gave up waiting: BFL may have the task, so it is not sent again.
        raise BFLSubmissionUncertain("BFL's gateway timed out on the submission (504); "
                                     "it was not sent again")
    if response.status_code >= 500 and method == "POST":
        # BFL is out of capacity or failing: the account cools down and the job waits in line, for another account or
        # for this one's recovery, not sent again here. Out of capacity (503), it stays away 5 s unless BFL says.
        header, full = response.headers.get("Retry-After"), response.status_code == 503
        raise BFLAccountDown(f"BFL answered {response.status_code}{_detail(response)}",
                             retry_after=retry_after_seconds(header, 5.0) if header or full else None,
                             out_of_capacity=full)
    if response.status_code in _RETRY_STATUSES:
        return BFLUnavailable(f"BFL answered {response.status_code}")
    raise error_for(response)


def _endpoint(api_base: str) -> Target:
    base = urlsplit(api_base)
    return Target(url=api_base, scheme=base.scheme, host=(base.hostname or "").lower(),
                  port=base.port or (443 if base.scheme == "https" else 80), exact=True)


def _place(target: Target) -> tuple[str, int]:
    return target.host, target.port


def never_sent(exc: requests.RequestException) -> bool:
    """Whether a request failed before any of it reached the server: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def redirect_target(current: str, location: str, allowlist) -> Target:
    """Where a redirect from ``current`` to ``location`` leads, if the API key may go there (https, an allowed
    host resolving to public addresses, or an exact ``host:port`` entry); HostNotAllowed otherwise."""
    if not location:
        raise HostNotAllowed("a redirect without a Location")
    target = check_url(urljoin(current, location), allowlist)
    if not target.exact:
        check_resolves_public(target.host, target.port)
    return target


def error_for(response: requests.Response) -> BFLError:
    """The error for one of BFL's refusals, its message saying what to fix."""
    status = response.status_code
    detail = _detail(response)
    if status == 402:
        return InsufficientCredits(f"BFL has no credits left on this account{detail}")
    if status == 429:
        return BFLRateLimited(
            f"BFL has too many tasks in flight{detail}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), 5.0),
        )
    if status in (401, 403):
        return BFLAuthFailed(f"BFL refused the API key ({status})")
    submission = response.request.method == "POST"
    if status == 404 and submission:
        # A submission goes to /v1/{model}: BFL knows no such path, so no such model.
        model = urlsplit(response.url).path.rsplit("/", 1)[-1]
        return BFLRejected(f"BFL has no model {model[:64]!r} (it answered 404 to POST /v1/{model[:64]}): "
                           "check 'model', such as 'flux-2-pro' or 'flux-kontext-pro'",
                           bfl_status=status, detail=_raw_detail(response))
    if status == 422 and submission:
        return BFLRejected(f"BFL refused the input (422){detail}: fix these fields of 'input'",
                           bfl_status=status, detail=_raw_detail(response))
    if status in (400, 404, 405, 413, 422):
        return BFLRejected(f"BFL refused the request ({status}){detail}", bfl_status=status,
                           detail=_raw_detail(response))
    return BFLError(f"BFL answered {status}{detail}")


def _raw_detail(response: requests.Response):
    """BFL's ``detail`` as it sent it (a string, or FastAPI's list of field errors); None without one."""
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _detail(response: requests.Response) -> str:
    """``: `` and BFL's ``detail`` in words (its field errors as ``prompt: Field required``), or nothing."""
    said = words(_raw_detail(response))
    return f": {said[:300]}" if said else ""
