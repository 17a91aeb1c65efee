"""POST /v1/jobs/{id}/cancel over HTTP, against gunicorn, the real worker, Redis and the simulator answering after
about a second: a queued job ends canceled and is never sent (the simulator never sees it) and the next one goes; a
submitted one ends canceled at once, its cost kept, and BFL's later callback downloads nothing; an ended job is 409;
another key's is 404 and untouched. Also the dashboard's button (CSRF-protected), the CLI and the Python client."""

from __future__ import annotations

import re

from cli_helpers import api_cli
from conftest import API_TOKEN
from devtools.processes import wait_until
from ending_helpers import callback_answered, sent_prompts
from fluxhook.client import Client, Conflict
from helpers import sign_in
from key_helpers import make_key


def _cancel(client, job_id: str):
    return client.post(f"/v1/jobs/{job_id}/cancel")


def test_a_queued_job_canceled_is_never_sent_and_frees_its_place_for_the_next(api, slow_sim):
    created, app = make_key(api, max_active=1)
    holder = app.submit("[pending] holds the key's one place")
    canceled, following = app.submit("canceled while it waits"), app.submit("goes after the holder")
    assert (holder["status"], canceled["status"], following["status"]) == ("submitted", "queued", "queued")

    answer = _cancel(app, canceled["id"])

    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert (job["status"], job["bfl_id"], job["cost"], job["waiting"]) == ("canceled", None, None, None)
    assert job["error"]["code"] == "canceled" and "nothing was charged" in job["error"]["message"]
    assert api.get(f"/v1/keys/{created['id']}").json()["queued"] == 1  # only the following job waits
    slow_sim.complete(holder["bfl_id"])
    assert app.wait_for(following["id"], "stored")["cost"]["credits"] > 0
    assert app.job(canceled["id"])["status"] == "canceled"
    assert "canceled while it waits" not in sent_prompts(slow_sim)
    assert sorted(sent_prompts(slow_sim)) == ["[pending] holds the key's one place", "goes after the holder"]
    usage = api.get("/v1/usage", params={"key_id": created["id"]}).json()
    assert sum(row["jobs"] for row in usage["days"]) == 2  # the canceled job counts nowhere


def test_a_submitted_job_canceled_keeps_its_cost_and_bfls_later_result_is_never_downloaded(api, slow_sim):
    created, app = make_key(api)
    sent = app.submit("[seconds-3] canceled while BFL works on it")
    assert sent["status"] == "submitted" and sent["cost"]["credits"] > 0

    job = _cancel(app, sent["id"]).json()

    assert (job["status"], job["cost"], job["bfl_id"]) == ("canceled", sent["cost"], sent["bfl_id"])
    assert "charge stays" in job["error"]["message"]
    # BFL finishes the task and calls back: fluxhook answers, and fetches nothing.
    wait_until(lambda: callback_answered(slow_sim, sent["bfl_id"]), timeout=15, interval=0.1,
               message="BFL's callback for the canceled task")
    after = app.job(sent["id"])
    assert (after["status"], after["image"], after["attempts"]["downloads"]) == ("canceled", None, 0)
    assert after["cost"] == sent["cost"] and after["completed_at"] == job["completed_at"]
    assert slow_sim.stats()["delivery_requests"] == 0
    assert app.get(f"/v1/jobs/{sent['id']}/image").status_code == 410
    usage = api.get("/v1/usage", params={"key_id": created["id"]}).json()
    assert [(row["jobs"], row["stored"], row["failed"], row["canceled"], row["credits"]) for row in usage["days"]] == [
        (1, 0, 0, 1, sent["cost"]["credits"])]


def _but_polls(job: dict) -> dict:
    return {**job, "attempts": {**job["attempts"], "polls": None}}


def test_an_ended_job_answers_409_and_stays_as_it_is(api, slow_sim):
    job = api.submit("[pending] canceled once")
    assert _cancel(api, job["id"]).status_code == 200
    before = api.job(job["id"])

    again = _cancel(api, job["id"])

    assert again.status_code == 409 and again.json()["error"]["code"] == "already_ended"
    # All but its polls: its task still runs at BFL, which the sweep polls while the job keeps its slot.
    assert _but_polls(api.job(job["id"])) == _but_polls(before)
    stored = api.submit("stored first")
    api.wait_for(stored["id"], "stored")
    refused = _cancel(api, stored["id"])
    assert refused.status_code == 409 and "stored" in refused.json()["error"]["message"]
    assert api.job(stored["id"])["status"] == "stored"


def test_another_keys_job_is_not_found_and_untouched(api, slow_sim):
    _, owner = make_key(api, max_active=1)
    _, attacker = make_key(api)
    owner.submit("[pending] the owner's running job")
    theirs = owner.submit("the owner's waiting job")
    before = owner.job(theirs["id"])

    refused = _cancel(attacker, theirs["id"])

    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert owner.job(theirs["id"]) == before  # what the owner sees has not moved
    assert _cancel(attacker, "job_00000000000000000000000000").status_code == 404
    assert _cancel(owner, theirs["id"]).json()["status"] == "canceled"


def test_the_dashboard_button_cancels_with_the_sessions_csrf_token(stack, api, slow_sim):
    job = api.submit("[pending] canceled from the dashboard")
    http, _ = sign_in(stack.base_url)
    page = http.get(f"{stack.base_url}/jobs/{job['id']}", timeout=10)
    form = re.search(r'<form method="post" action="(/jobs/[^"]+/cancel)" id="cancel">\s*'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)">', page.text)
    assert form, page.text

    forged = http.post(stack.base_url + form[1], data={"csrf_token": "not-the-sessions"}, allow_redirects=False,
                       timeout=10)
    assert forged.status_code == 400 and api.job(job["id"])["status"] == "submitted"
    done = http.post(stack.base_url + form[1], data={"csrf_token": form[2]}, allow_redirects=False, timeout=10)

    assert done.status_code == 303 and done.headers["Location"].endswith(f"/jobs/{job['id']}")
    assert api.job(job["id"])["status"] == "canceled"
    ended = http.get(f"{stack.base_url}/jobs/{job['id']}", timeout=10).text
    assert re.search(r'id="cancel" hidden>', ended) and "canceled after it was sent to BFL" in ended


def test_the_cli_and_the_client_cancel(stack, api, slow_sim):
    job = api.submit("[pending] canceled from the command line")
    done = api_cli(stack, "cancel", job["id"])
    assert done.returncode == 0, done.stderr
    assert '"status": "canceled"' in done.stdout
    again = api_cli(stack, "cancel", job["id"])
    assert again.returncode == 2 and "already_ended" in again.stderr

    other = api.submit("[pending] canceled by the client")
    with Client(stack.base_url, API_TOKEN) as client:
        assert client.cancel(other["id"]).status == "canceled"
        try:
            client.cancel(other["id"])
        except Conflict as exc:
            assert exc.code == "already_ended"
        else:
            raise AssertionError("a second cancel must be refused")
