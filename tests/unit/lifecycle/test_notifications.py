"""Notifications to the user's app (fluxhook/lifecycle/notifications.py): the outbox and the task in-process
(database 11) against a real HTTP receiver on 127.0.0.1, and the pure parts: signing (checked with
``standardwebhooks``, the Standard Webhooks reference library), answers, the retry schedule, configuration.
End to end on a stack of its own: tests/e2e/api/test_notifications.py.
"""

from __future__ import annotations

import base64
import os
import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, InvalidRequest
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import key_admin, notifications
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.store.deliveries import member_message
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import tag
from notify_helpers import SECRET, notified_job


def _outbox(svc) -> list[str]:
    return [i.decode() for i in svc.redis.zrange(KEYS.outbox, 0, -1)]


def test_a_job_enters_the_outbox_in_the_transition_that_ends_it(notifying, receivers):
    svc = notifying()
    notified, silent = notified_job(svc, receivers[0].url()), notified_job(svc, None)
    assert svc.jobs.transition(notified.id, st.READY, bfl_status="Ready", result_url="https://x/y.png")
    assert svc.jobs.transition(silent.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert _outbox(svc) == []  # ready is not the end; a job without notify_url has nobody to tell
    assert svc.jobs.transition(notified.id, st.FAILED, error={"code": "download_failed", "message": "x"})
    assert _outbox(svc) == [notified.id]
    # A late event for the ended job changes nothing, and adds nothing.
    svc.redis.zrem(KEYS.outbox, notified.id)
    assert not svc.jobs.transition(notified.id, st.STORED)
    assert _outbox(svc) == []
    # Deleting a job takes it out of the outbox too.
    other = notified_job(svc, receivers[0].url())
    svc.jobs.transition(other.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(other.id)
    assert _outbox(svc) == []


def test_the_outbox_becomes_one_message_per_job_and_attempts_even_when_repeated(notifying, receivers):
    svc = notifying()
    jobs = [notified_job(svc, receivers[0].url()) for _ in range(3)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    # Two hand-offs: the outbox's events made messages, due at once; then their attempts taken, as far as the
    # receiver has room (2 in flight).
    taken = due_attempts(svc, 8, now)
    assert _outbox(svc) == [] and len(taken) == 2 and svc.redis.zcard(KEYS.notify_parked) == 1
    assert [m.id for j in jobs for m in svc.store.deliveries.of_job(j.id)] == [f"msg_{j.id}" for j in jobs]
    assert {member_message(a.member) for a in taken} < {f"msg_{j.id}" for j in jobs}
    assert svc.queue.count == 0 and svc.store.checks.waiting() == 0  # nothing of it goes through RQ
    # A crash after keeping the messages but before the outbox was emptied: the ids come back; no second message.
    svc.redis.zadd(KEYS.outbox, {j.id: now for j in jobs})
    assert _drain(svc, now + 1) == 0
    assert _outbox(svc) == [] and all(len(svc.store.deliveries.of_job(j.id)) == 1 for j in jobs)


def test_a_job_s_end_user_marks_its_messages_so_they_take_its_turn(notifying, receivers):
    svc = notifying()
    jobs = _failed_jobs(svc, receivers[0].url(), "end_user", ("shopper-42", None), time.time())
    taken = due_attempts(svc, 8, time.time())
    [mine] = svc.store.deliveries.of_job(jobs["shopper-42"].id)
    [theirs] = svc.store.deliveries.of_job(jobs[None].id)
    # The end user's tag is on its message's hash, so the member read back is the one in the due set.
    assert mine.tag == tag("shopper-42") and theirs.tag == ""
    assert sorted(a.member for a in taken) == sorted([mine.member, theirs.member])
    assert f"|!{mine.tag}|{mine.id}" in mine.member and "!" not in theirs.member
    assert member_message(mine.member) == mine.id


def test_a_job_s_deadline_marks_its_messages_so_they_go_by_it(notifying, receivers):
    svc = notifying()
    now = time.time()
    jobs = _failed_jobs(svc, receivers[0].url(), "deadline", (now + 60.5, None), now)
    taken = due_attempts(svc, 8, time.time())
    [ranked] = svc.store.deliveries.of_job(jobs[now + 60.5].id)
    [plain] = svc.store.deliveries.of_job(jobs[None].id)
    # The deadline is on its message's hash, so the member read back is the one in the due set.
    assert ranked.deadline == pytest.approx(now + 60.5, abs=0.001) and plain.deadline is None
    assert sorted(a.member for a in taken) == sorted([ranked.member, plain.member])
    assert f"|@{now + 60.5:.3f}|{ranked.id}" in ranked.member and "@" not in plain.member


def _failed_jobs(svc, notify_url: str, field: str, values: tuple, now: float) -> dict:
    """A submitted job notifying ``notify_url`` for each of ``values`` of its ``field``, each then failed: by value."""
    jobs = {value: svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                       created_at=now, updated_at=now, submitted_at=now, notify_url=notify_url,
                                       **{field: value}))[0]
            for value in values}
    for job in jobs.values():
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    return jobs


def _drain(svc, now: float) -> int:
    """The outbox's due events made messages (what the notifier does before it takes attempts); how many."""
    return notifications.enter(svc, svc.jobs.claim_notifications(now, 10, now + 60), now)


def test_two_drains_never_take_the_same_job(notifying, receivers):
    svc = notifying()
    job = notified_job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert svc.jobs.claim_notifications(now, 10, now + 60) == [job.id]
    assert svc.jobs.claim_notifications(now, 10, now + 60) == []  # held by the first
    # Nobody queued it (a crash): it is taken again once the lease is over.
    assert svc.jobs.claim_notifications(now + 61, 10, now + 121) == [job.id]


def test_events_asked_for_enter_the_outbox_and_progress_at_most_every_5_s(notifying, receivers):
    svc = notifying()
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, created_at=now, updated_at=now,
                                 notify_url=receivers[0].url()))
    svc.store.deliveries.ask_events([job.id], ("job.submitted", "job.progress"), "job.submitted")
    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id=f"task-{job.id}", submitted_at=now)
    assert svc.jobs.update(job.id, progress=0.2) and svc.jobs.update(job.id, progress=0.3)
    assert sorted(_outbox(svc)) == [f"{job.id}|job.progress", f"{job.id}|job.submitted"]
    now = time.time()
    assert _drain(svc, now) == 2
    ids = [m.id for m in svc.store.deliveries.of_job(job.id)]
    assert f"msg_{job.id}_submitted" in ids and any("_progress_" in i for i in ids)
    # Another change within 5 s waits in the outbox until the gap ends, then goes as the job is then.
    assert svc.jobs.update(job.id, progress=0.5)
    assert _drain(svc, now + 1) == 0
    assert _outbox(svc) == [f"{job.id}|job.progress"]
    assert _drain(svc, now + 5.1) == 1
    assert sum("_progress_" in m.id for m in svc.store.deliveries.of_job(job.id)) == 2
    # A job whose key asks for nothing beyond its end puts nothing else in the outbox.
    quiet = notified_job(svc, receivers[0].url())
    assert svc.jobs.update(quiet.id, progress=0.5) and _outbox(svc) == []


