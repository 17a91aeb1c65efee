"""A block stops its end user's jobs not yet sent to BFL (fluxhook/lifecycle/steps/end_user_blocks.py): those still
queued, single jobs and batch items alike, end canceled with the error end_user_blocked (nothing sent, nothing
charged), a job BFL has goes on, and the key's other end user's queued jobs, and another key's end user of the same
name, are untouched; a job its block missed (it held a slot meanwhile) is ended by its sender instead of being sent.
In-process on a real Redis and the simulator; over HTTP with the worker, and for a moderation block:
tests/e2e/api/test_end_user_blocks.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.lifecycle import key_admin, submitting
from fluxhook.lifecycle.batching import BatchRequest, create_batch, get_batch, items
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.store.end_users import EndUserRecord
from unit.lifecycle.batch_helpers import PRO, app_caller

DB = 15  # make_services flushes it before and after


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _job(svc, caller: Caller, end_user: str, *, send: bool = False):
    return create_job(svc, caller, JobRequest(PRO, {"prompt": f"[pending] {end_user}"}, end_user=end_user),
                      submit_here=send).job


def test_a_block_ends_its_end_users_queued_jobs_and_batch_items_and_nothing_else(svc, sim):
    a = app_caller(svc, max_active=1)
    b = app_caller(svc)
    at_bfl = _job(svc, a, "x", send=True)
    assert at_bfl.status == st.SUBMITTED  # the key's one job at BFL: the rest wait
    waiting = [_job(svc, a, "x"), _job(svc, a, "x")]
    others = [_job(svc, a, "y"), _job(svc, b, "x")]
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
    job = _job(svc, a, "x")
    other = _job(svc, a, "y")
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
