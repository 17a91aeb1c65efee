"""The fair share of BFL's slots (``fluxhook.store.slots``) in plain Python, to check the Lua scripts against.

Start-time fair queueing over owners: an owner's next turn starts at its pass, or at the clock (the start
of the last turn given) if that is later; the turn goes to the earliest start among the owners with a job
that may take a slot now (its pool has room, the owner is under its max_active), ties to the earliest
job; the turn costs the owner 1 / its weight. Within one owner, its earliest job in any pool with room.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Turn:
    start: float
    job: str
    pool: str
    owner: str


@dataclass
class FairModel:
    total: int
    limits: dict[str, int]
    held: dict[str, dict[str, str]] = field(default_factory=dict)  # pool -> job -> owner
    lines: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # pool -> owner -> job ids in order
    owner: dict[str, str] = field(default_factory=dict)  # job -> owner, while the slots know the job
    passes: dict[str, float] = field(default_factory=dict)
    clock: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for pool in self.limits:
            self.held.setdefault(pool, {})
            self.lines.setdefault(pool, {})

    # What may be taken now.
    def in_flight(self) -> int:
        return sum(map(len, self.held.values()))

    def held_by(self, owner: str) -> int:
        return sum(1 for pool in self.held.values() for o in pool.values() if o == owner)

    def room(self, pool: str) -> bool:
        return pool not in self.paused and len(self.held[pool]) < self.limits[pool] and self.in_flight() < self.total

    def owner_room(self, owner: str) -> bool:
        return owner not in self.caps or self.held_by(owner) < self.caps[owner]

    def start(self, owner: str) -> float:
        return max(self.passes.get(owner, 0.0), self.clock)

    def pick(self) -> Turn | None:
        turns = [Turn(self.start(owner), jobs[0], pool, owner)
                 for pool in self.limits if self.room(pool)
                 for owner, jobs in self.lines[pool].items() if jobs and self.owner_room(owner)]
        return min(turns, key=lambda t: (t.start, t.job), default=None)

    def serve(self, turn: Turn) -> None:
        self.lines[turn.pool][turn.owner].remove(turn.job)
        self.held[turn.pool][turn.job] = turn.owner
        self.clock = turn.start
        weight = self.weights.get(turn.owner, 1)
        self.passes[turn.owner] = turn.start + 1 / (weight if weight > 0 else 1)

    # The slots' operations.
    def _line_up(self, pool: str, owner: str, job: str) -> None:
        line = self.lines[pool].setdefault(owner, [])
        if job not in line:
            line.append(job)
            line.sort()  # job ids sort by creation time

    def acquire(self, job: str, pool: str, owner: str) -> bool:
        self.owner[job] = owner
        self._line_up(pool, owner, job)
        turn = self.pick()
        if turn is not None and turn.job == job:
            self.serve(turn)
            return True
        return False

    def dispatch(self, limit: int = 100) -> list[str]:
        given = []
        while len(given) < limit and (turn := self.pick()) is not None:
            self.serve(turn)
            given.append(turn.job)
        return given

    def requeue(self, job: str, pool: str, *, pause: bool = False, wait: bool = False) -> None:
        """For a job still ``queued`` (the caller checks): its slot back, then in line or waiting out of it."""
        self.held[pool].pop(job, None)
        if wait:
            return
        self._line_up(pool, self.owner.setdefault(job, "admin"), job)
        if pause:
            self.paused.add(pool)

    # A job's change of status (``JobStore.transition`` and ``delete``).
    def leave_line(self, job: str) -> None:
        for lines in self.lines.values():
            for jobs in lines.values():
                if job in jobs:
                    jobs.remove(job)

    def free(self, job: str) -> None:
        for held in self.held.values():
            held.pop(job, None)

    def end(self, job: str) -> None:
        self.free(job)
        self.leave_line(job)
        self.owner.pop(job, None)

    # The state as Redis keeps it.
    def held_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for held in self.held.values():
            for owner in held.values():
                counts[owner] = counts.get(owner, 0) + 1
        return counts

    def line_members(self, pool: str) -> list[str]:
        return sorted(f"{owner}:{job}" for owner, jobs in self.lines[pool].items() for job in jobs)
