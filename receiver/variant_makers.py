"""A web process's capacity for making image variants (docs/api.md "Bounded"), a bulkhead of its own.

``MAKERS`` processes of its own make the variants' bytes (``media.variants.variant_bytes``) at nice
``MAKING_NICENESS``. Processes, not threads: Pillow holds the interpreter lock through parts of an encode (tens of ms for
a 1024-px JPEG), which would stall every request of the process it runs in; a maker process stalls none, keeps its
memory to itself, and dies taking no request thread with it (the pool is made again). The makers go to owners in
weighted turns (``FairPermits``: one lane per job owner, at most half of them to one), so one key asking for thousands
of variants delays another's by at most a turn.

A request that needs a variant made waits in the process's variant room (``VARIANT_ROOM`` threads, kept for it in
``gunicorn_conf``), its work permit set aside meanwhile (``bulkheads.Room``), so waiting for a maker holds no permit
that reads and callbacks need. One owner holds at most ``PLACES_PER_OWNER`` of the room's places: past them, or past a
full room, the request is answered 503 ``variants_busy`` with ``Retry-After`` at once, its own and no other owner's;
past its places, an app key's next reads of that path are answered so from memory until then (``refusals``).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as MakingTimedOut
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable, Iterator

from flask import current_app

from fluxhook.core.errors import VariantsBusy
from fluxhook.core.variants import Variant
from fluxhook.lifecycle.variants import MAKE_SECONDS
from fluxhook.media.variants import variant_bytes

from .batch_room import DividedRoom
from .bulkheads import FairPermits, remember_refusal

log = logging.getLogger("fluxhook.web")

# Variants one web process makes at once: a core's worth each while they run.
MAKERS = 2
# Requests of one process that may wait at once for a maker (or for another process's making of their variant).
VARIANT_ROOM = 16
# An owner's places in the room: half, so one owner's flood leaves the other half to the others.
PLACES_PER_OWNER = VARIANT_ROOM // 2
# How much lower the makers run than the web process (Linux nice values, 0 to 19).
MAKING_NICENESS = 10
# A maker process is replaced after this many variants: whatever a library keeps of each, it keeps for so many only.
VARIANTS_PER_MAKER = 500
RETRY_SECONDS = 2


class VariantMakers:
    """``MAKERS`` processes making variants in turns between owners, and the room of the requests waiting for them."""

    def __init__(self, room: int = VARIANT_ROOM, per_owner: int = PLACES_PER_OWNER):
        self._turns = FairPermits(MAKERS)
        self._room = DividedRoom(room, per_owner)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    @contextmanager
    def waiting(self, owner: str) -> Iterator[None]:
        """A place in the room for a request of ``owner``, its work permit set aside while inside; ``VariantsBusy``
        when the owner holds its places or the room is full."""
        if not self._room.has_place(owner):
            # The owner's own flood: its next reads of this path are refused from memory until Retry-After, before
            # any permit or Redis step (``refusals``), so a client that ignores it costs the process nothing.
            remember_refusal(RETRY_SECONDS)
            raise VariantsBusy(f"this key's requests fill its {self._room.per_key} places among those waiting here "
                               "for a variant to be made; ask again shortly", retry_after=RETRY_SECONDS)
        with self._room.enter(owner) as inside:
            if not inside:
                raise VariantsBusy("this web process has as many requests waiting for variants as it may; ask "
                                   "again shortly", retry_after=RETRY_SECONDS)
            yield

    def make(self, owner: str, original: Callable[[], bytes], variant: Variant) -> bytes:
        """``variant``'s bytes of the image ``original()`` returns, read and made by a maker process in ``owner``'s
        turn."""
        self._turns.acquire(owner)
        try:
            pool = self._processes()
            try:
                return pool.submit(variant_bytes, original(), variant).result(timeout=MAKE_SECONDS)
            except BrokenProcessPool:
                self._replace(pool)
                raise VariantsBusy("the process making this variant ended before it was made; ask again",
                                   retry_after=RETRY_SECONDS) from None
            except MakingTimedOut:
                # The next requests go to a pool made again; the stuck process ends with its task.
                log.warning("a variant took longer than %s s to make; its maker pool is made again", MAKE_SECONDS,
                            extra={"variant": str(variant)})
                self._replace(pool)
                raise VariantsBusy(f"this variant was not made within {MAKE_SECONDS} s; ask again",
                                   retry_after=RETRY_SECONDS) from None
        finally:
            self._turns.release(owner)

    def places(self, owner: str) -> int:
        return self._room.held(owner)

    def close(self) -> None:
        """Stop the maker processes (tests: a web process's end with it, ``_maker_starts``)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _processes(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Spawned, not forked: a fork of a process with threads may copy a lock another thread holds.
                self._pool = ProcessPoolExecutor(MAKERS, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_maker_starts,
                                                 max_tasks_per_child=VARIANTS_PER_MAKER)
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        log.warning("a variant maker process ended; its pool is made again")
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)


def _maker_starts() -> None:
    """A maker process's start: it runs ``MAKING_NICENESS`` lower than the web process that spawned it, and ends as soon
    as that process is gone, however it went (``kill -9`` included).

    A maker waits on its task queue, whose write end it holds itself, so it never sees its parent go: orphaned under PID 1
    it would live on, and with it multiprocessing's resource tracker. ``parent_process().sentinel`` is multiprocessing's
    own for this: a pipe's read end, readable once the parent, its only writer, ends. Not ``prctl(PR_SET_PDEATHSIG)``:
    Linux sends that when the parent's *thread* that spawned the child ends, and makers are spawned by request threads and
    the pool's manager thread, which may end while the web process lives on, killing makers mid-variant. ``os._exit``:
    nothing of a maker's is worth flushing, and a normal exit would wait on queue feeder threads whose reader is gone."""
    try:
        os.nice(MAKING_NICENESS)
    except OSError:
        pass  # it runs as the web process does
    parent = multiprocessing.parent_process()
    if parent is None:  # not a spawned child: nothing to watch
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def variant_makers() -> VariantMakers:
    """This process's variant makers, made on first use."""
    makers = current_app.extensions.get("fluxhook.variant_makers")
    # Two first requests at once may make two; both use the one stored first (the other never starts a process).
    return makers or current_app.extensions.setdefault("fluxhook.variant_makers", VariantMakers())
