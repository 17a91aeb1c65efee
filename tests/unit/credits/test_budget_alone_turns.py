"""Going alone is fair (``store/lua/budget_reserve.lua``, docs/callbacks.md, issue 50 point 1): the jobs that must go alone take
turns between owners (weighted, as slots are), one owner's queue of them delays another owner's boundable job by at
most one send alone, and never under a limit the two do not share. In real Redis, with the clock given. Through the
real processes: tests/e2e/credits/test_alone_turns.py."""

from __future__ import annotations

import pytest

from credit_helpers import LARGE, ONE_MP, PRO, VIDEO, Clock, limited_services, priced_within_catalog, settle
from fluxhook.core.holds import NEXT_LEASE
from fluxhook.credits import accounting, budget
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS

DB = 12
LIMIT = 100  # credits
MICRO = accounting.MICRO
MAX = "flux-2-max"


@pytest.fixture()
def svc(make_services):
    return limited_services(make_services, DB, LIMIT)


def _key(key_id: str, daily_credits: float | None = None) -> AppKey:
    return AppKey(id=key_id, name=key_id, prefix="fhk_test", secret_sha256="", daily_credits=daily_credits)


A, B = _key("key_a"), _key("key_b")


def _order_alone(svc, clock: Clock, waiting: dict[str, AppKey]) -> list[str]:
    """Send alone, one at a time, whichever of ``waiting`` the budget lets go (each asking in turn, in creation
    order), until all have gone: the owners' names in the order they went."""
    went = []
    while waiting:
        admitted = [job_id for job_id in sorted(waiting)
                    if budget.reserve(svc, job_id, VIDEO, ONE_MP, clock.now, key=waiting[job_id]).admitted]
        assert len(admitted) == 1, admitted  # one at a time: the one out alone holds every other
        key = waiting.pop(admitted[0])
        went.append(key.id)
        settle(svc, admitted[0], 1, clock.now, key.id)
    return went


@pytest.mark.parametrize("weight_a, order", [
    (1, ["key_a", "key_b", "key_a", "key_b", "key_a", "key_a"]),
    (2, ["key_a", "key_b", "key_a", "key_a", "key_b", "key_a"])])
def test_two_owners_jobs_that_go_alone_take_turns_by_weight_not_by_arrival(svc, weight_a, order):
    svc.slots.set_share(A.id, weight_a, None)
    clock = Clock()
    live = clock.job_id()
    assert budget.reserve(svc, live, PRO, ONE_MP, clock.now).admitted  # so that the first of them waits too
    waiting = {clock.job_id(): A for _ in range(4)}  # A's four, all older than B's two
    waiting.update({clock.job_id(): B for _ in range(2)})
    assert all(budget.reserve(svc, job_id, VIDEO, ONE_MP, clock.now, key=key).waits for job_id, key in waiting.items())
    settle(svc, live, 3, clock.now)
    assert _order_alone(svc, clock, waiting) == order


def test_a_boundable_job_goes_past_another_owners_jobs_waiting_to_go_alone(svc):
    clock = Clock()
    out = clock.job_id()
    assert budget.reserve(svc, out, VIDEO, ONE_MP, clock.now, key=A).admitted  # A's first, out alone
    queued = [clock.job_id() for _ in range(20)]
    assert all(budget.reserve(svc, job_id, VIDEO, ONE_MP, clock.now, key=A).waits for job_id in queued)
    mine = clock.job_id()
    held = budget.reserve(svc, mine, PRO, ONE_MP, clock.now, key=B)
    assert held.waits and not held.alone  # held by the one out alone only: looked at again at the next sweep
    assert budget.settling_recheck(held) == budget.BOUNDED_RECHECK < budget.ALONE_RECHECK
    settle(svc, out, 1, clock.now, A.id)
    # A's twenty waiting records do not hold it: it goes at its next look, before A's next one alone.
    assert budget.reserve(svc, mine, PRO, ONE_MP, clock.now, key=B).amount == 3 * MICRO
    assert budget.reserve(svc, queued[0], VIDEO, ONE_MP, clock.now, key=A).waits  # B's reservation is live
    # A later job of A's own, boundable, keeps its place behind A's own jobs waiting to go alone.
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=A).waits
    settle(svc, mine, 3, clock.now, B.id)
    assert budget.reserve(svc, queued[0], VIDEO, ONE_MP, clock.now, key=A).admitted


def _one_out_alone_and_one_waiting(svc, clock: Clock) -> tuple[str, str]:
    """Key A's job out alone and its next one waiting to go alone: their ids."""
    out = clock.job_id()
    assert budget.reserve(svc, out, VIDEO, ONE_MP, clock.now, key=A).admitted
    leader = clock.job_id()
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).waits
    return out, leader


