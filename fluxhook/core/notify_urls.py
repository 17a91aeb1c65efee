"""Which URLs fluxhook may notify (pure): the one rule for ``NOTIFY_URL``, a job's ``notify_url`` and an app's
``webhook_url`` on the BFL-compatible API, each caller wording a refusal its own way (``Wording``).

A notify URL is a string of at most ``MAX_NOTIFY_URL`` printable ASCII characters without spaces (as sent, so
percent-encoded), starting ``http://`` or ``https://``, whose host ``NOTIFY_HOST_ALLOWLIST`` covers
(``hosts.check_url``: https on port 443 at public addresses, or an exact ``host:port`` listed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fluxhook.core.errors import HostNotAllowed, InvalidRequest
from fluxhook.core.hosts import HostPattern, check_url

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
