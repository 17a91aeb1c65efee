"""A job that ends while BFL runs its task on keeps its slot (``JobStore.transition``, ``Terms.task_runs``,
lua/job_transition.lua's ``hold``) until ``JobStore.let_go`` gives it back, on a real Redis: held, it counts in its
account's slots, its pool's count and its owner's ``max_active``, stays due for the sweep and keeps its polling URL;
given back, all of that goes at once and a waiting job takes the slot. The use cases around it:
tests/unit/lifecycle/test_canceling.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_POOL
from fluxhook.store.jobs import Terms
from fluxhook.store.keys import KEYS
from fluxhook.store.slots import EndedHolder, Slots
from slot_helpers import _config, _queued, as_key, held_by

CANCELED = {"code": "canceled", "message": "x"}
RUNS = Terms(task_runs=True)
POLLING_URL = "https://api.bfl.ai/v1/get_result?id=task-1"


@pytest.fixture()
def slots(connection) -> Slots:
    return Slots(connection, _config(bfl_max_active=3))


def _count(connection) -> int:
    return int(connection.hget(KEYS.slot_counts, KEYS.slots(DEFAULT_POOL)) or 0)


def _submitted(store, slots, owner: str | None = "key_a", task: str = "task-1"):
    job = as_key(store, _queued(store), owner)
    assert slots.acquire(job) == "default"
    assert store.transition(job.id, st.SUBMITTED, bfl_id=task, polling_url=POLLING_URL, due=time.time() + 10)
    return job


def test_a_sent_job_ended_while_its_task_runs_keeps_its_slot_until_let_go(store, slots, connection):
    slots.set_share("key_a", None, 1)
    job = _submitted(store, slots)
    due = store.due_at(job.id)
    assert connection.delete(KEYS.slot_freed) == 1  # set_share's wake-up

    assert store.transition(job.id, st.CANCELED, terms=RUNS, error=CANCELED)

    # Held: the account's slot, its pool's count and the owner's max_active, on the same poll schedule.
    assert slots.holds(job) and _count(connection) == 1 and held_by(slots, "key_a") == 1
    assert store.due_at(job.id) == due and store.get(job.id).polling_url == POLLING_URL
    assert slots.ended_holders() == [EndedHolder(job.id, "default", "key_a")]
    waiting = as_key(store, _queued(store), "key_a")
    assert slots.acquire(waiting) is None  # the key's max_active is its canceled job's
    assert slots.dispatch().jobs == []

    ended = store.get(job.id)
    change = store.let_go(job.id)

    assert change.moved and change.freed and store.get(job.id).status == st.CANCELED
    assert store.get(job.id).updated_at == ended.updated_at  # the job's own record did not change
    assert not slots.holds(job) and _count(connection) == 0 and held_by(slots, "key_a") == 0
    assert store.due_at(job.id) is None and store.get(job.id).polling_url is None
    assert slots.ended_holders() == []
    assert connection.llen(KEYS.slot_freed) == 1  # a job waits: one dispatcher is woken
    assert slots.dispatch().jobs == [waiting.id]
    again = store.let_go(job.id)
    assert again.moved and not again.freed and slots.holds(waiting)


def test_an_end_with_no_task_running_gives_the_slot_back_as_any_end_does(store, slots, connection):
    # Being sent (queued, holding its slot): never at BFL, so nothing runs on.
    sending = as_key(store, _queued(store), "key_a")
    assert slots.acquire(sending)
    assert store.transition(sending.id, st.CANCELED, terms=RUNS, error=CANCELED)
    # Ready: BFL finished, and the slot went back with the move to ready.
    ready = _submitted(store, slots, task="task-2")
    assert store.transition(ready.id, st.READY, result_url="https://x/r.png", due=time.time() + 15)
    assert store.transition(ready.id, st.CANCELED, terms=RUNS, error=CANCELED)
    # Tracked (submitted elsewhere): it never took a slot.
    tracked = as_key(store, _queued(store), "key_a")
    assert store.transition(tracked.id, st.SUBMITTED, bfl_id="task-3", due=time.time() + 10)
    assert store.transition(tracked.id, st.CANCELED, terms=RUNS, error=CANCELED)

    for job in (sending, ready, tracked):
        assert not slots.holds(job) and store.due_at(job.id) is None
    assert _count(connection) == 0 and held_by(slots, "key_a") == 0 and slots.ended_holders() == []


def test_let_go_leaves_a_job_that_has_not_ended_alone(store, slots):
    job = _submitted(store, slots)
    change = store.let_go(job.id)
    assert not change.moved and not change.freed
    assert slots.holds(job) and store.due_at(job.id) is not None and store.get(job.id).status == st.SUBMITTED
    assert not store.let_go("job_00000000000000000000000000").moved
