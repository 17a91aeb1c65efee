"""No starvation under the daily budget (``store/lua/budget_reserve.lua``, issue 33 point 4): a job that must go alone
(no bound, or one larger than what is left) goes once the reservations live when it became the oldest waiting of its
limit have settled, however many cheap jobs keep arriving; they wait behind it. In real Redis, with the clock given.
The same with the real processes: tests/e2e/credits/test_budget_liveness.py."""

from __future__ import annotations

import time

import pytest

from credit_helpers import LARGE, ONE_MP, PRO, VIDEO, Clock, limited_services, priced_within_catalog, settle
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.holds import WAITING_LEASE
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import accounting, budget
from fluxhook.lifecycle import checking, submitting
from fluxhook.store.app_keys import AppKey
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.keys import KEYS

DB = 12
LIMIT = 12  # credits
MICRO = accounting.MICRO


@pytest.fixture()
def svc(make_services):
    return limited_services(make_services, DB, LIMIT)


def test_a_stream_of_cheap_jobs_cannot_hold_back_a_job_that_must_go_alone(svc):
    clock = Clock()
    live = [clock.job_id() for _ in range(2)]
    for job_id in live:  # reservations live when the large one comes
        assert budget.reserve(svc, job_id, PRO, ONE_MP, clock.now).amount == 3 * MICRO
    alone = clock.job_id()
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).waits  # it must go alone: it waits, recorded
    behind = []
    for tick in range(10):
        # A cheap job arrives at every tick: it would fit, but waits behind the older one, reserving nothing,
        # and so do those that came before it, looked at again.
        behind.append(clock.job_id())
        for job_id in behind:
            cheap = budget.reserve(svc, job_id, PRO, ONE_MP, clock.now)
            assert cheap.waits and not cheap.admitted
        assert svc.store.usage.reserved(clock.now) == 3 * MICRO * len(live)
        if tick in (2, 5):
            settle(svc, live.pop(0), 3, clock.now)
        look = budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now)
        if live:
            assert look.waits
        else:
            break
    # It goes at its first look after the two reservations live when it came have settled, holding all that is left.
    assert tick == 5 and look.admitted and look.amount == (LIMIT - 6) * MICRO
    # While it is out, the cheap ones still wait; once its price is known, they go, oldest first: of the 5 credits
    # left, the first takes 3; the second's bound no longer fits, so it goes alone once the first has settled, and
    # the third waits behind it.
    assert all(budget.reserve(svc, job_id, PRO, ONE_MP, clock.now).waits for job_id in behind)
    settle(svc, alone, 1, clock.now)
    assert [budget.reserve(svc, job_id, PRO, ONE_MP, clock.now).admitted for job_id in behind[:3]] == [True, False, False]
    settle(svc, behind[0], 3, clock.now)
    assert budget.reserve(svc, behind[2], PRO, ONE_MP, clock.now).waits
    assert budget.reserve(svc, behind[1], PRO, ONE_MP, clock.now).amount == 2 * MICRO  # alone: all that is left


def test_the_oldest_job_waiting_to_go_alone_goes_first(svc):
    clock = Clock()
    cheap = clock.job_id()
    assert budget.reserve(svc, cheap, PRO, ONE_MP, clock.now).admitted
    first, second = clock.job_id(), clock.job_id()
    assert budget.reserve(svc, second, "flux-2-max", LARGE, clock.now).waits  # looked at first, but younger
    assert budget.reserve(svc, first, VIDEO, ONE_MP, clock.now).waits
    settle(svc, cheap, 3, clock.now)
    assert budget.reserve(svc, second, "flux-2-max", LARGE, clock.now).waits  # behind the older one
    assert budget.reserve(svc, first, VIDEO, ONE_MP, clock.now).admitted
    settle(svc, first, 2, clock.now)
    assert budget.reserve(svc, second, "flux-2-max", LARGE, clock.now).amount == (LIMIT - 5) * MICRO


def _key(key_id: str, daily_credits: float | None) -> AppKey:
    return AppKey(id=key_id, name=key_id, prefix="fhk_test", secret_sha256="", daily_credits=daily_credits)


def test_a_keys_job_waiting_to_go_alone_holds_back_only_that_keys_later_jobs(make_services):
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT="100")
    priced_within_catalog(svc)
    clock, mine, other, unlimited = Clock(), _key("key_a", 6), _key("key_b", 6), _key("key_c", None)
    earlier = clock.job_id()
    assert budget.reserve(svc, earlier, PRO, ONE_MP, clock.now, key=mine).admitted
    large = clock.job_id()  # fits in the account's 100, not in what is left of its key's 6: alone there
    waits = budget.reserve(svc, large, "flux-2-max", LARGE, clock.now, key=mine)
    assert waits.waits and waits.limit_index == 1
    # Other keys' jobs, and the admin's, go on under the account's limit; this key's later one waits, though it fits.
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=other).admitted
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=unlimited).admitted
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now).admitted
    later = clock.job_id()
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now, key=mine).waits
    settle(svc, earlier, 3, clock.now, mine.id)
    went = budget.reserve(svc, large, "flux-2-max", LARGE, clock.now, key=mine)
    assert went.admitted and went.amount == 17 * MICRO  # its bound in the account's limit; all 3 left in its key's
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now, key=mine).waits


def test_the_accounts_job_waiting_to_go_alone_holds_back_every_keys_later_jobs(svc):
    clock = Clock()
    earlier = clock.job_id()
    assert budget.reserve(svc, earlier, PRO, ONE_MP, clock.now, key=_key("key_a", None)).admitted
    alone = clock.job_id()
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).waits
    for key in (_key("key_a", None), _key("key_b", 50), None):
        assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=key).waits
    settle(svc, earlier, 3, clock.now)
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).admitted


