"""The tenant probe: an attacker's view of tenancy (SPEC §4, §6, §7, §10, §16), over HTTP against a real stack.

    .venv/bin/python -m devtools.tenant_probe [--rows 1,3,12]        (make probe-tenants)

fluxhook serves many apps, each with its own app key. Each row below is one attack by a hostile tenant X (an app
key of its own) on a victim tenant V (another app key on the same service and BFL account), or by a stranger: what
the attacker got, what the victim saw, a figure, and HOLDS or BROKEN. The stack is the one `make run` starts
(devtools.stack): a real Redis, the BFL simulator answering every submission after about a second as BFL does
(tasks of a few seconds), the Procfile's gunicorn web and its worker, with BFL_DAILY_CREDIT_LIMIT and
BFL_WEBHOOK_SECRET set, and the apps' notification receivers (one path per key, each verifying with its key's own
secret). Everything listens on 127.0.0.1 only; every loop is bounded in requests and time (the
whole run stays under ten minutes) and the stack stops at the end. Exits 1 when any row is BROKEN.

Only the Redis rows read Redis (MEMORY USAGE, DBSIZE and a scan of every value); everything else an attacker could do is
done over HTTP, with the simulator's control API (/_sim) standing in for BFL finishing a task.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import redis
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from .processes import free_port, start_process, stop_process
from .stack import SIMULATOR_KEY, Stack, procfile_commands

# BFL answers a submission after about a second, and a task takes a few seconds.
BFL_ANSWERS_AFTER = 1.0
TASK_SECONDS = 3.0
DAILY_LIMIT = 500  # credits, the service's BFL_DAILY_CREDIT_LIMIT
STATIC_SECRET = "probe-static-secret-" + secrets.token_hex(8)
UNBOUNDABLE = "flux-probe-unpriced"  # merged over the catalog without a price: under a limit it goes alone
MODELS_FILE = f'[models."{UNBOUNDABLE}"]\nkind = "image"\n'
BOUNDABLE = {"width": 1000, "height": 1000}  # flux-2-pro at 1 MP: bound and price 3 credits
SENT = ("submitted", "ready", "stored")
TERMINAL = ("stored", "failed", "expired", "moderated", "canceled", "aborted")
RUN_LIMIT = 570.0  # seconds: rows that would start past this are not run
# BFL's read timeout on a submission is 20 s (fluxhook.core.bfl_limits): a BFL slower than that is one whose
# answer the request never sees.
SLOW_BFL = 22.0
KIB = 1024


@dataclass
class Row:
    """One attack: what the attacker got, what the victim saw, a figure, and whether tenancy held."""

    attack: str
    attacker: str
    victim: str
    figure: str
    holds: bool


# --------------------------------------------------------------------------- HTTP


class Api:
    """One caller of fluxhook: its bearer token (none for a stranger), a keep-alive session per thread."""

    def __init__(self, base: str, token: str | None = None, key_id: str | None = None, notify_secret: str = ""):
        self.base, self.token, self.key_id, self.notify_secret = base, token, key_id, notify_secret
        self._local = threading.local()

    def call(self, method: str, path: str, headers: dict | None = None, **kwargs: Any) -> requests.Response:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.trust_env = False  # no proxy: 127.0.0.1 only
        sent = dict(headers or {})
        if self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        kwargs.setdefault("timeout", 30)
        return self._local.session.request(method, self.base + path, headers=sent, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)

    def job(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}").json()

    def submit(self, prompt: str, model: str = "flux-2-pro", **fields: Any) -> requests.Response:
        return self.post("/v1/jobs", {"model": model, "input": {"prompt": prompt, **BOUNDABLE, **fields}})

    def track(self, bfl_id: str, **fields: Any) -> requests.Response:
        return self.post("/v1/jobs/track", {"bfl_id": bfl_id, **fields})


def settle(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """``condition()`` once it is truthy, or its last value after ``timeout`` s: a row reports, never raises."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_job(api: Api, job_id: str, done: Callable[[dict], bool], timeout: float) -> tuple[dict, float]:
    """The job once ``done(job)``, or as it is after ``timeout`` s; and the seconds it took."""
    started = time.monotonic()
    last: dict = {}

    def reached() -> bool:
        nonlocal last
        last = api.job(job_id)
        return done(last)

    settle(reached, timeout, interval=0.05)
    return last, time.monotonic() - started


def submit_timed(api: Api, prompt: str, timeout: float, **fields: Any) -> tuple[requests.Response, dict, float]:
    """Submit a job and wait until BFL has it: the answer, the job then, and the seconds from the request on."""
    started = time.monotonic()
    answer = api.submit(prompt, **fields)
    if answer.status_code != 202:
        return answer, {}, time.monotonic() - started
    job, _ = wait_job(api, answer.json()["id"], lambda j: j["status"] in SENT, timeout)
    return answer, job, time.monotonic() - started


