"""Cancel-After over HTTP, against gunicorn, the real worker, Redis and the simulator answering after about a
second: a job not sent by its deadline ends aborted (the simulator never sees it), one sent but not stored ends
canceled with its cost kept and BFL's later result not downloaded, both within seconds of the deadline; a bad value
answers 400 on both doors and creates nothing, consumes no Idempotency-Key and counts against no limit; a key's job with a
deadline goes to BFL before its older jobs without one (docs/architecture.md's ordering rule)."""

from __future__ import annotations

from datetime import datetime

import pytest

from devtools.processes import wait_until
from ending_helpers import callback_answered, sent_prompts
from key_helpers import make_key

# How long after its deadline a job may still be running: the sweep runs every second.
LATE = 4.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _submit(client, prompt: str, cancel_after: str | None, **headers):
    if cancel_after is not None:
        headers["Cancel-After"] = cancel_after
    return client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}}, headers=headers)


def test_a_job_not_sent_by_its_deadline_is_aborted_and_never_sent(api, slow_sim):
    _, app = make_key(api, max_active=1)
    holder = app.submit("[pending] holds the key's one place")
    answer = _submit(app, "waits past its deadline", "5s")
    assert answer.status_code == 202, answer.text
    waiting = answer.json()
    assert waiting["status"] == "queued"
    assert _epoch(waiting["deadline"]) - _epoch(waiting["created_at"]) == pytest.approx(5, abs=1)
    assert holder["deadline"] is None

    aborted = app.wait_for(waiting["id"], "aborted", timeout=5 + LATE + 5)

    assert _epoch(aborted["completed_at"]) - _epoch(aborted["deadline"]) <= LATE
    assert (aborted["error"]["code"], aborted["bfl_id"], aborted["cost"]) == ("deadline_exceeded", None, None)
    assert "nothing was charged" in aborted["error"]["message"]
    slow_sim.complete(holder["bfl_id"])
    app.wait_for(holder["id"], "stored")
    assert sent_prompts(slow_sim) == ["[pending] holds the key's one place"]
    assert app.job(waiting["id"])["status"] == "aborted"  # terminal: never changes


def test_a_job_sent_but_not_stored_by_its_deadline_is_canceled_with_its_cost_kept(api, slow_sim):
    sent = _submit(api, "[seconds-30] still at BFL at its deadline", "5s").json()
    assert sent["status"] == "submitted" and sent["cost"]["credits"] > 0

    canceled = api.wait_for(sent["id"], "canceled", timeout=5 + LATE + 5)

    assert _epoch(canceled["completed_at"]) - _epoch(canceled["deadline"]) <= LATE
    assert (canceled["error"]["code"], canceled["cost"]) == ("deadline_exceeded", sent["cost"])
    slow_sim.complete(sent["bfl_id"])
    wait_until(lambda: callback_answered(slow_sim, sent["bfl_id"]), timeout=15, interval=0.1,
               message="BFL's callback for the canceled task")
    after = api.job(sent["id"])
    assert (after["status"], after["image"], after["attempts"]["downloads"]) == ("canceled", None, 0)
    assert slow_sim.stats()["delivery_requests"] == 0


@pytest.mark.parametrize("value", ["5", "4s", "25h", "24h1s", "1.5m", "soon", "1m30", ""])
def test_a_bad_cancel_after_is_400_on_both_doors_and_creates_nothing(api, slow_sim, value):
    created, app = make_key(api, requests_per_minute=1)

    refused = _submit(app, "never made", value, **{"Idempotency-Key": "cancel-after-once"})
    drop_in = app.post("/v1/flux-2-pro", json={"prompt": "never made"}, headers={"Cancel-After": value})

    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_cancel_after"
    assert "Cancel-After" in refused.json()["error"]["message"]
    assert drop_in.status_code == 400 and "Cancel-After" in drop_in.json()["detail"]
    assert app.get("/v1/jobs").json()["jobs"] == [] and sent_prompts(slow_sim) == []
    # Neither its Idempotency-Key nor the key's one request a minute was spent on it.
    made = _submit(app, "made once corrected", "1m", **{"Idempotency-Key": "cancel-after-once"})
    assert made.status_code == 202 and "Idempotent-Replayed" not in made.headers, made.text
    assert [job["id"] for job in app.get("/v1/jobs").json()["jobs"]] == [made.json()["id"]]
    assert api.get(f"/v1/keys/{created['id']}").status_code == 200


def test_the_drop_in_takes_cancel_after_and_get_result_says_error(api, slow_sim):
    answer = api.post("/v1/flux-2-pro", json={"prompt": "[seconds-30] a drop-in job past its deadline"},
                      headers={"Cancel-After": "5s"})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["id"]
    assert api.job(job_id)["deadline"] is not None

    api.wait_for(job_id, "canceled", timeout=5 + LATE + 5)
    result = api.get("/v1/get_result", params={"id": job_id}).json()

    assert (result["status"], result["result"]) == ("Error", None)
    assert result["details"]["code"] == "deadline_exceeded"


def test_a_keys_job_with_a_deadline_is_sent_before_its_older_jobs_without_one(api, slow_sim):
    _, app = make_key(api, max_active=1)
    _, other = make_key(api, max_active=1)
    holder = app.submit("[pending] holds the key's one place")
    first = _submit(app, "[pending] made first, no deadline", None).json()
    urgent = _submit(app, "[pending] made last, due in 10 minutes", "10m").json()
    assert (first["status"], urgent["status"]) == ("queued", "queued")
    theirs = other.submit("[pending] another key's job")  # its own place: not behind A's line

    slow_sim.complete(holder["bfl_id"])
    sent = app.wait_for(urgent["id"], "submitted", timeout=15)

    assert app.job(first["id"])["status"] == "queued"
    slow_sim.complete(sent["bfl_id"])
    app.wait_for(first["id"], "submitted", timeout=15)
    assert [p for p in sent_prompts(slow_sim) if p != "[pending] another key's job"] == [
        "[pending] holds the key's one place", "[pending] made last, due in 10 minutes",
        "[pending] made first, no deadline"]
    assert theirs["status"] == "submitted"
