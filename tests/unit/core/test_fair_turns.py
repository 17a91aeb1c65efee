"""The one rule of turns, checked once against both its implementations: ``fluxhook.core.fair_turns`` (the web's
permits, in one process's memory) and ``fluxhook/store/lua/fair_turns.lua`` (every line kept in Redis), driven here
through a work line's take on a real Redis. The same owners (weights 1 to 3, or none), arriving late, going idle and
coming back, tying, are served in the same order, job for job."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from typing import Callable

import pytest

from fluxhook.core.fair_turns import KEPT_PASSES, FairTurns
from fluxhook.core.job import new_job_id
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import member_job
from fluxhook.store.work_lines import DOWNLOAD, WorkLines
from slot_helpers import add_work

# The RQ queue a take counts: nothing is queued there, so each take of one is one turn.
QUEUE = "test:rq:queue"


class Both:
    """One line served twice over: a work line in Redis taken a turn at a time, and a plain line (owner -> its job ids
    in order) served by ``FairTurns``; each turn's job, by each."""

    def __init__(self, connection, weights: dict[str, int]):
        self.work = WorkLines(connection)
        self.weights = weights
        if weights:
            connection.hset(KEYS.share_weights, mapping=weights)
        self.turns: FairTurns[str] = FairTurns()
        self.lines: dict[str, deque[str]] = {}
        self.by_lua: list[str] = []
        self.by_python: list[str] = []
        self.owner_of: dict[str, str] = {}

    def add(self, owner: str, n: int = 1) -> list[str]:
        ids = [new_job_id() for _ in range(n)]  # they sort by creation: ties go to the one added first
        pipe = self.work.connection.pipeline(transaction=True)
        for job_id in ids:
            add_work(self.work, DOWNLOAD, owner, job_id, pipe)
        pipe.execute()
        self.lines.setdefault(owner, deque()).extend(ids)
        self.owner_of.update(dict.fromkeys(ids, owner))
        return ids

    def take(self, turns: int | None = None) -> None:
        """``turns`` turns (None: until the line is empty), each given by both."""
        while turns is None or turns > 0:
            taken = self.work.take({DOWNLOAD: QUEUE}, 1, time.time()).items.get(DOWNLOAD, [])
            pipe = self.work.connection.pipeline(transaction=True)
            self.work.queued(DOWNLOAD, taken, pipe)
            pipe.execute()
            turn = self.turns.earliest((owner, line[0]) for owner, line in self.lines.items() if line)
            assert bool(taken) == (turn is not None), (taken, turn)
            if turn is None:
                return
            owner, job = turn
            self.lines[owner].popleft()
            self.turns.serve(owner, 1, self.weights.get(owner, 1))
            self.by_lua.append(member_job(taken[0]))
            self.by_python.append(job)
            turns = None if turns is None else turns - 1

    def owners(self, jobs: list[str]) -> list[str]:
        return [self.owner_of[job] for job in jobs]


def weights_1_to_3(both: Both) -> None:
    for owner in ("key_a", "key_b", "key_c"):
        both.add(owner, 12)
    both.take()
    assert Counter(both.owners(both.by_lua[:12])) == {"key_a": 2, "key_b": 4, "key_c": 6}


def arriving_late(both: Both) -> None:
    both.add("key_a", 20)
    both.add("key_c", 20)
    both.take(6)
    late = both.add("key_b", 10)
    both.take(6)
    both.add("key_a", 5)
    [newest] = both.add("key_d")  # no weight of its own: 1
    both.take()
    assert late[0] in both.by_lua[6:8] and newest in both.by_lua[12:16]


def idle_and_back(both: Both) -> None:
    both.add("key_a", 3)
    both.add("key_b", 3)
    both.take()
    both.add("key_a", 40)
    both.take(30)  # B idle while A takes 30 turns: it saves up nothing
    back = both.add("key_b", 5)
    both.take(4)
    both.add("key_c", 2)  # heavy, away since the start
    both.take(3)
    both.add("key_c", 6)  # back before the clock reached its pass: it starts there, not at the clock
    both.take()
    assert back[0] in both.by_lua[36:38] and both.by_lua[36:44].count(back[1]) == 1


def ties(both: Both) -> None:
    for _ in range(6):  # one at a time: their jobs alternate in age
        both.add("key_b")
        both.add("key_a")
    both.add("key_c", 6)
    both.take()
    # Passes tie on every turn, and the earliest job goes: B's, A's, then C's (weight 3) three to their one.
    assert both.owners(both.by_lua[:5]) == ["key_b", "key_a", "key_c", "key_c", "key_c"]


def many_owners_once(both: Both) -> None:
    both.add("key_a", 150)
    for wave in range(12):  # more owners than FairTurns keeps passes for before dropping those behind the clock
        for n in range(10):
            both.add(f"key_w{wave}n{n}")
        both.take(12)
    both.take()
    assert len({owner for owner in both.owners(both.by_lua)}) == 1 + 120 > KEPT_PASSES


def random_runs(both: Both) -> None:
    rng = random.Random(20261129)
    owners = ["key_a", "key_b", "key_c", "key_d", "key_e", "key_f"]
    for _ in range(200):
        if rng.random() < 0.45:
            both.add(rng.choice(owners), rng.randint(1, 4))
        else:
            both.take(rng.randint(1, 4))
    both.take()
    assert len(both.by_lua) > 200


SCENARIOS: dict[str, tuple[Callable[[Both], None], dict[str, int]]] = {
    "weights 1 to 3": (weights_1_to_3, {"key_a": 1, "key_b": 2, "key_c": 3}),
    "arriving late": (arriving_late, {"key_a": 1, "key_b": 2, "key_c": 3}),
    "idle and back": (idle_and_back, {"key_a": 1, "key_b": 2, "key_c": 3}),
    "ties": (ties, {"key_c": 3}),
    "many owners once": (many_owners_once, {"key_a": 2}),
    "random": (random_runs, {"key_a": 1, "key_b": 2, "key_c": 3, "key_d": 3, "key_e": 2}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_lua_and_the_python_serve_owners_in_the_same_order(connection, scenario):
    run, weights = SCENARIOS[scenario]
    both = Both(connection, weights)
    run(both)
    assert both.by_lua == both.by_python
    assert not connection.zcard(KEYS.work_line(DOWNLOAD))
