"""Tokens and secrets derived from SECRET_KEY with itsdangerous, one salt per purpose.

A token minted for one purpose (or one job) is worth nothing for any other. Every function
takes the key or, during a rotation, the list of keys oldest first: new tokens are signed
with the last one, and tokens signed with any of them are accepted.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Sequence, Union

from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer

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


def file_token(secret_key: Keys, job_id: str, kind: str) -> str:
    """A timestamped token that lets anyone holding it fetch this job's ``kind`` file (one of FILE_KINDS), no other."""
    return _serializer(tuple(_keys(secret_key)), _file_salt(kind), timed=True).dumps(job_id)


def file_token_valid(secret_key: Keys, token: str, job_id: str, kind: str, max_age: int) -> bool:
    """Whether ``token`` was minted for ``job_id``'s ``kind`` file within the last ``max_age`` seconds."""
    try:
        serializer = _serializer(tuple(_keys(secret_key)), _file_salt(kind), timed=True)
        return serializer.loads(token, max_age=max_age) == job_id
    except (BadSignature, UnicodeError, ValueError):
        return False


def image_token(secret_key: Keys, job_id: str) -> str:
    """A signed link's token for the job's image."""
    return file_token(secret_key, job_id, "image")


def image_token_valid(secret_key: Keys, token: str, job_id: str, max_age: int) -> bool:
    """Whether ``token`` opens ``job_id``'s image (minted within ``max_age`` seconds)."""
    return file_token_valid(secret_key, token, job_id, "image", max_age)


def job_webhook_url(public_base_url: str, secret_key: Keys, job_id: str, model: str | None = None) -> str:
    """The callback URL sent to BFL for this job (of ``model``)."""
    return f"{public_base_url}/webhooks/bfl/{webhook_token(secret_key, job_id, model)}"
