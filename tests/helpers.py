"""Helpers shared by the end-to-end test modules that talk to the Procfile's processes over HTTP.

Only what several modules use is here; a helper used by one module stays in that module.
The fixtures themselves (the stack, the simulator, the spy hosts, ``api``) are in conftest.py.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import requests
from PIL import Image
from rq.job import Job as RQJob

from conftest import API, API_TOKEN, SECRET_KEY, ready_payload, serve_in_thread, service_env
from devtools.processes import ROOT, RedisServer, free_port, wait_until
from devtools.stack import Stack
from fluxhook.core import job as st
from fluxhook.core import signing
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps.enqueueing import task_id

SECOND_TOKEN = "second-token-abcdef"  # the other entry of the stack's API_TOKENS
OTHER_KEY = "an-attackers-secret-key-0123456789"


def rq_task_ids(db, name: str) -> list[str]:
    """The ids of the RQ tasks recorded in Redis ``db`` that are enqueues of ``name`` (``enqueueing.task_id``)."""
    keys = db.scan_iter(match=RQJob.key_for(task_id(name, "*")), count=1000)
    return [key.decode().removeprefix(RQJob.redis_job_namespace_prefix) for key in keys]


def png_bytes(color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 8), color).save(out, "PNG")
    return out.getvalue()


def serve_png(host, name: str) -> str:
    """A PNG on a spy host (allowlisted or not); returns its URL."""
    return host.route(f"/{name}.png", body=png_bytes(), headers={"Content-Type": "image/png"})


def nested(depth: int) -> bytes:
    """A JSON array nested ``depth`` deep."""
    return b"[" * depth + b"]" * depth


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The answer is ``status`` with exactly ``{"error": {"code", "message"}}``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message"}, error
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_error_status(response, status: int) -> dict:
    """The answer is ``status`` with an error ``code`` and ``message`` (``assert_error`` also checks that
    nothing else is in the body, and which code it is)."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def snapshot(job: dict) -> dict:
    """Everything a refused request must leave as it was.

    Only ``updated_at`` and ``attempts.polls`` may move: the fallback sweep polls a Pending job
    after the stack's 2 s grace period, whatever the test does. ``image.url`` and the links of ``image.srcset`` are
    signed anew each link window (IMAGE_URL_WINDOW_SECONDS), which two reads may straddle, so the rest of ``image``
    is what is compared.
    """
    kept = {key: value for key, value in job.items() if key != "updated_at"}
    kept["attempts"] = {key: value for key, value in job["attempts"].items() if key != "polls"}
    if job["image"] is not None:
        kept["image"] = {key: value for key, value in job["image"].items() if key not in ("url", "srcset")}
    return kept


def secret_of(job_id: str, key: str = SECRET_KEY) -> str:
    return signing.job_webhook_secret(key, job_id)


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_url(base_url: str, job_id: str, key: str = SECRET_KEY, model: str | None = None) -> str:
    """The job's own callback URL; with its ``model``, as fluxhook mints it (without, as an older release did)."""
    return signing.job_webhook_url(base_url, key, job_id, model)


class RawResponse:
    """The parts of a ``requests.Response`` that ``assert_error`` reads, for ``http.client`` answers."""

    def __init__(self, status: int, data: bytes):
        self.status_code = status
        self.content = data
        self.text = data.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def send_raw(method: str, url: str, headers: list[tuple[str, str | bytes]], body: bytes = b"") -> RawResponse:
    """A request with exactly these header lines, repeated names included (requests merges them)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                              skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return RawResponse(answer.status, answer.read())
    finally:
        connection.close()


def raw_exchange(stack, raw: bytes) -> bytes:
    """Send ``raw`` bytes to the web process and read its whole answer (it closes the connection)."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def job_ids(api: API) -> list[str]:
    return [job["id"] for job in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]]


def created_since(api: API, before: list[str]) -> list[str]:
    """The jobs listed now that ``before`` (``job_ids``, read earlier) did not list and that are newer than its oldest:
    what was created since. A job only leaves the list meanwhile (an earlier test's DELETE of a job whose BFL task
    still ran is carried out when the task ends), which lets older ones in below ``before``'s oldest."""
    oldest = min(before, default="")
    return [job_id for job_id in job_ids(api) if job_id not in before and job_id > oldest]


def deliver(api: API, sample_url: str, prompt: str = "[pending] attack") -> dict:
    """Submit a job, send it a proven Ready callback naming ``sample_url``, return the terminal job."""
    job = api.submit(prompt)
    response = api.callback(job["id"], ready_payload(job["bfl_id"], sample_url))
    assert response.status_code == 200, response.text
    return api.wait_for(job["id"])


def stored_job(api: API, host, name: str) -> dict:
    """A job whose image is stored, delivered from ``host``."""
    job = deliver(api, serve_png(host, name), prompt=f"[pending] {name}")
    assert job["status"] == "stored", job
    return job


def web_worker_pids(stack) -> list[str]:
    """The gunicorn workers booted so far: a crashed worker is replaced, and the list grows."""
    return stack.web_workers()


