"""Expiring, HMAC-signed delivery URLs (a stand-in for Azure Blob SAS links)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time


class UrlSigner:
    """Signs `task_id|exp` with a key that lives only as long as this process."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def sign(self, task_id: str, exp: int | str) -> str:
        """Hex HMAC-SHA256 over `task_id|exp`."""
        return hmac.new(self._key, f"{task_id}|{exp}".encode(), hashlib.sha256).hexdigest()

    def expiry(self, ttl: int) -> int:
        """Unix expiry for a link minted now; rounded up so it lives at least `ttl` s."""
        return math.ceil(time.time() + ttl)

    def verify(self, task_id: str, exp: str, sig: str) -> bool:
        """True if `sig` is the signature of `task_id|exp` (expiry not checked)."""
        if not exp.isdigit():
            return False
        return hmac.compare_digest(self.sign(task_id, exp), sig)


def is_expired(exp: int, at: float | None = None) -> bool:
    """A link is valid through its expiry second and refused afterwards (``at``: when asked; None: now)."""
    return (time.time() if at is None else at) > exp
