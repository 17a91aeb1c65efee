"""What fluxhook keeps in Redis that would give its reader something for a while, sealed with a key derived from
SECRET_KEY: BFL's delivery URLs (their ``sig=`` opens a result for minutes to hours) and the callback bodies that
carry them. Redis's memory, its AOF and its replicas then hold nothing a reader could fetch.

Sealing is deterministic (AES-SIV): the same text under the same key seals the same, so the store can compare a
sealed field with a value in place (a download's result is recorded only while the job's URL is still the one it
fetched). Every key of a rotation (``SECRET_KEY_PREVIOUS``) still opens what it sealed, and ``sealings`` gives each
key's seal of a value, so a comparison holds across a rotation too. What an older release kept in the clear is
sealed once by the migration (``store.migrations``, with ``is_sealed``): a value without the mark opens to nothing.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

_SALT = b"fluxhook-sealed-in-redis"
# Marks a sealed value: no URL begins so, and no callback body (JSON) begins with a NUL.
_TEXT_MARK = "s1:"
_BYTES_MARK = b"\x00s1"


class Sealer:
    """Seals and opens values with keys derived from ``secret_keys`` (oldest first, as ``Config.secret_keys``)."""

    def __init__(self, secret_keys: tuple[str, ...]):
        # Newest first: it seals; each older one still opens.
        self._keys = [AESSIV(hashlib.sha512(_SALT + key.encode()).digest()) for key in reversed(secret_keys)]

    def seal(self, data: bytes) -> bytes:
        return _BYTES_MARK + self._keys[0].encrypt(data, None)

    def open(self, kept: bytes) -> bytes | None:
        """What ``seal`` sealed; None if no key opens it."""
        if not kept.startswith(_BYTES_MARK):
            return None
        for key in self._keys:
            try:
                return key.decrypt(kept[len(_BYTES_MARK):], None)
            except InvalidTag:
                continue
        return None

    def seal_text(self, text: str) -> str:
        return self._text(self._keys[0], text)

    def open_text(self, kept: str) -> str | None:
        """What ``seal_text`` sealed; None if no key opens it."""
        if not kept.startswith(_TEXT_MARK):
            return None
        try:
            sealed = base64.urlsafe_b64decode(kept[len(_TEXT_MARK):])
        except ValueError:
            return None
        opened = self.open(_BYTES_MARK + sealed)
        return None if opened is None else opened.decode()

    def sealings(self, text: str) -> list[str]:
        """Each way ``text`` may be kept: sealed by each key of the rotation."""
        return [self._text(key, text) for key in self._keys]

    @staticmethod
    def is_sealed(kept: str | bytes) -> bool:
        """Whether ``kept`` is a sealed value (``seal`` or ``seal_text``'s, whichever key), not one kept in the clear."""
        return kept.startswith(_BYTES_MARK) if isinstance(kept, bytes) else kept.startswith(_TEXT_MARK)

    @staticmethod
    def _text(key: AESSIV, text: str) -> str:
        return _TEXT_MARK + base64.urlsafe_b64encode(key.encrypt(text.encode(), None)).decode()