# -- configuration and the API's validation ------------------------------------------------------------

BASE = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "SECRET_KEY": "0123456789abcdef0123456789abcdef",
        "API_TOKENS": "token-aaaaaaaa"}


def _problems(**env) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, **env})
    return info.value.problems


def test_notifications_are_off_by_default():
    config = Config.from_env(BASE)
    assert (config.notify_url, config.notify_secret, config.notify_host_allowlist) == (None, None, ())


def test_notify_url_defaults_the_allowlist_to_its_host():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/hooks", "NOTIFY_SECRET": SECRET})
    assert config.notify_url == "https://app.example.com/hooks" and config.notify_secret == SECRET
    assert [str(p) for p in config.notify_host_allowlist] == ["app.example.com"]
    assert SECRET not in repr(config)


def test_notify_host_allowlist_uses_the_allowlist_syntax():
    config = Config.from_env({**BASE, "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "*.example.com, 127.0.0.1:9000"})
    assert [str(p) for p in config.notify_host_allowlist] == ["*.example.com", "127.0.0.1:9000"]
    assert config.notify_url is None


@pytest.mark.parametrize("env, variable, words", [
    ({"NOTIFY_URL": "https://app.example.com/h"}, "NOTIFY_SECRET", "required"),
    ({"NOTIFY_SECRET": "not-a-whsec-secret"}, "NOTIFY_SECRET", "whsec_"),
    ({"NOTIFY_SECRET": "whsec_" + base64.b64encode(b"short").decode()}, "NOTIFY_SECRET", "24 to 64"),
    ({"NOTIFY_SECRET": "whsec_not base64!!"}, "NOTIFY_SECRET", "base64"),
    ({"NOTIFY_URL": "ftp://app.example.com/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "http"),
    ({"NOTIFY_URL": "http://127.0.0.1:9000/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "host:port"),
    ({"NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
      "NOTIFY_HOST_ALLOWLIST": "other.example.com"}, "NOTIFY_URL", "NOTIFY_HOST_ALLOWLIST"),
    ({"NOTIFY_HOST_ALLOWLIST": "*.com"}, "NOTIFY_HOST_ALLOWLIST", "wildcard"),
])
def test_each_bad_notify_setting_is_one_line_naming_it(env, variable, words):
    problems = _problems(**env)
    assert len(problems) == 1 and problems[0].startswith(f"{variable}: ") and words in problems[0], problems


def test_a_bad_notify_secret_is_not_repeated_in_the_problem_line():
    secret = "whsec_tooshortsecretvalue"
    assert not any(secret in line or "tooshortsecretvalue" in line for line in _problems(NOTIFY_SECRET=secret))


def test_unpadded_and_64_byte_secrets_are_accepted():
    unpadded = "whsec_" + base64.b64encode(os.urandom(25)).decode().rstrip("=")
    Config.from_env({**BASE, "NOTIFY_SECRET": unpadded})
    Config.from_env({**BASE, "NOTIFY_SECRET": "whsec_" + base64.b64encode(os.urandom(64)).decode()})
    assert "24 to 64" in _problems(NOTIFY_SECRET="whsec_" + base64.b64encode(os.urandom(65)).decode())[0]


def test_the_api_uses_the_default_unless_a_job_names_its_own():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "app.example.com,*.hooks.example.com"})
    assert notifications.requested_url(None, config) == "https://app.example.com/h"
    assert notifications.requested_url("https://a.hooks.example.com/x?y=1", config) == "https://a.hooks.example.com/x?y=1"
    for bad in ("http://a.hooks.example.com/x", "https://a.b.hooks.example.com/", "https://evil.example.net/",
                "https://app.example.com:8443/", "ftp://app.example.com/", "", "https://app.example.com/a b", 7, [],
                "https://app.example.com/" + "x" * 2048):
        with pytest.raises(InvalidRequest):
            notifications.requested_url(bad, config)
    assert notifications.requested_url(None, Config.from_env(BASE)) is None
    with pytest.raises(InvalidRequest, match="NOTIFY_SECRET"):
        notifications.requested_url("https://app.example.com/h",
                                    Config.from_env({**BASE, "NOTIFY_HOST_ALLOWLIST": "app.example.com"}))


def test_a_job_s_progress_messages_are_bounded_and_its_end_still_goes(notifying, receivers):
    svc = notifying()
    job = notified_job(svc, receivers[0].url())
    svc.redis.hset(KEYS.job(job.id), "notify_progress", f"{notifications.MAX_MESSAGES_PER_JOB},{time.time() - 60}")
    assert notifications.enter(svc, [f"{job.id}|job.progress"], time.time()) == 0
    assert _outbox(svc) == []  # dropped, not kept for later
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert _drain(svc, time.time() + 1) == 1
    assert svc.store.deliveries.get(f"msg_{job.id}").event == "job.ended"


def test_a_listing_pages_through_messages_made_at_the_same_moment(notifying, receivers, monkeypatch):
    svc = notifying()
    monkeypatch.setattr(notifications, "SCAN_BATCH", 3)
    jobs = [notified_job(svc, receivers[0].url()) for _ in range(7)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    _drain(svc, time.time() + 1)  # one sweep: seven messages made at one moment
    listed = notifications.listed(svc, None, state="pending", since=0.0, until=float("inf"), limit=100)
    assert sorted(m.job_id for m in listed) == sorted(j.id for j in jobs)
    monkeypatch.setattr(notifications, "MAX_SCANNED", 3)
    assert len(notifications.listed(svc, None, state=None, since=0.0, until=float("inf"), limit=100)) == 3


def test_an_admin_lists_every_keys_messages_and_its_own_jobs(notifying, receivers):
    svc = notifying()
    keys = [key_admin.create_key(svc, {"name": name}, time.time())[0].id for name in ("shop", "blog")]
    now = time.time()
    jobs = [notified_job(svc, receivers[0].url())]
    for key_id in keys:
        job, _ = svc.jobs.create(Job(id=new_job_id(), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                     created_at=now, updated_at=now, submitted_at=now, key_id=key_id,
                                     notify_url=receivers[0].url()))
        jobs.append(job)
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert _drain(svc, time.time() + 1) == 3
    every = notifications.listed_for_everyone(svc, state="pending", since=0.0, until=float("inf"), limit=100)
    assert sorted(m.job_id for m in every) == sorted(j.id for j in jobs)
    assert [m.created_at for m in every] == sorted((m.created_at for m in every), reverse=True)
    assert {m.owner for m in every} == {"admin", *keys}
    assert [m.job_id for m in notifications.listed(svc, None, state=None, since=0.0, until=float("inf"),
                                                   limit=100)] == [jobs[0].id]  # the admin tokens' jobs alone
    assert len(notifications.listed_for_everyone(svc, state=None, since=0.0, until=float("inf"), limit=2)) == 2
    assert notifications.listed_for_everyone(svc, state="failed", since=0.0, until=float("inf"), limit=100) == []
    assert notifications.listed_for_everyone(svc, state=None, since=time.time() + 60, until=float("inf"),
                                             limit=100) == []


def test_messages_made_due_beyond_what_their_notifier_takes_and_an_older_release_s_task_wake_a_notifier(notifying,
                                                                                                         receivers):
    """Whatever makes a message due wakes a notifier in the same step, once however many: the notifier making them
    wakes none for those it takes itself at once, and an older release's queued task (``take_back``) wakes one."""
    svc = notifying()
    jobs = [notified_job(svc, receivers[0].url()) for _ in range(3)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    svc.redis.delete(KEYS.notify_added)
    events = svc.jobs.claim_notifications(now, 10, now + 60)
    assert notifications.enter(svc, events[:2], now, taking=2) == 2
    assert svc.redis.llen(KEYS.notify_added) == 0  # its notifier takes both at once
    assert notifications.enter(svc, events[2:], now, taking=0) == 1
    assert svc.redis.lrange(KEYS.notify_added, 0, -1) == [b"1"]
    [message] = svc.store.deliveries.of_job(jobs[0].id)
    svc.redis.delete(KEYS.notify_added)
    svc.redis.zrem(KEYS.notify_due, message.member)  # an older release's task holds it instead
    notifications.take_back(svc, message.id, now)
    assert svc.redis.zscore(KEYS.notify_due, message.member) == pytest.approx(now, abs=0.001)
    assert svc.redis.lrange(KEYS.notify_added, 0, -1) == [b"1"]
