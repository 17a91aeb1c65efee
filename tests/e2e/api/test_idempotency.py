"""Idempotency-Key on POST /v1/jobs and /v1/jobs/track, end to end: the Procfile's processes over
HTTP with the BFL simulator, which counts the tasks it is given; Redis's MONITOR counts the round trips."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import API, API_TOKEN
from devtools.processes import wait_until
from fluxhook.core import job as st
from fluxhook.core.errors import FailedOver
from fluxhook.core.job import Job, new_job_id
from fluxhook.store import idempotency as idempotency_store
from fluxhook.store.idempotency import DONE, HELD, IN_USE, KEEP_SECONDS, MADE, Begin, Hold, IdempotencyStore
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS
from helpers import SECOND_TOKEN, assert_error, commands_during, created_since, job_ids, send_raw
from receiver import idempotency_keys

DB = 15  # the in-process apps' own Redis database (no worker of the stack uses it)
REPLAYED = "Idempotent-Replayed"
# Long enough that the first request is still waiting whenever the test looks; the test ends it sooner.
IN_FLIGHT = {"Prefer": "wait=60"}


def _key() -> str:
    return f"order-{uuid.uuid4()}"


def _job(tag: str, prompt: str = "a fox, once") -> dict:
    """A submission whose jobs the test finds again by their ``metadata.tag``."""
    return {"model": "flux-2-pro", "input": {"prompt": prompt, "width": 512}, "metadata": {"tag": tag}}


def _post(api: API, key: str | None, body: dict | bytes, path: str = "/v1/jobs", headers: dict | None = None,
          **kwargs):
    sent = dict(headers or {})
    if key is not None:
        sent["Idempotency-Key"] = key
    if isinstance(body, bytes):
        return api.post(path, data=body, headers={**sent, "Content-Type": "application/json"}, **kwargs)
    return api.post(path, json=body, headers=sent, **kwargs)


def _tagged(api: API, tag: str) -> list[dict]:
    return [job for job in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
            if (job["metadata"] or {}).get("tag") == tag]


def _submitted(sim) -> int:
    """Tasks the simulator accepted since the test began (``sim`` resets it)."""
    return sim.stats()["submitted"]


def _in_flight(api: API, sim, tag: str) -> dict:
    """The job of the first request once BFL has its task and the request waits on the job's end."""
    return wait_until(lambda: next((j for j in _tagged(api, tag) if j["bfl_id"]), None), timeout=20,
                      message="the first request's task at BFL")


# --- the same request again ---------------------------------------------------------------------


def test_a_repeat_gets_the_first_status_and_body_and_makes_no_second_task(api, sim):
    key, body = _key(), _job("repeat")
    first = _post(api, key, body)
    again = _post(api, key, body)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.json()["bfl_id"]
    assert again.headers[REPLAYED] == "true" and REPLAYED not in first.headers
    assert again.headers["Content-Type"] == "application/json"
    assert _submitted(sim) == 1 and len(_tagged(api, "repeat")) == 1


def test_the_same_body_in_another_key_order_and_spacing_is_a_repeat(api, sim):
    key = _key()
    assert _post(api, key, _job("reordered")).status_code == 202
    reordered = b'{ "metadata": {"tag": "reordered"},\n  "input": {"width": 512, "prompt": "a fox, once"},' \
                b'\t"model":"flux-2-pro" }'
    again = _post(api, key, reordered)
    assert again.status_code == 202 and again.headers[REPLAYED] == "true"
    assert _submitted(sim) == 1 and len(_tagged(api, "reordered")) == 1


def test_another_body_under_the_same_key_is_refused_and_does_nothing(api, sim):
    key = _key()
    first = _post(api, key, _job("reused"))
    assert first.status_code == 202
    assert_error(_post(api, key, _job("reused", prompt="a different fox")), 422, "idempotency_key_reused")
    assert _submitted(sim) == 1 and len(_tagged(api, "reused")) == 1
    # The refusal kept nothing: the first answer is still the one replayed.
    assert _post(api, key, _job("reused")).content == first.content


def test_the_same_key_and_body_on_the_other_endpoint_is_another_request(api, sim):
    key, body = _key(), {"bfl_id": f"task-{uuid.uuid4()}", "metadata": {"tag": "endpoints"}}
    assert _post(api, key, body, path="/v1/jobs/track").status_code == 201
    assert_error(_post(api, key, body), 422, "idempotency_key_reused")
    assert _submitted(sim) == 0 and len(_tagged(api, "endpoints")) == 1


