"""``client.batches`` (fluxhook/client.py) against scripted HTTP servers that stream: what it sends, its retries, its
streams broken off and opened again, its waits and timeouts, its downloads with memory flat. Against the session's
stack, through the command: tests/e2e/cli/test_batch_commands.py."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import API_TOKEN
from devtools.processes import free_port
from fluxhook import client as fc
from helpers import serve

BATCH_ID = "bat_01JD5Q0000000000000000000A"

# --- a scripted server that streams --------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


DROP = object()  # in a streamed body: the connection breaks off there, without the chunked body's end


@dataclass
class Streaming:
    """An HTTP server on 127.0.0.1 answering ``answer(seen, n)``: None drops the connection unanswered; else (status,
    headers, body), where a body of bytes goes whole and a list goes chunked, piece by piece: bytes are sent,
    a ``threading.Event`` is waited for (10 s at most), ``DROP`` breaks the connection off."""

    port: int
    answer: object = None
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs) -> fc.Client:
        kwargs.setdefault("backoff", 0.01)
        return fc.Client(self.url, API_TOKEN, **kwargs)


def _handler(server: Streaming):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
            server.seen.append(seen)
            result = server.answer(seen, len(server.seen))
            if result is None:
                self.close_connection = True
                return
            status, headers, body = result
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if isinstance(body, bytes):
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for piece in body:
                if piece is DROP:
                    self.close_connection = True
                    return
                if isinstance(piece, threading.Event):
                    piece.wait(10)
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = _serve

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture()
def server():
    scripted = Streaming(port=free_port())
    httpd = serve(scripted.port, _handler(scripted))
    yield scripted
    scripted.release.set()  # a hanging answer ends with the test
    httpd.shutdown()
    httpd.server_close()


def json_answer(status: int, body):
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def error_answer(status: int, code: str, message: str = "scripted"):
    return json_answer(status, {"error": {"code": code, "message": message}})


def batch_body(status: str = "running", ended: bool = False, **counts) -> dict:
    return {"id": BATCH_ID, "model": "flux-2-pro", "status": status, "counts": {**counts, "total": 3},
            "cost": {"credits": 3.0}, "ended_at": "2026-11-21T10:00:00Z" if ended else None, "metadata": {}}


def event(body: dict, event_id: str) -> bytes:
    return f"event: batch\nid: {event_id}\ndata: {json.dumps(body)}\n\n".encode()


def stream(*pieces) -> tuple[int, dict, list]:
    return 200, {"Content-Type": "text/event-stream"}, [b"retry: 3000\n\n", *pieces]


def result_line(index: int) -> bytes:
    return json.dumps({"index": index, "job_id": f"job_{index}", "status": "stored", "image": {"url": "u"},
                       "cost": {"credits": 3.0}, "error": None}).encode() + b"\n"


# --- create, get, list, cancel --------------------------------------------------------------------------

def test_create_sends_one_json_body_with_one_idempotency_key_across_retries(server):
    server.answer = lambda seen, n: error_answer(503, "unavailable") if n == 1 else json_answer(202, batch_body())
    items = [{"input": {"prompt": "a fox"}, "metadata": {"sku": 1}}, {"input": {"prompt": "a hare, ünïcode\u2028"}}]

    batch = server.client().batches.create("flux-2-pro", iter(items), metadata={"run": 7},
                                           notify_url="https://app.example/hook", notify_events=["job.ended"],
                                           cancel_after="1h")

    assert isinstance(batch, fc.Batch) and batch.id == BATCH_ID and batch.counts["total"] == 3 and not batch.ended
    first, second = server.seen
    assert first.headers["Idempotency-Key"] and first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.body == second.body and first.path == second.path
    assert (first.method, urlsplit(first.path).path) == ("POST", "/v1/batches")
    assert first.headers["Content-Type"] == "application/json" and first.headers["Cancel-After"] == "1h"
    # Everything in the body: notify_url (which may hold the app's token) and metadata never in the URL.
    assert json.loads(first.body) == {"model": "flux-2-pro", "items": items, "metadata": {"run": 7},
                                      "notify_url": "https://app.example/hook", "notify_events": ["job.ended"]}
    assert first.query == {}

    # A caller's own key goes as given; without one, each batch gets its own.
    server.seen.clear()
    server.answer = lambda seen, n: json_answer(202, batch_body())
    client = server.client()
    client.batches.create("flux-2-pro", items, idempotency_key="catalog-2026-11")
    client.batches.create("flux-2-pro", items)
    client.batches.create("flux-2-pro", items)
    keys = [seen.headers["Idempotency-Key"] for seen in server.seen]
    assert keys[0] == "catalog-2026-11" and keys[1] != keys[2]
    assert json.loads(server.seen[1].body) == {"model": "flux-2-pro", "items": items}
    assert "Cancel-After" not in server.seen[1].headers


def test_a_refused_batch_is_not_retried_and_arguments_are_checked_before_asking(server):
    named = [{"index": 1, "field": "input.width", "message": "fix 'input.width'"}]
    server.answer = lambda seen, n: json_answer(400, {"error": {
        "code": "invalid_items", "message": "1 of 2 items would be refused, at index 1", "items": named}})
    with pytest.raises(fc.InvalidRequest) as refused:
        server.client().batches.create("flux-2-pro", [{"input": {"prompt": "a"}}, {"input": {"width": "x"}}])
    assert (refused.value.code, refused.value.status) == ("invalid_items", 400) and len(server.seen) == 1
    assert refused.value.items == named  # every bad item the answer names, with its field

    server.seen.clear()
    batches = server.client().batches
    with pytest.raises(ValueError):
        batches.create("flux-2-pro", [{"input": {"prompt": "a"}}], idempotency_key="x" * 256)
    for timeout in (0, -1):
        with pytest.raises(ValueError):
            batches.wait(BATCH_ID, timeout)
    assert server.seen == [] and API_TOKEN not in repr(batches)


def test_get_and_list_read_as_attributes_and_follow_the_cursor(server):
    pages = {None: ([BATCH_ID, "bat_2"], "bat_2"), "bat_2": (["bat_1"], None)}

    def answer(seen, n):
        if urlsplit(seen.path).path == f"/v1/batches/{BATCH_ID}":
            return json_answer(200, batch_body("ended", ended=True, stored=3))
        ids, cursor = pages[seen.query.get("cursor", [None])[0]]
        return json_answer(200, {"batches": [dict(batch_body(), id=i) for i in ids], "next_cursor": cursor})

    server.answer = answer
    client = server.client()

    batch = client.batches.get(BATCH_ID)
    assert batch.ended and batch.status == "ended" and batch.counts["stored"] == 3 and batch.cost == {"credits": 3.0}
    assert batch.canceled_at is None and json.loads(json.dumps(batch)) == dict(batch)
    with pytest.raises(AttributeError):
        _ = batch.colour
    assert [b.id for b in client.batches.list(page_size=2)] == [BATCH_ID, "bat_2", "bat_1"]
    assert [s.query.get("limit") for s in server.seen[1:]] == [["2"], ["2"]]
    assert fc.Job(id="job_1", batch_id=BATCH_ID, batch_index=4).batch_index == 4 and fc.Job(id="j").batch_id is None


def test_cancel_after_a_lost_answer_counts_as_done_and_an_ended_batch_is_a_conflict(server):
    canceled = batch_body("canceled", aborted=3)
    server.answer = lambda seen, n: {1: error_answer(503, "unavailable"),
                                     2: error_answer(409, "already_ended")}.get(n, json_answer(200, canceled))
    assert server.client().batches.cancel(BATCH_ID).status == "canceled"
    assert [(s.method, s.path) for s in server.seen] == [("POST", f"/v1/batches/{BATCH_ID}/cancel")] * 2 + [
        ("GET", f"/v1/batches/{BATCH_ID}")]

    server.seen.clear()
    server.answer = lambda seen, n: error_answer(409, "already_ended")
    with pytest.raises(fc.Conflict) as ended:
        server.client().batches.cancel(BATCH_ID)
    assert ended.value.code == "already_ended" and len(server.seen) == 1


# --- results and the archive ----------------------------------------------------------------------------

def test_results_are_read_a_line_at_a_time_and_go_on_after_a_broken_connection(server):
    def answer(seen, n):
        if n == 1:
            return 200, {"Content-Type": "application/jsonl"}, [result_line(0), result_line(1)[:10], DROP]
        if n == 2:
            return error_answer(503, "unavailable")
        return 200, {"Content-Type": "application/jsonl"}, [result_line(0) + result_line(1), result_line(2)]

    server.answer = answer
    results = server.client().batches.results(BATCH_ID)
    assert server.seen == []  # nothing asked before the iteration reaches it
    assert [(r["index"], r["job_id"]) for r in results] == [(0, "job_0"), (1, "job_1"), (2, "job_2")]
    assert [urlsplit(s.path).path for s in server.seen] == [f"/v1/batches/{BATCH_ID}/results"] * 3

    server.seen.clear()
    server.answer = lambda seen, n: (200, {"Content-Type": "text/html"}, b"<html>a login page</html>\n")
    with pytest.raises(fc.ServiceUnavailable) as html:
        list(server.client().batches.results(BATCH_ID))
    assert html.value.code == "not_fluxhook" and len(server.seen) == 1
    server.answer = lambda seen, n: error_answer(404, "not_found", "no batch")
    with pytest.raises(fc.NotFound):
        next(server.client().batches.results("bat_theirs"))


def test_download_to_a_path_is_retried_whole_and_leaves_nothing_else(server, tmp_path):
    archive = b"PK\x03\x04" + bytes(range(256)) * 64

    def answer(seen, n):
        if n == 1:
            return 200, {"Content-Type": "application/zip"}, [archive[:1000], DROP]
        if n == 2:
            return error_answer(502, "bad_gateway")
        return 200, {"Content-Type": "application/zip"}, [archive[:5000], archive[5000:]]

    server.answer = answer
    saved = server.client().batches.download(BATCH_ID, tmp_path / "batch.zip")

    assert saved == tmp_path / "batch.zip" and saved.read_bytes() == archive
    assert [p.name for p in tmp_path.iterdir()] == ["batch.zip"]
    assert all(s.query == {"format": ["zip"]} for s in server.seen) and len(server.seen) == 3

    # What is not a ZIP is not written; into a file, what came is written as it comes.
    server.answer = lambda seen, n: (200, {"Content-Type": "text/html"}, b"<html>a login page</html>")
    with pytest.raises(fc.ServiceUnavailable) as html:
        server.client(retries=0).batches.download(BATCH_ID, tmp_path / "other.zip")
    assert html.value.code == "not_fluxhook" and [p.name for p in tmp_path.iterdir()] == ["batch.zip"]
    server.answer = lambda seen, n: (200, {"Content-Type": "application/zip"}, [archive[:100], archive[100:]])
    into = io.BytesIO()
    assert server.client().batches.download(BATCH_ID, into) is into and into.getvalue() == archive
    server.answer = lambda seen, n: (200, {"Content-Type": "application/zip"}, [archive[:100], DROP])
    into = io.BytesIO()
    with pytest.raises(fc.ServiceUnavailable) as broken:
        server.client().batches.download(BATCH_ID, into)
    assert "part of the archive only" in broken.value.message and into.getvalue() == archive[:100]


def test_a_large_archive_is_saved_with_memory_flat(server, tmp_path):
    piece = bytes(range(256)) * 1024  # 256 KiB
    count = 64  # 16 MiB in all
    server.answer = lambda seen, n: (200, {"Content-Type": "application/zip"}, (piece for _ in range(count)))

    tracemalloc.start()
    try:
        server.client().batches.download(BATCH_ID, tmp_path / "big.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (tmp_path / "big.zip").stat().st_size == len(piece) * count
    assert hashlib.sha256((tmp_path / "big.zip").read_bytes()).digest() == hashlib.sha256(piece * count).digest()
    assert peak < 2 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 16 MiB archive"


# --- the stream, and waiting on it ----------------------------------------------------------------------

def test_events_reconnect_with_the_last_event_id_until_the_batch_ends(server):
    def answer(seen, n):
        if n == 1:
            return stream(event(batch_body(queued=3), "1-a"), b": keepalive\n\n", event(batch_body(stored=1), "2-b"))
        if n == 2:
            return None  # a restart
        return stream(event(batch_body("ended", ended=True, stored=3), "3-c"))

    server.answer = answer
    seen = [b.counts for b in server.client().batches.events(BATCH_ID)]

    assert seen == [{"queued": 3, "total": 3}, {"stored": 1, "total": 3}, {"stored": 3, "total": 3}]
    assert [s.headers.get("Last-Event-ID") for s in server.seen] == [None, "2-b", "2-b"]
    assert all(s.headers["Accept"] == "text/event-stream" for s in server.seen)


def test_a_204_on_reconnecting_reads_the_batch_it_did_not_see_end(server):
    def answer(seen, n):
        if n == 1:
            return stream(event(batch_body(queued=3), "1-a"))  # closed before the end
        if n == 2:
            return 204, {}, b""
        return json_answer(200, batch_body("ended", ended=True, stored=3))

    server.answer = answer
    assert [b.ended for b in server.client().batches.events(BATCH_ID)] == [False, True]
    assert urlsplit(server.seen[-1].path).path == f"/v1/batches/{BATCH_ID}"

    server.seen.clear()
    server.answer = lambda seen, n: None
    with pytest.raises(fc.ServiceUnavailable):
        list(server.client(retries=2).batches.events(BATCH_ID))
    assert len(server.seen) == 3


def test_wait_returns_the_ended_batch_riding_out_a_restart(server):
    def answer(seen, n):
        if n == 1:
            return stream(event(batch_body(queued=3), "1-a"), b": keepalive\n\n")
        if n in (2, 3, 4, 5):
            return error_answer(503, "unavailable")
        return stream(event(batch_body("ended", ended=True, stored=3), "2-b"))

    server.answer = answer
    updates = []
    batch = server.client(retries=1).batches.wait(BATCH_ID, 30, on_update=lambda b, e: updates.append(
        (b and b.counts.get("queued"), b and b.status, e and e.code)))

    assert batch.ended and batch.counts["stored"] == 3
    # The event, its keepalive, the stream's end without the batch's, the restart, then the end itself: a progress
    # bar drawn from the calls ends full.
    running = [(3, "running", None), (3, "running", None), (3, "running", "unreachable")]
    assert updates == running + [(3, "running", "unavailable")] * 4 + [(None, "ended", None)]


def test_wait_gives_up_at_its_timeout_with_the_batch_as_last_seen(server):
    server.answer = lambda seen, n: stream(event(batch_body(queued=3), "1-a"), server.release)
    started = time.monotonic()
    with pytest.raises(fc.WaitTimeout) as timeout:
        server.client().batches.wait(BATCH_ID, 1)
    assert time.monotonic() - started < 5 and isinstance(timeout.value, TimeoutError)
    assert timeout.value.batch.counts["queued"] == 3 and timeout.value.job is None
    assert f"batch {BATCH_ID} is still running after 1 s (0 of 3 items ended)" in timeout.value.message

    # Nothing heard at all: the batch as named.
    server.answer = lambda seen, n: (server.release.wait(10), None)[1]
    with pytest.raises(fc.WaitTimeout) as silent:
        server.client().batches.wait(BATCH_ID, 0.5)
    assert silent.value.batch == {"id": BATCH_ID} and "no answer about batch" in silent.value.message
    server.release.set()
    # Another key's batch, or none: not found at once, not waited on.
    server.answer = lambda seen, n: error_answer(404, "not_found", "no batch")
    with pytest.raises(fc.NotFound):
        server.client().batches.wait(BATCH_ID, 30)
