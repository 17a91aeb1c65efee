"""Which URLs fluxhook may notify (pure): the one rule for ``NOTIFY_URL``, a job's ``notify_url`` and an app's
``webhook_url`` on the BFL-compatible API, each caller wording a refusal its own way (``Wording``).

A notify URL is a string of at most ``MAX_NOTIFY_URL`` printable ASCII characters without spaces (as sent, so
percent-encoded), starting ``http://`` or ``https://``, whose host ``NOTIFY_HOST_ALLOWLIST`` covers
(``hosts.check_url``: https on port 443 at public addresses, or an exact ``host:port`` listed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fluxhook.core.errors import HostNotAllowed, InvalidRequest
from fluxhook.core.hosts import HostPattern, check_url

if TYPE_CHECKING:
    from fluxhook.core.config import Config

MAX_NOTIFY_URL = 2048
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Wording:
    """A caller's words for a refused URL: ``malformed`` (not a string of printable ASCII starting http:// or
    https://), ``too_long`` (over ``MAX_NOTIFY_URL`` characters) and ``not_allowed``, where ``{reason}`` stands
    for why the allowlist refuses it."""

    malformed: str
    too_long: str
    not_allowed: str


def field_wording(field: str) -> Wording:
    """The API's words for a URL sent in the request's field ``field`` (``notify_url``, ``webhook_url``)."""
    malformed = f"'{field}' must be an http(s) URL of at most {MAX_NOTIFY_URL} characters"
    return Wording(malformed=malformed, too_long=malformed,
                   not_allowed=f"'{field}' is not allowed: {{reason}} (NOTIFY_HOST_ALLOWLIST)")


def check_form(value: object, wording: Wording) -> str:
    """``value``, if it has a notify URL's form (whatever its host); InvalidRequest in ``wording`` otherwise.

    The first half of ``check_notify_url``, for a caller that checks something else before the host.
    """
    if not isinstance(value, str):
        raise InvalidRequest(wording.malformed)
    if len(value) > MAX_NOTIFY_URL:
        raise InvalidRequest(wording.too_long)
    if not _PRINTABLE.fullmatch(value) or not value.startswith(("https://", "http://")):
        raise InvalidRequest(wording.malformed)
    return value


def check_notify_url(value: object, allowlist: tuple[HostPattern, ...], wording: Wording) -> str:
    """``value``, if fluxhook may notify it: a notify URL's form (``check_form``) on a host ``allowlist`` covers.

    Raises InvalidRequest in ``wording`` otherwise.
    """
    url = check_form(value, wording)
    try:
        check_url(url, allowlist)
    except HostNotAllowed as exc:
        raise InvalidRequest(wording.not_allowed.format(reason=exc.message)) from None
    return url


# A job's notify_url refused, in the API's words.
_JOB_WORDING = field_wording("notify_url")


def requested_url(value: object, config: "Config") -> str | None:
    """The notify_url to store on a new job: the request's own (validated), else ``NOTIFY_URL``, else None.

    Raises InvalidRequest for a URL that is not http(s), too long, outside ``NOTIFY_HOST_ALLOWLIST``,
    or when no ``NOTIFY_SECRET`` is set to sign with.
    """
    if value is None:
        return config.notify_url
    check_form(value, _JOB_WORDING)  # a malformed URL is named before a missing secret
    if not config.notify_secret:
        raise InvalidRequest("'notify_url' cannot be used: this service has no NOTIFY_SECRET to sign "
                             "notifications with (its operator must set one)")
    return check_notify_url(value, config.notify_host_allowlist, _JOB_WORDING)
