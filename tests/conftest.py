"""Real parts for the suite: a redis-server, the BFL simulator, the Procfile's web and worker, a spy host.

Everything listens on 127.0.0.1 and is started once per test session.

The suite's layout mirrors the code's: ``tests/unit/<package>/test_<module>.py`` for the tests of one module
(real Redis, the simulator and spy hosts at most), ``tests/e2e/<concern>/`` for the tests that run the
Procfile's processes, a web app over HTTP, Chromium or the commands as processes; each of those is marked
``e2e`` here (``pytest -m "not e2e"`` runs the fast half alone). The helper modules beside this file
(``helpers``, ``credit_helpers`` and the like) are imported by their top-level names from any folder:
pytest.ini puts tests/ on sys.path.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from devtools.processes import RedisServer, free_port, stop_process, wait_until
from devtools.stack import SIMULATOR_KEY, Stack, start_simulator
from fluxhook.core import job as st
from fluxhook.core import signing
from watchers import OVERDUE_LIMIT, WakeWatcher

SECRET_KEY = "test-secret-key-0123456789abcdef"
API_TOKEN = "test-token-0123456789"
METRICS_TOKEN = "test-metrics-token-0123"
STATIC_SECRET = "static-webhook-secret-0123"
MAX_IMAGE_BYTES = 200_000
IMAGE_URL_WINDOW = 30  # the stacks' IMAGE_URL_WINDOW_SECONDS
MAX_VIDEO_BYTES = 3_000_000
# The suite's own models, beside the shipped catalog (BFL_MODELS_FILE).
TEST_MODELS = Path(__file__).with_name("models.toml")
# The terminal statuses, as the API spells them (in the order of fluxhook.core.job.Status).
TERMINAL = tuple(str(status) for status in st.STATUSES if status in st.TERMINAL)


E2E = Path(__file__).resolve().parent / "e2e"

# Helper modules: their asserts report as a test's own do.
pytest.register_assert_rewrite("helpers", "credit_helpers", "key_helpers", "fair_model", "mp4_samples")


# The end-to-end files that take longest, in seconds of one pytest process (a run's JUnit report, 4 processes on this
# 2-core machine, 2026-11-29): most wait out a lease, a poll interval or a deadline. `make test` hands files out in
# the order collected (`--dist loadfile --no-loadscope-reorder`), and these come first, longest first: a long file
# handed out last would keep one process busy while the others have ended (xdist's own order, most tests first, put
# the one-test files that wait out a lease last). The other files follow, most tests first. An estimate only: a file
# that grows slow belongs here, one that is gone changes nothing.
SLOW_E2E_FILES = {
    "jobs/test_live_progress.py": 106,
    "worker_rest/test_at_rest.py": 106,
    "faults/test_killed_sender.py": 100,
    "faults/test_lost_sends.py": 100,
    "faults/test_killed_mid_poll.py": 99,
    "batches/test_batch_memory.py": 71,
    "faults/test_hostile_clients.py": 59,
    "faults/test_receiver_bulkheads.py": 59,
    "dashboard/test_dashboard_fit.py": 56,
    "dashboard/test_job_page_live.py": 56,
    "faults/test_faults.py": 55,
    "faults/test_worker_pool.py": 53,
    "worker/test_paced_storage.py": 52,
    "faults/test_killed_mid_download.py": 49,
    "accounts/test_routing_and_failover.py": 48,
    "faults/test_graceful_stop.py": 45,
    "bfl_compat/test_bfl_sdk.py": 42,
    "credits/test_alone_turns.py": 42,
    "dev/test_replicated_redis.py": 37,
    "dashboard/test_batch_fit.py": 36,
    "worker/test_redis_cost_end_users.py": 31,
    "notify/test_notifications.py": 31,
    "cli/test_one_balance.py": 31,
    "results/test_s3.py": 31,
    "dashboard/test_variant_pictures.py": 30,
    "batches/test_batch_sharing.py": 29,
    "api/test_key_limits.py": 28,
    "worker/test_checking.py": 27,
    "faults/test_redis_failover.py": 27,
    "results/test_variants_s3.py": 27,
    "api/test_variant_flood.py": 26,
    "api/test_uncertain_send.py": 26,
    "batches/test_batch_killed_maker.py": 26,
    "results/test_storage_s3.py": 26,
    "api/test_large_inputs.py": 26,
    "dev/test_make_run_s3.py": 25,
    "credits/test_catalog_attacks.py": 24,
    "dev/test_make_run_restarts.py": 24,
    "dashboard/test_keys_fit.py": 23,
    "dashboard/test_overview_browser.py": 22,
}


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e/ is an end-to-end test: marked ``e2e``; those files in SLOW_E2E_FILES's order."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)
    _longest_files_first(items)


def _longest_files_first(items) -> None:
    """The end-to-end tests after the others, their files ordered as SLOW_E2E_FILES says, then by their number of
    tests; a file's own tests keep their order (the sort is stable)."""
    e2e = [item for item in items if item.path.is_relative_to(E2E)]
    if not e2e:
        return
    tests_of = Counter(item.path for item in e2e)

    def rank(item) -> tuple[int, int]:
        return -SLOW_E2E_FILES.get(item.path.relative_to(E2E).as_posix(), 0), -tests_of[item.path]

    items[:] = [item for item in items if not item.path.is_relative_to(E2E)] + sorted(e2e, key=rank)


