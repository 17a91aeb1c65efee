"""The room of one web process for batches waiting for their turn to be made (``lifecycle.batching``), divided
between keys.

A request waiting for a turn holds a thread (``BATCH_MAKING_ROOM`` of them are kept for it: ``gunicorn_conf``) and
the file its items were spooled to (``core/batch_items.py``), but no work permit. A key may hold at most
``PLACES_PER_KEY`` of the room's places, so one key posting batches from many connections cannot fill it: another
key's batch always finds a place and waits for its turn, which the turns between keys in Redis then give it before the
flood's next (``store/batch_turns.py``). A key's batch past its places is answered 503 ``batches_busy`` at once, its
own and no other key's. The variant makers' room is divided so too (``variant_makers``).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app

from fluxhook.core.errors import BatchesBusy

from .bulkheads import BATCH_MAKING_ROOM, Room

# A key's places in one process's room: fewer than the room's, so one key leaves places to the others.
PLACES_PER_KEY = 2


class DividedRoom:
    """At most ``size`` requests of one process waiting at once, at most ``per_key`` of them of one key."""

    def __init__(self, size: int, per_key: int):
        self.per_key = per_key
        self._room = Room(size)
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    @contextmanager
    def enter(self, key: str) -> Iterator[bool]:
        """Yields whether the request of ``key`` (an app key's id, or "" for the admin tokens) found a place; while
        inside, its work permit serves others."""
        with self._lock:
            mine = self._held[key] < self.per_key
            if mine:
                self._held[key] += 1
        if not mine:
            yield False
            return
        try:
            with self._room.enter() as inside:
                yield inside
        finally:
            with self._lock:
                self._held[key] -= 1
                if not self._held[key]:
                    del self._held[key]

    def has_place(self, key: str) -> bool:
        """Whether a request of ``key`` would find a place now (a look only: ``enter`` takes one)."""
        with self._lock:
            return self._held[key] < self.per_key

    def held(self, key: str) -> int:
        with self._lock:
            return self._held[key]


def key_busy() -> BatchesBusy:
    """The refusal of a batch whose key's batches fill its places in this process's room."""
    return BatchesBusy(f"this key's batches fill its {PLACES_PER_KEY} places among those waiting to be made here: send "
                       "this one again once one of them is answered, with the same Idempotency-Key (nothing was "
                       "created)", retry_after=5)


def batch_room() -> DividedRoom:
    """This process's room for batches waiting to be made, made on first use."""
    return room_of(current_app)


def room_of(app: Flask) -> DividedRoom:
    """``app``'s room for batches waiting to be made (one per process), made on first use; no request needed (the
    web worker asks it before a request's body is read)."""
    room = app.extensions.get("fluxhook.batch_room")
    # Two first requests at once make one room each, and both keep the one stored first.
    return room or app.extensions.setdefault("fluxhook.batch_room", DividedRoom(BATCH_MAKING_ROOM, PLACES_PER_KEY))
