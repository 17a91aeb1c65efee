"""Verified callbacks for tasks not tracked yet, kept an hour in case the task is tracked later."""

from __future__ import annotations

from redis import Redis

ORPHAN_TTL_SECONDS = 3600


def keep_orphan(connection: Redis, bfl_id: str, body: bytes) -> None:
    """Keep a callback body for ``bfl_id`` for an hour (a newer one replaces an older one)."""
    connection.set(f"fh:orphan:{bfl_id}", body, ex=ORPHAN_TTL_SECONDS)


def take_orphan(connection: Redis, bfl_id: str) -> bytes | None:
    """The kept callback body for ``bfl_id``, removed as it is read; None if there is none."""
    return connection.getdel(f"fh:orphan:{bfl_id}")
