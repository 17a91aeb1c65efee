"""The BFL simulator over real HTTP, as a process of its own (subprocess + stdlib webhook receiver)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from conftest import serve_in_thread
from devtools.processes import wait_until
from simulator.__main__ import parse_args
from simulator_helpers import KEY, poll, set_settings, stats, submit, submit_ok, task_state, wait_ready

# Each test on the module's simulator (tests/unit/simulator/conftest.py), reset to its start-up settings.
pytestmark = pytest.mark.usefixtures("fresh")


# -- webhook receiver -------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; answers with scripted status codes per path, then 200."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.calls.append(Received(self.path, dict(self.headers.items()), body))
                    script = receiver.scripts.get(self.path)
                    status = script.pop(0) if script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = serve_in_thread(self.server)

    def new_hook(self, statuses: list[int] | None = None) -> tuple[str, str]:
        """A fresh (path, url) so each test only sees its own callbacks."""
        path = f"/hook/{uuid.uuid4().hex}"
        if statuses:
            with self.lock:
                self.scripts[path] = list(statuses)
        return path, f"http://127.0.0.1:{self.server.server_port}{path}"

    def received(self, path: str) -> list[Received]:
        with self.lock:
            return [c for c in self.calls if c.path == path]

    def wait_for(self, path: str, count: int = 1) -> list[Received]:
        return wait_until(lambda: len(self.received(path)) >= count and self.received(path))


# -- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


# -- submission, polling, auth, limits ---------------------------------------


def test_submit_answers_id_polling_url_and_cost(base: str) -> None:
    response = submit(base, "a cat")
    assert response.status_code == 200
    body = response.json()
    uuid.UUID(body["id"])
    assert body["polling_url"] == f"{base}/v1/get_result?id={body['id']}"
    assert body["cost"] == 2.5  # flux-dev's price in the catalog


def test_get_result_pending_then_ready(base: str) -> None:
    task_id = submit_ok(base, "a cat [pending]")
    assert poll(base, task_id) == {"id": task_id, "status": "Pending", "result": None, "progress": 0.5}

    done = requests.post(f"{base}/_sim/tasks/{task_id}/complete", json={}, timeout=5)
    assert done.status_code == 200 and done.json()["status"] == "Ready"
    body = poll(base, task_id)
    assert body["status"] == "Ready" and body["progress"] == 1.0
    result = body["result"]
    assert result["prompt"] == "a cat [pending]"
    assert isinstance(result["seed"], int)
    assert result["start_time"] <= result["end_time"]
    assert f"/delivery/{task_id}.png?exp=" in result["sample"]

    again = requests.post(f"{base}/_sim/tasks/{task_id}/complete", timeout=5)
    assert again.status_code == 409


def test_task_completes_after_task_delay(base: str) -> None:
    task_id = submit_ok(base, "timed")
    assert wait_ready(base, task_id)["status"] == "Ready"


def test_seconds_marker_outranks_the_task_delay(base: str) -> None:
    long_id = submit_ok(base, "long [seconds-1]")
    assert wait_ready(base, submit_ok(base, "short"))["status"] == "Ready"  # the settings' 0.05 s
    assert poll(base, long_id)["status"] == "Pending"
    assert task_state(base, long_id)["seconds"] == 1.0
    done = wait_ready(base, long_id)["result"]
    assert done["end_time"] - done["start_time"] >= 1.0

    # Tasks otherwise wait to be completed by hand: a marked one still ends by itself.
    set_settings(base, task_delay=None)
    assert wait_ready(base, submit_ok(base, "timed [seconds-0.1]"))["status"] == "Ready"


def test_poll_delay_holds_each_answer_to_a_poll(base: str) -> None:
    # BFL answers a poll after about 0.3 s: a bench's checks cost what they cost against it. None by default.
    task_id = submit_ok(base, "[pending] polled")
    assert requests.get(f"{base}/_sim/settings", timeout=5).json()["poll_delay"] == 0.0
    set_settings(base, poll_delay=0.3)
    started = time.monotonic()
    assert poll(base, task_id)["status"] == "Pending"
    assert time.monotonic() - started >= 0.3
    assert task_state(base, task_id)["polls"] == 1
    for bad in (-1, 31, True, "0.3"):
        assert requests.post(f"{base}/_sim/settings", json={"poll_delay": bad}, timeout=5).status_code == 400


def test_unknown_task_is_404(base: str) -> None:
    response = requests.get(f"{base}/v1/get_result", params={"id": "nope"}, headers=KEY, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"id": "nope", "status": "Task not found"}


@pytest.mark.parametrize("headers", [{}, {"x-key": "wrong"}])
def test_missing_or_wrong_key_is_401(base: str, headers: dict[str, str]) -> None:
    calls = [
        requests.post(f"{base}/v1/flux-dev", json={"prompt": "x"}, headers=headers, timeout=5),
        requests.get(f"{base}/v1/get_result", params={"id": "x"}, headers=headers, timeout=5),
        requests.get(f"{base}/v1/credits", headers=headers, timeout=5),
    ]
    for response in calls:
        assert response.status_code == 401
        assert response.json() == {"detail": "Not authenticated"}
    assert stats(base)["submitted"] == 0


def test_invalid_body_is_422(base: str) -> None:
    for body in ({}, {"prompt": ""}, {"prompt": 3}, ["prompt"]):
        response = requests.post(f"{base}/v1/flux-dev", json=body, headers=KEY, timeout=5)
        assert response.status_code == 422, body
        assert isinstance(response.json()["detail"], list)
    bad_model = requests.post(f"{base}/v1/Flux_Dev", json={"prompt": "x"}, headers=KEY, timeout=5)
    assert bad_model.status_code == 404


def test_credits_run_out_with_402(base: str) -> None:
    assert requests.get(f"{base}/v1/credits", headers=KEY, timeout=5).json()["credits"] >= 1_000_000
    set_settings(base, credits=2.5)  # one flux-dev task
    submit_ok(base, "last credit")
    assert requests.get(f"{base}/v1/credits", headers=KEY, timeout=5).json() == {"credits": 0}
    response = submit(base, "no credit")
    assert response.status_code == 402
    assert response.json() == {"detail": "Insufficient credits"}
    assert stats(base)["rejected_402"] == 1


def test_active_limit_429_and_kontext_max_counted_separately(base: str) -> None:
    set_settings(base, max_active=2, max_active_kontext_max=1)
    first = submit_ok(base, "one [pending]")
    submit_ok(base, "two [pending]", model="flux-pro-1.1")
    over = submit(base, "three [pending]")
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "1"
    assert over.json() == {"detail": "Too many active tasks"}

    assert submit(base, "kontext [pending]", model="flux-kontext-max").status_code == 200
    assert submit(base, "kontext 2 [pending]", model="flux-kontext-max").status_code == 429

    requests.post(f"{base}/_sim/tasks/{first}/complete", timeout=5).raise_for_status()
    assert submit(base, "fits again [pending]").status_code == 200

    counters = stats(base)
    assert counters["rejected_429"] == 2
    assert counters["active"] == 3
    assert counters["max_active_seen"] == 3
    assert counters["max_active_seen_by_model"] == {"flux-dev": 1, "flux-pro-1.1": 1, "flux-kontext-max": 1}


# -- webhooks -----------------------------------------------------------------


def test_callback_carries_secret_verbatim(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook()
    secret = "s3cr3t with spaces/+="
    task_id = submit_ok(base, "a cat", webhook_url=url, webhook_secret=secret)
    (call,) = receiver.wait_for(path)
    assert call.headers["X-Webhook-Secret"] == secret
    assert "X-BFL-Signature" not in call.headers
    assert call.headers["Content-Type"] == "application/json"
    body = call.json()
    assert body["id"] == task_id and body["status"] == "Ready"
    assert set(body["result"]) == {"sample", "seed", "prompt", "start_time", "end_time"}
    assert requests.get(body["result"]["sample"], timeout=5).status_code == 200


@pytest.mark.parametrize("mode", ["hmac", "both"])
def test_hmac_signature_verifies(base: str, receiver: Receiver, mode: str) -> None:
    set_settings(base, webhook_mode=mode)
    path, url = receiver.new_hook()
    secret = "hmac-secret"
    submit_ok(base, "signed", webhook_url=url, webhook_secret=secret)
    (call,) = receiver.wait_for(path)
    expected = hmac.new(secret.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-BFL-Signature"] == f"sha256={expected}"
    assert ("X-Webhook-Secret" in call.headers) == (mode == "both")


def test_no_secret_means_no_signature_headers(base: str, receiver: Receiver) -> None:
    set_settings(base, webhook_mode="both")
    path, url = receiver.new_hook()
    submit_ok(base, "unsigned", webhook_url=url)
    (call,) = receiver.wait_for(path)
    assert "X-Webhook-Secret" not in call.headers and "X-BFL-Signature" not in call.headers


def test_retry_after_500_then_delivered(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook(statuses=[500])
    task_id = submit_ok(base, "retry me", webhook_url=url)
    first, second = receiver.wait_for(path, 2)
    assert first.body == second.body
    attempts = wait_until(lambda: len(a := task_state(base, task_id)["callback_attempts"]) == 2 and a)
    assert [a["status_code"] for a in attempts] == [500, 200]
    counters = stats(base)
    assert counters["callbacks_sent"] == 2 and counters["callbacks_delivered"] == 1


def test_gives_up_after_three_retries(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook(statuses=[500, 502, 503, 504, 500])
    task_id = submit_ok(base, "never accepted", webhook_url=url)
    receiver.wait_for(path, 4)
    attempts = wait_until(lambda: len(a := task_state(base, task_id)["callback_attempts"]) == 4 and a)
    assert [a["status_code"] for a in attempts] == [500, 502, 503, 504]
    assert stats(base)["callbacks_delivered"] == 0


def test_drop_marker_sends_nothing(base: str, receiver: Receiver) -> None:
    dropped_path, dropped_url = receiver.new_hook()
    normal_path, normal_url = receiver.new_hook()
    dropped = submit_ok(base, "quiet [drop]", webhook_url=dropped_url)
    submit_ok(base, "loud", webhook_url=normal_url)
    receiver.wait_for(normal_path)
    assert wait_ready(base, dropped)["status"] == "Ready"
    state = task_state(base, dropped)
    assert state["callback_plan"] == "dropped" and state["callback_attempts"] == []
    assert receiver.received(dropped_path) == []


def test_dup_marker_sends_twice(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook()
    submit_ok(base, "echo [dup]", webhook_url=url)
    first, second = receiver.wait_for(path, 2)
    assert first.body == second.body
    wait_until(lambda: stats(base)["callbacks_delivered"] == 2)


@pytest.mark.parametrize(
    ("marker", "status"),
    [("[error]", "Error"), ("[content-moderated]", "Content Moderated"), ("[request-moderated]", "Request Moderated")],
)
def test_failure_outcomes(base: str, receiver: Receiver, marker: str, status: str) -> None:
    path, url = receiver.new_hook()
    task_id = submit_ok(base, f"bad {marker}", webhook_url=url)
    (call,) = receiver.wait_for(path)
    body = call.json()
    assert body["id"] == task_id and body["status"] == status
    if status == "Error":
        assert body["error"] == "Generation failed" and body["message"] == "Internal error"
    polled = poll(base, task_id)
    assert polled["status"] == status and polled["result"] is None and "details" in polled


def test_complete_with_outcome_and_replay(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook(statuses=[200, 503])
    task_id = submit_ok(base, "manual [pending]", webhook_url=url, webhook_secret="hidden-value")
    done = requests.post(f"{base}/_sim/tasks/{task_id}/complete", json={"outcome": "error"}, timeout=5)
    assert done.json()["status"] == "Error"
    (call,) = receiver.wait_for(path)
    assert call.json()["status"] == "Error"

    replay = requests.post(f"{base}/_sim/tasks/{task_id}/callback", timeout=5)
    assert replay.json() == {"status_code": 503}
    assert len(receiver.received(path)) == 2

    raw = requests.get(f"{base}/_sim/tasks/{task_id}", timeout=5).text
    assert "hidden-value" not in raw
    assert json.loads(raw)["has_webhook_secret"] is True


# -- delivery -------------------------------------------------------------------


def test_delivery_serves_a_real_png(base: str) -> None:
    sample = wait_ready(base, submit_ok(base, "a png"))["result"]["sample"]
    response = requests.get(sample, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(response.content)
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (64, 48)
    assert requests.get(sample, timeout=5).content == response.content


def test_jpeg_marker_and_image_bytes(base: str) -> None:
    set_settings(base, image_bytes=50_000)
    sample = wait_ready(base, submit_ok(base, "big [jpeg]"))["result"]["sample"]
    response = requests.get(sample, timeout=5)
    assert response.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).format == "JPEG"
    assert 40_000 <= len(response.content) <= 60_000


def test_expired_url_is_403_and_get_result_mints_a_fresh_one(base: str) -> None:
    set_settings(base, url_ttl=1)
    task_id = submit_ok(base, "short-lived")
    sample = wait_ready(base, task_id)["result"]["sample"]
    wait_until(lambda: requests.get(sample, timeout=5).status_code == 403, timeout=5)
    expired = requests.get(sample, timeout=5)
    assert expired.status_code == 403 and expired.text == "AuthenticationFailed"

    set_settings(base, url_ttl=600)
    fresh = poll(base, task_id)["result"]["sample"]
    assert fresh != sample
    assert requests.get(fresh, timeout=5).status_code == 200


def test_bad_signature_403_and_forgotten_task_404(base: str) -> None:
    sample = wait_ready(base, submit_ok(base, "sig"))["result"]["sample"]
    assert requests.get(sample[:-4] + "0000", timeout=5).status_code == 403
    assert requests.get(sample.split("?")[0], timeout=5).status_code == 403
    requests.post(f"{base}/_sim/reset", timeout=5).raise_for_status()
    assert requests.get(sample, timeout=5).status_code == 404


def test_delivery_fail_count_then_success(base: str) -> None:
    sample = wait_ready(base, submit_ok(base, "flaky"))["result"]["sample"]
    set_settings(base, delivery_fail_status=500, delivery_fail_count=2)
    codes = [requests.get(sample, timeout=5).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert stats(base)["delivery_requests"] == 3


def test_delivery_truncate_closes_early(base: str) -> None:
    sample = wait_ready(base, submit_ok(base, "cut"))["result"]["sample"]
    set_settings(base, delivery_truncate=True)
    parts = urlsplit(sample)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", f"{parts.path}?{parts.query}")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()


def test_redirect_helper(base: str) -> None:
    response = requests.get(f"{base}/redirect", params={"to": f"{base}/_sim/stats"}, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["Location"] == f"{base}/_sim/stats"


def test_a_task_kept_pending_ends_after_the_pending_limit_calling_back(base: str, receiver: Receiver) -> None:
    # BFL runs no task forever: one kept Pending (a [pending] prompt's, or any without a task delay) still ends,
    # and with it the account's capacity it held (and fluxhook's slot of a job canceled meanwhile).
    assert requests.get(f"{base}/_sim/settings", timeout=5).json()["pending_limit"] is None  # until told, by default
    set_settings(base, pending_limit=0.5, max_active=2)
    path, url = receiver.new_hook()
    marked = submit_ok(base, "[pending] a job canceled at fluxhook", webhook_url=url)
    set_settings(base, task_delay=None)
    unmarked = submit_ok(base, "waits to be told")
    assert submit(base, "a third: the account is full").status_code == 429
    assert poll(base, marked)["status"] == "Pending"

    assert wait_ready(base, marked)["status"] == "Ready" and wait_ready(base, unmarked)["status"] == "Ready"
    assert receiver.wait_for(path)[0].json()["status"] == "Ready"
    assert stats(base)["active"] == 0 and submit(base, "room again").status_code == 200
    done = poll(base, marked)["result"]
    assert done["end_time"] - done["start_time"] >= 0.5

    # Its markers' outcome, as a task completed by hand; none: until told.
    error = submit_ok(base, "[pending] [error] ends as it says")
    assert wait_ready(base, error)["status"] == "Error"
    set_settings(base, pending_limit=None)
    kept = submit_ok(base, "[pending] kept")
    assert requests.post(f"{base}/_sim/settings", json={"pending_limit": 0}, timeout=5).status_code == 400
    assert parse_args(["--pending-limit", "120"]).pending_limit == 120.0 and parse_args([]).pending_limit is None
    assert poll(base, kept)["status"] == "Pending"


# -- control API ------------------------------------------------------------------


def test_settings_merge_reject_unknown_and_reset(base: str) -> None:
    defaults = requests.get(f"{base}/_sim/settings", timeout=5).json()
    assert defaults["task_delay"] == 0.05 and defaults["retry_scale"] == 0.01
    assert "api_key" not in defaults
    assert set_settings(base, outcome="error", delivery_delay=0.01)["outcome"] == "error"

    unknown = requests.post(f"{base}/_sim/settings", json={"no_such_knob": 1}, timeout=5)
    assert unknown.status_code == 400 and "no_such_knob" in unknown.json()["detail"]
    bad_value = requests.post(f"{base}/_sim/settings", json={"webhook_mode": "plain"}, timeout=5)
    assert bad_value.status_code == 400

    requests.post(f"{base}/_sim/reset", timeout=5).raise_for_status()
    assert requests.get(f"{base}/_sim/settings", timeout=5).json() == defaults


def test_stats_counters(base: str, receiver: Receiver) -> None:
    path, url = receiver.new_hook()
    task_id = submit_ok(base, "counted", webhook_url=url)
    receiver.wait_for(path)
    wait_until(lambda: stats(base)["callbacks_delivered"] == 1)
    sample = wait_ready(base, task_id)["result"]["sample"]
    polls_so_far = task_state(base, task_id)["polls"]
    poll(base, task_id)
    requests.get(sample, timeout=5)

    counters = stats(base)
    assert counters["submitted"] == 1
    assert counters["active"] == 0
    assert counters["max_active_seen"] == 1
    assert counters["polls"] == {task_id: polls_so_far + 1}
    assert counters["polls_total"] == polls_so_far + 1
    assert counters["callbacks_sent"] == 1 and counters["callbacks_delivered"] == 1
    assert counters["delivery_requests"] == 1
    assert counters["rejected_429"] == 0 and counters["rejected_402"] == 0
