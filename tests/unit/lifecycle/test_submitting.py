"""A queued job's submission by a worker's sender (fluxhook/lifecycle/submitting.py, in real Redis): one cut off by
Redis failing over gives back only what it still holds; one an account refused is sent through another at once, by
whichever sender the freed slot wakes. The send itself: tests/unit/lifecycle/steps/test_submission.py."""

from __future__ import annotations

import pytest
import redis
import requests

from devtools.processes import stop_process
from devtools.stack import accounts_env, start_simulator_accounts
from fluxhook.core import job as st
from fluxhook.lifecycle import submitting
from fluxhook.lifecycle.steps import durable
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS
from slot_helpers import _queued

LIMIT = 100
UNIT_DB = 6
OTHER_KEY = "key_00000000000000bb"


@pytest.fixture()
def svc(make_services):
    return make_services(UNIT_DB, BFL_DAILY_CREDIT_LIMIT=str(LIMIT), BFL_MAX_ACTIVE="2")


def test_a_submission_cut_off_by_a_failover_gives_back_only_what_it_still_holds(svc):
    """A sender cut off by Redis failing over puts its job back in line once Redis answers; but when the new
    primary had lost its turn and another sender holds the job's lock by now, it leaves the job, its slot and
    its lock to that sender: taking them back would let a third send the job to BFL a second time."""
    job = _queued(svc.jobs, prompt="cut off")
    lock = KEYS.submit_lock(job.id)
    assert svc.slots.acquire(job)
    assert svc.store.locks.acquire(lock, "another-sender", 60)
    assert submitting._back_in_line(svc, job.id, "cut-off-sender")
    assert svc.slots.holds(job) and svc.store.locks.holder(lock) == "another-sender"

    svc.store.locks.release(lock)
    assert svc.store.locks.acquire(lock, "cut-off-sender", 60)  # its release was lost with the old primary
    assert submitting._back_in_line(svc, job.id, "cut-off-sender")
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert svc.store.locks.holder(lock) is None


def test_a_sender_refused_its_first_read_by_a_failing_over_redis_puts_its_job_back_in_line(make_services, monkeypatch):
    """With replicas required, a send first reads which primary it is on: a Redis failing over refuses that read as
    well, and the job goes back in line once Redis answers, not left holding its slot until its submission's lease
    ends (as it was when the read was outside the send's recovery: one job of CI's failover run, unsent for 23 s)."""
    svc = make_services(UNIT_DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    monkeypatch.setattr(durable, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(svc.store.replication, "confirm", lambda primary: None)  # the suite's Redis has no replica

    reads = []

    def failing_over() -> str:
        reads.append(1)
        if len(reads) == 1:
            raise redis.ConnectionError("the primary went away")
        return "the new primary"

    monkeypatch.setattr(svc.store.replication, "primary", failing_over)
    job = _queued(svc.jobs, prompt="cut off before its first read")
    assert svc.slots.acquire(job)
    with pytest.raises(redis.ConnectionError):
        submitting.submit_queued(svc, job.id)
    assert not svc.slots.holds(job) and svc.slots.waiting(job.pool) == 1
    assert svc.jobs.get(job.id).status == st.QUEUED


@pytest.fixture()
def two_accounts(make_services):
    """Services on a BFL simulator serving two accounts, eu and us; eu answers every submission 503."""
    process, accounts = start_simulator_accounts(["eu", "us"])
    try:
        requests.post(f"{accounts['eu'].base}/_sim/settings", json={"refuse": 503, "refuse_retry_after": 120},
                      timeout=5).raise_for_status()
        yield make_services(UNIT_DB, **accounts_env(accounts.values())), accounts
    finally:
        stop_process(process)


def _submitted(account) -> int:
    return requests.get(f"{account.base}/_sim/stats", timeout=5).json()["submitted"]


def test_a_job_an_account_refused_is_sent_through_another_by_the_sender_its_freed_slot_wakes(two_accounts, monkeypatch):
    """The CI flake of test_accounts: eu's 503 put the job back in line and woke a dispatcher, which handed it us's
    slot at once; that sender found the job's submit lock still held by the refused submission (freed only once it
    returned), skipped it, and the job held us's slot unsent until the sweep's 90 s lease. The lock now goes with
    the slot. Here the woken dispatcher and its sender run in the very instant the slot is given back."""
    svc, accounts = two_accounts
    svc.store.app_keys.create(AppKey(id=OTHER_KEY, name="b", prefix="fhk_0000", secret_sha256="x"))
    job, other = _queued(svc.jobs, prompt="refused by eu"), _queued(svc.jobs, key_id=OTHER_KEY, prompt="another app's")
    assert svc.slots.join(job).account == "eu"  # ties go to the first account
    assert svc.slots.join(other, send_here=False).account is None  # another app's job waits in line meanwhile
    woken: dict[str, str] = {}
    requeue = svc.slots.requeue

    def requeue_then_dispatch(*args, **kwargs):
        given_back = requeue(*args, **kwargs)
        if not woken:  # the dispatcher the freed slot wakes, and its senders
            again = submitting.take_turns(svc, 2)
            woken.update({job_id: submitting.submit_queued(svc, job_id, again.accounts[job_id])
                          for job_id in again.jobs})
        return given_back

    monkeypatch.setattr(svc.slots, "requeue", requeue_then_dispatch)
    assert submitting.submit_queued(svc, job.id, "eu") == st.QUEUED  # eu refused it: back in line, eu cooling

    assert woken == {job.id: st.SUBMITTED, other.id: st.SUBMITTED}  # sent at once, not skipped
    for sent in (svc.jobs.get(job.id), svc.jobs.get(other.id)):
        assert (sent.status, sent.account) == (st.SUBMITTED, "us")
        assert not svc.redis.exists(KEYS.submit_lock(sent.id))
    assert (_submitted(accounts["eu"]), _submitted(accounts["us"])) == (0, 2)
