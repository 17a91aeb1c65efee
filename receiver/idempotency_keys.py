"""``Idempotency-Key`` : which requests count as the same, and whose key it is, read from the request (pure)."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from fluxhook.core import json_body
from fluxhook.core.errors import InvalidIdempotencyKey, InvalidRequest
from fluxhook.core.json_body import json_chunks
from fluxhook.store.idempotency import KeyUse

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def keeps(status: int) -> bool:
    """Whether an answer is kept for replay: only a success (Stripe's rule). A request refused for its
    input, its credentials or the budget did nothing; an error on our side (5xx) may be retried."""
    return 200 <= status < 300


def check_key(value: str) -> str:
    """The key as sent; InvalidIdempotencyKey unless it is 1 to 255 printable ASCII characters."""
    if not value or len(value) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidIdempotencyKey(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return value


def fingerprint(method: str, path: str, body: bytes | Parsed) -> str:
    """What must be the same for a repeat to count as the first request, key order and spacing aside: ``body`` as sent
    or as already parsed (``Parsed``) has the same digest, the parsed value hashed as canonical JSON a piece at a time
    (no copy of a large body is made for it)."""
    digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n")
    if isinstance(body, Parsed):
        value = body.value
    else:
        try:
            value = json_body.loads(body)
        except InvalidRequest:
            digest.update(body)  # not JSON: compared byte for byte (the view refuses it anyway)
            return digest.hexdigest()
    for piece in json_chunks(value, sort_keys=True, ensure_ascii=False):
        digest.update(piece.encode())
    return digest.hexdigest()


class Parsed(NamedTuple):
    """A request body already parsed as JSON."""

    value: Any


def key_use(token: str, key: str, method: str, path: str, body: bytes | Parsed) -> KeyUse:
    """A request with bearer ``token``'s use of ``key`` (checked)."""
    scope, digest = named(token, key)
    return KeyUse(scope=scope, key=digest, fingerprint=fingerprint(method, path, body))


def named(token: str, key: str) -> tuple[str, str]:
    """What names bearer ``token``'s use of ``key`` (checked) in Redis, its body aside: the digests of both."""
    return _digest(token.encode()), _digest(check_key(key).encode())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