def test_a_job_waiting_to_go_alone_is_not_refused_while_credits_remain(svc):
    clock = Clock()
    cheap = clock.job_id()
    assert budget.reserve(svc, cheap, PRO, ONE_MP, clock.now).admitted
    alone = clock.job_id()
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).waits
    # Older reservations fill the limit (here: written in): a new request is refused, the one waiting keeps waiting.
    svc.redis.hset(KEYS.budget_held, "job_0", f"{int((clock.now + 60) * 1000)} {9 * MICRO}")
    assert not budget.reserve(svc, clock.job_id(), VIDEO, ONE_MP, clock.now).admitted
    refused = budget.reserve(svc, clock.job_id(), VIDEO, ONE_MP, clock.now)
    assert not refused.admitted and not refused.waits
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).waits
    svc.store.effects.apply([ReleaseBudget("job_0")])
    settle(svc, cheap, 3, clock.now)
    assert budget.reserve(svc, alone, VIDEO, ONE_MP, clock.now).amount == (LIMIT - 3) * MICRO


def _queued(svc, clock: Clock, model: str) -> Job:
    job = Job(id=clock.job_id(), status=st.QUEUED, model=model, input={"prompt": "waits"}, pool=pool_for(model),
              created_at=clock.now, updated_at=clock.now)
    svc.jobs.create(job)
    return job


@pytest.mark.parametrize("end", ["lapses", "deleted", "ended", "refused"])
def test_a_job_waiting_to_go_alone_stops_holding_the_others_back_once_it_is_gone(svc, end):
    clock = Clock()
    cheap = clock.job_id()
    assert budget.reserve(svc, cheap, PRO, ONE_MP, clock.now).admitted
    alone = _queued(svc, clock, VIDEO)
    assert budget.reserve(svc, alone.id, VIDEO, alone.input, clock.now).waits
    later = clock.job_id()
    settle(svc, cheap, 3, clock.now)
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now).waits
    if end == "lapses":  # its job vanished without a word (its process died before creating it): no look renews it
        assert budget.reserve(svc, later, PRO, ONE_MP, clock.now + WAITING_LEASE - 1).waits
        clock.now += WAITING_LEASE + 0.01
    elif end == "deleted":
        svc.jobs.delete(alone.id)
    elif end == "ended":  # its hour is up, its key revoked: any end of a queued job releases its budget
        assert svc.jobs.transition(alone.id, st.FAILED, only_from=(st.QUEUED,), effects=[ReleaseBudget(alone.id)])
    else:  # the day's credits are spent: it waits for the next day, and nobody waits behind it then
        svc.redis.hset(KEYS.usage(accounting.utc_day(clock.now)), accounting.SPENT, LIMIT * MICRO)
        refused = budget.reserve(svc, alone.id, VIDEO, alone.input, clock.now)
        assert not refused.admitted and not refused.waits
        svc.redis.hset(KEYS.usage(accounting.utc_day(clock.now)), accounting.SPENT, 0)
    assert budget.reserve(svc, later, PRO, ONE_MP, clock.now).admitted


def test_the_sweeps_look_lets_a_job_waiting_to_go_alone_back_in_line_still_ahead_of_later_jobs(svc, sim):
    clock = Clock()
    cheap = clock.job_id()
    assert budget.reserve(svc, cheap, PRO, ONE_MP).admitted
    alone = _queued(svc, clock, VIDEO)
    assert svc.slots.acquire(alone)
    assert submitting.submit_queued(svc, alone.id) == st.QUEUED  # out of line, looked at again soon
    assert not svc.slots.holds(alone) and svc.slots.waiting(alone.pool) == 0 and sim.stats()["submitted"] == 0
    due = svc.jobs.due_at(alone.id)
    assert due <= time.time() + budget.ALONE_RECHECK
    settle(svc, cheap, 3, time.time())
    claim = due + 60
    assert svc.jobs.claim_due(due, 10, claim) == [alone.id]
    assert checking.check_job(svc, alone.id, claim) == CheckOutcome.REQUEUED
    # Back in line for the next free slot, it reserves nothing until it is sent, but its record of waiting
    # to go alone holds a job arriving meanwhile back; sent, it holds all that is left.
    assert svc.slots.waiting(alone.pool) == 1
    assert svc.store.usage.reserved(time.time()) == 0
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP).waits
    assert budget.reserve(svc, alone.id, VIDEO, alone.input).amount == (LIMIT - 3) * MICRO


def test_a_job_its_keys_spent_day_refuses_records_no_wait_that_holds_other_keys_back(make_services):
    # The account's limit alone would have it wait to go alone (its bound is more than is left there while
    # others' reservations are live); its key's day is spent, so it cannot go today: refused, it holds nobody.
    svc = make_services(DB, BFL_DAILY_CREDIT_LIMIT="19")  # 16 left once the other key holds 3: less than 17
    priced_within_catalog(svc)
    clock, spent, other = Clock(), _key("key_spent", 1), _key("key_other", None)
    day = accounting.utc_day(clock.now)
    svc.redis.hset(KEYS.usage(day), accounting.spent_field(spent.id), MICRO)
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=other).admitted
    refused = budget.reserve(svc, clock.job_id(), "flux-2-max", LARGE, clock.now, key=spent)
    assert not refused.admitted and not refused.waits
    assert budget.waiting_for(svc, refused, clock.now, spent).reason == "key_daily_credits"
    assert not any(value.endswith(b" waits") for value in svc.redis.hvals(KEYS.budget_held))
    # Another key's later job goes on at once, as it did before.
    assert budget.reserve(svc, clock.job_id(), PRO, ONE_MP, clock.now, key=other).admitted