def raw_status(base: str, path: str, token: str) -> int:
    """The status of a GET sent with its path exactly as written (no client normalizes ``..`` away)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def sha(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest()[:12] if data else "-"


def codes(statuses: list[int]) -> str:
    """``202×5 429×7``: how many of each status, in order of first appearance."""
    return " ".join(f"{code}×{statuses.count(code)}" for code in dict.fromkeys(statuses))


# --------------------------------------------------------------------------- BFL (the simulator)


class Bfl:
    """The simulator: as an app sending tasks straight to BFL, and its control API standing in for BFL's own pace."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False

    def settings(self, **settings: Any) -> None:
        self.http.post(f"{self.base}/_sim/settings", json=settings, timeout=10).raise_for_status()

    def submitted(self) -> int:
        """Tasks BFL has accepted since it started."""
        return self.http.get(f"{self.base}/_sim/stats", timeout=30).json()["submitted"]

    def task(self, prompt: str) -> str:
        """A task an app sends BFL itself (no callback URL of fluxhook's): its id, after BFL's answer."""
        response = self.http.post(f"{self.base}/v1/flux-2-pro", json={"prompt": prompt}, headers={"x-key": SIMULATOR_KEY},
                                  timeout=60)
        response.raise_for_status()
        return response.json()["id"]

    def complete(self, task_id: str) -> None:
        self.http.post(f"{self.base}/_sim/tasks/{task_id}/complete", json={"outcome": "ready"}, timeout=10)

    def result(self, task_id: str, timeout: float = 20) -> dict:
        """The task's ``result`` once BFL reports it Ready (its sample is a signed delivery link)."""
        def ready() -> dict | None:
            body = self.http.get(f"{self.base}/v1/get_result", params={"id": task_id}, headers={"x-key": SIMULATOR_KEY},
                                 timeout=10).json()
            return body["result"] if body.get("status") == "Ready" else None

        found = settle(ready, timeout, interval=0.1)
        if not found:
            raise TimeoutError(f"BFL's task {task_id} is not Ready after {timeout} s")
        return found

    def bytes_of(self, url: str) -> bytes:
        response = self.http.get(url, timeout=30)
        response.raise_for_status()
        return response.content


# --------------------------------------------------------------------------- the apps' receivers


@dataclass
class Received:
    """One POST an app's receiver got: its path, webhook-id, whether its app's secret verified it, what it answered."""

    path: str
    webhook_id: str
    verified: bool
    status: int
    at: float  # epoch seconds, when it arrived
    headers: dict
    body: bytes


class Receivers:
    """The apps' notification receivers, one path each on one server on 127.0.0.1 (every path the same host and
    port, so a target disabled by host would show). A path with a secret answers 401 to a POST its app's secret does
    not verify, as an app's receiver does; otherwise the status the row set for it (200 unless told)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got: list[Received] = []
        self.secrets: dict[str, str] = {}
        self.answers: dict[str, int] = {}
        self.port = free_port()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                at = time.time()
                with receivers.lock:
                    secret, status = receivers.secrets.get(self.path), receivers.answers.get(self.path, 200)
                verified = verifies(secret, body, headers) if secret else False
                if secret and not verified:
                    status = 401
                with receivers.lock:
                    receivers.got.append(Received(self.path, headers.get("webhook-id", ""), verified, status, at,
                                                  headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def path(self, name: str, answer: int = 200) -> str:
        """A new receiver path (``/name-…``) answering ``answer``."""
        path = f"/{name}-{uuid.uuid4().hex[:8]}"
        with self.lock:
            self.answers[path] = answer
        return path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def verify_with(self, path: str, secret: str) -> None:
        with self.lock:
            self.secrets[path] = secret

    def of(self, path: str, webhook_id: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path and webhook_id in (None, r.webhook_id)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verifies(secret: str, body: bytes, headers: dict) -> bool:
    """Whether a Standard Webhooks library verifies the POST with ``secret``."""
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


# --------------------------------------------------------------------------- the stack


class Probe:
    """The running stack, its admin, BFL, and the tenants made for the rows."""

    def __init__(self, var_dir: Path):
        self.var_dir = var_dir
        port = free_port()
        self.receivers = Receivers()
        (var_dir / "models.toml").write_text(MODELS_FILE)
        env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "LOG_LEVEL": "WARNING",
               # GUNICORN_CMD_ARGS outranks the config file's 0.0.0.0: loopback only.
               "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
               "BFL_WEBHOOK_SECRET": STATIC_SECRET, "BFL_DAILY_CREDIT_LIMIT": str(DAILY_LIMIT),
               "BFL_MODELS_FILE": str(var_dir / "models.toml"),
               "NOTIFY_HOST_ALLOWLIST": f"127.0.0.1:{self.receivers.port}"}
        self.stack = Stack(env=env, var_dir=var_dir)
        self.started = time.monotonic()

    def start(self) -> None:
        self.stack.start()  # Redis, the simulator, then the Procfile's web and worker
        env = self.stack.env
        self.admin = Api(self.stack.base_url, env["API_TOKENS"].split(",")[0])
        self.stranger = Api(self.stack.base_url)
        self.bfl = Bfl(env["BFL_API_BASE"])
        self.bfl.settings(submit_delay=BFL_ANSWERS_AFTER, task_delay=TASK_SECONDS, any_model=True)
        self.redis = redis.Redis.from_url(env["REDIS_URL"])
        if not settle(lambda: self.stranger.get("/readyz").status_code == 200, 60, interval=0.2):
            raise RuntimeError(f"the stack is not ready after 60 s; see {self.var_dir}")

    def stop(self) -> None:
        self.stack.stop()
        self.receivers.stop()

    def tenant(self, name: str, **limits: Any) -> Api:
        """A new app key (``limits``: its daily_credits, max_active, requests_per_minute...)."""
        response = self.admin.post("/v1/keys", {"name": f"{name}-{uuid.uuid4().hex[:6]}", **limits})
        response.raise_for_status()
        key = response.json()
        return Api(self.stack.base_url, key["key"], key["id"], key.get("notify_secret") or "")

    def static_post(self, payload: dict, session: requests.Session | None = None) -> requests.Response:
        """A callback on the static URL with the account's secret, which every app of the account holds."""
        return (session or requests).post(self.stack.base_url + "/webhooks/bfl", json=payload, timeout=10,
                                          headers={"X-Webhook-Secret": STATIC_SECRET})

    def spent_today(self, tenant: Api) -> float:
        return self.admin.get(f"/v1/keys/{tenant.key_id}").json().get("spent_today") or 0.0

    def time_left(self) -> float:
        return RUN_LIMIT - (time.monotonic() - self.started)

    def warm_up(self) -> None:
        """One flux-2-pro job to stored: BFL has then priced the model within its catalog entry, so under the
        limit its requests are bounded by it (a model's first request goes alone)."""
        job = self.admin.submit("warm-up").json()
        wait_job(self.admin, job["id"], lambda j: j["status"] in TERMINAL, 30)


