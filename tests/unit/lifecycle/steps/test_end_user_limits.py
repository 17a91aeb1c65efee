"""An app key's limits for each of its end users (fluxhook/lifecycle/steps/end_user_limits.py; its admin, key_admin.py):
past one, the key's own answer for that limit naming the end user, nothing created or counted, while the key's other
end users and another key's end user of the same name go on. A block also stops the end user's jobs not yet sent to
BFL: those still queued, single jobs and batch items alike, end canceled with the error end_user_blocked (nothing
sent, nothing charged), a job BFL has goes on, and the key's other end user's queued jobs, and another key's end user
of the same name, are untouched; a job its block missed (it held a slot meanwhile) is ended by its sender instead of
being sent. In-process on a real Redis and the simulator; over HTTP and under concurrency:
tests/e2e/api/test_end_users.py, and for blocks with the worker and a moderation block,
tests/e2e/api/test_end_user_blocks.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.core.errors import BudgetExceeded, EndUserBlocked, QueueFull, RateLimited
from fluxhook.core.job_filters import JobFilter
from fluxhook.credits import accounting
from fluxhook.lifecycle import key_admin, submitting
from fluxhook.lifecycle.batching import BatchRequest, create_batch, get_batch, items
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.end_users import EndUserRecord
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller

DB = 15  # make_services flushes it before and after


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _make(svc, caller: Caller, end_user: str | None, prompt: str = "[pending] eu", *, send: bool = False):
    return create_job(svc, caller, JobRequest(PRO, {"prompt": prompt}, end_user=end_user), submit_here=send).job


def _made(svc) -> int:
    return svc.redis.zcard(KEYS.all_jobs)


def test_an_end_users_requests_per_minute_refuse_only_it(svc, sim):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 2})
    b = app_caller(svc, end_user_limits={"requests_per_minute": 2})
    for n in range(2):
        _make(svc, a, "x", f"[pending] x {n}")
    before = _made(svc)

    with pytest.raises(RateLimited) as caught:
        _make(svc, a, "x")

    assert caught.value.code == "rate_limited" and caught.value.retry_after and "end user 'x'" in caught.value.message
    assert _made(svc) == before  # nothing created
    # Its key's other end user, the same name with another key, and no end user at all go on.
    assert _make(svc, a, "y").status == st.QUEUED
    assert _make(svc, b, "x").status == st.QUEUED
    assert _make(svc, a, None).status == st.QUEUED
    assert sim.stats()["submitted"] == 0


def test_an_end_users_own_limits_override_its_keys(svc):
    a = app_caller(svc, end_user_limits={"requests_per_minute": 1})
    key_admin.set_end_user_limits(svc, a.key_id, "vip", {"requests_per_minute": 3}, time.time())
    for n in range(3):
        _make(svc, a, "vip", f"[pending] vip {n}")
    with pytest.raises(RateLimited):
        _make(svc, a, "vip")
    _make(svc, a, "plain")
    with pytest.raises(RateLimited):
        _make(svc, a, "plain")

    shown = key_admin.show_end_user(svc, a.key_id, "vip", time.time())
    assert shown["limits"]["requests_per_minute"] == 3 and shown["effective_limits"]["requests_per_minute"] == 3


def test_an_end_users_max_queued_refuses_queue_full_and_room_comes_back_as_its_jobs_leave_the_line(svc):
    a = app_caller(svc, end_user_limits={"max_queued": 2})
    first = _make(svc, a, "x")
    _make(svc, a, "x")

    with pytest.raises(QueueFull) as caught:
        _make(svc, a, "x")

    assert caught.value.code == "queue_full" and "end user 'x'" in caught.value.message
    assert _make(svc, a, "y").status == st.QUEUED
    svc.jobs.transition(first.id, st.CANCELED, only_from=(st.QUEUED,))
    assert _make(svc, a, "x").status == st.QUEUED  # the canceled job's room came back


def test_a_blocked_end_user_is_refused_403_until_unblocked_and_others_go_on(svc):
    a, b = app_caller(svc), app_caller(svc)
    assert a.key.end_user_records is False  # until an admin sets something for one, no job reads its end user's
    shown = key_admin.block_end_user(svc, a.key_id, "x", time.time())
    assert shown["blocked"] and shown["blocked_reason"] == "manual"
    a = Caller(svc.store.app_keys.get(a.key_id))  # the key as a request reads it now
    assert a.key.end_user_records is True
    before = _made(svc)

    with pytest.raises(EndUserBlocked) as caught:
        _make(svc, a, "x")

    assert (caught.value.status, caught.value.code) == (403, "end_user_blocked")
    assert "end user 'x'" in caught.value.message and "admin" in caught.value.message
    assert _made(svc) == before
    assert _make(svc, a, "y").status == st.QUEUED and _make(svc, b, "x").status == st.QUEUED
    key_admin.unblock_end_user(svc, a.key_id, "x", time.time())
    assert _make(svc, a, "x").status == st.QUEUED


def test_an_end_user_moderated_as_often_as_its_keys_limit_is_blocked_for_the_day(svc):
    a = app_caller(svc, end_user_moderation_limit=2)
    day = accounting.utc_day(time.time())
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:moderated", 2)

    with pytest.raises(EndUserBlocked) as caught:
        _make(svc, a, "x")

    assert "moderated 2 of its jobs today" in caught.value.message and "end_user_moderation_limit" in caught.value.message
    assert key_admin.show_end_user(svc, a.key_id, "x", time.time())["blocked_reason"] == "moderated"
    assert _make(svc, a, "y").status == st.QUEUED
    key_admin.unblock_end_user(svc, a.key_id, "x", time.time())
    assert _make(svc, a, "x").status == st.QUEUED  # its moderations until the unblock are forgiven
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:moderated", 2)
    with pytest.raises(EndUserBlocked):
        _make(svc, a, "x")


def test_an_end_users_daily_credits_spent_refuse_it_402_naming_it(svc):
    a = app_caller(svc, end_user_limits={"daily_credits": 1})
    day = accounting.utc_day(time.time())
    svc.redis.hincrby(KEYS.end_user_day(a.key_id, day), "x:credits", accounting.to_micro(1))
    before = _made(svc)

    with pytest.raises(BudgetExceeded) as caught:
        _make(svc, a, "x")

    assert caught.value.status == 402 and "end user 'x'" in caught.value.message
    assert _made(svc) == before
    assert _make(svc, a, "y").end_user_daily_credits == 1.0
    assert key_admin.show_end_user(svc, a.key_id, "x", time.time())["spent_today"] == 1.0


def test_the_end_user_is_on_the_job_and_filters_the_list(svc):
    a = app_caller(svc)
    mine = _make(svc, a, "x")
    _make(svc, a, "y")
    admins = _make(svc, ADMIN, "x")

    assert svc.jobs.get(mine.id).to_api()["end_user"] == "x"
    listed, _ = svc.jobs.list(JobFilter(key_id=a.key_id, end_user="x"))
    assert [j.id for j in listed] == [mine.id]
    everyone, _ = svc.jobs.list(JobFilter(end_user="x"))
    assert {j.id for j in everyone} == {mine.id, admins.id}
    assert svc.jobs.get(_make(svc, a, None).id).to_api()["end_user"] is None


def test_a_batch_names_an_end_user_for_all_its_items_or_per_item_and_a_blocked_one_refuses_it_whole(svc):
    from fluxhook.core.batch_items import BatchItem, ItemSpool
    from fluxhook.lifecycle.batching import BatchRequest, create_batch, items, result_of

    a = app_caller(svc, end_user_limits={"daily_credits": 5})
    spool = ItemSpool.of([BatchItem({"prompt": "[pending] own"}, {}, "z"), BatchItem({"prompt": "[pending] all"})])
    batch = create_batch(svc, a, BatchRequest(PRO, spool, end_user="x"))

    made = list(items(svc, batch))
    assert [(j.end_user, j.end_user_daily_credits) for j in made] == [("z", 5.0), ("x", 5.0)]
    assert [result_of(svc, j)["end_user"] for j in made] == ["z", "x"]
    key_admin.block_end_user(svc, a.key_id, "z", time.time())
    before = _made(svc)
    with pytest.raises(EndUserBlocked):
        create_batch(svc, a, BatchRequest(PRO, ItemSpool.of([BatchItem({"prompt": "[pending] z"}, {}, "z")])))
    assert _made(svc) == before
    assert create_batch(svc, a, BatchRequest(PRO, ItemSpool.of([BatchItem({"prompt": "[pending] y"}, {}, "y")])))


def test_past_an_end_users_max_active_its_next_job_waits_aside_and_others_go_on(svc, sim):
    from fluxhook.core.wait_reasons import WaitReason
    from fluxhook.lifecycle.steps import end_user_limits, submission

    a = app_caller(svc, end_user_limits={"max_active": 1})

    def sent(end_user: str):
        return create_job(svc, a, JobRequest(PRO, {"prompt": "[pending] at bfl"}, end_user=end_user),
                          submit_here=True).job

    first = sent("x")
    second = sent("x")

    assert first.status == st.SUBMITTED and first.end_user_max_active == 1
    assert second.status == st.QUEUED
    assert svc.jobs.get(second.id).waiting_reason == WaitReason.END_USER_MAX_ACTIVE
    assert sent("y").status == st.SUBMITTED  # its key's other end user goes on
    assert end_user_limits.still_waits_for_active(svc, svc.jobs.get(second.id))
    assert submission.wait_out_of_line(svc, svc.jobs.get(second.id)) == st.QUEUED  # it looked, and waits on
    svc.jobs.transition(first.id, st.FAILED, only_from=(st.SUBMITTED,))
    assert not end_user_limits.still_waits_for_active(svc, svc.jobs.get(second.id))  # its place came back


def test_a_block_ends_its_end_users_queued_jobs_and_batch_items_and_nothing_else(svc, sim):
    a = app_caller(svc, max_active=1)
    b = app_caller(svc)
    at_bfl = _make(svc, a, "x", send=True)
    assert at_bfl.status == st.SUBMITTED  # the key's one job at BFL: the rest wait
    waiting = [_make(svc, a, "x"), _make(svc, a, "x")]
    others = [_make(svc, a, "y"), _make(svc, b, "x")]
    batch = create_batch(svc, a, BatchRequest(PRO, ItemSpool.of(
        [BatchItem({"prompt": "[pending] bx"}, {}, "x"), BatchItem({"prompt": "[pending] by"}, {}, "y")])))
    sent_before = sim.stats()["submitted"]

    key_admin.block_end_user(svc, a.key_id, "x", time.time())

    ended = [svc.jobs.get(j.id) for j in waiting] + [j for j in items(svc, batch) if j.end_user == "x"]
    assert [(j.status, j.error["code"], j.bfl_id) for j in ended] == [(st.CANCELED, "end_user_blocked", None)] * 3
    assert "blocked by an admin" in ended[0].error["message"]
    assert svc.jobs.get(at_bfl.id).status == st.SUBMITTED  # BFL has it: it goes on
    assert [svc.jobs.get(j.id).status for j in others] == [st.QUEUED, st.QUEUED]
    assert [j.status for j in items(svc, batch) if j.end_user == "y"] == [st.QUEUED]
    counts = get_batch(svc, a, batch.id).counts
    assert (counts.get(st.CANCELED), counts.get(st.QUEUED)) == (1, 1), counts
    # Nothing sent, nothing charged: x's day counts only its job at BFL.
    assert sim.stats()["submitted"] == sent_before
    assert svc.store.end_users.counters_of(a.key_id, "x", time.strftime("%Y-%m-%d", time.gmtime()))["jobs"] == 1


def test_a_job_its_block_missed_is_ended_by_its_sender_not_sent(svc, sim):
    a = app_caller(svc)
    job = _make(svc, a, "x")
    other = _make(svc, a, "y")
    # Blocked as its job took a slot (the block's own pass found it in no line): only the record says so.
    svc.store.app_keys.change(a.key_id, {"end_user_records": True})
    svc.store.end_users.change(a.key_id, "x", lambda _: EndUserRecord(blocked=time.strftime("%Y-%m-%d",
                                                                                             time.gmtime())))
    sent_before = sim.stats()["submitted"]

    dispatched = submitting.take_turns(svc, 10)
    assert {job.id, other.id} <= set(dispatched.jobs)
    assert submitting.submit_queued(svc, job.id, dispatched.accounts[job.id]) == st.CANCELED
    assert submitting.submit_queued(svc, other.id, dispatched.accounts[other.id]) == st.SUBMITTED

    ended = svc.jobs.get(job.id)
    assert (ended.status, ended.error["code"], ended.bfl_id) == (st.CANCELED, "end_user_blocked", None)
    assert sim.stats()["submitted"] == sent_before + 1  # y's alone
    assert not svc.slots.holds(ended)  # its slot went back with it


def test_a_job_waiting_for_its_end_users_place_sleeps_until_one_of_its_jobs_ends_and_no_other_wakes_it(svc, sim):
    from fluxhook.credits import accounting as counting
    from fluxhook.lifecycle.steps import end_user_limits

    a = app_caller(svc, end_user_limits={"max_active": 1})
    b = app_caller(svc, end_user_limits={"max_active": 1})

    def sent(caller: Caller, end_user: str):
        return create_job(svc, caller, JobRequest(PRO, {"prompt": "[pending] at bfl"}, end_user=end_user),
                          submit_here=True).job

    first, waiting = sent(a, "x"), sent(a, "x")
    theirs_first, theirs_waiting = sent(b, "x"), sent(b, "x")
    assert (waiting.status, theirs_waiting.status) == (st.QUEUED, st.QUEUED)
    now = time.time()
    # Asleep: nothing looks at it before its end user's place frees, up to the safety net's bound.
    assert svc.jobs.due_at(waiting.id) >= now + end_user_limits.ACTIVE_RECHECK - 5
    theirs_due = svc.jobs.due_at(theirs_waiting.id)

    at_bfl = svc.jobs.get(first.id)
    svc.jobs.transition(first.id, st.FAILED, only_from=(st.SUBMITTED,),
                        effects=counting.on_end(at_bfl, st.FAILED, time.time()))

    assert svc.jobs.due_at(waiting.id) <= time.time()  # its end user's job left BFL: due now
    assert svc.jobs.due_at(theirs_waiting.id) == theirs_due  # another key's end user of the same name sleeps on
    assert svc.jobs.get(theirs_first.id).status == st.SUBMITTED
