"""``Idempotency-Key`` : which requests count as the same, and whose key it is, read from the request (pure)."""

from __future__ import annotations

import hashlib
import json

from fluxhook import jsonbody
from fluxhook.errors import InvalidIdempotencyKey, InvalidRequest
from fluxhook.store.idempotency import Claim

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255




def check_key(value: str) -> str:
    """The key as sent; InvalidIdempotencyKey unless it is 1 to 255 printable ASCII characters."""
    if not value or len(value) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidIdempotencyKey(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return value


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What must be the same for a repeat to count as the first request: key order and spacing do not matter."""
    try:
        canonical = json.dumps(jsonbody.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        content = canonical.encode()
    except InvalidRequest:
        content = body  # not JSON: compared byte for byte (the view refuses it anyway)
    return _digest(method.encode() + b" " + path.encode() + b"\n" + content)


def claim(token: str, key: str, method: str, path: str, body: bytes) -> Claim:
    """The claim a request with bearer ``token`` makes on ``key`` (checked)."""
    return Claim(scope=_digest(token.encode()), key=_digest(check_key(key).encode()),
                 fingerprint=fingerprint(method, path, body))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
