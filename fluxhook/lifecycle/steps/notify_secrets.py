"""Each app key's own notification secret: made with the key, shown once, kept sealed, rotated with a day
in which both the old and the new one sign, so an app can switch without missing a notification.

A secret is the Standard Webhooks kind, ``whsec_`` + base64 of 32 random bytes. An app holds only its own key's
secret, so it can verify its notifications and sign no other app's. Jobs made with an admin token are signed with
``NOTIFY_SECRET``. A key made before keys had secrets gets one the first time one of its notifications is signed
(``signing_secrets``); its admin learns it by rotating (``POST /v1/keys/{id}/notify_secret``).
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING

from fluxhook.core.signing import Sealer
from fluxhook.store.app_keys import AppKey

if TYPE_CHECKING:
    from fluxhook.services import Services

PREFIX = "whsec_"
# After a rotation the old secret signs beside the new one this long (Standard Webhooks' space-separated list).
OVERLAP = 24 * 3600.0


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sealer(svc: "Services") -> Sealer:
    """What seals the secrets: the store's own, from SECRET_KEY (and its previous keys, which still open)."""
    return svc.jobs.sealer or Sealer(svc.config.secret_keys)


def signing_secrets(svc: "Services", key_id: str | None, now: float) -> list[str]:
    """The secrets that sign a notification of a job of app key ``key_id`` at ``now``, newest first: the key's
    own, and for ``OVERLAP`` after a rotation the one it replaced; ``NOTIFY_SECRET`` for an admin token's job.
    Empty when there is none (no NOTIFY_SECRET, or the key is gone)."""
    if not key_id:
        return [svc.config.notify_secret] if svc.config.notify_secret else []
    key = svc.store.app_keys.get(key_id)
    if key is None:
        return []
    seal = sealer(svc)
    kept = key.notify_secret or svc.store.app_keys.keep_notify_secret(key_id, seal.seal_text(new_secret()))
    opened = [seal.open_text(kept)] if kept else []
    if key.notify_secret_old and key.notify_rotated_at is not None and now < key.notify_rotated_at + OVERLAP:
        opened.append(seal.open_text(key.notify_secret_old))
    return [secret for secret in opened if secret]


def fresh_fields(svc: "Services") -> dict[str, str]:
    """A new key's notification secret, as kept (sealed)."""
    return {"notify_secret": sealer(svc).seal_text(new_secret())}


def current(svc: "Services", key: AppKey) -> str | None:
    """The key's notification secret in the clear, for the one answer that shows it (its creation, a rotation)."""
    return sealer(svc).open_text(key.notify_secret) if key.notify_secret else None


def rotation(svc: "Services", key: AppKey, now: float) -> tuple[dict, str]:
    """The fields that rotate ``key``'s secret at ``now`` (the current one kept beside the new for ``OVERLAP``),
    and the new secret to show once."""
    seal = sealer(svc)
    current = key.notify_secret or seal.seal_text(new_secret())
    secret = new_secret()
    return {"notify_secret": seal.seal_text(secret), "notify_secret_old": current, "notify_rotated_at": now}, secret
