"""One worker process's dispatcher: one thread that takes every kind of fluxhook's own work (worker/kinds.py), each
only while a hand of its kind is free to do it at once, so nothing it took waits in the process for a free thread.

Each kind has hands of its own (a bounded ThreadPoolExecutor: a bulkhead), shared out in parts (the BFL accounts, of
sends and checks): a part holds at most ``part_size``, so work of one part that hangs holds that part's hands and no
other part's, nor another kind's. A kind with no hands (feeds) does its work in its take.

A step takes from each kind with room that is due: at the start, once woken for it, at its own bound, after a wait or
a take cut by a lost Redis; a kind that filled its room is due again at once. With none due, the dispatcher waits in
one ``BLPOP`` over the wake-ups of the kinds with room, the process's stop list and its own nudge list, which a hand
that a full part frees pushes (its part's work may be waiting already), until the earliest kind's bound; with every
kind full, for a hand to free, in the process alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Hashable, Sequence

from redis.exceptions import RedisError

from fluxhook.store.wakes import LONGEST_WAIT, Wakes, Watched

from .loops import RETRY_INTERVAL, Loop, failed

# How long the dispatcher with every kind full waits at most for a free hand before it looks again whether to stop;
# and how long a stop waits for its step under way (a take), before it waits for the work in hand.
WAKE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Taken:
    """What a take took, each item with its part; how long until the kind's next take (0: it filled its room); what
    it watches at rest, for the guard (None: not at rest)."""

    items: Sequence[tuple[Hashable, Any]] = ()
    wait: float = 0.0
    watched: Watched | None = None


@dataclass
class Kind:
    """A kind of work: its ``name``; its wake-up list; its ``parts`` and at most ``part_size`` hands each, of
    ``hands`` (None: its take does its work); how long a stop waits for the work in its hands; whether work of it taken
    once a stop began may be cut off before it ends (``cut_by_stop``: an exchange with BFL outlasting the stop's wait),
    so that the first stop signal ends its takes (``Dispatcher.stop_taking``)."""

    name: str
    wake: str
    parts: tuple[Hashable, ...] = (None,)
    part_size: int = 0
    hands: ThreadPoolExecutor | None = None
    stop_timeout: float = 0.0
    cut_by_stop: bool = False
    busy: dict[Hashable, int] = field(default_factory=dict)

    def take(self, rooms: dict[Any, int]) -> Taken:
        """Take at most ``rooms`` items of each part (none if it has no hands)."""
        raise NotImplementedError

    def run(self, part: Hashable, item: Any) -> None:
        """Do one item, in a hand of ``part``."""
        raise NotImplementedError


class Dispatcher(Loop):
    """The process's dispatcher thread and the hands of its ``kinds``, until ``stop()``."""

    def __init__(self, wakes: Wakes, kinds: Sequence[Kind], guard: float = LONGEST_WAIT):
        super().__init__("fluxhook-dispatch")
        self.wakes = wakes
        # The longest wait while a kind is full: its hands' nudges end the wait, and one lost with a Redis that failed
        # them (which nothing watches: the freed hand is in this process) costs at most this (WAKE_GUARD_SECONDS).
        self.guard = guard
        self.kinds = {kind.name: kind for kind in kinds}
        self._room = threading.Condition()
        self._resting = False
        # When each kind's next take is due (time.monotonic()), and what it watches until then.
        self._due = dict.fromkeys(self.kinds, 0.0)
        self._watched: dict[str, Watched | None] = dict.fromkeys(self.kinds)
        self._not_taking: frozenset[str] = frozenset()

    def stop_taking(self, only_cut: bool = False) -> None:
        """Take no more work: of any kind, or (``only_cut``) of the kinds a stop may cut off (``Kind.cut_by_stop``).
        Safe in a signal handler: no lock."""
        names = [name for name, kind in self.kinds.items() if kind.cut_by_stop or not only_cut]
        self._not_taking = self._not_taking | frozenset(names)

    def stop(self, since: float | None = None) -> None:
        """Take no more work; let each kind's work in hand finish, for up to its ``stop_timeout`` counted from
        ``since`` (time.monotonic(); now if None)."""
        since = time.monotonic() if since is None else since
        self._stop_event.set()
        with self._room:
            self._room.notify_all()
        super().stop(WAKE_TIMEOUT + 5.0)  # not for a wait for work: it holds nothing
        for hands in [kind.hands for kind in self.kinds.values() if kind.hands is not None]:
            hands.shutdown(wait=False)
        for kind in self.kinds.values():
            with self._room:
                self._room.wait_for(partial(self._idle, kind), max(0.0, since + kind.stop_timeout - time.monotonic()))

    @staticmethod
    def _idle(kind: Kind) -> bool:
        return not any(kind.busy.values())

    def busy(self) -> int:
        """How many hands are at work now."""
        with self._room:
            return sum(sum(kind.busy.values()) for kind in self.kinds.values())

    def _rooms(self, kind: Kind) -> dict[Any, int] | None:
        """How many items of each part ``kind`` may take now; None if it may take none (under ``_room``)."""
        if self.stopping or kind.name in self._not_taking:
            return None
        if kind.hands is None:
            return {}
        rooms = {part: max(0, kind.part_size - kind.busy.get(part, 0)) for part in kind.parts}
        return rooms if any(rooms.values()) else None

    def step(self) -> float:
        with self._room:
            rooms = {name: self._rooms(kind) for name, kind in self.kinds.items()}
            # A hand a full part frees from here on nudges: the wait for work that follows takes the nudge.
            self._resting = any(room is not None for room in rooms.values())
            if not self._resting:
                self._room.wait_for(lambda: self.stopping or any(self._rooms(kind) is not None
                                                                 for kind in self.kinds.values()), WAKE_TIMEOUT)
                return 0.0
        open_ = {name: room for name, room in rooms.items() if room is not None}
        for name in self.kinds.keys() - open_.keys():
            self._due[name] = 0.0  # taken at once when it has room again
        for name, room in open_.items():
            if self._due[name] <= time.monotonic():
                self._take(self.kinds[name], room)
        wait = min(self._due[name] for name in open_) - time.monotonic()
        if len(open_) < len(self.kinds) and not self.stopping:
            wait = min(wait, self.guard)
        if wait > 0:
            self._rest([self.kinds[name] for name in open_], wait)
        return 0.0

    def _take(self, kind: Kind, rooms: dict[Any, int]) -> None:
        try:
            taken = kind.take(rooms)
        except Exception as exc:
            # The other kinds go on; this one takes again after a pause.
            failed(f"{self.name} ({kind.name})", exc)
            self._due[kind.name] = time.monotonic() + RETRY_INTERVAL
            return
        for part, item in taken.items:
            with self._room:
                kind.busy[part] = kind.busy.get(part, 0) + 1
            kind.hands.submit(self._run, kind, part, item)  # type: ignore[union-attr]
        self._due[kind.name] = time.monotonic() + taken.wait
        self._watched[kind.name] = taken.watched

    def _rest(self, kinds: list[Kind], wait: float) -> None:
        """Wait up to ``wait`` seconds for a wake-up of ``kinds`` or a nudge (one pushed since the take ends it at
        once)."""
        wakes = {kind.wake: kind for kind in kinds}
        watched = {kind.wake: what for kind in kinds if (what := self._watched[kind.name]) is not None}
        try:
            with self.waiting():
                woken, item = self.wakes.wait_any([*wakes, self.wakes.nudge_key], wait, watched)
        except RedisError:
            # The wait may have taken a wake-up whose work nothing announces again (a failover): every kind looks.
            self._due = dict.fromkeys(self._due, 0.0)
            raise
        name = wakes[woken].name if woken in wakes else item if woken == self.wakes.nudge_key else None
        if woken in wakes and (self.stopping or name in self._not_taking):
            self.wakes.give_back(woken)  # another process's dispatcher takes its work
        elif name in self._due:
            self._due[name] = 0.0

    def _run(self, kind: Kind, part: Hashable, item: Any) -> None:
        try:
            kind.run(part, item)
        finally:
            with self._room:
                kind.busy[part] -= 1
                nudge = kind.busy[part] + 1 == kind.part_size and self._resting and not self.stopping
                self._room.notify_all()
            if nudge:
                try:
                    self.wakes.nudge(kind.name)
                except RedisError:
                    pass  # the dispatcher's own wait ends with Redis, and the part's work stays in line for it
