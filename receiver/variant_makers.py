"""A web process's capacity for making image variants (SPEC §19 "Bounded"), a bulkhead of its own.

``MAKERS`` threads make variants, at a lower CPU priority than the threads that serve requests (a Linux thread's own
nice value), so a process making variants still answers callbacks, job reads and file reads first. They are handed
between owners in weighted turns (``FairPermits``, one lane per job owner, at most half of them to one), so one key
asking for thousands of new variants at once delays another key's by at most a turn.

A request that needs a variant made waits in the process's variant room (``VARIANT_ROOM`` threads, kept for it in
``gunicorn_conf``), its work permit set aside meanwhile (``bulkheads.Room``), so waiting for a maker holds no permit
that reads and callbacks need. One owner holds at most ``PLACES_PER_OWNER`` of the room's places: past them, or past a
full room, the request is answered 503 ``variants_busy`` with ``Retry-After`` at once, its own and no other owner's.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from flask import current_app

from fluxhook.core.errors import VariantsBusy

from .bulkheads import Room
from .fair_permits import FairPermits

log = logging.getLogger("fluxhook.web")

T = TypeVar("T")

# Variants one process makes at once: a core's worth each while they run.
MAKERS = 2
# Requests of one process that may wait at once for a maker (or for another process's making of their variant).
VARIANT_ROOM = 16
# An owner's places in the room: half, so one owner's flood leaves the other half to the others.
PLACES_PER_OWNER = VARIANT_ROOM // 2
# How much lower the makers run than the request threads (Linux nice values, 0 to 19).
MAKING_NICENESS = 10
RETRY_SECONDS = 2


class VariantMakers:
    """``makers`` threads making variants in turns between owners, and the room of the requests waiting for them."""

    def __init__(self, makers: int = MAKERS, room: int = VARIANT_ROOM, per_owner: int = PLACES_PER_OWNER):
        self.per_owner = per_owner
        self._turns = FairPermits(makers, per_lane=max(1, makers // 2))
        self._room = Room(room)
        self._lock = threading.Lock()
        self._places: Counter[str] = Counter()
        # Threads of their own: a request thread, once niced, could not get its priority back without privileges.
        self._threads = ThreadPoolExecutor(makers, thread_name_prefix="variant-maker", initializer=_at_lower_priority)

    @contextmanager
    def waiting(self, owner: str) -> Iterator[None]:
        """A place in the room for a request of ``owner``, its work permit set aside while inside; ``VariantsBusy``
        when the owner holds its places or the room is full."""
        with self._lock:
            mine = self._places[owner] < self.per_owner
            if mine:
                self._places[owner] += 1
        if not mine:
            raise VariantsBusy(f"this key's requests fill its {self.per_owner} places among those waiting here for a "
                               "variant to be made; ask again shortly", retry_after=RETRY_SECONDS)
        try:
            with self._room.enter() as inside:
                if not inside:
                    raise VariantsBusy("this web process has as many requests waiting for variants as it may; ask "
                                       "again shortly", retry_after=RETRY_SECONDS)
                yield
        finally:
            with self._lock:
                self._places[owner] -= 1
                if not self._places[owner]:
                    del self._places[owner]

    def run(self, owner: str, work: Callable[[], T]) -> T:
        """``work()`` on a maker, in ``owner``'s turn (the request's context carried over: its trace)."""
        self._turns.acquire(owner)
        try:
            return self._threads.submit(contextvars.copy_context().run, work).result()
        finally:
            self._turns.release(owner)

    def places(self, owner: str) -> int:
        """Places ``owner``'s requests hold in the room now."""
        with self._lock:
            return self._places[owner]


def _at_lower_priority() -> None:
    """The calling thread runs ``MAKING_NICENESS`` lower from now on (Linux; elsewhere it runs as it did)."""
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + MAKING_NICENESS))
    except OSError:
        log.debug("variant makers keep their threads' priority", extra={"niceness": MAKING_NICENESS})


def variant_makers() -> VariantMakers:
    """This process's variant makers, made on first use."""
    makers = current_app.extensions.get("fluxhook.variant_makers")
    # Two first requests at once may make two; both use the one stored first (the other's threads never start).
    return makers if makers is not None else current_app.extensions.setdefault("fluxhook.variant_makers",
                                                                               VariantMakers())
