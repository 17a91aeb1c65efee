"""The app's own webhook on the BFL-compatible API: the ``webhook_url`` and ``webhook_secret`` an app written for
BFL puts in its request body.

They are never passed to BFL (fluxhook keeps BFL's callback for itself). Once the job is terminal the app gets BFL's
callback as BFL would send it (``bfl_presenting.callback``: the ``get_result`` JSON with fluxhook's durable link, a
``timestamp``, and ``error`` and ``message`` for a failure), with the secret both ways BFL's documents describe, so an
app written to either accepts it: verbatim in ``X-Webhook-Secret`` (BFL's SDK) and as ``X-BFL-Signature``, the HMAC of
the raw body (BFL's integration guide). It goes out with the job's notification, same outbox, task and retries.

The secret must be sent back verbatim, so it cannot be kept as a hash: it is kept sealed (Fernet: AES-CBC with an HMAC)
under a key derived from SECRET_KEY, so no copy of Redis, backup or log of the record holds it, and only a process
holding SECRET_KEY (the delivery) can open it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from typing import NamedTuple

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from fluxhook.bfl.verification import SECRET_HEADER, SIGNATURE_HEADER, body_signature
from fluxhook.core.config import Config
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job import Job
from fluxhook.core.notify_rules import check_notify_url, field_wording
from fluxhook.lifecycle.steps import bfl_presenting

URL_FIELD, SECRET_FIELD = "webhook_url", "webhook_secret"
# A header value: printable ASCII, no spaces at its ends; as long as any app's secret reasonably is.
MAX_SECRET = 256
_URL_WORDING = field_wording(URL_FIELD)
_SECRET = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
_SEAL_SALT = b"fluxhook.app-webhook-secret\x00"


class AppWebhook(NamedTuple):
    """Where a job's result is POSTed, and the app's secret for it, sealed (None: the app gave none)."""

    url: str
    sealed_secret: str | None


def split_body(body: dict, config: Config) -> tuple[dict, AppWebhook | None]:
    """The request BFL gets (the body less ``webhook_url`` and ``webhook_secret``) and the app's webhook, checked:
    ``InvalidRequest`` (nothing created) for a URL that is not http(s), too long, or outside ``NOTIFY_HOST_ALLOWLIST``,
    and for a secret that cannot travel as a header."""
    task_input = {k: v for k, v in body.items() if k not in (URL_FIELD, SECRET_FIELD)}
    url, secret = body.get(URL_FIELD), body.get(SECRET_FIELD)
    if url is None:
        return task_input, None
    check_notify_url(url, config.notify_host_allowlist, _URL_WORDING)
    if secret is not None and (not isinstance(secret, str) or len(secret) > MAX_SECRET
                               or not _SECRET.fullmatch(secret)):
        raise InvalidRequest(f"'{SECRET_FIELD}' must be 1 to {MAX_SECRET} printable ASCII characters")
    return task_input, AppWebhook(url, seal(config, secret) if secret else None)


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    # Newest key first: it seals; any key of a rotation still opens what an older one sealed.
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(_SEAL_SALT + k.encode()).digest()))
                        for k in reversed(keys)])


def seal(config: Config, secret: str) -> str:
    """The secret as it is kept: encrypted and authenticated with a key derived from SECRET_KEY."""
    return _fernet(config.secret_keys).encrypt(secret.encode()).decode()


def unseal(config: Config, sealed: str) -> str | None:
    """The secret a ``seal`` kept; None if no key of SECRET_KEY (or its previous keys) opens it."""
    try:
        return _fernet(config.secret_keys).decrypt(sealed.encode()).decode()
    except (InvalidToken, UnicodeError):
        return None


def request_for(config: Config, job: Job, now: float) -> tuple[str, dict[str, str]] | None:
    """The body and headers of one call to the app at ``now``: BFL's callback at this moment (its link the one a
    read now gives, open at least the TTL from now) and, when the app gave a secret, ``X-Webhook-Secret`` and
    ``X-BFL-Signature`` (over the body's UTF-8 bytes, exactly as they are sent). None when the secret can no longer
    be opened (SECRET_KEY changed without keeping the old key): the app would refuse the call."""
    body = json.dumps(bfl_presenting.callback(config, job, now), separators=(",", ":"), ensure_ascii=False)
    headers = {"Content-Type": "application/json"}
    if job.app_webhook_secret:
        secret = unseal(config, job.app_webhook_secret)
        if secret is None:
            return None
        headers[SECRET_HEADER] = secret
        headers[SIGNATURE_HEADER] = body_signature(secret, body.encode())
    return body, headers
