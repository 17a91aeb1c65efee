"""Proof that a callback comes from BFL for this task (pure, constant-time comparisons).

BFL's SDK echoes the task's ``webhook_secret`` verbatim in ``X-Webhook-Secret``; one BFL
guide describes ``X-BFL-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` instead.
Either proves the secret; every header that is present must be right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Iterable, Protocol

from fluxhook.core.errors import Unauthorized

SECRET_HEADER = "X-Webhook-Secret"
SIGNATURE_HEADER = "X-BFL-Signature"
_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")


def body_signature(secret: str, body: bytes) -> str:
    """The ``X-BFL-Signature`` value for ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Headers(Protocol):
    """A request's headers as pairs: a mapping, or Werkzeug's Headers (which is no Mapping)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def verify_callback(headers: Headers, body: bytes, secrets: Iterable[str], *, required: bool) -> bool:
    """Check the secret headers against any of ``secrets``; return whether a secret was proven.

    Raises Unauthorized when a header is wrong, or when none is present and ``required``.
    """
    named = {name.lower(): value for name, value in headers.items()}  # header names ignore case
    candidates = [s for s in secrets if s]
    given_secret = named.get(SECRET_HEADER.lower())
    given_signature = named.get(SIGNATURE_HEADER.lower())
    if given_secret is None and given_signature is None:
        if required:
            raise Unauthorized("this callback URL requires the webhook secret")
        return False
    if not candidates:
        raise Unauthorized("no webhook secret is configured for this callback URL")
    if given_secret is not None and not any(_same(given_secret, s) for s in candidates):
        raise Unauthorized("the webhook secret does not match")
    if given_signature is not None:
        match = _SIGNATURE.fullmatch(given_signature.strip())
        if not match or not any(_same(given_signature.strip().lower(), body_signature(s, body)) for s in candidates):
            raise Unauthorized("the webhook signature does not match")
    return True


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
