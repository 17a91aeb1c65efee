"""The fallback sweep (fluxhook/lifecycle/sweep.py) in-process on a real Redis: each due job gets one check, claimed
until its lease runs out; a finished job's notification is not the sweep's (the notifier's); work a dead process took
from a line but never queued is due when its move's lease lapses, and its check puts it back in line; a sweep with
nothing to do costs one round trip. Sends paced by storage as the sweep judges them: the rule from the settings and
the catalog, nothing asked of Redis below the floor, the mark set past it by a sweep and lifted by the next once the
backlog drains, a dispatcher woken in the same step. What a check does: test_checking.py; the sweep's thread:
tests/unit/worker/test_sweeping.py; the pacing rule itself: tests/unit/core/test_pacing.py; its Lua and the slot
scripts under its mark: tests/unit/store/test_pacing.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.holds import CLAIM_LEASE, MOVE_LEASE
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.lifecycle.checking import check_job, take_checks
from fluxhook.lifecycle.steps.enqueueing import draft_cache_task, queue_handed
from fluxhook.lifecycle.sweep import pace, rule_of, sweep
from fluxhook.store.keys import KEYS
from fluxhook.store.work_lines import DRAFT_CACHE
from helpers import commands_during, tracked_job

DB = 15  # no other unit test uses it; make_services flushes it before and after


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def _ended(svc, notify_url: str | None) -> Job:
    """A job that just failed, with a ``notify_url`` (None: none)."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 notify_url=notify_url, created_at=now, updated_at=now, submitted_at=now))
    assert svc.jobs.transition(job.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    return job


def test_each_due_job_gets_one_check_claimed_until_its_lease_runs_out(svc):
    now = time.time()
    due = [tracked_job(svc, f"task-due-{n}", due=now - 1) for n in range(2)]
    later = tracked_job(svc, "task-later", due=now + 600)

    assert sweep(svc, now).due == 2

    assert svc.store.checks.waiting() == 2
    assert svc.jobs.due_at(due[0].id) == pytest.approx(now + CLAIM_LEASE, abs=0.001)
    assert svc.jobs.due_at(later.id) == pytest.approx(now + 600, abs=0.001)
    # Claimed: the next sweep leaves them to their checks; a check that never ran is claimed again after the lease,
    # and waits in line once, with its newest claim.
    assert sweep(svc, now + 1).due == 0
    assert sweep(svc, now + CLAIM_LEASE + 1).due == 2
    checks = svc.store.checks.take(10)
    assert sorted(check.job_id for check in checks) == sorted(job.id for job in due)
    assert {check.claim for check in checks} == {now + 2 * CLAIM_LEASE + 1}
    assert svc.store.checks.waiting() == 0


def test_a_finished_jobs_notification_is_left_in_the_outbox_for_the_notifier(svc):
    notified = _ended(svc, "https://app.example.com/hook")

    sweep(svc)

    assert svc.redis.zscore(KEYS.outbox, notified.id) is not None
    assert svc.store.deliveries.of_job(notified.id) == [] and svc.queue.count == 0


def test_work_a_dead_process_took_from_its_line_is_due_when_its_move_s_lease_lapses_and_its_check_puts_it_back(svc):
    job, _ = svc.jobs.create(Job(id=new_job_id(), status=st.STORED, model="flux-2-pro",
                                 draft_cache_source="https://delivery.fluxhook-test.invalid/draft.bin"))
    queued, _ = svc.jobs.create(Job(id=new_job_id(), status=st.STORED, model="flux-2-pro",
                                    draft_cache_source="https://delivery.fluxhook-test.invalid/draft-2.bin"))
    now = time.time()
    # Taken to be moved into RQ at once (no line held work), then the process died before queueing its task; another
    # stored job's draft cache reached RQ, which cleared its move's lease.
    assert svc.store.effects.apply([draft_cache_task(job.id)]) == {DRAFT_CACHE: [f"admin:{job.id}"]}
    queue_handed(svc, svc.store.effects.apply([draft_cache_task(queued.id)]))
    assert svc.store.work.waiting(DRAFT_CACHE) == 0 and svc.queue.count == 1
    assert svc.jobs.due_at(queued.id) is None

    assert sweep(svc, now + 1).due == 0  # it may still be on its way: its lease holds it
    assert svc.jobs.due_at(job.id) == pytest.approx(now + MOVE_LEASE, abs=0.1)
    # A lease later (the due time set back as the clock would have it): due, as any lease's work.
    svc.redis.zadd(KEYS.due, {job.id: now - 1})
    assert sweep(svc, now).due == 1
    outcomes = {check.job_id: check_job(svc, check.job_id, check.claim) for check in take_checks(svc, 10)}

    assert outcomes == {job.id: CheckOutcome.DRAFT_CACHE_REQUEUED}
    # Back in its line, whose turn was now (no line held work): in RQ, beside the other, and due no more.
    assert svc.queue.count == 2 and svc.jobs.due_at(job.id) is None and svc.store.work.waiting(DRAFT_CACHE) == 0


def test_a_sweep_with_nothing_to_do_is_one_round_trip_of_four_commands_or_two_with_no_deadline_or_batch(svc):
    tracked_job(svc, "task-later", due=time.time() + 600)  # due, but not yet

    sent = [c["command"].split(" ")[0] for c in commands_during(svc.redis, DB, lambda: sweep(svc))
            if not c["command"].startswith(("SELECT", "HELLO", "CLIENT SETINFO"))]

    # Which parts have work (none): not a script for each of the due jobs, deadlines, canceled batches and batches
    # whose making stopped; the first sweep of a process also reads the backlog sends are paced by (then every few
    # seconds), and judges nothing below its floor.
    assert sent == ["ZCOUNT", "ZCOUNT", "ZCOUNT", "ZCOUNT", "ZCARD"]
    again = [c["command"].split(" ")[0] for c in commands_during(svc.redis, DB, lambda: sweep(svc))
             if not c["command"].startswith(("SELECT", "HELLO", "CLIENT SETINFO"))]
    assert again == ["ZCOUNT", "ZCOUNT", "ZCOUNT", "ZCOUNT"]
    # A sweeper that found the deadlines' and batches' indexes empty at its last look (Store.sweep_holds), as when no
    # job has a deadline and no batch runs, looks at them with one EXISTS; one that finds something counts them at once.
    reports = []
    quick = [c["command"].split(" ")[0] for c in commands_during(
        svc.redis, DB, lambda: reports.append(sweep(svc, rare=False))) if c["command"].startswith(("ZCOUNT", "EXISTS"))]
    assert quick == ["ZCOUNT", "EXISTS"] and not reports[0].rare
    svc.redis.zadd(svc.store.keys.deadlines, {"job_gone": time.time() + 600})
    found = [c["command"].split(" ")[0] for c in commands_during(
        svc.redis, DB, lambda: reports.append(sweep(svc, rare=False))) if c["command"].startswith(("ZCOUNT", "EXISTS"))]
    assert found == ["ZCOUNT", "EXISTS", "ZCOUNT", "ZCOUNT", "ZCOUNT"] and reports[1].rare


def test_a_job_due_whose_record_is_gone_is_checked_once_and_due_no_more(svc):
    # A move into RQ that took a deleted job's work from its line made it due (lua/work_moves.lua).
    svc.redis.zadd(KEYS.due, {"job_gone": time.time() - 1})
    assert sweep(svc).due == 1

    assert [check_job(svc, check.job_id, check.claim) for check in take_checks(svc, 10)] == [CheckOutcome.SKIPPED]

    assert svc.jobs.due_at("job_gone") is None


# -- sends paced by storage ---------------------------------------------------------------------------------------

def test_the_rule_is_the_settings_share_of_the_catalogs_shortest_url_life(make_services, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('[models."flux-2-pro"]\nkind = "image"\nurl_life = 60\n', encoding="utf-8")
    svc = make_services(DB, STORE_PACING_SHARE="0.25", STORE_PACING_FLOOR="8", BFL_MODELS_FILE=str(models))
    rule = rule_of(svc.config)
    assert (rule.share, rule.shortest_life, rule.floor, rule.bound) == (0.25, 60.0, 8, 15.0)


def test_below_the_floor_nothing_is_judged_and_nothing_asked(svc):
    sent = commands_during(svc.redis, DB, lambda: pace(svc, svc.config.store_pacing_floor - 1, time.time()))
    assert [c["command"] for c in sent if not c["command"].startswith(("SELECT", "HELLO", "CLIENT SETINFO"))] == []
    assert pace(svc, None, time.time()) is None


def test_the_sweep_holds_sends_for_storage_past_the_floor_and_wakes_a_dispatcher_once_it_drains(svc):
    floor = svc.config.store_pacing_floor
    ready = {f"job_{i:04d}": 0 for i in range(floor)}
    svc.redis.zadd(KEYS.status(st.READY), ready)
    now = time.time()
    sweep(svc, now)
    # Nothing stored of late, and a backlog at the floor: every send waits.
    assert svc.redis.get(KEYS.store_held) is not None and svc.store.pacer.judging
    svc.redis.delete(KEYS.slot_freed)
    svc.redis.zrem(KEYS.status(st.READY), *list(ready)[1:])
    # Judged again at the next sweep (each second while it holds), which lifts the mark and wakes one dispatcher.
    sweep(svc, now + 1)
    assert svc.redis.get(KEYS.store_held) is None and not svc.store.pacer.judging
    assert svc.redis.llen(KEYS.slot_freed) == 1
