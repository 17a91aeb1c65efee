"""Canceling frees nothing BFL still uses, over HTTP against gunicorn, the real worker, Redis and the
simulator: BFL has no cancel, so a key that submits a long task, cancels it and submits again never has more of its
tasks running at BFL than its ``max_active``, and another key's job is not held up behind the tasks BFL still runs
for it; the canceled job's slot goes free once BFL says its task ended, by callback or by the sweep's polls, which go
on after the cancel. ``GET /v1/keys/{id}`` and ``GET /v1/accounts`` count the canceled job meanwhile. Deleting
frees no more than canceling: a job deleted while BFL runs its task is canceled and kept with its slot until BFL ends
the task, then goes; the simulator's pending limit ends a `[pending]` task nobody completes, as BFL ends every task,
and gives a canceled job's slot back. The store's and the use cases' side: tests/unit/store/test_slots_running_on.py,
tests/unit/lifecycle/test_canceling.py, tests/unit/lifecycle/test_removal.py."""

from __future__ import annotations

import time

from devtools.processes import wait_until
from key_helpers import make_key

# The simulator's own limit of tasks at once: without the rule, the canceled tasks BFL runs on fill it.
BFL_MAX_ACTIVE = 3
CYCLES = 8


def _sent_or_held(app, job_id: str, timeout: float = 3.0) -> dict:
    """The job once BFL has it or it waits for its key's max_active (the key's slot is its canceled job's), else as it
    is after ``timeout`` s (waiting for BFL's room, say): a churning app cancels it then all the same."""
    give_up = time.monotonic() + timeout
    while True:
        job = app.job(job_id)
        if job["status"] == "submitted" or (job.get("waiting") or {}).get("reason") == "key_max_active":
            return job
        if time.monotonic() > give_up:
            return job
        time.sleep(0.05)


def _most_at_once(sim, marker: str) -> int:
    """The most tasks whose prompt holds ``marker`` that BFL ran at the same moment (from each task's start and end)."""
    now = time.time()
    spans = [(task["created_at"], task["completed_at"] or now) for task in sim.control("GET", "/tasks")["tasks"]
             if marker in task["prompt"]]
    return max((sum(1 for start, end in spans if start <= at < end) for at, _ in spans), default=0)


def _running(sim, marker: str) -> int:
    """How many tasks whose prompt holds ``marker`` BFL runs now. Not the simulator's whole count: the stack is
    shared, and a job an earlier test left queued may reach BFL during this one."""
    return sum(1 for task in sim.control("GET", "/tasks")["tasks"] if marker in task["prompt"] and not task["completed_at"])


def test_cancel_churn_never_runs_more_of_a_keys_tasks_than_its_max_active_and_another_key_goes_at_once(api, sim):
    sim.settings(max_active=BFL_MAX_ACTIVE)
    a_key, a = make_key(api, max_active=1)
    _, b = make_key(api)

    statuses, ids = [], []  # the status each job had when it was canceled
    for n in range(CYCLES):
        job = _sent_or_held(a, a.submit(f"[seconds-90] A's churn {n}")["id"])
        statuses.append(job["status"])
        ids.append(job["id"])
        assert a.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceled"

    # The first ran at BFL and runs on; every other waited for the key's one slot and ended unsent.
    assert statuses == ["submitted"] + ["queued"] * (CYCLES - 1)
    assert _most_at_once(sim, "A's churn") == 1 and _running(sim, "A's churn") == 1
    shown = api.get(f"/v1/keys/{a_key['id']}").json()
    assert (shown["active"], shown["canceled_running"], shown["queued"]) == (1, 1, 0)
    assert sum(account["canceled_running"] for account in api.get("/v1/accounts").json()["accounts"]) >= 1

    started = time.monotonic()
    b_job = b.submit("[seconds-1] B's job beside A's churn")
    b_sent = wait_until(lambda: (j := b.job(b_job["id"]))["status"] != "queued" and j, timeout=30, interval=0.05,
                        message="B's job to reach BFL")
    b_wait = time.monotonic() - started
    assert b_sent["status"] in ("submitted", "ready", "stored") and b_wait < 2.0, b_wait

    # BFL ends A's canceled task and calls back: the key's slot is free, and its next job goes.
    first = next(task for task in sim.control("GET", "/tasks")["tasks"] if "A's churn 0" in task["prompt"])
    sim.complete(first["id"])
    wait_until(lambda: api.get(f"/v1/keys/{a_key['id']}").json()["active"] == 0, timeout=10, interval=0.05,
               message="A's canceled job to give its slot back once BFL called back")
    after = a.submit("[seconds-1] A's job after its task ended")
    assert after["status"] == "submitted" and a.wait_for(after["id"], "stored")["status"] == "stored"
    canceled = a.job(ids[0])
    assert (canceled["status"], canceled["image"], canceled["attempts"]["downloads"]) == ("canceled", None, 0)
    assert _most_at_once(sim, "] A's") == 1  # none of the canceled ones was sent late (B's prompt names A's churn)


