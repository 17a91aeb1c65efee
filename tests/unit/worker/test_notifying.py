"""The worker's notifier (worker/notifying.py) in-process on a real Redis, with two app keys: key A's receiver
trickles its answers, key B's answers at once. A holds two of the notifier's attempt threads, never more, each until
its 15 s deadline; B's notifications go at once beside them (woken by their jobs' ends), a retry another process's
attempt set goes at its due time though the notifier looks at nothing meanwhile, and a notifier stops at once."""

from __future__ import annotations

import time

import pytest

from devtools.processes import wait_until
from devtools.slow_receivers import TRICKLE, PromptReceiver, SlowReceiver
from fluxhook.core import job as st
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.store.deliveries import PENDING, member_message
from fluxhook.store.keys import KEYS
from fluxhook.store.wakes import LONGEST_WAIT
from helpers import commands_during
from notify_helpers import notified_job
from worker import dispatcher, notifying, run


@pytest.fixture()
def receivers():
    slow, prompt = SlowReceiver(TRICKLE, every=0.5), PromptReceiver()
    yield slow, prompt
    slow.stop()
    prompt.stop()


def _ended(svc, url: str, key_id: str) -> str:
    job = notified_job(svc, url)
    svc.jobs.update(job.id, key_id=key_id)
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    return job.id


def test_a_trickling_receiver_holds_two_attempt_threads_and_another_key_s_message_goes_at_once(make_services,
                                                                                                 receivers):
    slow, prompt = receivers
    svc = make_services(11, NOTIFY_HOST_ALLOWLIST=f"{slow.host},{prompt.host}")
    key_a, key_b = (key_admin.create_key(svc, {"name": name}, time.time())[0].id for name in ("a", "b"))
    held = [_ended(svc, slow.url(), key_a) for _ in range(6)]
    notifier = _start(svc)
    try:
        wait_until(lambda: slow.open == 2, timeout=10, message="A's receiver holding two attempts")
        # B's jobs end one after another while A's attempts hold the notifier busy: each end's wake-up starts B's
        # notification at once.
        late = []
        for _ in range(4):
            theirs = _ended(svc, prompt.url(), key_b)
            ended = time.time()
            arrived = wait_until(lambda theirs=theirs: prompt.arrived.get(f"msg_{theirs}"), timeout=10,
                                 message="B's notification")
            late.append(arrived - ended)
        assert max(late) < 0.3, late
        assert slow.most_open == 2 and int(svc.redis.hget(KEYS.notify_busy, f"o:{key_a}")) == 2
        assert svc.redis.zcard(KEYS.notify_parked) == len(held) - 2  # A's others wait behind their receiver
    finally:
        started = time.monotonic()
        _stop(notifier)
        assert time.monotonic() - started < 1.5


def test_at_rest_the_notifier_waits_for_a_job_s_end_and_its_notification_starts_at_once(make_services, receivers):
    """docs/scaling.md: with nothing due the notifier costs Redis nothing while it waits; a job's end wakes it (the push
    job_transition.lua makes with the outbox entry), and the notification starts within 0.2 s of the end."""
    _, prompt = receivers
    svc = make_services(11, NOTIFY_HOST_ALLOWLIST=prompt.host)
    key = key_admin.create_key(svc, {"name": "a"}, time.time())[0].id
    notifier = _start(svc)
    try:
        time.sleep(0.5)  # its first look found nothing: it waits
        sent = commands_during(svc.redis, 11, lambda: time.sleep(1.5))
        assert [c["command"] for c in sent if not c["command"].startswith("SELECT")] == []
        job_id = _ended(svc, prompt.url(), key)
        ended = time.time()
        arrived = wait_until(lambda: prompt.arrived.get(f"msg_{job_id}"), timeout=5, message="the notification")
        assert arrived - ended < 0.2
    finally:
        _stop(notifier)


def _start(svc) -> dispatcher.Dispatcher:
    """A dispatcher of notification attempts alone, with 4 attempt threads."""
    return dispatcher.Dispatcher(run.wakes_for(svc.config), [notifying.Notifications(svc, 4)]).started()