def wait_sim_ready(sim, task_id: str) -> dict:
    return wait_until(lambda: (lambda r: r if r.get("status") == "Ready" else None)(sim.result(task_id)),
                      timeout=10, message=f"simulator task {task_id} to be Ready")


def commands_during(connection, db: int, action) -> list[dict]:
    """The commands sent to database ``db`` while ``action()`` runs, as Redis's MONITOR reports them."""
    end = "end-of-action"
    seen: list[dict] = []
    started = threading.Event()

    def listen():
        with connection.monitor() as monitor:
            started.set()
            for command in monitor.listen():
                if command["db"] == db and end in command["command"]:
                    return
                if command["db"] == db:
                    seen.append(command)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert started.wait(5)  # MONITOR has answered OK: it sees every command from here on
    action()
    connection.echo(end)
    listener.join(timeout=10)
    assert not listener.is_alive()
    return seen


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    """Send one whole answer from an ``http.server`` handler, its length declared."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A real HTTP server on 127.0.0.1:``port`` in a daemon thread (``shutdown()`` it when done)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    serve_in_thread(server)
    return server


@contextmanager
def gateway_timing_out() -> Iterator[tuple[list[str], str]]:
    """BFL behind a gateway that gave up waiting: a real HTTP server answering 504 to every submission, which BFL
    may have taken; yields (the paths POSTed to it, its base URL)."""
    posted: list[str] = []

    class GatewayTimesOut(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posted.append(self.path)
            answer(self, 504, b"")

        def log_message(self, *args):
            pass

    port = free_port()
    server = serve(port, GatewayTimesOut)
    try:
        yield posted, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def tracked_job(svc, bfl_id: str, *, submitted_at: float | None = None, due: float | None = None) -> Job:
    """A ``submitted`` job of BFL task ``bfl_id`` in the store, due for the sweep at ``due`` (now by default)."""
    now = time.time()
    submitted_at = now if submitted_at is None else submitted_at
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=bfl_id, created_at=submitted_at,
                                 updated_at=now, submitted_at=submitted_at, account=svc.config.accounts[0].name),
                             due=now if due is None else due)
    return job


@contextmanager
def replica_of(redis_server) -> Iterator[RedisServer]:
    """A real replica of ``redis_server`` for the block (REDIS_MIN_REPLICAS' writes confirmed), detached after it."""
    import redis

    server = RedisServer().start()
    connection = redis.Redis.from_url(server.url)
    connection.replicaof("127.0.0.1", redis_server.port)
    wait_until(lambda: connection.info("replication").get("master_link_status") == "up", timeout=30,
               message="the replica to sync")
    try:
        yield server
    finally:
        connection.replicaof("NO", "ONE")
        server.stop()


@contextmanager
def stack_on_db(redis_server, simulator, spy_port: int, var_dir: Path, db: int, **overrides: str) -> Iterator[Stack]:
    """The Procfile's processes on Redis database ``db`` of their own (emptied before and after), their files
    under ``var_dir``; ``overrides``: more of their environment."""
    import os

    import redis

    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, spy_port, free_port(), STORAGE_URL=f"file://{var_dir / 'images'}",
                           **overrides))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{db}")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=var_dir)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(base_url: str, token: str = API_TOKEN) -> tuple[requests.Session, requests.Response]:
    """A browser-like session that went through the sign-in form; also the form's answer."""
    http = requests.Session()
    form = http.get(f"{base_url}/signin", timeout=10)
    assert form.status_code == 200
    answer = http.post(f"{base_url}/signin", data={"csrf_token": csrf_of(form.text), "token": token, "next": "/"},
                       allow_redirects=False, timeout=10)
    return http, answer


def start_make_run(tmp_path, **env) -> tuple[subprocess.Popen, list[str]]:
    """`make run` (``python -m devtools.run``) in the background, as a shell starts it; its lines up to "Ctrl-C"."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BFL_", "REDIS_URL", "API_TOKENS", "SECRET_KEY"))}
    environ.update(FLUXHOOK_VAR=str(tmp_path / "var"), PORT=str(free_port()), **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.run"], cwd=ROOT, env=environ, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # As a shell starts a background job: SIGINT ignored. Ctrl-C (SIGINT) must still stop it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "Ctrl-C stops everything" in line:
            break
    return process, lines


def read_answer(sock, timeout: float = 10) -> bytes:
    """Everything a server sends on ``sock`` until it closes, or until ``timeout`` passes with nothing more
    (empty if it waits for more from the client)."""
    sock.settimeout(timeout)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def job_id_pages(api, **params) -> list[list[str]]:
    """``GET /v1/jobs`` with ``params``, every page followed through ``next_cursor``: each page's job ids."""
    pages, cursor = [], None
    while True:
        body = api.get("/v1/jobs", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([job["id"] for job in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def run_older_releases_task(queue, name: str) -> None:
    """Queue task ``name`` on RQ ``queue`` by name, as an older release queued it, run it with RQ's own worker, and
    check that it ended without failing (a newer worker keeps such a name as a task that does nothing)."""
    from rq import SimpleWorker

    task = queue.enqueue(name)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert task.get_status(refresh=True) == "finished"
    assert queue.failed_job_registry.count == 0
