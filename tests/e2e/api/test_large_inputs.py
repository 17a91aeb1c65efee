"""Large inputs: a ``POST /v1/jobs`` body carrying 8 base64 reference images of 10 MB each is accepted,
passed to BFL untouched, and never kept in Redis: a job that waits for a slot keeps its input in storage and
drops it once submitted. A body over the limit is a 413 JSON error and creates nothing.

The web app runs in this process (``local_app``) against a BFL stand-in that records what it is sent."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import time
from http.server import BaseHTTPRequestHandler

import pytest

from devtools.processes import free_port
from fluxhook.core import job as st
from fluxhook.lifecycle.steps import task_inputs
from fluxhook.lifecycle.submitting import submit_queued
from fluxhook.store.keys import KEYS
from helpers import answer, assert_error, serve
from receiver.request_assembly import MAX_REQUEST_BYTES

IMAGE_BYTES = 10 * 1000 * 1000


class RecordingBFL:
    """Accepts every submission; keeps the sha256 of each input as sent (the body less fluxhook's webhook fields)."""

    def __init__(self):
        self.port = free_port()
        self.inputs: list[str] = []
        bfl = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for field in ("webhook_url", "webhook_secret"):
                    body.pop(field)
                bfl.inputs.append(_digest(body))
                answer(self, 200, json.dumps({"id": f"task-{len(bfl.inputs)}", "polling_url": None}).encode(),
                       {"Content-Type": "application/json"})

            def log_message(self, *args):
                pass

        self.server = serve(self.port, Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _digest(task_input: dict) -> str:
    return hashlib.sha256(json.dumps(task_input, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def bfl():
    recorder = RecordingBFL()
    yield recorder
    recorder.server.shutdown()


@pytest.fixture(scope="module")
def big_input() -> dict:
    """A FLUX.2 request with 8 reference images of 10 MB, as base64 (about 107 MB of JSON)."""
    task_input = {"prompt": "the same fox in eight poses", "input_image": None}
    for n in range(1, 9):
        name = "input_image" if n == 1 else f"input_image_{n}"
        task_input[name] = base64.b64encode(os.urandom(IMAGE_BYTES)).decode()
    return task_input


@pytest.fixture()
def app(local_app, make_services, bfl, tmp_path):
    env = {"BFL_API_BASE": bfl.url, "BFL_MAX_ACTIVE": "1", "STORAGE_URL": f"file://{tmp_path / 'store'}"}
    svc = make_services(8, **env)  # first: building the app flushes the database again
    api, connection = local_app(8, **env)
    bfl.inputs.clear()
    return api, connection, svc


def test_eight_base64_images_go_to_bfl_untouched_and_never_into_redis(app, big_input, bfl):
    api, connection, svc = app
    body = json.dumps({"model": "flux-2-pro", "input": big_input}).encode()
    assert 100_000_000 < len(body) < MAX_REQUEST_BYTES

    first = api.post("/v1/jobs", data=body, headers={"Content-Type": "application/json"}, timeout=120)
    waiting = api.post("/v1/jobs", data=body, headers={"Content-Type": "application/json"}, timeout=120)

    assert first.status_code == 202 and first.json()["status"] == "submitted", first.text[:300]
    assert waiting.status_code == 202 and waiting.json()["status"] == "queued", waiting.text[:300]
    assert bfl.inputs == [_digest(big_input)]
    assert svc.storage.open(task_inputs.key_for(first.json()["id"])) is None  # BFL had it at once
    job_id = waiting.json()["id"]
    # The queued job's record holds no input; its input waits in storage.
    assert connection.hget(KEYS.job(job_id), "input") is None
    assert connection.memory_usage(KEYS.job(job_id)) < 16_384
    assert connection.info("memory")["used_memory_dataset"] < 20_000_000
    stored = svc.storage.open(task_inputs.key_for(job_id))
    assert stored is not None
    stored.close()

    # The first task ends: the slot goes to the waiting job, whose input reaches BFL as it was sent.
    assert svc.jobs.transition(first.json()["id"], st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert svc.slots.dispatch().jobs == [job_id]
    assert submit_queued(svc, job_id) == st.SUBMITTED

    assert bfl.inputs == [_digest(big_input)] * 2
    assert svc.storage.open(task_inputs.key_for(job_id)) is None  # dropped once BFL had it
    assert svc.jobs.get(job_id).input is None


def test_a_small_input_stays_in_the_record_while_queued(app):
    api, connection, svc = app
    jobs = [api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"fox {n}"}}).json()
            for n in range(2)]
    assert [j["status"] for j in jobs] == ["submitted", "queued"]
    assert json.loads(connection.hget(KEYS.job(jobs[1]["id"]), "input")) == {"prompt": "fox 1"}
    assert svc.storage.open(task_inputs.key_for(jobs[1]["id"])) is None


def test_a_large_input_goes_to_storage_only_while_its_job_waits(app, bfl):
    api, connection, svc = app
    task_input = {"prompt": "a fox", "input_image": base64.b64encode(os.urandom(60_000)).decode()}
    first, waiting = (api.post("/v1/jobs", json={"model": "flux-2-pro", "input": task_input}).json()
                      for _ in range(2))
    assert (first["status"], waiting["status"]) == ("submitted", "queued")
    assert bfl.inputs == [_digest(task_input)]
    assert svc.storage.open(task_inputs.key_for(first["id"])) is None
    with svc.storage.open(task_inputs.key_for(waiting["id"])) as stored:
        assert stored.read() == json.dumps(task_input, separators=(",", ":")).encode()


def test_a_request_whose_input_cannot_be_stored_holds_no_budget(local_app, make_services, tmp_path):
    store = tmp_path / "store"
    env = {"STORAGE_URL": f"file://{store}", "BFL_DAILY_CREDIT_LIMIT": "12"}
    svc = make_services(8, **env)
    api, connection = local_app(8, **env)
    shutil.rmtree(store, ignore_errors=True)
    store.write_text("not a directory: every write to the store fails")
    body = {"model": "flux-2-pro", "input": {"prompt": "a fox", "input_image": "QUJD" * 10_000}}
    for _ in range(2):  # a 5xx may be retried with its key
        answer = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "stored-input-fails"})
        assert_error(answer, 500, "storage_error")
    assert svc.store.usage.reserved(time.time()) == 0
    assert connection.zcard(KEYS.all_jobs) == 0


def test_a_body_over_the_limit_is_a_413_and_creates_nothing(app, bfl):
    api, connection, _ = app
    host, port = api.base_url.removeprefix("http://").split(":")
    connection_ = http.client.HTTPConnection(host, int(port), timeout=30)
    # The length alone is refused: nothing of the body needs to be sent.
    connection_.putrequest("POST", "/v1/jobs")
    for name, value in (("Authorization", api.http.headers["Authorization"]), ("Content-Type", "application/json"),
                        ("Content-Length", str(MAX_REQUEST_BYTES + 1))):
        connection_.putheader(name, value)
    connection_.endheaders()
    answer = connection_.getresponse()
    body = answer.read()
    connection_.close()

    class Answer:
        status_code, content, text = answer.status, body, body.decode()

        def json(self):
            return json.loads(body)

    assert_error(Answer(), 413)
    assert connection.zcard(KEYS.all_jobs) == 0
    assert bfl.inputs == []
