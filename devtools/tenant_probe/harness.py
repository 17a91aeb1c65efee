"""The tenant probe's harness: its settings, a row, callers of fluxhook and of BFL, and the running stack."""

from __future__ import annotations

import hashlib
import http.client
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import redis
import requests

from ..processes import free_port
from ..slow_receivers import TRICKLE, SlowReceiver
from ..stack import SIMULATOR_KEY, Stack
from ..trace_receiver import TraceReceiver
from .receivers import Receivers

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
# Every key's reads_per_minute unless its row is about the read limit: a row's tenants poll their jobs every 50 ms,
# and a victim's reads are timed, which READS_PER_MINUTE's default (600, ten a second) would refuse within seconds.
ROOMY_READS = 1_000_000
# How long a web process trusts a key record it read (fluxhook.lifecycle.steps.callers.CACHE_SECONDS), with margin.
KEY_CACHE = 1.0


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


def local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy: 127.0.0.1 only
    return session


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

    def polls(self, task_id: str) -> int:
        """How many times the task was polled (get_result) since BFL started."""
        return self.http.get(f"{self.base}/_sim/stats", timeout=30).json()["polls"].get(task_id, 0)

    def task(self, prompt: str) -> str:
        """A task an app sends BFL itself (no callback URL of fluxhook's): its id, after BFL's answer."""
        response = self.http.post(f"{self.base}/v1/flux-2-pro", json={"prompt": prompt}, headers={"x-key": SIMULATOR_KEY},
                                  timeout=60)
        response.raise_for_status()
        return response.json()["id"]

    def complete(self, task_id: str) -> None:
        self.http.post(f"{self.base}/_sim/tasks/{task_id}/complete", json={"outcome": "ready"}, timeout=10)

    def task_state(self, task_id: str) -> dict:
        """One task as BFL holds it: when it completed, and each callback attempt (when it was answered, its status
        or error); empty for a task BFL does not know."""
        answer = self.http.get(f"{self.base}/_sim/tasks/{task_id}", timeout=30)
        return answer.json() if answer.status_code == 200 else {}

    def tasks(self, marker: str) -> list[dict]:
        """Every task BFL was sent whose prompt holds ``marker``, with when it started and ended (None: it runs)."""
        listed = self.http.get(f"{self.base}/_sim/tasks", timeout=30).json()["tasks"]
        return [task for task in listed if marker in task["prompt"]]

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


# --------------------------------------------------------------------------- the stack


class Probe:
    """The running stack, its admin, BFL, and the tenants made for the rows."""

    def __init__(self, var_dir: Path):
        self.var_dir = var_dir
        port = free_port()
        self.receivers = Receivers()
        # An app's receiver that trickles its answers, for the worker's bulkheads (rows_bulkheads).
        self.slow_receiver = SlowReceiver(TRICKLE, every=4.0)
        # The operator's trace collector: every export the web and the worker send, as its bytes (rows_bulkheads).
        self.exports: list[bytes] = []
        self.traces = TraceReceiver(free_port(), lambda export: self.exports.append(export.SerializeToString()))
        (var_dir / "models.toml").write_text(MODELS_FILE)
        env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "LOG_LEVEL": "WARNING",
               # GUNICORN_CMD_ARGS outranks the config file's 0.0.0.0: loopback only.
               "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
               "BFL_WEBHOOK_SECRET": STATIC_SECRET, "BFL_DAILY_CREDIT_LIMIT": str(DAILY_LIMIT),
               "BFL_MODELS_FILE": str(var_dir / "models.toml"),
               "NOTIFY_HOST_ALLOWLIST": f"127.0.0.1:{self.receivers.port},{self.slow_receiver.host}",
               # Traces on, to an operator's collector, with the headers an operator might capture.
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.traces.port}", "OTEL_BSP_SCHEDULE_DELAY": "200",
               "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "authorization,x-key,cookie,user-agent",
               "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "x-key,webhook-signature,user-agent"}
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
        self.slow_receiver.stop()
        self.traces.stop()

    def tenant(self, name: str, **limits: Any) -> Api:
        """A new app key (``limits``: its daily_credits, max_active, requests_per_minute...; ROOMY_READS unless
        ``reads_per_minute`` is given, None for the deployment's READS_PER_MINUTE)."""
        limits = {"reads_per_minute": ROOMY_READS, **limits}
        body = {"name": f"{name}-{uuid.uuid4().hex[:6]}", **{k: v for k, v in limits.items() if v is not None}}
        response = self.admin.post("/v1/keys", body)
        response.raise_for_status()
        key = response.json()
        return Api(self.stack.base_url, key["key"], key["id"], key.get("notify_secret") or "")

    @contextmanager
    def default_reads(self, tenant: Api) -> Iterator[None]:
        """The tenant's key at the deployment's READS_PER_MINUTE while the block runs (an attack on the limits), and
        roomy again after, for its row's own reads (its jobs polled, its leftovers canceled)."""
        self._reads(tenant, None)
        try:
            yield
        finally:
            self._reads(tenant, ROOMY_READS)

    def _reads(self, tenant: Api, per_minute: int | None) -> None:
        self.admin.call("PATCH", f"/v1/keys/{tenant.key_id}", json={"reads_per_minute": per_minute}).raise_for_status()
        time.sleep(KEY_CACHE)  # every web process reads the key's record again

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

