"""End users' blocks and batches over real HTTP against the Procfile's processes (and a second web process):
- a block, by hand or by the moderation limit, ends that end user's jobs still queued (single jobs and batch items)
  canceled / end_user_blocked, never sent, each notified, while its job at BFL goes on and the key's other end user's
  queued jobs and another key's end user of the same name are untouched;
- batches racing through two web processes never take an end user past its requests_per_minute or max_queued: each
  is taken whole or refused whole (429 naming it), and another end user's batch goes on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import API
from devtools.processes import wait_until
from helpers import stack_on_db
from key_helpers import as_key, make_key, second_web
from notify_helpers import receiving

DB = 12
RACERS = 12


@pytest.fixture(scope="module")
def receiver():
    with receiving(1) as [made]:
        yield made


@pytest.fixture(scope="module")
def webs(redis_server, simulator, _spies, receiver, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("end-user-blocks")), DB,
                     BFL_MAX_ACTIVE="8", NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{receiver.port}") as running:
        with second_web(running.env) as other:
            yield API(running.base_url), other


def _post(client: API, prompt: str, end_user: str) -> dict:
    answer = client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt}, "end_user": end_user})
    assert answer.status_code == 202, answer.text
    return answer.json()


def _batch(client: API, *end_users: str, word: str = "[pending] "):
    """A batch of an item for each of ``end_users``, which BFL keeps pending (else, ``word=""``, stores)."""
    return client.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"{word}item {n} of {named}"}, "end_user": named} for n, named in enumerate(end_users)]})


def _raced_batch(client: API, *end_users: str, word: str = "[pending] "):
    """``_batch``, sent again while its key's places among the batches waiting to be made are full (503
    batches_busy: it did not take part yet); the first other answer."""
    answers = []

    def answered():
        answers.append(_batch(client, *end_users, word=word))
        return answers[-1].status_code != 503 or None
    wait_until(answered, timeout=60, interval=0.05, message="a place to wait for the batch's making")
    return answers[-1]


def _status(client: API, job_id: str) -> dict:
    return client.get(f"/v1/jobs/{job_id}").json()


def test_a_block_by_hand_ends_the_end_users_queued_jobs_and_nothing_else(webs, sim, receiver):
    admin, _ = webs
    created, app = make_key(admin, max_active=1, notify_url=receiver.url("/blocked"))
    other, other_app = make_key(admin, max_active=1)
    at_bfl = _post(app, "[pending] x at bfl", "x")
    wait_until(lambda: _status(app, at_bfl["id"])["status"] == "submitted", timeout=30, message="x's job at BFL")
    held = _post(other_app, "[pending] b's x at bfl", "x")
    wait_until(lambda: _status(other_app, held["id"])["status"] == "submitted", timeout=30, message="b's job at BFL")
    x_queued = [_post(app, f"[pending] x waits {n}", "x")["id"] for n in range(2)]
    y_queued = _post(app, "[pending] y waits", "y")["id"]
    b_queued = _post(other_app, "[pending] b's x waits", "x")["id"]
    made = _batch(app, "x", "y", "x")
    assert made.status_code == 202, made.text
    batch = made.json()

    blocked = admin.post(f"/v1/keys/{created['id']}/end_users/x/block")
    assert blocked.status_code == 200 and blocked.json()["blocked_reason"] == "manual"

    items = app.get(f"/v1/jobs?batch_id={batch['id']}").json()["jobs"]
    ended_ids = x_queued + [j["id"] for j in items if j["end_user"] == "x"]
    ended = [_status(app, job_id) for job_id in ended_ids]
    assert [(j["status"], j["error"]["code"], j["bfl_id"]) for j in ended] == [
        ("canceled", "end_user_blocked", None)] * 4, ended
    assert _status(app, at_bfl["id"])["status"] == "submitted"  # BFL has it: it goes on
    assert _status(app, y_queued)["status"] == "queued"
    assert _status(other_app, b_queued)["status"] == "queued"
    assert [j["status"] for j in items if j["end_user"] == "y"] == ["queued"]
    shown = app.get(f"/v1/batches/{batch['id']}").json()
    assert (shown["counts"].get("canceled"), shown["counts"].get("queued")) == (2, 1), shown["counts"]
    assert admin.get(f"/v1/keys/{created['id']}").json()["queued"] == 2  # y's job and item
    # Each ended single job is notified as any canceled one (the key's notify_url; a batch's items tell of
    # themselves in its batch.ended), once.
    for job_id in x_queued:
        [told] = receiver.wait_for(job_id)
        assert (told.job["data"]["status"], told.job["data"]["error"]["code"]) == ("canceled", "end_user_blocked")
    # Nothing of them was sent nor charged: x's day counts its one job at BFL.
    assert [r["jobs"] for r in app.get("/v1/usage?end_user=x").json()["days"]] == [1]
    admin.post(f"/v1/keys/{created['id']}/end_users/x/unblock")
    assert _post(app, "[pending] x again", "x")["status"] == "queued"  # unblocked, it waits as before


def test_the_moderation_that_blocks_an_end_user_ends_its_queued_jobs(webs, sim):
    admin, _ = webs
    created, app = make_key(admin, max_active=1, end_user_moderation_limit=1)
    moderated = _post(app, "[content-moderated] x's", "x")
    waits = _post(app, "[pending] x waits", "x")["id"]
    other = _post(app, "y waits", "y")["id"]

    wait_until(lambda: _status(app, moderated["id"])["status"] == "moderated", timeout=30, message="moderated")
    ended = wait_until(lambda: (j := _status(app, waits))["status"] != "queued" and j or None, timeout=30,
                       message="x's queued job ended")
    assert (ended["status"], ended["error"]["code"], ended["bfl_id"]) == ("canceled", "end_user_blocked", None)
    assert "moderated" in ended["error"]["message"]
    assert app.get(f"/v1/jobs/{other}").json()["status"] != "canceled"
    wait_until(lambda: _status(app, other)["status"] == "stored", timeout=30, message="y's job goes on")


def test_racing_batches_never_take_an_end_user_past_its_minute_or_its_queue(webs, sim):
    admin, second = webs
    created, app = make_key(admin, end_user_limits={"requests_per_minute": 10})
    clients = [app, as_key(second, created["key"])]
    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(lambda n: _raced_batch(clients[n % 2], "x", "x", "x", word=""), range(RACERS)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [429] * (RACERS - 3), [a.text for a in answers if a.status_code != 202][:2]
    refused = [a.json()["error"] for a in answers if a.status_code == 429]
    assert all(e["code"] == "rate_limited" and "end user 'x'" in e["message"] for e in refused)
    assert len(app.get("/v1/jobs?end_user=x&limit=100").json()["jobs"]) == 9
    assert _batch(app, "y", "y", "y", word="").status_code == 202  # the key's other end user goes on

    # max_queued: the key's one job at BFL holds the rest in line, so each item stays queued.
    created, app = make_key(admin, max_active=1, end_user_limits={"max_queued": 7})
    clients = [app, as_key(second, created["key"])]
    first = _post(app, "[pending] holds the key's slot", "z")
    wait_until(lambda: _status(app, first["id"])["status"] == "submitted", timeout=30, message="at BFL")
    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(lambda n: _raced_batch(clients[n % 2], "x", "x"), range(RACERS)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [429] * (RACERS - 3), [a.text for a in answers if a.status_code != 202][:2]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"queue_full"}
    assert sum(j["status"] == "queued" for j in app.get("/v1/jobs?end_user=x&limit=100").json()["jobs"]) == 6
    assert _batch(app, "y", "y").status_code == 202