def remove_all(api: Api, job_ids: list[str]) -> None:
    """Remove a tenant's jobs (a queued one leaves its line), so no row's leftovers hold the next one back."""
    for job_id in job_ids:
        api.call("DELETE", f"/v1/jobs/{job_id}")


def finish(p: Probe, api: Api, job_id: str) -> None:
    """BFL ends a tenant's running job now, and the row waits until it is stored: nothing of it runs into the next."""
    p.bfl.complete(api.job(job_id).get("bfl_id") or "")
    wait_job(api, job_id, lambda j: j["status"] in TERMINAL, 15)


def jobs_in(api: Api, statuses: tuple[str, ...], job_ids: list[str]) -> int:
    listed = api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
    return sum(1 for job in listed if job["id"] in job_ids and job["status"] in statuses)


# --------------------------------------------------------------------------- the rows


def row_go_alone(p: Probe) -> Row:
    """1. X queues 60 jobs the catalog cannot bound under the daily limit; V's one boundable job goes within 3 s."""
    x, v = p.tenant("x-alone"), p.tenant("v-alone")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: x.submit(f"X's unboundable {n}", model=UNBOUNDABLE), range(60)))
    queued = [a.json()["id"] for a in answers if a.status_code == 202]
    settle(lambda: jobs_in(x, SENT, queued) >= 2, 30, interval=0.2)  # the rest wait with their records in the limit
    mine, job, took = submit_timed(v, "V's one boundable job", 60)
    sent_of_x = jobs_in(x, SENT, queued)
    remove_all(x, queued)
    # Sent within 3 s: BFL's answer, which makes the job submitted, takes its second more.
    holds = mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("go-alone line: 60 unboundable jobs, then V's boundable one",
               f"{codes([a.status_code for a in answers])}, {sent_of_x} sent",
               f"{mine.status_code}, {job.get('status')} (waiting {(job.get('waiting') or {}).get('reason')})",
               f"V to submitted {took:.1f} s (limit 3 s + BFL's {BFL_ANSWERS_AFTER:g} s)", holds)


def row_static_ready(p: Probe) -> Row:
    """2. X, holding the account's static secret, says V's running task is Ready with X's own result."""
    v = p.tenant("v-static")  # X needs no key: the static secret is all it uses
    task = p.bfl.task("[pending] V's own task, still running")
    tracked = v.track(task)
    own = p.bfl.task("X's own task, finished")
    x_sample = p.bfl.result(own)["sample"]
    x_bytes = p.bfl.bytes_of(x_sample)
    forged = p.static_post({"id": task, "status": "Ready", "result": {"sample": x_sample}})
    job_id = tracked.json()["id"]
    after, _ = wait_job(v, job_id, lambda j: j["attempts"]["polls"] >= 1 or j["status"] in TERMINAL, 15)
    forged_sha = (after.get("image") or {}).get("sha256")
    p.bfl.complete(task)
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    genuine = p.static_post({"id": task, "status": "Ready", "result": real})
    final, _ = wait_job(v, job_id, lambda j: j["status"] in TERMINAL, 30)
    final_sha = (final.get("image") or {}).get("sha256")
    x_sha = hashlib.sha256(x_bytes).hexdigest()
    holds = forged_sha != x_sha and final.get("status") == "stored" and final_sha == real_sha
    return Row("static-secret Ready with X's result for V's running task",
               f"forged {forged.status_code}, genuine {genuine.status_code}",
               f"after forged: {after.get('status')}; end: {final.get('status')} sha {(final_sha or '-')[:12]}",
               f"X's sha {x_sha[:12]}, BFL's {real_sha[:12]}, {len(x_bytes):,} B of X's", holds)


def row_tracking(p: Probe) -> Row:
    """3. X tracks V's task id before V does: V still gets its own job and its result; X learns nothing of V."""
    x, v = p.tenant("x-track"), p.tenant("v-track")
    task = p.bfl.task("[pending] V's task, whose id X learned")
    x_first = x.track(task, metadata={"by": "x"})
    unknown = x.track(f"unknown-{uuid.uuid4()}")
    v_answer = v.track(task, metadata={"by": "v"})
    x_job, v_job = x_first.json(), v_answer.json()
    reveals = (x_job.get("key_id") == v.key_id or set(x_job) != set(unknown.json())
               or x_first.status_code != unknown.status_code)
    own = v_answer.status_code == 201 and v_job.get("key_id") == v.key_id and v_job.get("id") != x_job.get("id")
    p.bfl.complete(task)
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    p.static_post({"id": task, "status": "Ready", "result": real})
    final, _ = wait_job(v, v_job["id"], lambda j: j["status"] in TERMINAL, 30) if own else ({}, 0)
    final_sha = (final.get("image") or {}).get("sha256")
    holds = own and not reveals and final.get("status") == "stored" and final_sha == real_sha
    return Row("tracking takeover: X tracks V's task first",
               f"{x_first.status_code} (unknown id: {unknown.status_code}), reveals V: {reveals}",
               f"{v_answer.status_code}, own job: {own}, end {final.get('status')}",
               f"V's sha {(final_sha or '-')[:12]} vs BFL's {real_sha[:12]}", holds)


