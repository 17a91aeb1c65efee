"""The fair share of BFL's slots (``fluxhook.store.slots``) in plain Python, to check the Lua scripts against.

The rule of turns between owners is ``FairTurns``' (fluxhook.core.fair_turns): the turn goes to the owner whose
turn starts first among those with a job that may take a slot now (its pool has room, the owner is under its
max_active), ties to the earliest job. Within one owner, its earliest job in any pool with room.

A turn costs the owner slot time / its weight: at first an estimate (the moving average of the owner's
tasks' times at BFL in the pool, 10 s before any), then, once the slot is given back, the seconds it was held (at
least 0.1 s a turn); nothing if its task never reached BFL (the slot came back with the job queued). The settling
divides by the weight the turn was charged by, not by a weight set since.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fluxhook.core.fair_turns import FairTurns

FIRST_ESTIMATE, MIN_TURN, ESTIMATE_WEIGHT = 10.0, 0.1, 0.2


class SlotTurns(FairTurns[str]):
    """The slots' turns: ``FairTurns`` with a turn's charge settled once its slot is back, by moving its owner's pass
    and not the clock (the web's permits settle nothing, so ``FairTurns`` has no such step)."""

    def settle(self, owner: str, by: float) -> None:
        self._passes[owner] = self._passes.get(owner, 0.0) + by

    @property
    def passes(self) -> dict[str, float]:
        """The owners' passes, as the slots' hash holds them (the runs name fewer owners than ``FairTurns`` keeps
        passes for before dropping any)."""
        return dict(self._passes)


@dataclass
class Turn:
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
    turns: SlotTurns = field(default_factory=SlotTurns)
    weights: dict[str, float] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    taken: dict[str, float] = field(default_factory=dict)  # job -> when it took its slot
    charges: dict[str, float] = field(default_factory=dict)  # job -> slot time its owner was charged
    charged_by: dict[str, float] = field(default_factory=dict)  # job -> its owner's weight when it was charged
    estimates: dict[tuple[str, str], float] = field(default_factory=dict)  # (pool, owner) -> its tasks' average

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

    def pick(self) -> Turn | None:
        pools = list(self.limits)
        # Each item is a job and its pool's place: a job waiting in two pools is taken from the first.
        best = self.turns.earliest((owner, (jobs[0], n)) for n, pool in enumerate(pools) if self.room(pool)
                                   for owner, jobs in self.lines[pool].items() if jobs and self.owner_room(owner))
        if best is None:
            return None
        owner, (job, n) = best
        return Turn(job, pools[n], owner)

    def weight(self, owner: str) -> float:
        weight = self.weights.get(owner, 1)
        return weight if weight > 0 else 1

    def serve(self, turn: Turn, now: float) -> None:
        self.lines[turn.pool][turn.owner].remove(turn.job)
        self.held[turn.pool][turn.job] = turn.owner
        cost = max(self.estimates.get((turn.pool, turn.owner), FIRST_ESTIMATE), MIN_TURN)
        self.turns.serve(turn.owner, cost, self.weight(turn.owner))
        self.taken[turn.job], self.charges[turn.job] = now, cost
        self.charged_by[turn.job] = self.weight(turn.owner)

    def settle(self, job: str, pool: str, owner: str | None, held: float | None, learned: bool) -> None:
        """The slot given back after ``held`` seconds (None: its task never reached BFL)."""
        charged = self.charges.pop(job, 0.0)
        weight = self.charged_by.pop(job, None) or self.weight(owner) if owner is not None else 1
        self.taken.pop(job, None)
        used = max(held, MIN_TURN) if held is not None else 0.0
        if owner is None:
            return
        if learned:
            average = self.estimates.get((pool, owner))
            self.estimates[pool, owner] = average + (used - average) * ESTIMATE_WEIGHT if average is not None else used
        self.turns.settle(owner, (used - charged) / weight)

    # The slots' operations.
    def _line_up(self, pool: str, owner: str, job: str) -> None:
        line = self.lines[pool].setdefault(owner, [])
        if job not in line:
            line.append(job)
            line.sort()  # job ids sort by creation time

    def acquire(self, job: str, pool: str, owner: str, now: float) -> bool:
        self.owner[job] = owner
        self._line_up(pool, owner, job)
        turn = self.pick()
        if turn is not None and turn.job == job:
            self.serve(turn, now)
            return True
        return False

    def dispatch(self, now: float, limit: int = 100) -> list[str]:
        given = []
        while len(given) < limit and (turn := self.pick()) is not None:
            self.serve(turn, now)
            given.append(turn.job)
        return given

    def requeue(self, job: str, pool: str, *, pause: bool = False, wait: bool = False) -> None:
        """For a job still ``queued`` (the caller checks): its slot back, then in line or waiting out of it."""
        if self.held[pool].pop(job, None) is not None:
            self.settle(job, pool, self.owner.get(job), None, learned=False)
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

    def free(self, job: str, now: float, *, ran: bool) -> None:
        """The job's slot given back with a change of status; ``ran``: its task was at BFL (``submitted``)."""
        for pool, held in self.held.items():
            if held.pop(job, None) is not None:
                self.settle(job, pool, self.owner.get(job), max(0.0, now - self.taken[job]), learned=ran)

    def end(self, job: str, now: float, *, ran: bool) -> None:
        self.free(job, now, ran=ran)
        self.leave_line(job)
        self.owner.pop(job, None)

    def delete(self, job: str) -> None:
        """A deleted job: its slot and place go, its owner stays charged what its turn was estimated at."""
        for held in self.held.values():
            held.pop(job, None)
        self.charges.pop(job, None)
        self.charged_by.pop(job, None)
        self.taken.pop(job, None)
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