def test_a_boundable_job_that_waited_through_a_send_alone_goes_before_the_next_one_alone(svc):
    clock = Clock()
    out, leader = _one_out_alone_and_one_waiting(svc, clock)
    earlier = clock.job_id()
    assert budget.reserve(svc, earlier, PRO, ONE_MP, clock.now, key=B).waits  # began waiting during A's send
    settle(svc, out, 1, clock.now, A.id)
    # A's next looks first, with nothing live: it waits for B's job, which began waiting before it, and closes its gate.
    assert budget.would_reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).waits
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).waits
    later = clock.job_id()  # arrives after the gate closed: it waits for A's next send alone
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now, key=B).waits
    assert budget.reserve(svc, earlier, PRO, ONE_MP, clock.now, key=B).admitted
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).waits  # B's earlier one is live
    settle(svc, earlier, 3, clock.now, B.id)
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now, key=B).waits  # behind the gate
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).admitted
    settle(svc, leader, 1, clock.now, A.id)
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now, key=B).admitted


def test_a_stream_of_another_owners_boundable_jobs_cannot_hold_back_the_next_one_alone(svc):
    clock = Clock()
    live = [clock.job_id() for _ in range(2)]
    for job_id in live:
        assert budget.reserve(svc, job_id, PRO, ONE_MP, clock.now, key=B).admitted
    alone = clock.job_id()
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now, key=A).waits  # B's are live: its gate closes
    for _ in range(5):  # B's jobs keep coming: each waits behind it, reserving nothing
        assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=B).waits
    assert svc.store.usage.reserved(clock.now) == 6 * MICRO
    for job_id in live:
        settle(svc, job_id, 3, clock.now, B.id)
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now, key=A).admitted


def test_a_boundable_job_that_waited_and_then_vanished_holds_the_next_one_alone_back_briefly(svc):
    clock = Clock()
    out, leader = _one_out_alone_and_one_waiting(svc, clock)
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=B).waits  # then never looks again
    settle(svc, out, 1, clock.now, A.id)
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now, key=A).waits
    assert budget.reserve(svc, leader, VIDEO, ONE_MP, clock.now + NEXT_LEASE + 0.01, key=A).admitted


def test_one_keys_own_limit_never_holds_another_keys_job(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT))
    priced_within_catalog(svc)
    clock, mine, other = Clock(), _key("key_a", 19), _key("key_b")
    earlier = clock.job_id()
    assert budget.reserve(svc, earlier, PRO, ONE_MP, clock.now, key=mine).admitted
    # Fits in the service's limit, not in what is left of its key's 19 while its earlier job is live: it waits to go
    # alone there, and there only; looked at again and again, it writes nothing in the service's limit.
    large = clock.job_id()
    for _ in range(3):
        waits = budget.reserve(svc, large, MAX, LARGE, clock.now, key=mine)
        assert waits.waits and waits.decided_by == "key" and waits.alone
    assert not svc.redis.hexists(KEYS.budget_held, large)
    assert svc.redis.hexists(KEYS.key_budget_held(mine.id), large)
    # The other key's jobs go on at once, however they come.
    for _ in range(3):
        assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=other).admitted
        assert budget.reserve(svc, clock.job_id(), MAX, LARGE, clock.now, key=other).waits is False


def test_a_record_left_in_a_shared_limit_goes_once_the_job_waits_only_for_its_own_keys(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT))
    priced_within_catalog(svc)
    clock, mine, other = Clock(), _key("key_a", 19), _key("key_b")
    service_alone = clock.job_id()
    assert budget.reserve(svc, service_alone, VIDEO, ONE_MP, clock.now, key=other).admitted  # out alone, shared
    own = clock.job_id()
    assert budget.reserve(svc, own, PRO, ONE_MP, clock.now, key=mine).waits
    large = clock.job_id()
    assert budget.reserve(svc, large, MAX, LARGE, clock.now, key=mine).waits  # recorded in both limits
    assert svc.redis.hexists(KEYS.budget_held, large)
    settle(svc, service_alone, 1, clock.now, other.id)
    assert budget.reserve(svc, own, PRO, ONE_MP, clock.now, key=mine).admitted
    # Now it waits only for its key's own limit (its key's earlier job is live): its record in the service's goes.
    assert budget.reserve(svc, large, MAX, LARGE, clock.now, key=mine).decided_by == "key"
    assert not svc.redis.hexists(KEYS.budget_held, large)
    assert budget.reserve(svc, clock.job_id(), MAX, LARGE, clock.now, key=other).admitted