def pytest_ignore_collect(collection_path, config):
    """Under ``-m "not e2e"`` (`make test-fast`), tests/e2e/ is not even imported: all of it would be deselected."""
    if collection_path == E2E and config.getoption("markexpr") == "not e2e":
        return True
    return None


@pytest.fixture(scope="session")
def wake_watcher():
    """The process's wake watcher (tests/watchers.py), started with its first end-to-end test."""
    watcher = WakeWatcher()
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture(autouse=True)
def _no_work_left_unwoken(request):
    """An end-to-end test fails at its teardown if, while it ran (or its stacks were set up), any stack's work stayed
    due with no wake-up pending (``WakeWatcher``); one marked ``wake_watch_off`` is not watched (the watcher sends its
    stacks no command)."""
    if not request.node.path.is_relative_to(E2E):
        yield
        return
    watcher = request.getfixturevalue("wake_watcher")
    off = request.node.get_closest_marker("wake_watch_off") is not None
    watcher.reset(request.node.nodeid, paused=off)
    yield
    if not off:
        request.node.user_properties.append(("wake_watch_worst", round(watcher.worst, 3)))
    watcher.reset(f"(between tests, after {request.node.nodeid})", paused=False)
    found = watcher.take()  # those found since the last test's teardown too: a stack set up for this test
    if found:
        pytest.fail("work left due with nobody woken (tests/watchers.py):\n" + "\n".join(map(str, found)),
                    pytrace=False)


def pytest_terminal_summary(terminalreporter):
    """The wake watcher's figure over the run: the most any sweep index's entry was overdue with no wake-up pending."""
    worst = [(value, report.nodeid) for reports in terminalreporter.stats.values() for report in reports
             for name, value in getattr(report, "user_properties", ()) if name == "wake_watch_worst"]
    if worst:
        most, test = max(worst)
        terminalreporter.write_line(f"wake watcher: {len(worst)} tests watched; the most overdue entry with no wake-up "
                                    f"pending: {most:.2f} s (limit {OVERDUE_LIMIT:.0f} s), in {test}")


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


