"""Tokens and secrets derived from SECRET_KEY with itsdangerous, one salt per purpose.

A token minted for one purpose (or one job) is worth nothing for any other. Every function
takes the key or, during a rotation, the list of keys oldest first: new tokens are signed
with the last one, and tokens signed with any of them are accepted.

A file's link carries the start of the window it was read in, not the second (``link_times``): every read of a job
within a window gives the same URLs, so a browser's or a CDN's copy of one serves the next page that shows it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import NamedTuple, Sequence, Union

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


def link_times(now: float, ttl: int, window: int) -> LinkTimes:
    """The rule of a file's link read at ``now`` (epoch seconds): it is signed as of the start of its ``window``
    (windows start at multiples of ``window`` seconds since the epoch), so every read within one window gives the
    same link; it opens while its age is at most ``ttl + window - 1`` seconds, so it opens at least ``ttl`` seconds
    after the read that gave it (a read in the window's last second included) and at most ``ttl + window - 1`` after.
    A window of 1 is a new link every second, each valid ``ttl`` seconds."""
    second = int(now)
    return LinkTimes(second - second % window, ttl + window - 1)


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
