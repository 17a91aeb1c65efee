"""fluxhook.client (fluxhook/client.py) against scripted HTTP servers: retries, timeouts and waiting, what the stack
never does; and the module itself. Against the session's stack: tests/e2e/client/test_client.py."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import API_TOKEN
from devtools.processes import ROOT, free_port
from fluxhook import client as fc
from fluxhook.core import job as st

# --- a scripted server ------------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Scripted:
    """An HTTP server on 127.0.0.1 whose answers come from ``answer(seen, n)``; it records every request.

    ``answer`` returns (status, headers, body), or None to drop the connection without a word.
    """

    port: int
    answer: object = None
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs) -> fc.Client:
        kwargs.setdefault("backoff", 0.01)
        return fc.Client(self.url, API_TOKEN, **kwargs)


def json_answer(status: int, body, headers: dict | None = None):
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def error_answer(status: int, code: str, message: str = "scripted", headers: dict | None = None):
    return json_answer(status, {"error": {"code": code, "message": message}}, headers)


def job_body(job_id: str = "job_1", status: str = "submitted", **fields) -> dict:
    return {"id": job_id, "status": status, "bfl_status": "Pending", "model": "flux-2-pro", **fields}


def _handler(server: Scripted):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length), time.monotonic())
            server.seen.append(seen)
            result = server.answer(seen, len(server.seen))
            if result is None:
                self.close_connection = True
                return
            status, headers, body = result
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture()
def scripted():
    server = Scripted(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", server.port), _handler(server))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()  # a quick shutdown
    yield server
    httpd.shutdown()
    httpd.server_close()


# --- retries, timeouts and waiting, against scripted servers ---------------------------------------------

def test_a_submission_is_retried_with_one_idempotency_key(scripted):
    scripted.answer = lambda seen, n: (error_answer(503, "unavailable") if n == 1
                                       else json_answer(202, job_body()))
    job = scripted.client().submit("flux-2-pro", {"prompt": "x"}, metadata={"a": 1})
    assert job.id == "job_1"
    keys = [seen.headers.get("Idempotency-Key") for seen in scripted.seen]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert [json.loads(seen.body) for seen in scripted.seen] == [
        {"model": "flux-2-pro", "input": {"prompt": "x"}, "metadata": {"a": 1}}] * 2
    assert all(seen.headers["Authorization"] == f"Bearer {API_TOKEN}" for seen in scripted.seen)

    # A caller's own key is sent as given; each submission without one gets a fresh key.
    scripted.seen.clear()
    scripted.answer = lambda seen, n: json_answer(202, job_body())
    client = scripted.client()
    client.track("bfl-1", idempotency_key="order-77")
    client.submit("flux-2-pro", {"prompt": "a"})
    client.submit("flux-2-pro", {"prompt": "a"})
    keys = [seen.headers.get("Idempotency-Key") for seen in scripted.seen]
    assert keys[0] == "order-77" and keys[1] != keys[2]


def test_a_key_still_in_use_is_retried_and_a_refusal_is_not(scripted):
    scripted.answer = lambda seen, n: (error_answer(409, "idempotency_key_in_use") if n < 3
                                       else json_answer(202, job_body()))
    assert scripted.client().submit("flux-2-pro", {"prompt": "x"}).id == "job_1"
    assert len(scripted.seen) == 3

    scripted.seen.clear()
    scripted.answer = lambda seen, n: error_answer(422, "idempotency_key_reused")
    with pytest.raises(fc.InvalidRequest) as reused:
        scripted.client().submit("flux-2-pro", {"prompt": "x"}, idempotency_key="k1")
    assert reused.value.code == "idempotency_key_reused" and len(scripted.seen) == 1


def test_reads_are_retried_after_a_dropped_connection_and_5xx(scripted):
    scripted.answer = lambda seen, n: {1: None, 2: error_answer(502, "bfl_unavailable")}.get(
        n, json_answer(200, job_body(status="stored")))
    assert scripted.client().get("job_1").status == "stored"
    assert [seen.path for seen in scripted.seen] == ["/v1/jobs/job_1"] * 3

    scripted.seen.clear()
    scripted.answer = lambda seen, n: error_answer(503, "unavailable")
    with pytest.raises(fc.ServiceUnavailable) as down:
        scripted.client(retries=2).get("job_1")
    assert (down.value.status, down.value.code) == (503, "unavailable") and len(scripted.seen) == 3


def test_429_honours_a_short_retry_after_and_hands_back_a_long_one(scripted):
    scripted.answer = lambda seen, n: (error_answer(429, "rate_limited", headers={"Retry-After": "0"}) if n == 1
                                       else json_answer(200, job_body()))
    assert scripted.client().get("job_1").id == "job_1" and len(scripted.seen) == 2

    scripted.seen.clear()
    scripted.answer = lambda seen, n: error_answer(429, "rate_limited", headers={"Retry-After": "3600"})
    with pytest.raises(fc.RateLimited) as limited:
        scripted.client().get("job_1")
    assert limited.value.retry_after == 3600 and isinstance(limited.value, fc.ServiceUnavailable)
    assert len(scripted.seen) == 1


def test_answers_that_are_not_fluxhooks(scripted):
    scripted.answer = lambda seen, n: (502, {"Content-Type": "text/html; charset=utf-8"}, b"<html>Bad Gateway</html>")
    with pytest.raises(fc.ServiceUnavailable) as gateway:
        scripted.client(retries=1).get("job_1")
    assert gateway.value.code == "http_502" and len(scripted.seen) == 2
    assert "the server answered 502 (text/html), not a fluxhook error" in gateway.value.message

    scripted.seen.clear()
    scripted.answer = lambda seen, n: (200, {"Content-Type": "text/html"}, b"<html>a login page</html>")
    with pytest.raises(fc.ServiceUnavailable) as html:
        scripted.client().get("job_1")
    assert (html.value.code, html.value.status) == ("not_fluxhook", 200) and len(scripted.seen) == 1


def test_a_job_event_that_is_not_json_raises_the_clients_own_error(scripted):
    events = b"retry: 3000\n\nevent: job\nid: 1-a\ndata: <html>a login page</html>\n\n"
    scripted.answer = lambda seen, n: (200, {"Content-Type": "text/event-stream"}, events)
    with pytest.raises(fc.ServiceUnavailable) as raised:
        next(scripted.client().events("job_1"))
    assert (raised.value.code, raised.value.status) == ("not_fluxhook", 200) and len(scripted.seen) == 1


def test_job_events_reopen_a_stream_that_ended_early_with_the_last_event_id(scripted):
    def answer(seen, n):
        data = json.dumps(job_body(status="submitted" if n == 1 else "stored"))
        return 200, {"Content-Type": "text/event-stream"}, f"event: job\nid: {n}-a\ndata: {data}\n\n".encode()

    scripted.answer = answer
    assert [job.status for job in scripted.client().events("job_1")] == ["submitted", "stored"]
    assert [seen.headers.get("Last-Event-ID") for seen in scripted.seen] == [None, "1-a"]


def test_every_request_has_a_timeout(scripted):
    release = threading.Event()
    scripted.answer = lambda seen, n: (release.wait(10), json_answer(200, job_body()))[1]
    started = time.monotonic()
    try:
        with pytest.raises(fc.ServiceUnavailable) as slow:
            scripted.client(timeout=0.3, retries=0).get("job_1")
    finally:
        release.set()
    assert slow.value.code == "unreachable" and "timed out" in slow.value.message
    assert time.monotonic() - started < 5


def test_an_unreachable_service():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(fc.ServiceUnavailable) as down:
        fc.Client(url, API_TOKEN, backoff=0.01).get("job_1")
    assert down.value.status is None and str(down.value).startswith(f"unreachable: cannot reach fluxhook at {url}")


def test_wait_paces_its_gets_when_the_server_does_not_hold_them(scripted):
    scripted.answer = lambda seen, n: json_answer(200, job_body(status="stored" if n == 4 else "submitted"))
    updates = []
    job = scripted.client().wait("job_1", timeout=20, on_update=lambda j, e: updates.append((j.status, e)))
    assert job.status == "stored" and updates == [("submitted", None)] * 3
    assert all(seen.headers["Prefer"].startswith("wait=") for seen in scripted.seen)
    assert 1 <= int(scripted.seen[0].headers["Prefer"].removeprefix("wait=")) <= 20
    gaps = [b.at - a.at for a, b in zip(scripted.seen, scripted.seen[1:], strict=False)]
    assert min(gaps) >= fc.FIRST_PAUSE * 0.9


def test_wait_gives_up_with_the_job_as_last_seen(scripted):
    scripted.answer = lambda seen, n: json_answer(200, job_body(status="submitted"))
    with pytest.raises(fc.WaitTimeout) as timeout:
        scripted.client().wait("job_1", timeout=1)
    assert timeout.value.job.status == "submitted" and isinstance(timeout.value, TimeoutError)
    assert 2 <= len(scripted.seen) <= 6  # paced: no tight loop


def test_wait_rides_out_a_restart(scripted):
    scripted.answer = lambda seen, n: (error_answer(503, "unavailable") if 2 <= n <= 6
                                       else json_answer(200, job_body(status="stored" if n > 6 else "submitted")))
    errors = []
    job = scripted.client(retries=1).wait("job_1", timeout=20, on_update=lambda j, e: errors.append(e and e.code))
    assert job.status == "stored" and "unavailable" in errors


def test_download_of_a_video_is_retried_and_verified(scripted, tmp_path):
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    digest = hashlib.sha256(video).hexdigest()
    body = job_body(status="stored", image=None,
                    video={"content_type": "video/mp4", "size": len(video), "sha256": digest})

    def answer(seen, n):
        if seen.path == "/v1/jobs/job_1":
            return json_answer(200, body)
        if n == 2:
            return error_answer(503, "unavailable")
        return 200, {"Content-Type": "video/mp4"}, video

    scripted.answer = answer
    saved = scripted.client().download("job_1", tmp_path / "clip.mp4")
    assert saved.read_bytes() == video
    assert [seen.path for seen in scripted.seen] == ["/v1/jobs/job_1", "/v1/jobs/job_1/video", "/v1/jobs/job_1/video"]


def test_delete_after_a_lost_answer_counts_as_done(scripted):
    scripted.answer = lambda seen, n: error_answer(503, "unavailable") if n == 1 else error_answer(404, "not_found")
    assert scripted.client().delete("job_1") is None
    assert [seen.method for seen in scripted.seen] == ["DELETE", "DELETE"]


def test_list_filters_by_model_even_where_the_server_does_not(scripted):
    pages = {None: ([("job_3", "a"), ("job_2", "b")], "c1"), "c1": ([("job_1", "a")], None)}

    def answer(seen, n):
        cursor = dict(p.split("=") for p in seen.path.split("?")[1].split("&")).get("cursor")
        jobs, next_cursor = pages[cursor]
        return json_answer(200, {"jobs": [job_body(i, model=m) for i, m in jobs], "next_cursor": next_cursor})

    scripted.answer = answer
    assert [job.id for job in scripted.client().list(model="a", page_size=2)] == ["job_3", "job_1"]
    assert all("model=a" in seen.path and "limit=2" in seen.path for seen in scripted.seen)


def test_list_sends_each_filter_by_the_apis_name_and_times_in_utc(scripted):
    scripted.answer = lambda seen, n: json_answer(200, {"jobs": [job_body("job_1")], "next_cursor": None})
    paris = timezone(timedelta(hours=1))
    client = scripted.client()
    jobs = client.list(status="stored", key_id="key_0123456789abcdef", account="backup", q="Red Fox & co",
                       since=datetime(2026, 11, 21, 11, 0, 0, 250000, tzinfo=paris), until=date(2026, 11, 22),
                       page_size=7)
    assert [job.id for job in jobs] == ["job_1"]
    sent = parse_qs(urlsplit(scripted.seen[-1].path).query)
    assert sent == {"limit": ["7"], "status": ["stored"], "key_id": ["key_0123456789abcdef"], "account": ["backup"],
                    "q": ["Red Fox & co"], "from": ["2026-11-21T10:00:00.250000Z"], "to": ["2026-11-22"]}
    # The API's own strings go as given; filters left out or None are not sent.
    next(client.pages(since="2026-11-21T10:00Z", until=None, q=None))
    assert parse_qs(urlsplit(scripted.seen[-1].path).query) == {"limit": ["100"], "from": ["2026-11-21T10:00Z"]}


def test_list_refuses_a_naive_time_an_odd_type_and_an_unknown_filter_before_asking(scripted):
    client = scripted.client()
    with pytest.raises(ValueError, match="timezone-aware datetime"):
        client.list(since=datetime(2026, 11, 21, 10, 0))
    with pytest.raises(TypeError, match="until must be a datetime, a date or a string"):
        client.pages(until=1_800_000_000)
    with pytest.raises(TypeError, match="unknown filter 'prompt': list\\(\\) and pages\\(\\) take status, model"):
        client.list(prompt="a fox")
    assert scripted.seen == []


# --- the module itself ---------------------------------------------------------------------------------

def test_the_module_loads_without_the_service():
    code = ("import sys, fluxhook.client; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('flask', 'werkzeug', 'redis', 'rq', 'boto3') or (m.startswith('fluxhook.') and m != 'fluxhook.client')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

    tree = ast.parse((ROOT / "fluxhook" / "client.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - set(sys.stdlib_module_names) == {"requests"}


def test_job_reads_as_attributes_and_stays_a_dict():
    job = fc.Job(job_body(status="stored", image={"sha256": "ab"}))
    assert (job.id, job.status, job.image["sha256"]) == ("job_1", "stored", "ab") and job.terminal
    assert job.video is None and job.cost is None  # job fields this answer lacks
    with pytest.raises(AttributeError):
        _ = job.colour
    assert json.loads(json.dumps(job)) == dict(job)
    assert fc.STATUSES == st.STATUSES and fc.TERMINAL == st.TERMINAL


def test_arguments_are_checked_before_any_request(scripted):
    client = scripted.client()
    for call in (lambda: client.get("job_1", wait=0), lambda: client.get("job_1", wait=61),
                 lambda: client.submit("m", {"prompt": "x"}, idempotency_key="x" * 256),
                 lambda: client.wait("job_1", timeout=0)):
        with pytest.raises(ValueError):
            call()
    for url, token in (("ftp://host", API_TOKEN), ("localhost:8000", API_TOKEN), ("http://h", " ")):
        with pytest.raises(ValueError):
            fc.Client(url, token)
    assert scripted.seen == []
    assert API_TOKEN not in repr(client)


def test_an_end_user_goes_with_a_submission_and_filters_the_list(scripted):
    scripted.answer = lambda seen, n: (json_answer(202, job_body(end_user="shopper-1")) if seen.method == "POST"
                                       else json_answer(200, {"jobs": [], "next_cursor": None}))
    client = scripted.client()
    job = client.submit("flux-2-pro", {"prompt": "x"}, end_user="shopper-1", cancel_after="5m")
    assert job.end_user == "shopper-1"
    assert json.loads(scripted.seen[0].body)["end_user"] == "shopper-1"
    assert scripted.seen[0].headers["Cancel-After"] == "5m"
    list(client.list(end_user="shopper-1"))
    assert parse_qs(urlsplit(scripted.seen[-1].path).query)["end_user"] == ["shopper-1"]
    with pytest.raises(TypeError, match="unknown option 'enduser'"):
        client.submit("flux-2-pro", {"prompt": "x"}, enduser="shopper-1")  # type: ignore[call-arg]