def test_tracking_replays_its_first_answer_too(api, sim):
    key, body = _key(), {"bfl_id": f"task-{uuid.uuid4()}", "model": "flux-2-pro", "metadata": {"tag": "track"}}
    first = _post(api, key, body, path="/v1/jobs/track")
    again = _post(api, key, body, path="/v1/jobs/track")
    assert first.status_code == again.status_code == 201  # not the 200 of a known bfl_id: the first answer
    assert again.content == first.content and again.headers[REPLAYED] == "true"
    other = dict(body, bfl_id=f"task-{uuid.uuid4()}")
    assert_error(_post(api, key, other, path="/v1/jobs/track"), 422, "idempotency_key_reused")
    assert len(_tagged(api, "track")) == 1 and _submitted(sim) == 0


def test_a_4xx_answer_is_not_kept_so_the_key_may_be_retried(api, sim):
    # Stripe's rule: a request refused (its input, BFL's 402) did nothing, so nothing is kept for it.
    sim.settings(credits=0)
    key, body = _key(), _job("no-credits")
    assert_error(_post(api, key, body), 402, "insufficient_credits")
    sim.settings(credits=None)
    again = _post(api, key, body)
    assert again.status_code == 202 and REPLAYED not in again.headers
    assert sim.stats()["rejected_402"] == 1 and _submitted(sim) == 1 and len(_tagged(api, "no-credits")) == 1

    bad_key, bad_body = _key(), {"model": "flux-2-pro"}
    assert_error(_post(api, bad_key, bad_body), 400, "invalid_request")
    assert_error(_post(api, bad_key, bad_body), 400, "invalid_request")
    assert _post(api, bad_key, _job("fixed")).status_code == 202  # the key is free for the corrected request


def test_refused_requests_leave_nothing_in_redis_however_many_keys(local_app, sim):
    api, connection = local_app(DB)
    for n in range(300):
        assert _post(api, f"junk-{n}", {"model": "flux-2-pro", "input": {}}).status_code == 400
    assert connection.keys("fh:idem*") == []
    assert _post(api, _key(), _job("one")).status_code == 202
    assert len(connection.keys("fh:idem:*")) == 1 and connection.zcard(
        next(iter(connection.keys("fh:idemof:*")))) == 1


def test_past_the_keys_one_caller_may_hold_it_gets_429_with_retry_after(local_app, sim, monkeypatch):
    monkeypatch.setattr(idempotency_store, "MAX_KEYS_PER_CALLER", 3)
    api, _ = local_app(DB)
    kept = [(_key(), _job(f"capped-{n}")) for n in range(3)]
    for key, body in kept:
        assert _post(api, key, body).status_code == 202
    refused = _post(api, _key(), _job("capped-more"))
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["Retry-After"]) <= KEEP_SECONDS
    # What is kept still replays; without a key, or with another token, the caller goes on.
    assert _post(api, *kept[0]).headers[REPLAYED] == "true"
    assert _post(api, None, _job("capped-keyless")).status_code == 202
    other = API(api.base_url, token=SECOND_TOKEN)
    assert _post(other, _key(), _job("capped-other")).status_code == 202
    assert _submitted(sim) == 5


# --- while the first request is being handled --------------------------------------------------


def test_a_repeat_while_the_first_is_in_flight_is_told_to_retry_then_gets_its_answer(api, sim):
    key, body = _key(), _job("in-flight", prompt="[pending] a slow fox")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, API(api.base_url), key, body, headers=IN_FLIGHT, timeout=90)
        job = _in_flight(api, sim, "in-flight")
        assert_error(_post(api, key, body), 409, "idempotency_key_in_use")
        assert_error(_post(api, key, body, headers=IN_FLIGHT), 409, "idempotency_key_in_use")
        assert not first.done()
        sim.complete(job["bfl_id"])
        answer = first.result(timeout=60)
    assert answer.status_code == 202 and answer.json()["status"] == "stored"
    assert answer.headers["Preference-Applied"] == "wait=60" and REPLAYED not in answer.headers
    replay = _post(api, key, body)
    assert replay.status_code == 202 and replay.content == answer.content and replay.headers[REPLAYED] == "true"
    assert _submitted(sim) == 1 and len(_tagged(api, "in-flight")) == 1


