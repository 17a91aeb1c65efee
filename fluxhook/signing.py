"""Tokens and secrets derived from SECRET_KEY with itsdangerous, one salt per purpose.

A token minted for one purpose (or one job) is worth nothing for any other.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer

_WEBHOOK_URL_SALT = "fluxhook.webhook-url"
_WEBHOOK_SECRET_SALT = "fluxhook.webhook-secret"
_IMAGE_URL_SALT = "fluxhook.image-url"


def webhook_token(secret_key: str, job_id: str) -> str:
    """The token in a job's own callback URL ``/webhooks/bfl/{token}``."""
    return URLSafeSerializer(secret_key, salt=_WEBHOOK_URL_SALT).dumps(job_id)


def job_id_from_webhook_token(secret_key: str, token: str) -> str | None:
    """The job id a callback-URL token was minted for, or None if it is not ours."""
    try:
        job_id = URLSafeSerializer(secret_key, salt=_WEBHOOK_URL_SALT).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        return None
    return job_id if isinstance(job_id, str) else None


def job_webhook_secret(secret_key: str, job_id: str) -> str:
    """The ``webhook_secret`` sent to BFL with this job's task: a keyed hash of the job id."""
    return Signer(secret_key, salt=_WEBHOOK_SECRET_SALT, digest_method=hashlib.sha256).get_signature(job_id).decode()


def image_token(secret_key: str, job_id: str) -> str:
    """A timestamped token that lets anyone holding it fetch this job's image."""
    return URLSafeTimedSerializer(secret_key, salt=_IMAGE_URL_SALT).dumps(job_id)


def image_token_valid(secret_key: str, token: str, job_id: str, max_age: int) -> bool:
    """Whether ``token`` was minted for ``job_id`` within the last ``max_age`` seconds."""
    try:
        return URLSafeTimedSerializer(secret_key, salt=_IMAGE_URL_SALT).loads(token, max_age=max_age) == job_id
    except (BadSignature, UnicodeError, ValueError):
        return False


def job_webhook_url(public_base_url: str, secret_key: str, job_id: str) -> str:
    """The callback URL sent to BFL for this job."""
    return f"{public_base_url}/webhooks/bfl/{webhook_token(secret_key, job_id)}"