def _stop(notifier: dispatcher.Dispatcher) -> None:
    """Stop ``notifier`` as its process does: its wait ends at once (the process's stop list); its attempts under way,
    each within its deadline, are not waited for (their stop began a whole NOTIFY_STOP_TIMEOUT ago)."""
    notifier.request_stop()
    notifier.wakes.stop(1)
    notifier.stop(since=time.monotonic() - notifying.NOTIFY_STOP_TIMEOUT)


def _blocked(svc) -> int:
    """How many clients of the test's database wait in a BLPOP now (the notifier's wait for a wake-up)."""
    return sum(1 for client in svc.redis.client_list() if client["cmd"] == "blpop" and client["db"] == "11")


def test_a_retry_another_process_s_attempt_set_wakes_a_notifier_with_attempts_under_way_for_its_due_time(
        make_services, receivers):
    """A notifier with an attempt under way waits for the earliest due time it knows of or a wake-up, not on a short
    timer: an attempt another process ends with a retry wakes it in the same step (lua/notify_finish.lua), it waits
    for the retry's due time making no command meanwhile, and the retry goes within 0.2 s of it."""
    slow, prompt = receivers
    svc = make_services(11, NOTIFY_HOST_ALLOWLIST=f"{slow.host},{prompt.host}")
    other = make_services(11, NOTIFY_HOST_ALLOWLIST=f"{slow.host},{prompt.host}")  # another worker process
    key_a, key_b = (key_admin.create_key(svc, {"name": name}, time.time())[0].id for name in ("a", "b"))
    _ended(svc, prompt.url(), key_b)
    [theirs] = due_attempts(other, 4)  # the other process's attempt of B's message is under way
    _ended(svc, slow.url(), key_a)
    notifier = _start(svc)
    try:
        wait_until(lambda: slow.open == 1 and _blocked(svc) == 1, timeout=10,
                   message="the notifier waiting beside its attempt under way")
        message = other.store.deliveries.get(member_message(theirs.member))
        due = time.time() + 2.0
        other.store.deliveries.record(theirs, message, (time.time(), 503, None, 5), PENDING, due)  # ends: a retry
        sent = commands_during(svc.redis, 11, lambda: time.sleep(max(0.0, due - 0.05 - time.time())))
        waits = [n for n, c in enumerate(sent) if c["command"].startswith("BLPOP")]
        # At most the wake-up's own look (a take, the earliest due time) ends in one wait, the last command until due.
        assert len(waits) <= 1 and (not waits or waits[0] == len(sent) - 1), [c["command"] for c in sent]
        arrived = wait_until(lambda: prompt.arrived.get(member_message(theirs.member)), timeout=5, message="the retry")
        assert due <= arrived < due + 0.2, arrived - due
    finally:
        _stop(notifier)


def test_the_notifier_waits_for_no_lease_of_its_own_attempts_and_for_another_process_s(make_services, receivers):
    """Its own attempt's end wakes a notifier for whatever it makes due (lua/notify_finish.lua): a notifier with
    nothing else due rests until a wake-up, not until its attempt's lease, which would wake it for nothing once the
    attempt ended; another process's attempt under way it waits for, as that process may die."""
    _, prompt = receivers
    svc = make_services(11, NOTIFY_HOST_ALLOWLIST=prompt.host)
    other = make_services(11, NOTIFY_HOST_ALLOWLIST=prompt.host)  # another worker process
    key = key_admin.create_key(svc, {"name": "a"}, time.time())[0].id
    kind = notifying.Notifications(svc, 4)
    try:
        job_id = _ended(svc, prompt.url(), key)
        taken = kind.take({None: 4})
        [(_, attempt)] = taken.items
        assert taken.wait == LONGEST_WAIT  # not its lease, 60 s on
        assert dict(taken.watched.earlier)[KEYS.notify_due] == float(attempt.lease)  # the guard's look still sees it
        kind.run(None, attempt)
        assert prompt.arrived.get(f"msg_{job_id}") and not svc.redis.exists(KEYS.notify_due)
        _ended(svc, prompt.url(), key)
        [theirs] = due_attempts(other, 4)  # under way in the other process
        assert kind.take({None: 4}).wait == pytest.approx(float(theirs.lease) - time.time(), abs=1)
    finally:
        kind.hands.shutdown()