def test_twenty_concurrent_requests_with_one_key_make_one_task(api, sim):
    key, body = _key(), _job("burst", prompt="[pending] twenty foxes")
    # A client (and a connection) each, so that the requests spread over both web processes.
    with ThreadPoolExecutor(20) as pool:
        answers = [pool.submit(_post, API(api.base_url), key, body, headers=IN_FLIGHT, timeout=90)
                   for _ in range(20)]
        wait_until(lambda: sum(a.done() for a in answers) == 19, timeout=30, message="19 answered at once")
        for answer in [a.result() for a in answers if a.done()]:
            assert_error(answer, 409, "idempotency_key_in_use")
        assert _submitted(sim) == 1
        job = _in_flight(api, sim, "burst")
        sim.complete(job["bfl_id"])
        first = next(a for a in answers if not a.done()).result(timeout=60)
    assert first.status_code == 202 and first.json()["id"] == job["id"]
    assert _post(api, key, body).content == first.content
    assert _submitted(sim) == 1 and len(_tagged(api, "burst")) == 1


def test_a_request_that_made_its_job_then_failed_leaves_the_job_as_the_retrys_answer(local_app, sim):
    """A 503 after the job was recorded (a WAIT not confirmed, Redis lost mid-answer): the retry gets that job."""
    api, connection = local_app(DB)
    key, body = _key(), _job("made-then-failed")
    use = idempotency_keys.key_use(API_TOKEN, key, "POST", "/v1/jobs", json.dumps(body).encode())
    store = IdempotencyStore(connection)
    first = store.begin(use, lease=60)
    job, _ = JobStore(connection).create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"),
                                         naming=Hold(use, first.ticket, first.until_ms))
    assert store.abandon(use, first.ticket)
    retried = _post(api, key, body)
    assert retried.status_code == 202 and retried.headers[REPLAYED] == "true" and retried.json()["id"] == job.id
    assert _submitted(sim) == 0 and _tagged(api, "made-then-failed") == []
    JobStore(connection).delete(job.id)  # a job deleted since: its key no longer names a job to answer with
    assert_error(_post(api, key, body), 404, "not_found")


def test_a_request_that_died_after_making_its_job_leaves_the_job_once_its_lease_lapses(local_app):
    _, connection = local_app(DB)
    store = IdempotencyStore(connection)
    use = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    dead = store.begin(use, lease=0.5)
    job, _ = JobStore(connection).create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"),
                                         naming=Hold(use, dead.ticket, dead.until_ms))
    assert store.begin(use, lease=60).state == IN_USE
    assert wait_until(lambda: (lambda b: b if b.state == MADE else None)(store.begin(use, lease=60)),
                      timeout=5, message="the dead request's lease to lapse").job_id == job.id


def test_a_hold_lost_with_a_failed_over_primary_is_made_again_by_its_job(local_app):
    """The hold was written to a primary that failed over before replicating it; the job is made on the new
    one, and names itself there: the client's retry finds the job, not a free key."""
    _, connection = local_app(DB)
    store, jobs = IdempotencyStore(connection), JobStore(connection)
    use = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    lost = store.begin(use, lease=60)
    connection.delete(KEYS.idempotency(use.scope, use.key))
    job, _ = jobs.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"),
                         naming=Hold(use, lost.ticket, lost.until_ms))
    assert store.begin(use, lease=60).state == IN_USE  # its request may still answer
    assert store.abandon(use, lost.ticket)  # it failed, on the new primary
    assert store.begin(use, lease=60) == Begin(MADE, job_id=job.id)
    assert 0 < connection.pttl(KEYS.idempotency(use.scope, use.key)) <= KEEP_SECONDS * 1000
    # A hold another request has now is not taken by a late job of an older one, nor is that job made (it would be
    # sent beside the one the holder makes).
    other = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    holder = store.begin(other, lease=60)
    late = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro")
    with pytest.raises(FailedOver):
        jobs.create(late, naming=Hold(other, "an-older-ticket", 0))
    assert jobs.get(late.id) is None and store.begin(other, lease=60).state == IN_USE
    assert store.abandon(other, holder.ticket) and store.begin(other, lease=60).state == HELD



