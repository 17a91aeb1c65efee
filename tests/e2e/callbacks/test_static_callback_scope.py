"""What the static callback URL's secret proves (docs/callbacks.md, docs/accounts.md), against the Procfile's web and
worker over real HTTP: nothing of a task by itself (every app that submits its own tasks holds that secret): a callback
there makes the jobs tracking the task through its account ask BFL, whichever came first, the callback or the track, and
never touches a job fluxhook submitted. And what it may make Redis keep for tasks nobody tracks: a bit per task in a
bitmap of fixed size per account (docs/operating.md), so made-up task ids cost nobody anything. """

from __future__ import annotations

import json
import uuid

import redis
import requests

from conftest import STATIC_SECRET, ready_payload
from devtools.stack import SIMULATOR_KEY
from fluxhook.bfl.reports import MAX_CALLBACK_BYTES
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_callback
from fluxhook.services import build_services
from fluxhook.store.jobs import JobStore
from fluxhook.store.kept_callbacks import MARK_BYTES
from fluxhook.store.keys import KEYS
from helpers import serve_png, snapshot, wait_sim_ready


def _redis(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["REDIS_URL"])


def static_post(api, payload: dict, *, secret: str = STATIC_SECRET) -> requests.Response:
    """A callback on the static URL, proven with ``secret`` as BFL's SDK sends it."""
    return requests.post(api.base_url + "/webhooks/bfl", json=payload, headers={"X-Webhook-Secret": secret},
                         timeout=10)


def sim_task(sim, prompt: str) -> dict:
    """A task an app submitted straight to BFL (the simulator), to track it."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt}, headers={"x-key": SIMULATOR_KEY},
                             timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_static_secret_cannot_finish_a_job_fluxhook_submitted(api, sim, spy):
    job = api.submit("[pending] another tenant's")
    before = snapshot(api.job(job["id"]))
    url = serve_png(spy, "static-on-a-submitted-job")

    answers = [static_post(api, ready_payload(job["bfl_id"], url)),
               static_post(api, {"id": job["bfl_id"], "status": "Error", "error": "forged"})]

    # Answered as for a task nobody tracks: the static URL does not tell who submitted what.
    for answer in answers:
        assert answer.status_code == 202 and answer.json()["outcome"] == "kept_until_tracked", answer.text
    after = api.job(job["id"])
    assert snapshot(after) == before and after["status"] == "submitted"
    assert spy.hits == []


def test_a_static_callback_kept_before_fluxhook_submits_its_task_is_never_applied_to_that_job(api, sim, stack):
    store = JobStore(_redis(stack))
    job, _ = store.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro")))
    task = sim_task(sim, "[drop] submitted by fluxhook")
    result = wait_sim_ready(sim, task["id"])

    # The static secret's holder learns the task's id before BFL's answer to fluxhook's submission is recorded.
    kept = static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]})
    assert kept.status_code == 202, kept.text

    # What the submission does once BFL's answer arrives: record the task, then apply what was kept for the job.
    assert store.transition(job.id, st.SUBMITTED, bfl_id=task["id"])
    assert apply_kept_callback(build_services(Config.from_env(stack.env)), store.get(job.id)) is None
    after = api.job(job.id)
    assert (after["status"], after["attempts"]["webhooks"]) == ("submitted", 0)
    # And the static URL leaves it alone as well now that the task is known.
    assert static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]}).status_code == 202
    assert api.job(job.id)["attempts"] == after["attempts"]


def test_made_up_task_ids_cannot_grow_redis_past_the_accounts_bitmap(api, sim, spy, stack):
    connection = _redis(stack)
    pad = "x" * (MAX_CALLBACK_BYTES - 4096)
    http = requests.Session()
    used_before = connection.info("memory")["used_memory"]

    answers = [http.post(api.base_url + "/webhooks/bfl", timeout=10, headers={"X-Webhook-Secret": STATIC_SECRET},
                         data=json.dumps({"id": f"made-up-{uuid.uuid4()}", "status": "Pending", "pad": pad}))
               for _ in range(100)]

    # None refused, and none of their bodies kept: a bit each.
    assert {answer.status_code for answer in answers} == {202}
    marks = list(connection.scan_iter(KEYS.kept_marks("default", "*"), count=1000))
    assert sum(connection.strlen(key) for key in marks) <= 2 * MARK_BYTES
    # 100 such bodies kept would be about 100 MB; the rest of the stack runs meanwhile.
    assert connection.info("memory")["used_memory"] - used_before < 16 * 1024 * 1024

    # A tracked task's callback is applied (once BFL confirms it), however many made-up ids came before.
    task = sim_task(sim, "[pending] tracked after the flood")
    tracked = api.track(task["id"])
    assert tracked.status_code == 201, tracked.text
    sim.complete(task["id"])
    result = wait_sim_ready(sim, task["id"])
    applied = static_post(api, {"id": task["id"], "status": "Ready", "result": result["result"]})
    assert applied.status_code == 200, applied.text
    assert api.wait_for(tracked.json()["id"])["status"] == "stored"