def row_double_send(p: Probe) -> Row:
    """4. BFL slower than the request waits: V's retry with its Idempotency-Key never sends a second task."""
    v = p.tenant("v-slow")
    before = p.bfl.submitted()
    p.bfl.settings(submit_delay=SLOW_BFL)
    try:
        key = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
        body = {"model": "flux-2-pro", "input": {"prompt": "V's job, BFL slow to answer", **BOUNDABLE}}
        first = v.post("/v1/jobs", body, headers=key, timeout=60)
        retry = v.post("/v1/jobs", body, headers=key, timeout=60)
        # A second task, if one was sent, reaches BFL a slow answer after the retry.
        time.sleep(SLOW_BFL + 2)
    finally:
        p.bfl.settings(submit_delay=BFL_ANSWERS_AFTER)
    tasks = p.bfl.submitted() - before
    ids = {r.json().get("id") for r in (first, retry) if r.status_code == 202}
    spent = settle(lambda: p.spent_today(v), 30, interval=0.5) if ids else 0.0
    holds = tasks == 1 and first.status_code == retry.status_code == 202 and len(ids) == 1 and spent > 0
    return Row("slow BFL (22 s > the request's 20 s): V retries with its Idempotency-Key",
               "-", f"{first.status_code} then {retry.status_code} (replayed: {retry.headers.get('Idempotent-Replayed')})",
               f"BFL tasks {tasks}, jobs {len(ids)}, V spent_today {spent:g}", holds)


def row_kept_room(p: Probe) -> Row:
    """5. X floods the static URL with verified callbacks for made-up tasks; V's early callback is still kept."""
    v = p.tenant("v-kept")
    session = requests.Session()
    flood = []
    for _ in range(1100):
        answer = p.static_post({"id": f"made-up-{uuid.uuid4()}", "status": "Ready",
                                "result": {"sample": "https://delivery.example/x.png"}}, session=session)
        flood.append(answer.status_code)
        if answer.status_code >= 300:
            break
    task = p.bfl.task("V's task, done before V tracks it")
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    early = p.static_post({"id": task, "status": "Ready", "result": real})
    tracked = v.track(task)
    final, took = wait_job(v, tracked.json()["id"], lambda j: j["status"] in TERMINAL, 30) \
        if tracked.status_code in (200, 201) else ({}, 0)
    final_sha = (final.get("image") or {}).get("sha256")
    holds = 200 <= early.status_code < 300 and final.get("status") == "stored" and final_sha == real_sha
    return Row("kept-callback room: 1,100 verified callbacks for made-up tasks",
               codes(flood), f"early callback {early.status_code}, track {tracked.status_code}, {final.get('status')}",
               f"V stored {took:.1f} s after tracking, webhooks {final.get('attempts', {}).get('webhooks')}", holds)