def test_a_hold_taken_on_a_primary_since_replaced_has_lapsed(local_app):
    """A request that began on a primary a switch replaced is never acknowledged, and its release may have been lost
    with that primary: its retry on the new one makes the job, or gets the one it made, never 409."""
    _, connection = local_app(DB)
    store, jobs = IdempotencyStore(connection), JobStore(connection)
    use = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    old = store.begin(use, lease=60, primary="old-primary")
    assert store.begin(use, lease=60, primary="old-primary").state == IN_USE
    retry = store.begin(use, lease=60, primary="new-primary")
    assert retry.state == HELD and store.begin(use, lease=60, primary="new-primary").state == IN_USE
    # The first request, still running on the new primary, makes no job beside the retry's, nor frees its key.
    late = Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro")
    with pytest.raises(FailedOver):
        jobs.create(late, naming=Hold(use, old.ticket, old.until_ms, "old-primary"))
    assert jobs.get(late.id) is None and not store.abandon(use, old.ticket)
    # A first request that made its job before the switch: the retry answers with it.
    made = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    first = store.begin(made, lease=60, primary="old-primary")
    job, _ = jobs.create(Job(id=new_job_id(), status=st.QUEUED, model="flux-2-pro"),
                         naming=Hold(made, first.ticket, first.until_ms, "old-primary"))
    assert store.begin(made, lease=60, primary="old-primary").state == IN_USE
    assert store.begin(made, lease=60, primary="new-primary") == Begin(MADE, job_id=job.id)


# --- whose key ---------------------------------------------------------------------------------


def test_keys_belong_to_their_bearer_token(api, sim):
    key, theirs_api = _key(), API(api.base_url, token=SECOND_TOKEN)
    mine = _post(api, key, _job("mine"))
    # Another body under the same key is no 422 for another token, and never the first token's answer.
    theirs = _post(theirs_api, key, _job("theirs"))
    assert mine.status_code == theirs.status_code == 202
    assert theirs.json()["id"] != mine.json()["id"] and REPLAYED not in theirs.headers
    assert _post(theirs_api, key, _job("theirs")).content == theirs.content
    assert _post(api, key, _job("mine")).content == mine.content
    assert _submitted(sim) == 2


def test_a_key_in_flight_for_one_token_is_free_for_another(api, sim):
    key, body = _key(), _job("scoped-in-flight", prompt="[pending] one fox each")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, API(api.base_url), key, body, headers=IN_FLIGHT, timeout=90)
        job = _in_flight(api, sim, "scoped-in-flight")
        theirs = _post(API(api.base_url, token=SECOND_TOKEN), key, body)
        assert theirs.status_code == 202 and theirs.json()["id"] != job["id"]
        sim.complete(job["bfl_id"])
        assert first.result(timeout=60).status_code == 202
    assert _submitted(sim) == 2


# --- keys that are refused -----------------------------------------------------------------------


BAD_KEYS = {
    "empty": ("", "invalid_idempotency_key"),
    "256": ("k" * 256, "invalid_idempotency_key"),
    "tab": ("tab\there", "invalid_idempotency_key"),
    "latin-1": ("caf\u00e9".encode("latin-1"), "invalid_idempotency_key"),
    "utf-8": ("caf\u00e9".encode("utf-8"), "invalid_idempotency_key"),
    # gunicorn refuses other control characters in any header before the app sees the request.
    "bell": ("bell\x07", "bad_request"),
    "del": ("del\x7f", "bad_request"),
}


@pytest.mark.parametrize("key, code", BAD_KEYS.values(), ids=BAD_KEYS)
@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/track"])
def test_a_bad_key_is_refused_and_changes_nothing(api, sim, key, code, path):
    body = _job("bad-key") if path == "/v1/jobs" else {"bfl_id": f"task-{uuid.uuid4()}"}
    before = job_ids(api)
    raw = json.dumps(body).encode()
    answer = send_raw("POST", api.base_url + path, [("Authorization", f"Bearer {API_TOKEN}"),
                                                    ("Content-Type", "application/json"),
                                                    ("Idempotency-Key", key)], raw)
    assert_error(answer, 400, code)
    assert _submitted(sim) == 0 and created_since(api, before) == []


