"""What SECRET_KEY guards, each with keys derived from it, one salt per purpose: tokens and secrets signed with
itsdangerous, and what Redis keeps sealed.

Every function and ``Sealer`` takes the key or, during a rotation (``SECRET_KEY_PREVIOUS``), the keys oldest first:
the newest signs and seals, and every one of them still opens what it signed or sealed.

Signed: a token minted for one purpose (or one job) is worth nothing for any other. A file's link carries the start of
the window it was read in, not the second (``link_times``): every read of a job within a window gives the same URLs,
so a browser's or a CDN's copy of one serves the next page that shows it; each job's windows start at an offset of
their own (``window_offset``), so the copies of a catalog go stale a few at a time, never all together.

Sealed: what fluxhook keeps in Redis that would give its reader something for a while: BFL's delivery URLs (their
``sig=`` opens a result for minutes to hours) and the callback bodies that carry them. Redis's memory, its AOF and its
replicas then hold nothing a reader could fetch. Sealing is deterministic (AES-SIV): the same text under the same key
seals the same, so the store can compare a sealed field with a value in place (a download's result is recorded only
while the job's URL is still the one it fetched); ``sealings`` gives each key's seal of a value, so a comparison holds
across a rotation too. What an older release kept in the clear is sealed once by the migration (``store.migrations``,
with ``is_sealed``): a value without the mark opens to nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import NamedTuple, Sequence, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

_WEBHOOK_URL_SALT = "fluxhook.webhook-url"
_WEBHOOK_SECRET_SALT = "fluxhook.webhook-secret"
_IMAGE_URL_SALT = "fluxhook.image-url"
# The stored files a job may have, each with a link of its own: a token minted for one kind is
# signed with another salt than every other kind's, so a poster's link never opens the video.
FILE_KINDS = ("image", "video", "poster", "draft_cache")
# The query parameters a signed link to a file adds to its URL (``?token=``): a file's route takes them beside its own.
LINK_PARAMETERS = ("token",)

Keys = Union[str, Sequence[str]]


def _keys(secret_key: Keys) -> list[str]:
    return [secret_key] if isinstance(secret_key, str) else list(secret_key)


@functools.lru_cache(maxsize=16)
def _serializer(keys: tuple[str, ...], salt: str, timed: bool = False) -> URLSafeSerializer | URLSafeTimedSerializer:
    # Built once per key list: every callback reads a token, and building one costs as much as using it.
    return (URLSafeTimedSerializer if timed else URLSafeSerializer)(list(keys), salt=salt)


def webhook_token(secret_key: Keys, job_id: str, model: str | None = None) -> str:
    """The token in a job's own callback URL ``/webhooks/bfl/{token}``; with the job's ``model``, which its callback
    then knows without reading the job (the line its download joins)."""
    return _serializer(tuple(_keys(secret_key)), _WEBHOOK_URL_SALT).dumps([job_id, model] if model else job_id)


def webhook_token_claims(secret_key: Keys, token: str) -> tuple[str, str | None] | None:
    """The job id and model (None: a token minted without it) a callback-URL token was minted for, or None if it
    is not ours."""
    try:
        claims = _serializer(tuple(_keys(secret_key)), _WEBHOOK_URL_SALT).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        return None
    if isinstance(claims, str):
        return claims, None
    if (isinstance(claims, list) and len(claims) == 2 and isinstance(claims[0], str)
            and isinstance(claims[1], str)):
        return claims[0], claims[1]
    return None


def job_id_from_webhook_token(secret_key: Keys, token: str) -> str | None:
    """The job id a callback-URL token was minted for, or None if it is not ours."""
    claims = webhook_token_claims(secret_key, token)
    return claims[0] if claims else None


def job_webhook_secret(secret_key: Keys, job_id: str) -> str:
    """The ``webhook_secret`` sent to BFL with this job's task: a keyed hash of the job id (newest key)."""
    return Signer(_keys(secret_key), salt=_WEBHOOK_SECRET_SALT,
                  digest_method=hashlib.sha256).get_signature(job_id).decode()