def row_weak_secret(p: Probe) -> Row:
    """6. The web command with SECRET_KEY=changeme refuses to start."""
    port = free_port()
    env = dict(p.stack.env, SECRET_KEY="changeme", PORT=str(port), GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}")
    log = p.var_dir / "weak-web.log"
    started = time.monotonic()
    web = start_process(["sh", "-c", "exec " + procfile_commands()["web"]], env, log_path=str(log))
    stranger = Api(f"http://127.0.0.1:{port}")

    def answers() -> bool:
        try:
            return stranger.get("/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    served = settle(lambda: web.poll() is not None or answers(), 20, interval=0.2) and web.poll() is None
    took = time.monotonic() - started
    code = stop_process(web) if web.poll() is None else web.returncode
    said = next((line for line in log.read_text(errors="replace").splitlines() if "SECRET_KEY" in line), "")
    holds = not served and code not in (0, None) and "changeme" not in said
    return Row("weak SECRET_KEY=changeme on the web command", "-", f"exit {code} after {took:.1f} s, served: {served}",
               said.strip()[:90] or "(no line naming SECRET_KEY)", holds)


def row_max_active(p: Probe) -> Row:
    """7. X's jobs waiting for its max_active hold no reservation that keeps V's job from going."""
    x, v = p.tenant("x-max-active", max_active=1), p.tenant("v-max-active")
    usage = p.admin.get("/v1/usage").json()
    room = (usage.get("daily_limit") or DAILY_LIMIT) - (usage.get("spent_today") or 0)
    first = x.submit("[pending] X's one running job").json()["id"]
    wait_job(x, first, lambda j: j["status"] in SENT, 10)
    big = {"width": 2048, "height": 2048}  # flux-2-max at 4.2 MP: a bound of 17 credits each
    count = min(40, math.ceil(room / 17) + 2)
    waiting = [x.submit(f"X's waiting {n}", model="flux-2-max", **big) for n in range(count)]
    queued = [w.json()["id"] for w in waiting if w.status_code == 202]
    mine, job, took = submit_timed(v, "V's job beside X's waiting ones", 30)
    reason = (x.job(queued[-1]).get("waiting") or {}).get("reason") if queued else None
    remove_all(x, queued)
    finish(p, x, first)
    holds = mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("reservations by max_active: X's waiting jobs' bounds exceed the day's room",
               f"{codes([w.status_code for w in waiting])} waiting {reason}",
               f"{mine.status_code}, {job.get('status')}", f"{count} × 17 credits vs {room:g} left; V sent in {took:.1f} s",
               holds)


def row_spent_day(p: Probe) -> Row:
    """8. X spends its whole daily_credits: X is refused, V goes on."""
    x, v = p.tenant("x-spent", daily_credits=6), p.tenant("v-spent", daily_credits=6)
    answers = []
    for n in range(5):
        answers.append(x.submit(f"X spends {n}").status_code)
        if answers[-1] == 402:
            break
    mine, job, took = submit_timed(v, "V after X's day is spent", 15)
    spent = p.spent_today(x)
    # The day ends at most one job's price (3 credits) above the key's limit.
    holds = spent <= 6 + 3 and mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("a spent account day: X exhausts daily_credits 6", codes(answers), f"{mine.status_code}, {job.get('status')}",
               f"X spent {spent:g} of 6; V submitted in {took:.1f} s", holds)


def row_redis_growth(p: Probe) -> Row:
    """9. What X's waiting jobs cost Redis, per job, and while they wait."""
    # What earlier rows left running ends first: its download and thumbnail would count as X's.
    settle(lambda: not p.admin.get("/v1/jobs", params={"status": "submitted"}).json()["jobs"], 20, interval=0.5)
    x = p.tenant("x-growth", max_active=1)
    first = x.submit("[pending] X's one running job").json()["id"]
    wait_job(x, first, lambda j: j["status"] in SENT, 10)
    count = 50
    held, keys = keyspace_bytes(p.redis), p.redis.dbsize()
    queued = [x.submit(f"X's waiting {n}").json()["id"] for n in range(count)]
    grown, more_keys = keyspace_bytes(p.redis) - held, p.redis.dbsize() - keys
    time.sleep(10)  # waiting costs nothing per second: nothing more should be kept after 10 s
    later = keyspace_bytes(p.redis) - held - grown
    remove_all(x, queued)
    finish(p, x, first)
    per_job = grown / count
    holds = per_job <= 4 * KIB and later / count <= KIB
    return Row(f"Redis growth while {count} jobs wait", f"{count} jobs queued", "-",
               f"{per_job:,.0f} B and {more_keys / count:.1f} keys per job; {later / count:+,.0f} B per job over 10 s",
               holds)


def keyspace_bytes(connection: redis.Redis) -> int:
    """What every key holds (MEMORY USAGE), less noisy than INFO's used_memory, which moves with the allocator."""
    return sum(connection.memory_usage(key, samples=0) or 0 for key in connection.scan_iter(count=1000))


def row_forged_tokens(p: Probe) -> Row:
    """10. Key-shaped tokens: a made-up one and a real key's id with a wrong secret, and their timing."""
    v = p.tenant("v-forged")
    head, _, secret = v.token.rpartition("_")
    made_up = "fhk_" + secrets.token_hex(len(head) // 2) + "_" + secrets.token_urlsafe(len(secret))[:len(secret)]
    wrong = head + "_" + secrets.token_urlsafe(len(secret))[:len(secret)]
    callers = {token: Api(p.stack.base_url, token) for token in (made_up, wrong)}
    timings: dict[str, list[float]] = {made_up: [], wrong: []}
    statuses = []
    for _ in range(40):  # interleaved, so both meet the same load
        for token, caller in callers.items():
            started = time.perf_counter()
            statuses.append(caller.get("/v1/jobs").status_code)
            timings[token].append((time.perf_counter() - started) * 1000)
    a, b = (statistics.median(timings[t]) for t in (made_up, wrong))
    own = Api(p.stack.base_url, v.token).get("/v1/jobs").status_code
    # Worth noting: more than a millisecond, and more than half the faster one (a loaded machine wobbles).
    limit = max(1.0, min(a, b) / 2)
    holds = set(statuses) == {401} and abs(a - b) <= limit and own == 200
    return Row("forged key-shaped tokens (made-up, and V's id + wrong secret)", codes(statuses), f"V's own key {own}",
               f"median {a:.1f} ms vs {b:.1f} ms (difference {abs(a - b):.2f} ms, limit {limit:.1f})", holds)


def row_rate_limit(p: Probe) -> Row:
    """11. X floods its requests_per_minute: X gets 429, V's track goes through at its usual speed."""
    x, v = p.tenant("x-rate", requests_per_minute=5), p.tenant("v-rate", requests_per_minute=5)
    flood = [x.track(f"made-up-{uuid.uuid4()}") for _ in range(15)]
    started = time.perf_counter()
    mine = v.track(f"made-up-{uuid.uuid4()}")
    took = (time.perf_counter() - started) * 1000
    refused = [r for r in flood if r.status_code == 429]
    retry_after = refused[0].headers.get("Retry-After") if refused else None
    holds = bool(refused) and retry_after is not None and mine.status_code == 201
    return Row("requests_per_minute 5: X sends 15 tracks", codes([r.status_code for r in flood]),
               f"{mine.status_code} in {took:.0f} ms", f"X's Retry-After {retry_after}", holds)


def row_sealing(p: Probe) -> Row:
    """12. No BFL delivery link or callback body in the clear in Redis, while a download runs and a callback waits."""
    v = p.tenant("v-sealed")
    marker = f"probe-marker-{secrets.token_hex(8)}"
    p.bfl.settings(delivery_delay=3.0)  # the link stays in the job's record while its download runs
    try:
        job = v.submit("[pending] V's sealed link").json()
        wait_job(v, job["id"], lambda j: j["status"] in SENT, 10)
        p.bfl.complete(v.job(job["id"]).get("bfl_id") or "")
        during, _ = wait_job(v, job["id"], lambda j: j["status"] != "submitted", 10)
        kept = p.static_post({"id": f"untracked-{marker}", "status": "Ready",
                              "result": {"sample": f"https://delivery.example/{marker}.png?sig={marker}"}})
        values, scanned = every_value(p.redis)
    finally:
        p.bfl.settings(delivery_delay=0.0)
    delivery = p.bfl.base.removeprefix("http://") + "/delivery/"
    found = [needle for needle in (delivery, marker) if needle.encode() in values]
    holds = not found and kept.status_code == 202 and job["id"].encode() in values
    return Row("sealing: delivery links and kept callback bodies in Redis", f"kept callback {kept.status_code}",
               f"V's job {during.get('status')} during the scan",
               f"{scanned} keys, {len(values):,} B scanned; in the clear: {', '.join(found) or 'none'}", holds)


def every_value(connection: redis.Redis) -> tuple[bytes, int]:
    """Every key of the database and everything it holds, read by its type; and how many keys."""
    read = {b"string": lambda k: [connection.get(k)], b"hash": lambda k: connection.hgetall(k).items(),
            b"list": lambda k: connection.lrange(k, 0, -1), b"set": connection.smembers,
            b"zset": lambda k: connection.zrange(k, 0, -1), b"stream": lambda k: connection.xrange(k)}
    found = []
    for key in connection.scan_iter(count=1000):
        found += [key, repr(list(read.get(connection.type(key), lambda k: [])(key))).encode()]
    return b"\n".join(found), len(found) // 2


def row_path_tricks(p: Probe) -> Row:
    """13. X reaches for what is not its own by the path: dot segments, V's job id, V's image, V's job deleted."""
    x, v = p.tenant("x-paths"), p.tenant("v-paths")
    job = v.submit("V's job, reached for by path").json()
    wait_job(v, job["id"], lambda j: j["status"] in TERMINAL, 30)
    base, jid = p.stack.base_url, job["id"]
    traversal = [raw_status(base, path, x.token) for path in
                 ("/v1/jobs/../keys", "/v1/jobs/%2e%2e/keys", "/v1/jobs/%2E%2E%2Fkeys", f"/v1/jobs/{jid}/../../keys")]
    by_id = [x.get(f"/v1/jobs/{jid}").status_code, x.get(f"/v1/jobs/{jid}/image").status_code,
             x.get(f"/v1/jobs/{jid}/deliveries").status_code, x.post(f"/v1/jobs/{jid}/cancel").status_code,
             x.call("DELETE", f"/v1/jobs/{jid}").status_code]
    still = v.get(f"/v1/jobs/{jid}").status_code
    holds = all(code in (400, 403, 404) for code in traversal) and set(by_id) == {404} and still == 200
    return Row("path tricks: ../keys, %2e%2e, V's job id, its image, cancel, delete", f"dots {traversal}, V's id {by_id}",
               f"V's job still answers {still}", f"{len(traversal) + len(by_id)} requests", holds)


# --------------------------------------------------------------------------- the notification rows (SPEC §16)

WIDE = {"from": "2000-01-01", "to": "2100-01-01"}  # a time range around every message there is
FLOOD_JOBS = 30  # X's jobs whose every notification its receiver answers 500, two messages each
FLOOD_ALLOWANCE = 2.0  # seconds V's delivery may take beyond its own delay without the flood, in the same row


def notified(p: Probe, name: str, answer: int = 200) -> tuple[Api, str]:
    """A new app key whose notify_url is a receiver path of its own, verifying with the key's own secret."""
    path = p.receivers.path(name, answer)
    api = p.tenant(name, notify_url=p.receivers.url(path))
    p.receivers.verify_with(path, api.notify_secret)
    return api, path


def ended(api: Api, prompt: str, **fields: Any) -> str:
    """A job of the tenant's that BFL makes, run to its end (its job.ended then goes out); its id."""
    body = {"model": "flux-2-pro", "input": {"prompt": prompt, **BOUNDABLE}, **fields}
    job_id = api.post("/v1/jobs", body).json()["id"]
    wait_job(api, job_id, lambda j: j["status"] in TERMINAL, 30)
    return job_id


def both_ended(x: Api, v: Api, tag: str) -> tuple[str, str]:
    """A job of X's and one of V's, run side by side to their ends."""
    with ThreadPoolExecutor(2) as pool:
        x_job, v_job = pool.map(lambda api: ended(api, f"{tag} of {api.key_id}"), (x, v))
    return x_job, v_job


def arrived(p: Probe, path: str, job_id: str, count: int = 1, timeout: float = 20) -> list[Received]:
    """The POSTs of the job's job.ended message at ``path``, once there are ``count`` (or what came in ``timeout``)."""
    settle(lambda: len(p.receivers.of(path, f"msg_{job_id}")) >= count, timeout)
    return p.receivers.of(path, f"msg_{job_id}")


def message_of(api: Api, job_id: str) -> dict:
    """The job's job.ended message as its owner's console shows it (``{}`` before the sweep made it)."""
    answer = api.get(f"/v1/jobs/{job_id}/deliveries")
    found = answer.json().get("deliveries", []) if answer.status_code == 200 else []
    return next((m for m in found if m["id"] == f"msg_{job_id}"), {})


def delay_of(received: Received) -> float:
    """Seconds from the job's end (its ``completed_at``, else ``updated_at``) to the receiver having its job.ended:
    the body's ``timestamp`` is when the sweep made the message, up to a second later."""
    job = json.loads(received.body)["data"]
    return received.at - datetime.fromisoformat(job.get("completed_at") or job["updated_at"]).timestamp()


def local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy: 127.0.0.1 only
    return session


def row_forged_notification(p: Probe) -> Row:
    """14. forged notification: X, holding its own whsec_, signs a job.ended for V's receiver; tries it on V's real ones."""
    (x, _), (v, v_path) = notified(p, "x-forge"), notified(p, "v-forge")
    job_id = ended(v, "V's notified job")
    real = arrived(p, v_path, job_id)
    now = datetime.now(UTC)
    body = json.dumps({"type": "job.ended", "timestamp": now.isoformat().replace("+00:00", "Z"),
                       "data": {"id": job_id, "status": "stored", "image": {"url": "https://x.example/x.png"}}})
    msg_id = f"msg_{job_id}"
    forged = local_session().post(p.receivers.url(v_path), data=body, timeout=10, headers={
        "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(x.notify_secret).sign(msg_id, now, body)})
    by_x = sum(verifies(x.notify_secret, r.body, r.headers) for r in real)
    holds = (bool(real) and all(r.verified for r in real) and forged.status_code == 401 and by_x == 0
             and x.notify_secret.startswith("whsec_") and x.notify_secret != v.notify_secret)
    return Row("forged notification: X signs V's job.ended with its own whsec_",
               f"forged POST answered {forged.status_code}",
               f"{len(real)} real, verified with V's secret: {sum(r.verified for r in real)}",
               f"X's secret verifies {by_x} of V's {len(real)}", holds)


def row_list_deliveries(p: Probe) -> Row:
    """15. listing: X lists deliveries (its own, a wide time range, by V's key id, V's job's)."""
    (x, x_path), (v, v_path) = notified(p, "x-list"), notified(p, "v-list")
    x_job, v_job = both_ended(x, v, "listed")
    arrived(p, x_path, x_job), arrived(p, v_path, v_job)
    lists = [x.get("/v1/deliveries", params={"limit": 1000}), x.get("/v1/deliveries", params={**WIDE, "limit": 1000}),
             x.get("/v1/deliveries", params={**WIDE, "state": "delivered"})]
    seen = {d["id"] for r in lists if r.status_code == 200 for d in r.json()["deliveries"]}
    by_job = x.get(f"/v1/jobs/{v_job}/deliveries").status_code
    by_key = x.get("/v1/deliveries", params={"key_id": v.key_id}).status_code
    v_sees = message_of(v, v_job).get("state")
    holds = (all(r.status_code == 200 for r in lists) and f"msg_{v_job}" not in seen and f"msg_{x_job}" in seen
             and by_job == 404 and by_key in (403, 404) and v_sees == "delivered")
    return Row("listing: X's /v1/deliveries (wide range), ?key_id=V, V's job's deliveries",
               f"lists {codes([r.status_code for r in lists])}: {len(seen)} messages, V's among them: "
               f"{f'msg_{v_job}' in seen}; key_id {by_key}, V's job {by_job}",
               f"V's own console: {v_sees}", f"X's own in its list: {f'msg_{x_job}' in seen}", holds)


def row_replay(p: Probe) -> Row:
    """16. replay: X replays V's message by id, by a wide bulk replay, and by naming V's key."""
    (x, x_path), (v, v_path) = notified(p, "x-replay"), notified(p, "v-replay")
    x_job, v_job = both_ended(x, v, "replayed")
    arrived(p, x_path, x_job), arrived(p, v_path, v_job)
    by_id = x.post(f"/v1/deliveries/msg_{v_job}/replay").status_code
    named = x.post("/v1/deliveries/replay", {"state": "delivered", **WIDE, "key_id": v.key_id}).status_code
    bulk = x.post("/v1/deliveries/replay", {"state": "delivered", **WIDE})
    replayed = bulk.json().get("replayed") if bulk.status_code == 202 else None
    own_again = len(arrived(p, x_path, x_job, count=2, timeout=15))
    # X's own replay has arrived: V's would have come with it; a few seconds more for a straggler.
    settle(lambda: len(p.receivers.of(v_path)) > 1, 3)
    v_got = len(p.receivers.of(v_path))
    holds = by_id == 404 and named == 403 and replayed == 1 and own_again == 2 and v_got == 1
    return Row("replay: X replays V's message by id, in bulk over all time, naming V's key",
               f"by id {by_id}, key_id {named}, bulk {bulk.status_code} replayed {replayed}",
               f"V's receiver got {v_got} POST (its one delivery)", f"X's own message arrived {own_again}×", holds)


def row_enable_rotate(p: Probe) -> Row:
    """17. V's key: X with its app token enables V's target, rotates V's secret, points V's notify_url at itself."""
    x, (v, v_path) = p.tenant("x-keys"), notified(p, "v-keys")
    x_path = p.receivers.path("x-keys")
    tries = [x.post(f"/v1/keys/{v.key_id}/notify/enable"), x.post(f"/v1/keys/{v.key_id}/notify_secret"),
             x.call("PATCH", f"/v1/keys/{v.key_id}", json={"notify_url": p.receivers.url(x_path)})]
    leaked = [t for t in tries if "whsec_" in t.text]
    job_id = ended(v, "V's job after X's tries")
    got = arrived(p, v_path, job_id)
    signatures = [len(r.headers.get("webhook-signature", "").split()) for r in got]
    to_x = len(p.receivers.of(x_path))
    holds = (all(t.status_code in (401, 403, 404) for t in tries) and not leaked and bool(got)
             and all(r.verified for r in got) and signatures == [1] * len(got) and to_x == 0)
    return Row("V's key: X's token on /notify/enable, /notify_secret, PATCH notify_url",
               f"{codes([t.status_code for t in tries])}, secrets in answers: {len(leaked)}",
               f"V's next job.ended verified with V's first secret: {all(r.verified for r in got) and bool(got)}, "
               f"signatures {signatures}", f"POSTs to X's receiver {to_x}", holds)


def row_gone(p: Probe) -> Row:
    """18. 410: X's receiver answers 410 Gone; X's target is disabled, V's (same host and port) goes on."""
    (x, x_path), (v, v_path) = notified(p, "x-gone", answer=410), notified(p, "v-gone")
    x_first, v_first = both_ended(x, v, "first")
    settle(lambda: message_of(x, x_first).get("state") in ("disabled", "failed", "delivered"), 20)
    first = message_of(x, x_first).get("state")
    x_second, v_second = both_ended(x, v, "second")
    v_got = [len(arrived(p, v_path, job)) for job in (v_first, v_second)]
    second = settle(lambda: message_of(x, x_second), 10) or {}
    x_posts = len(p.receivers.of(x_path, f"msg_{x_second}"))
    holds = (first == "disabled" and second.get("state") == "disabled" and not second.get("attempts")
             and x_posts == 0 and v_got == [1, 1] and message_of(v, v_second).get("state") == "delivered")
    return Row("410 Gone from X's receiver: X's target disabled, V's on the same host:port",
               f"X's first {first}, its next {second.get('state')} with {len(second.get('attempts') or [])} attempts "
               f"and {x_posts} POSTs", f"V's two job.ended delivered {v_got}",
               f"{len(p.receivers.of(x_path))} POST(s) to X's receiver in all", holds)


def row_flood(p: Probe) -> Row:
    """19. notification flood: X's receiver answers 500 to all of FLOOD_JOBS jobs' messages; V's delivery delay."""
    (x, x_path), (v, v_path) = notified(p, "x-flood", answer=500), notified(p, "v-flood")
    alone_job = ended(v, "V's job before the flood")
    alone = arrived(p, v_path, alone_job)
    body = {"model": "flux-2-pro", "notify_events": ["job.submitted"]}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: x.post("/v1/jobs", {**body, "input": {"prompt": f"X's flood {n}", **BOUNDABLE}}),
                                range(FLOOD_JOBS)))
    flood = [a.json()["id"] for a in answers if a.status_code == 202]
    settle(lambda: len(p.receivers.of(x_path)) >= len(flood), 20)  # X's job.submitted failing: the flood is on
    before = len(p.receivers.of(x_path))
    during_job = ended(v, "V's job in the flood")
    during = arrived(p, v_path, during_job)
    failing = len(p.receivers.of(x_path)) - before
    remove_all(x, flood)  # their messages go with them: no retries run into the next row
    base, flooded = (delay_of(got[0]) if got else math.inf for got in (alone, during))
    holds = len(flood) == FLOOD_JOBS and failing > 0 and flooded <= base + FLOOD_ALLOWANCE
    return Row(f"notification flood: {FLOOD_JOBS} X jobs, every POST to X's receiver answered 500",
               f"{codes([a.status_code for a in answers])}, {before + failing} POSTs answered 500",
               f"V's job.ended {flooded:.2f} s after its end ({failing} of X's 500s meanwhile)",
               f"without the flood {base:.2f} s; limit +{FLOOD_ALLOWANCE:g} s", holds)


ROWS: tuple[Callable[[Probe], Row], ...] = (
    row_go_alone, row_static_ready, row_tracking, row_double_send, row_kept_room, row_weak_secret,
    row_max_active, row_spent_day, row_redis_growth, row_forged_tokens, row_rate_limit, row_sealing, row_path_tricks,
    row_forged_notification, row_list_deliveries, row_replay, row_enable_rotate, row_gone, row_flood)


# --------------------------------------------------------------------------- the run


def run_row(p: Probe, number: int, row: Callable[[Probe], Row]) -> Row:
    title = (row.__doc__ or "").split(":")[0].split(". ", 1)[-1]
    if p.time_left() < 60:
        return Row(title, "-", "-", "not run: out of time", False)
    started = time.monotonic()
    try:
        result = row(p)
    except Exception as exc:  # a row that cannot finish is reported, and the next one runs
        result = Row(title, "-", "-", f"error: {type(exc).__name__}: {str(exc)[:100]}", False)
    print(f"[{time.monotonic() - p.started:5.0f} s] {number:>2}. {verdict(result):6} {result.attack} "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    return result


def verdict(row: Row) -> str:
    return "HOLDS" if row.holds else "BROKEN"


def print_rows(numbered: list[tuple[int, Row]]) -> None:
    headers = ("#", "attack", "attacker got", "victim saw", "figure", "")
    cells = [(str(n), r.attack, r.attacker, r.victim, r.figure, verdict(r)) for n, r in numbered]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    for line in (headers, tuple("-" * w for w in widths), *cells):
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", help="the rows to run, by number (1,3,12); default all")
    args = parser.parse_args()
    chosen = [int(n) for n in args.rows.split(",")] if args.rows else list(range(1, len(ROWS) + 1))
    probe = Probe(Path(tempfile.mkdtemp(prefix="fluxhook-tenant-probe-")))
    numbered = []
    try:
        probe.start()
        print(f"stack up at {probe.stack.base_url} in {time.monotonic() - probe.started:.0f} s; "
              f"BFL answers after {BFL_ANSWERS_AFTER:g} s, tasks take {TASK_SECONDS:g} s", flush=True)
        probe.warm_up()
        numbered = [(n, run_row(probe, n, ROWS[n - 1])) for n in chosen]
    finally:
        probe.stop()
    print()
    print_rows(numbered)
    broken = sum(not row.holds for _, row in numbered)
    kept = f" (the stack's logs: {probe.var_dir})" if broken else ""
    print(f"\n{len(numbered) - broken} hold, {broken} broken; {time.monotonic() - probe.started:.0f} s{kept}")
    if not broken:
        shutil.rmtree(probe.var_dir, ignore_errors=True)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