class Simulator:
    """Handle on the BFL simulator process: its URL and its control API."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def control(self, method: str, path: str, **kwargs):
        response = self.http.request(method, f"{self.url}/_sim{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def settings(self, **changes) -> dict:
        return self.control("POST", "/settings", json=changes)

    def reset(self) -> None:
        self.control("POST", "/reset")

    def stats(self) -> dict:
        return self.control("GET", "/stats")

    def task(self, task_id: str) -> dict:
        return self.control("GET", f"/tasks/{task_id}")

    def complete(self, task_id: str, outcome: str = "ready") -> dict:
        return self.control("POST", f"/tasks/{task_id}/complete", json={"outcome": outcome})

    def result(self, task_id: str) -> dict:
        response = self.http.get(f"{self.url}/v1/get_result", params={"id": task_id},
                                 headers={"x-key": SIMULATOR_KEY}, timeout=10)
        return response.json()

    def image_bytes(self, task_id: str) -> bytes:
        """The task's image as BFL would deliver it (through a fresh signed URL)."""
        sample = self.result(task_id)["result"]["sample"]
        return self.http.get(sample, timeout=10).content


def start_test_simulator(log_dir: Path) -> tuple[subprocess.Popen, Simulator]:
    """A simulator with the suite's settings, its log in ``log_dir``: the process (to stop) and its client."""
    port = free_port()
    # --any-model: the suite names made-up models too (the BFL-compatible tests switch it off to see BFL's 404).
    # Room for every task the suite leaves pending: at BFL's own 24, tests that do not reset the simulator
    # would fill it, and the 429s would pause the stack's pool for the tests after them. A test that wants
    # BFL full sets max_active itself.
    roomy = [arg for flag in ("--max-active", "--max-active-kontext-max", "--max-active-video") for arg in (flag, "10000")]
    process = start_simulator(port, str(log_dir / "simulator.log"), "--task-delay", "0.2", "--retry-scale", "0.05",
                              "--any-model", *roomy)
    return process, Simulator(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    process, client = start_test_simulator(tmp_path_factory.mktemp("sim"))
    yield client
    stop_process(process)


@pytest.fixture(scope="session")
def _own_simulator(tmp_path_factory):
    port = free_port()
    process = start_simulator(port, str(tmp_path_factory.mktemp("own-sim") / "simulator.log"))
    yield Simulator(f"http://127.0.0.1:{port}")
    stop_process(process)


@pytest.fixture()
def own_sim(_own_simulator):
    """A simulator that only the test given it asks anything (for credits...): started once, reset before and
    after each test, with the start-up settings of ``start_simulator``."""
    _own_simulator.reset()
    yield _own_simulator
    _own_simulator.reset()


@pytest.fixture()
def sim(simulator):
    """The simulator with its start-up settings and no tasks, before and after the test."""
    simulator.reset()
    yield simulator
    simulator.reset()


def serve_in_thread(server) -> threading.Thread:
    """Serve ``server`` (http.server's or werkzeug's) from a daemon thread, started; ``shutdown()`` it when done."""
    # Polled every 50 ms for its shutdown: at 0.5 s, socketserver's default, each shutdown took up to half a second.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@dataclass
class SpyHost:
    """A plain HTTP server that answers scripted routes and records every request it gets."""

    port: int
    routes: dict[str, tuple[int, dict, bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, status: int = 200, body: bytes = b"", headers: dict | None = None) -> str:
        self.routes[path] = (status, headers or {}, body)
        return self.url + path


def _spy_handler(spy: SpyHost):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            spy.hits.append(self.path)
            status, headers, body = spy.routes.get(self.path, (404, {}, b"not found"))
            if callable(body):
                status, headers, body = body()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if isinstance(body, list):
                # Pieces: sent without Content-Length, the end of the body is the end of the connection.
                self.end_headers()
                for piece in body:
                    self.wfile.write(piece)
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def _serve_spy() -> tuple[SpyHost, ThreadingHTTPServer]:
    spy = SpyHost(port=free_port())
    server = ThreadingHTTPServer(("127.0.0.1", spy.port), _spy_handler(spy))
    serve_in_thread(server)
    return spy, server


@pytest.fixture(scope="session")
def _spies():
    allowed, allowed_server = _serve_spy()
    unlisted, unlisted_server = _serve_spy()
    yield allowed, unlisted
    allowed_server.shutdown()
    unlisted_server.shutdown()


def _fresh(host: SpyHost) -> SpyHost:
    host.routes.clear()
    host.hits.clear()
    return host


@pytest.fixture()
def spy(_spies) -> SpyHost:
    """A delivery host in RESULT_HOST_ALLOWLIST (by exact host:port)."""
    return _fresh(_spies[0])


@pytest.fixture()
def unlisted_spy(_spies) -> SpyHost:
    """A host in no allowlist: fluxhook must never send it a request."""
    return _fresh(_spies[1])


def service_env(redis_server, simulator, spy_port: int, port: int, **overrides) -> dict[str, str]:
    """The environment of a fluxhook process wired to the test Redis, simulator and spy host."""
    sim_host = simulator.url.removeprefix("http://")
    env = {
        "REDIS_URL": redis_server.url,
        "BFL_API_KEY": SIMULATOR_KEY,
        "BFL_API_BASE": simulator.url,
        "BFL_WEBHOOK_SECRET": STATIC_SECRET,
        "SECRET_KEY": SECRET_KEY,
        "API_TOKENS": f"{API_TOKEN},second-token-abcdef",
        "METRICS_TOKEN": METRICS_TOKEN,
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "RESULT_HOST_ALLOWLIST": f"{sim_host},127.0.0.1:{spy_port},localhost,*.fluxhook-test.invalid",
        # The simulator, and its gateway host (gateway_every): the same server under its other name on this machine.
        "API_HOST_ALLOWLIST": f"{sim_host},localhost:{sim_host.rpartition(':')[2]}",
        "MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
        "MAX_VIDEO_BYTES": str(MAX_VIDEO_BYTES),
        "CALLBACK_GRACE_SECONDS": "2",
        # Tests leave many tasks pending (thousands over the suite): slots are tested on a stack of their own.
        "BFL_MAX_ACTIVE": "10000",
        "IMAGE_URL_TTL_SECONDS": "60",
        # Links the same for every read within 30 s: the tests that compare two reads' links wait for a window with
        # room for them (link_helpers.within_one_link_window).
        "IMAGE_URL_WINDOW_SECONDS": str(IMAGE_URL_WINDOW),
        # Every request of an app key is a read against its limit, and the suite's keys poll their jobs every 20 ms:
        # the tests of the read limit give their keys a reads_per_minute of their own (or set this lower).
        "READS_PER_MINUTE": "1000000",
        "WEB_CONCURRENCY": "2",
        "BFL_MODELS_FILE": str(TEST_MODELS),
    }
    env.update(overrides)
    return env


@pytest.fixture()
def local_app(redis_server, simulator, _spies):
    """Starts web apps in this process (werkzeug's threaded server), each on a Redis database of its own.

    ``local_app(db, **env)`` returns the app's API and a connection to its database (flushed before and after).
    """
    import redis
    from werkzeug.serving import make_server

    from fluxhook.core.config import Config
    from receiver import create_app

    made = []

    def build(db: int, **overrides):
        port = free_port()
        env = service_env(redis_server, simulator, _spies[0].port, port, **overrides)
        env["REDIS_URL"] = redis_server.url.replace("/0", f"/{db}")
        connection = redis.Redis.from_url(env["REDIS_URL"])
        connection.flushdb()
        app = create_app(Config.from_env(env))
        server = make_server("127.0.0.1", port, app, threaded=True)
        made.append((server, serve_in_thread(server), connection, app.extensions["fluxhook"]))
        return API(f"http://127.0.0.1:{port}"), connection

    yield build
    for server, thread, connection, services in made:
        server.shutdown()
        thread.join(timeout=5)
        services.store.tallies.stop()  # its counts written now, not into a later test's database
        connection.flushdb()


@pytest.fixture()
def make_services(redis_server, simulator, spy, tmp_path_factory):
    """Builds in-process Services on a Redis database of their own (flushed before and after), storing files in a
    folder of their own: the default, the checkout's var/images, is shared by every pytest process."""
    from fluxhook.core.config import Config
    from fluxhook.services import build_services

    made = []

    def build(db: int, **overrides):
        overrides.setdefault("STORAGE_URL", f"file://{tmp_path_factory.mktemp('images')}")
        env = service_env(redis_server, simulator, spy.port, free_port(), **overrides)
        env["REDIS_URL"] = redis_server.url.replace("/0", f"/{db}")
        svc = build_services(Config.from_env(env))
        svc.redis.flushdb()
        made.append(svc)
        return svc

    yield build
    for svc in made:
        svc.redis.flushdb()


@pytest.fixture(scope="session")
def stack(redis_server, simulator, _spies, tmp_path_factory):
    """The Procfile's web and worker processes, started as a PaaS would start them."""
    import os

    var_dir = tmp_path_factory.mktemp("stack")
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{var_dir / 'images'}"))
    running = Stack(env=env, var_dir=Path(var_dir))
    running.start()
    yield running
    running.stop()


class API:
    """A bearer-authenticated client of one fluxhook web process."""

    def __init__(self, base_url: str, token: str = API_TOKEN):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        try:
            return self.http.request(method, self.base_url + path, **kwargs)
        except requests.ConnectionError as exc:
            # gunicorn closes a keep-alive connection once it has been idle for its keepalive (5 s); a request sent
            # on it just then is cut before any answer (RemoteDisconnected). A GET is sent once more, on a new
            # connection, as browsers and fluxhook's own client do; never a write, and never after a timeout.
            if method != "GET" or isinstance(exc, requests.Timeout):
                raise
            return self.http.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def job(self, job_id: str) -> dict:
        response = self.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, prompt: str = "a red fox", model: str = "flux-2-pro", **extra) -> dict:
        response = self.post("/v1/jobs", json={"model": model, "input": {"prompt": prompt}, **extra})
        assert response.status_code == 202, response.text
        return response.json()

    def track(self, bfl_id: str, **extra) -> requests.Response:
        return self.post("/v1/jobs/track", json={"bfl_id": bfl_id, **extra})

    def wait_for(self, job_id: str, *statuses: str, timeout: float = 20.0) -> dict:
        """Poll the job until its status is one of ``statuses`` (any terminal one by default)."""
        wanted = statuses or TERMINAL
        return wait_until(lambda: (lambda j: j if j["status"] in wanted else None)(self.job(job_id)),
                          timeout=timeout, interval=0.05, message=f"job {job_id} to reach {wanted}")

    def callback(self, job_id: str, payload: dict | bytes, *, secret: str | None = "derived",
                 signature: bool = False, headers: dict | None = None) -> requests.Response:
        """POST a callback to the job's own webhook URL, proving its secret the way BFL's SDK does."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if secret == "derived":
            secret = signing.job_webhook_secret(SECRET_KEY, job_id)
        sent = {"Content-Type": "application/json"}
        if secret is not None:
            sent["X-BFL-Signature" if signature else "X-Webhook-Secret"] = (
                "sha256=" + __import__("hmac").new(secret.encode(), body, hashlib.sha256).hexdigest()
                if signature else secret
            )
        sent.update(headers or {})
        url = signing.job_webhook_url(self.base_url, SECRET_KEY, job_id)
        return requests.post(url, data=body, headers=sent, timeout=10)


@pytest.fixture()
def api(stack) -> API:
    return API(stack.base_url)


def ready_payload(bfl_id: str, sample: str) -> dict:
    """A BFL ``Ready`` callback body."""
    return {"id": bfl_id, "status": "Ready", "result": {"sample": sample, "seed": 42, "prompt": "x"}}


@pytest.fixture(scope="module")
def two_stored_jobs(stack, _spies):
    """Jobs A and B, both stored, delivered by the allowlisted spy (module-wide: images are read-only here)."""
    from helpers import stored_job  # helpers.py imports this module, so not at its top

    api, spy = API(stack.base_url), _spies[0]
    a = stored_job(api, spy, "image-token-a")
    b = stored_job(api, spy, "image-token-b")
    return a, b