def test_delete_churn_never_runs_more_of_a_keys_tasks_than_its_max_active_and_the_job_goes_once_bfl_ends_it(api, sim):
    sim.settings(max_active=BFL_MAX_ACTIVE)
    a_key, a = make_key(api, max_active=1)
    _, b = make_key(api)

    statuses, ids = [], []  # the status each job had when it was deleted
    for n in range(CYCLES):
        job = _sent_or_held(a, a.submit(f"[seconds-90] A's delete churn {n}")["id"])
        statuses.append(job["status"])
        ids.append(job["id"])
        assert a.delete(f"/v1/jobs/{job['id']}").status_code == 204

    # The first ran at BFL and runs on: canceled, kept with the key's one slot; every other waited and went at once.
    assert statuses == ["submitted"] + ["queued"] * (CYCLES - 1)
    assert _most_at_once(sim, "A's delete churn") == 1 and _running(sim, "A's delete churn") == 1
    assert a.job(ids[0])["status"] == "canceled"
    assert [a.get(f"/v1/jobs/{job_id}").status_code for job_id in ids[1:]] == [404] * (CYCLES - 1)
    shown = api.get(f"/v1/keys/{a_key['id']}").json()
    assert (shown["active"], shown["canceled_running"], shown["queued"]) == (1, 1, 0)

    started = time.monotonic()
    b_job = b.submit("[seconds-1] B's job beside A's delete churn")
    b_sent = wait_until(lambda: (j := b.job(b_job["id"]))["status"] != "queued" and j, timeout=30, interval=0.05,
                        message="B's job to reach BFL")
    b_wait = time.monotonic() - started
    assert b_sent["status"] in ("submitted", "ready", "stored") and b_wait < 2.0, b_wait

    # BFL ends A's task and calls back: the deleted job goes with its slot, and the key's next job goes.
    first = next(task for task in sim.control("GET", "/tasks")["tasks"] if "A's delete churn 0" in task["prompt"])
    sim.complete(first["id"])
    wait_until(lambda: a.get(f"/v1/jobs/{ids[0]}").status_code == 404, timeout=10, interval=0.05,
               message="A's deleted job to go once BFL called back")
    assert api.get(f"/v1/keys/{a_key['id']}").json()["active"] == 0
    after = a.submit("[seconds-1] A's job after its deleted task ended")
    assert after["status"] == "submitted" and a.wait_for(after["id"], "stored")["status"] == "stored"
    assert _most_at_once(sim, "] A's") == 1  # A's tasks, deleted or not (B's prompt names A's churn too)


def test_a_deadline_canceled_job_holds_its_slot_until_a_poll_finds_its_task_ended(api, sim):
    a_key, a = make_key(api, max_active=1)
    # No callback comes for this task: only the sweep's polls, which go on after the deadline, learn that it ended.
    held = a.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[drop] [seconds-8] A's deadline"}},
                  headers={"Cancel-After": "5s"}).json()
    assert held["status"] == "submitted"
    following = a.submit("[seconds-1] A's job after the deadline")
    assert following["waiting"]["reason"] == "key_max_active"

    ended = a.wait_for(held["id"], "canceled", timeout=15)
    assert ended["error"]["code"] == "deadline_exceeded"
    assert a.job(following["id"])["status"] == "queued"  # BFL still runs the canceled task: the slot is its
    assert api.get(f"/v1/keys/{a_key['id']}").json()["canceled_running"] == 1

    sent = a.wait_for(following["id"], "submitted", "ready", "stored", timeout=30)
    task = sim.task(held["bfl_id"])
    # Sent only once BFL's task had ended, learned by a poll (no callback was sent for it).
    assert task["completed_at"] is not None and task["polls"] >= 1 and task["callback_attempts"] == []
    assert sim.task(sent["bfl_id"])["created_at"] >= task["completed_at"]
    assert a.wait_for(following["id"], "stored")["status"] == "stored"
    assert api.get(f"/v1/keys/{a_key['id']}").json()["canceled_running"] == 0


def test_a_canceled_pending_jobs_slot_comes_back_when_the_simulator_ends_its_task_unasked(api, sim):
    # A newcomer's `[pending]` job, canceled: nobody completes its task by hand. The simulator's pending limit (the
    # dev run's is 2 minutes) ends it as BFL ends every task, and its callback gives the key's one slot back.
    sim.settings(pending_limit=3)
    a_key, a = make_key(api, max_active=1)
    held = a.submit("[pending] a newcomer's job, canceled")
    a.wait_for(held["id"], "submitted", timeout=15)
    assert a.post(f"/v1/jobs/{held['id']}/cancel").json()["status"] == "canceled"
    following = a.submit("[seconds-1] the newcomer's next job")
    assert following["waiting"]["reason"] == "key_max_active"  # BFL runs the canceled job's task on: its slot
    assert api.get(f"/v1/keys/{a_key['id']}").json()["canceled_running"] == 1

    assert a.wait_for(following["id"], "stored", timeout=30)["status"] == "stored"
    task = sim.task(held["bfl_id"])
    assert task["completed_at"] - task["created_at"] >= 3 and task["callback_attempts"]
    shown = api.get(f"/v1/keys/{a_key['id']}").json()
    assert (shown["active"], shown["canceled_running"]) == (0, 0)
    assert a.job(held["id"])["status"] == "canceled"  # its result never downloaded
