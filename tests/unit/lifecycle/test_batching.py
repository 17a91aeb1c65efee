"""Batches (fluxhook/lifecycle/batching.py) in-process on a real Redis and the simulator: a batch is checked whole
before anything exists, its items are jobs in line behind their key's single jobs, its counts follow its items' moves,
its cancel aborts the unsent items and lets the sent ones go on, and another key sees none of it.
Over HTTP: tests/e2e/batches/."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.batch import BatchStatus
from fluxhook.core.batch_items import BatchItem
from fluxhook.core.errors import AlreadyEnded, BatchNotFound, InvalidItems, ModelNotAllowed, UnknownModel
from fluxhook.core.job_filters import JobFilter
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.batching import BatchRequest, cancel_batch, create_batch, get_batch, items, list_batches
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps import task_inputs
from fluxhook.lifecycle.steps.callers import ADMIN
from fluxhook.store.keys import KEYS
from unit.lifecycle.batch_helpers import PRO, app_caller, batch_request, spooled

DB = 7


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)




def test_a_batch_is_recorded_with_its_items_as_jobs_in_line_in_their_order(svc, sim):
    batch = create_batch(svc, ADMIN, batch_request(3, metadata={"run": "catalog"}))

    assert batch.id.startswith("bat_") and batch.total == 3 and batch.status == BatchStatus.RUNNING
    assert batch.counts == {st.QUEUED: 3} and batch.metadata == {"run": "catalog"} and batch.progress == 0
    made = list(items(svc, batch))
    assert [(j.batch_id, j.batch_index, j.metadata, j.status) for j in made] == [
        (batch.id, i, {"sku": i}, st.QUEUED) for i in range(3)]
    listed, _ = svc.jobs.list(JobFilter(batch_id=batch.id), limit=10)
    assert {j.id for j in listed} == {j.id for j in made}
    assert svc.slots.waiting("default") == 3 and sim.stats()["submitted"] == 0  # nothing sent in the request


def test_bad_items_are_named_by_index_and_nothing_is_made(svc, sim):
    request = BatchRequest(PRO, spooled({"prompt": "fine"}, {"prompt": "x", "width": "wide"}, {"prompt": "fine"},
                                        {"width": 10_000}))

    with pytest.raises(InvalidItems) as refused:
        create_batch(svc, ADMIN, request)

    assert [item["index"] for item in refused.value.items] == [1, 3] or \
        sorted({item["index"] for item in refused.value.items}) == [1, 3]
    assert refused.value.items[0]["field"] == "input.width" and "fix 'input.width'" in refused.value.items[0]["message"]
    assert "2 of 4 items would be refused, at index 1, 3 (item 1: input.width: " in refused.value.message
    assert "nothing was created" in refused.value.message
    assert svc.redis.zcard(KEYS.all_batches) == 0 and svc.jobs.list(limit=5)[0] == []
    assert svc.slots.waiting("default") == 0


def test_items_of_a_bad_shape_are_named_with_those_the_schema_refuses_in_their_order(svc, sim):
    items = spooled({"prompt": "x", "width": "wide"})
    items.refuse([("prompt", "put 'prompt' under 'input'")])
    items.add(BatchItem({"prompt": "ok"}))
    request = BatchRequest(PRO, items)

    with pytest.raises(InvalidItems) as refused:
        create_batch(svc, ADMIN, request)

    assert [(item["index"], item["field"]) for item in refused.value.items] == [(0, "input.width"), (1, "prompt")]
    assert "at index 0, 1 (" in refused.value.message and svc.redis.zcard(KEYS.all_batches) == 0


def test_the_model_and_the_keys_models_refuse_the_whole_batch(svc, sim):
    with pytest.raises(UnknownModel):
        create_batch(svc, ADMIN, BatchRequest("flux-9", spooled({"prompt": "x"})))
    limited = app_caller(svc, models=["flux-dev"])
    with pytest.raises(ModelNotAllowed):
        create_batch(svc, limited, batch_request(2))
    assert svc.redis.zcard(KEYS.all_batches) == 0


def test_a_single_job_of_the_same_key_takes_the_next_slot_before_the_batchs_items(svc, sim):
    app = app_caller(svc, max_active=1)
    create_batch(svc, app, batch_request(5))
    single = create_job(svc, app, JobRequest(PRO, {"prompt": "[pending] interactive"}), submit_here=False).job

    dispatched = svc.slots.dispatch()

    assert dispatched.jobs == [single.id]  # made after every item, yet first of its key


def test_another_keys_single_jobs_and_batch_take_turns_as_the_shares_say(svc, sim):
    a, b = app_caller(svc), app_caller(svc)
    create_batch(svc, a, batch_request(30))
    theirs = [create_job(svc, b, JobRequest(PRO, {"prompt": f"[pending] b{i}"}), submit_here=False).job.id
              for i in range(10)]

    dispatched = svc.slots.dispatch(limit=20)

    # 24 slots at the simulator's account: B's 10 are not held behind A's batch made before them.
    assert set(theirs) <= set(dispatched.jobs) and len(dispatched.jobs) == 20


def test_another_key_neither_sees_nor_cancels_a_batch(svc, sim):
    a, b = app_caller(svc), app_caller(svc)
    batch = create_batch(svc, a, batch_request(2))

    with pytest.raises(BatchNotFound):
        get_batch(svc, b, batch.id)
    with pytest.raises(BatchNotFound):
        cancel_batch(svc, b, batch.id)
    assert list_batches(svc, b, limit=10, cursor=None) == ([], None)
    assert [x.id for x in list_batches(svc, a, limit=10, cursor=None)[0]] == [batch.id]
    assert [x.id for x in list_batches(svc, ADMIN, limit=10, cursor=None)[0]] == [batch.id]
    assert get_batch(svc, a, batch.id).counts == {st.QUEUED: 2}  # untouched


def test_cancel_aborts_unsent_items_lets_sent_ones_go_on_and_ends_the_batch_once_with_them(svc, sim):
    app = app_caller(svc)
    batch = create_batch(svc, app, batch_request(4, notify_url="https://example.com/hook"))
    sent = svc.slots.dispatch(limit=2).jobs
    from fluxhook.lifecycle import submitting
    for job_id in sent:
        submitting.submit_queued(svc, job_id)

    canceled = cancel_batch(svc, app, batch.id)

    # The two BFL has are paid for: they go on (never shown canceled), the two unsent are aborted.
    assert canceled.status == BatchStatus.CANCELED and canceled.ended_at is None
    assert canceled.counts == {st.ABORTED: 2, st.SUBMITTED: 2} and canceled.progress == 0.5
    assert canceled.cost_credits == pytest.approx(2 * 3)
    assert {j.status for j in items(svc, batch) if j.id in sent} == {st.SUBMITTED}
    assert svc.redis.zscore(KEYS.outbox, f"{batch.id}|batch.ended") is None  # not ended yet
    with pytest.raises(AlreadyEnded):
        cancel_batch(svc, app, batch.id)
    for job_id in sent:  # BFL's results come: each is stored as any item is
        assert svc.jobs.transition(job_id, st.READY) and svc.jobs.transition(job_id, st.STORED)

    ended = get_batch(svc, app, batch.id)
    assert ended.status == BatchStatus.CANCELED and ended.ended_at is not None and ended.progress == 1
    assert ended.counts == {st.ABORTED: 2, st.STORED: 2}
    assert svc.redis.zscore(KEYS.outbox, f"{batch.id}|batch.ended") is not None


def test_counts_follow_an_item_to_its_end_and_the_last_one_ends_the_batch(svc, sim):
    batch = create_batch(svc, ADMIN, batch_request(2))
    first, second = list(items(svc, batch))
    assert svc.jobs.transition(first.id, st.FAILED, error={"code": "x", "message": "y"})
    assert get_batch(svc, ADMIN, batch.id).counts == {st.QUEUED: 1, st.FAILED: 1}
    assert get_batch(svc, ADMIN, batch.id).ended_at is None

    svc.jobs.delete(second.id)

    ended = get_batch(svc, ADMIN, batch.id)
    assert ended.total == 1 and ended.counts == {st.FAILED: 1} and ended.status == BatchStatus.ENDED
    assert svc.redis.zscore(KEYS.outbox, f"{batch.id}|batch.ended") is None  # no notify_url: no message


def test_retention_forgets_a_batch_with_its_items(svc, sim):
    from fluxhook.lifecycle.retention import purge_expired

    batch = create_batch(svc, ADMIN, batch_request(2))
    assert purge_expired(svc, time.time()) == 0 and svc.store.batches.get(batch.id) is not None

    assert purge_expired(svc, time.time() + (svc.config.job_retention_days + 1) * 86400) == 2

    assert svc.store.batches.get(batch.id) is None and svc.redis.zcard(KEYS.all_batches) == 0
    assert not [f for f in svc.redis.hkeys(KEYS.batch_counts) if f.decode().startswith(batch.id)]


def test_a_cancel_the_request_cannot_finish_is_finished_by_the_sweep_and_nothing_more_is_sent(svc, sim, monkeypatch):
    from fluxhook.lifecycle import batching, submitting
    from fluxhook.lifecycle.sweep import sweep

    app, other = app_caller(svc), app_caller(svc)
    batch = create_batch(svc, app, batch_request(7))
    theirs = create_job(svc, other, JobRequest(PRO, {"prompt": "[pending] B's"}), submit_here=False).job
    taken = svc.slots.dispatch(limit=3).jobs  # slots given before the cancel, sends not made yet
    monkeypatch.setattr(batching, "CANCEL_IN_REQUEST", 0.0)  # the request ends none of them itself
    monkeypatch.setattr(batching, "ENDS_PER_SWEEP", 2)

    canceled = cancel_batch(svc, app, batch.id)

    assert canceled.status == BatchStatus.CANCELED and canceled.counts == {st.QUEUED: 7}
    for job_id in taken:  # a sender that took an item before the cancel never sends it
        assert submitting.submit_queued(svc, job_id) in (st.ABORTED, st.SUBMITTED)
    sent_items = [j for j in items(svc, batch) if j.status == st.SUBMITTED]
    assert sent_items == [] and sim.stats()["submitted"] == (1 if theirs.id in taken else 0)
    rounds = 0
    while get_batch(svc, app, batch.id).ended_at is None:
        sweep(svc)
        rounds += 1
        assert rounds < 10
    assert get_batch(svc, app, batch.id).counts == {st.ABORTED: 7} and rounds >= 2
    assert svc.redis.zcard(KEYS.batches_canceling) == 0
    assert svc.jobs.get(theirs.id).status in (st.QUEUED, st.SUBMITTED)  # the other key's job is not touched


def test_a_large_items_input_waits_in_storage_and_a_small_ones_stays_in_its_record(svc, sim):
    large = {"prompt": "a large one", "input_image": "A" * (task_inputs.INLINE_INPUT_BYTES + 1)}
    batch = create_batch(svc, ADMIN, BatchRequest(PRO, spooled({"prompt": "a small one"}, large)))

    small_job, large_job = items(svc, batch)
    assert small_job.input == {"prompt": "a small one"} and small_job.input_size is None
    assert large_job.input is None and large_job.input_size is not None  # priced without reading storage
    assert task_inputs.load(svc, large_job.id, large_job.input) == large
    assert task_inputs.load(svc, small_job.id, small_job.input) == {"prompt": "a small one"}


def test_an_item_s_notifications_go_behind_its_key_s_others_and_the_batch_s_own_end_does_not(svc, sim):
    app = app_caller(svc)
    batch = create_batch(svc, app, batch_request(2, notify_url="https://example.com/hook", job_events=("job.ended",)))
    single = create_job(svc, app, JobRequest(PRO, {"prompt": "[pending] alone"}, notify_url="https://example.com/hook"),
                        submit_here=False).job
    for job in [*items(svc, batch), single]:
        assert svc.jobs.transition(job.id, st.FAILED, error={"code": "x", "message": "y"})
    now = time.time()
    notifications.enter(svc, svc.jobs.claim_notifications(now, 10, now + 60), now)
    # Marked as lua/notify_take.lua reads a batch item's message (after its key's single jobs'), kept so on the message.
    due = {m.decode().rsplit("|", 1)[-1]: m.decode() for m in svc.redis.zrange(KEYS.notify_due, 0, -1)}
    marked = {message_id for message_id, member in due.items() if "|~|" in member}
    assert marked == {f"msg_{job.id}" for job in items(svc, batch)}
    assert {f"msg_{single.id}", f"msg_{batch.id}"} <= set(due) - marked
    assert all(svc.store.deliveries.get(message_id).member == member for message_id, member in due.items())


def test_a_batch_past_its_keys_queue_limit_is_refused_before_it_waits_for_a_turn_and_a_refused_one_holds_no_room(
        svc, sim):
    from contextlib import contextmanager

    from fluxhook.core.errors import QueueFull

    caller = app_caller(svc, max_queued=3)
    entered = []

    @contextmanager
    def waiting_room():
        entered.append(True)
        yield True

    with pytest.raises(QueueFull):
        create_batch(svc, caller, batch_request(4), waiting_room=waiting_room)
    assert entered == [] and svc.redis.hgetall(KEYS.queue_room) == {}  # no turn waited for, no room held

    with pytest.raises(InvalidItems):  # refused after its room was held: the room comes back at once
        create_batch(svc, caller, BatchRequest(PRO, spooled({"prompt": "x", "width": "wide"})),
                     waiting_room=waiting_room)
    assert entered == [True] and svc.redis.hgetall(KEYS.queue_room) == {}
    assert create_batch(svc, caller, batch_request(3), waiting_room=waiting_room).total == 3