def test_a_key_of_255_printable_characters_is_taken(api, sim):
    key = ((uuid.uuid4().hex + " ~!") * 8)[:255]
    first = _post(api, key, _job("long-key"))
    assert first.status_code == 202
    assert _post(api, key, _job("long-key")).headers[REPLAYED] == "true" and _submitted(sim) == 1


# --- Redis round trips, 5xx answers and lapsed holds, on an app of the test's own ---------------


def test_a_replay_is_one_round_trip_to_redis_and_no_call_to_bfl(local_app, sim):
    api, connection = local_app(DB)
    # Held at BFL: its Ready callback (a script and RQ's INFO) would otherwise fall among the replay's commands.
    key, body = _key(), _job("counted", prompt="[pending] a fox, once")
    first = _post(api, key, body)
    assert first.status_code == 202 and _submitted(sim) == 1

    answers = []
    commands = commands_during(connection, DB, lambda: answers.append(_post(api, key, body)))

    assert answers[0].headers[REPLAYED] == "true" and answers[0].content == first.content
    # A connection opened meanwhile says hello first (werkzeug's threads come and go; gunicorn's keep theirs).
    handshake = ("SELECT", "HELLO", "CLIENT SETINFO", "AUTH")
    sent = [c["command"] for c in commands if c["client_type"] != "lua" and not c["command"].startswith(handshake)]
    assert len(sent) == 1 and sent[0].startswith("EVALSHA"), sent
    inside = [c["command"] for c in commands if c["client_type"] == "lua"]
    assert len(inside) == 1 and inside[0].startswith("HMGET") and "fh:idem:" in inside[0], inside
    # Only digests reach Redis: neither the bearer token nor the key is ever sent.
    assert not any(API_TOKEN in c["command"] or key in c["command"] for c in commands)
    assert _submitted(sim) == 1


def test_a_5xx_answer_is_not_kept_so_the_key_may_be_retried(local_app, sim):
    # Two web apps on one Redis: the first holds a key BFL refuses (502); the second is the client's retry.
    refused_api, _ = local_app(DB, BFL_API_KEY="not-the-simulators-key")
    api, _ = local_app(DB)
    key, body = _key(), _job("after-5xx")
    assert_error(_post(refused_api, key, body), 502, "bfl_auth_failed")
    retried = _post(api, key, body)
    assert retried.status_code == 202 and REPLAYED not in retried.headers
    assert _post(refused_api, key, body).content == retried.content  # kept now, on every process
    assert _submitted(sim) == 1 and len(_tagged(api, "after-5xx")) == 1


def test_a_hold_whose_process_died_lapses_and_the_key_works_again(local_app, sim):
    api, connection = local_app(DB)
    key, body = _key(), _job("lapsed")
    # What a web process leaves when it dies holding the key: a hold nobody finishes.
    dead = IdempotencyStore(connection).begin(
        idempotency_keys.key_use(API_TOKEN, key, "POST", "/v1/jobs", json.dumps(body).encode()), lease=1.5)
    assert dead.state == HELD
    assert_error(_post(api, key, body), 409, "idempotency_key_in_use")
    answer = wait_until(lambda: (lambda a: a if a.status_code != 409 else None)(_post(api, key, body)),
                        timeout=10, interval=0.1, message="the dead process's hold to lapse")
    assert answer.status_code == 202 and REPLAYED not in answer.headers
    assert _submitted(sim) == 1 and len(_tagged(api, "lapsed")) == 1


def test_a_request_that_outlived_its_lease_cannot_finish_or_free_the_next_hold(local_app):
    _, connection = local_app(DB)
    store = IdempotencyStore(connection)
    use = idempotency_keys.key_use(API_TOKEN, _key(), "POST", "/v1/jobs", b"{}")
    late = store.begin(use, lease=0.2)
    nxt = wait_until(lambda: (lambda b: b if b.state == HELD else None)(store.begin(use, lease=60)),
                     timeout=5, message="the first hold to lapse")
    assert not store.finish(use, late.ticket, 202, b'{"late": true}')
    assert not store.abandon(use, late.ticket)
    assert store.begin(use, lease=60).state == IN_USE
    assert store.finish(use, nxt.ticket, 201, b'{"next": true}')
    assert store.begin(use, lease=60)[:3] == (DONE, 201, b'{"next": true}')
    assert 0 < connection.ttl(KEYS.idempotency(use.scope, use.key)) <= KEEP_SECONDS