def job_webhook_secrets(secret_key: Keys, job_id: str) -> list[str]:
    """Every ``webhook_secret`` this job's task may carry: one per accepted key (tasks outlive rotations)."""
    return [job_webhook_secret(key, job_id) for key in reversed(_keys(secret_key))]


def _file_salt(kind: str) -> str:
    if kind not in FILE_KINDS:
        raise ValueError(f"no signed link for {kind!r}")
    # The image's salt is the one its links had before the other kinds had their own: they stay valid.
    return _IMAGE_URL_SALT if kind == "image" else f"fluxhook.{kind}-url"


class LinkTimes(NamedTuple):
    """When a file's link read at one moment says it was signed, and how old such a link may be and still open."""

    signed_at: int
    max_age: int


def window_offset(job_id: str, window: int) -> int:
    """Where ``job_id``'s link windows start within ``window`` seconds: a stable hash of the id (the same in every
    process and release), so a deployment's jobs turn their links evenly over the window, never all at one moment,
    and a cache in front refills a few of them a second instead of its whole catalog at once."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") % window


def link_times(now: float, ttl: int, window: int, job_id: str) -> LinkTimes:
    """The rule of ``job_id``'s file links read at ``now`` (epoch seconds): a link is signed as of the start of its
    ``window`` (the job's windows start at its ``window_offset`` past multiples of ``window`` seconds since the epoch),
    so every read within one window gives the same link; it opens while its age is at most ``ttl + window - 1``
    seconds, so it opens at least ``ttl`` seconds after the read that gave it (a read in the window's last second
    included) and at most ``ttl + window - 1`` after. A window of 1 is a new link every second, each valid ``ttl``
    seconds."""
    second = int(now)
    return LinkTimes(second - (second - window_offset(job_id, window)) % window, ttl + window - 1)


def file_token(secret_key: Keys, job_id: str, kind: str, signed_at: int | None = None) -> str:
    """A timestamped token that lets anyone holding it fetch this job's ``kind`` file (one of FILE_KINDS), no other;
    dated ``signed_at`` (``link_times``; None: now)."""
    keys = tuple(_keys(secret_key))
    serializer = _serializer(keys, _file_salt(kind), timed=True)
    if signed_at is None:
        return serializer.dumps(job_id)
    signer = _DatedSigner(list(keys), salt=_file_salt(kind), signed_at=signed_at)
    return signer.sign(serializer.dump_payload(job_id)).decode()


class _DatedSigner(TimestampSigner):
    """The timed serializer's signer (same key derivation and digest), dating its token ``signed_at``, not now."""

    def __init__(self, secret_key: list[str], *, salt: str, signed_at: int):
        super().__init__(secret_key, salt=salt)
        self._signed_at = signed_at

    def get_timestamp(self) -> int:
        return self._signed_at


def file_token_valid(secret_key: Keys, token: str, job_id: str, kind: str, max_age: int) -> bool:
    """Whether ``token`` was minted for ``job_id``'s ``kind`` file within the last ``max_age`` seconds."""
    try:
        serializer = _serializer(tuple(_keys(secret_key)), _file_salt(kind), timed=True)
        return serializer.loads(token, max_age=max_age) == job_id
    except (BadSignature, UnicodeError, ValueError):
        return False


def job_webhook_url(public_base_url: str, secret_key: Keys, job_id: str, model: str | None = None) -> str:
    """The callback URL sent to BFL for this job (of ``model``)."""
    return f"{public_base_url}/webhooks/bfl/{webhook_token(secret_key, job_id, model)}"


_SEALING_SALT = b"fluxhook-sealed-in-redis"
# Marks a sealed value: no URL begins so, and no callback body (JSON) begins with a NUL.
_TEXT_MARK = "s1:"
_BYTES_MARK = b"\x00s1"


class Sealer:
    """Seals and opens values with keys derived from ``secret_keys`` (oldest first, as ``Config.secret_keys``)."""

    def __init__(self, secret_keys: tuple[str, ...]):
        # Newest first: it seals; each older one still opens.
        self._keys = [AESSIV(hashlib.sha512(_SEALING_SALT + key.encode()).digest()) for key in reversed(secret_keys)]

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
