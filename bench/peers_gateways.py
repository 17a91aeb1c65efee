"""The two gateways of bench-peers, each with its simulator, behind one face: start, a client's request, the image
opened, the processes to measure, stop.

fluxhook: the Procfile's web (gunicorn, WEB_CONCURRENCY=2) and one worker process on an embedded Redis, as
bench/latency.py starts it; BFL_MAX_ACTIVE=24, BFL's own limit; one app key per app. Its client submits with
``POST /v1/jobs`` and ``Prefer: wait=60``, then waits on ``GET /v1/jobs/{id}`` (``Prefer: wait=60``) until the job
ends, and opens ``image.url``. LiteLLM: its proxy with 2 workers (bench/peers_litellm.py), the client calling
``POST /v1/images/generations`` with the master key and opening ``data[0].url``.

Each gets a simulator process of its own with the same settings, started fresh for each scenario, so its counters
are that run's; LiteLLM's is told to name itself ``https://simulator.bfl.ai`` in the URLs it hands out (its polls
and results), reached through bench/peers_tls.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from devtools.processes import free_port, python, start_process, stop_process
from devtools.stack import SIMULATOR_KEY, start_simulator

from . import peers_litellm
from .accounts import cpu_seconds
from .common import BenchStack, tree_memory
from .peers_figures import Outcome, commandstats_calls
from .peers_tls import make_certificate

MODEL = peers_litellm.MODEL
WAIT = 60
OPEN_TRIES = 5
JOB_ENDED = ("stored", "failed", "expired", "moderated", "canceled", "aborted")
_IMAGE_FLAGS = ("--scene-images", "--image-format", "jpeg")


def sim_settings(base: str, **values) -> dict:
    response = requests.post(f"{base}/_sim/settings", json=values, timeout=10)
    response.raise_for_status()
    return response.json()


def sim_get(base: str, path: str) -> dict:
    response = requests.get(f"{base}/_sim/{path}", timeout=60)
    response.raise_for_status()
    return response.json()


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


class Gateway:
    """What both gateways offer the run."""

    name = ""
    sim_base = ""

    def start(self, bfl: dict) -> None: ...

    def stop(self) -> None: ...

    def session(self, app: str) -> requests.Session: ...

    def request(self, session: requests.Session, outcome: Outcome, give_up: float | None) -> None:
        """Make ``outcome``'s request; fill in its url, error or gone, and open the image at once."""

    def come_back(self, session: requests.Session, outcome: Outcome) -> None:
        """A client that gave up asks again for what it asked, where the gateway has a way."""

    opens_refused = 0

    def opens(self, session: requests.Session, url: str) -> bool:
        """The image at ``url`` opens. A 429 is waited out (its Retry-After) and asked again, a few times: the image
        is still there, the key's reads are paced (fluxhook counts a signed link against its job's key's
        reads_per_minute), and an app showing many at once meets it; how many were refused is printed."""
        for _ in range(OPEN_TRIES):
            try:
                response = session.get(url, timeout=60)
            except requests.RequestException:
                return False
            if response.status_code != 429:
                return response.status_code == 200 and len(response.content) > 0
            self.opens_refused += 1
            time.sleep(min(float(response.headers.get("Retry-After") or 1), 30.0))
        return False

    def pids(self) -> list[int]: ...

    def redis_calls(self) -> int | None:
        return None

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss(self) -> float:
        return sum(tree_memory(pid)["rss"] for pid in self.pids())


def _body(outcome: Outcome) -> dict:
    return {"model": MODEL, "input": {"prompt": outcome.prompt}}


class Fluxhook(Gateway):
    name = "fluxhook"

    def start(self, bfl: dict) -> None:
        self.bench = BenchStack("peers", log_level="WARNING", BFL_MAX_ACTIVE="24", WEB_CONCURRENCY="2")
        self.bench.start(workers=1)
        self.sim_base = self.bench.sim_base
        sim_settings(self.sim_base, **bfl)
        admin = self.bench.api_session()
        self.keys = {}
        for app in ("a", "b"):
            made = admin.post(self.bench.base_url + "/v1/keys", json={"name": f"app-{app}"}, timeout=30)
            made.raise_for_status()
            self.keys[app] = made.json()["key"]

    def stop(self) -> None:
        if hasattr(self, "bench"):
            self.bench.stop()
            self.bench.cleanup()

    def session(self, app: str) -> requests.Session:
        session = _session()
        session.headers["Authorization"] = f"Bearer {self.keys[app]}"
        return session

    def request(self, session: requests.Session, outcome: Outcome, give_up: float | None) -> None:
        base = self.bench.base_url
        # A client that gives up learns the job's id first (no wait on the submission), as it needs it to come back.
        # An Idempotency-Key, as fluxhook's docs advise: a client that gave up before the 202 asks again with it.
        headers = {"Idempotency-Key": outcome.prompt, **({} if give_up else {"Prefer": f"wait={WAIT}"})}
        try:
            response = session.post(f"{base}/v1/jobs", headers=headers, json=_body(outcome),
                                    timeout=WAIT + 30 if give_up is None else give_up)
            if response.status_code != 202:
                outcome.error = f"HTTP {response.status_code}"
                return
            job = response.json()
            outcome.job_id = job["id"]
            while job["status"] not in JOB_ENDED:
                left = None if give_up is None else outcome.sent + give_up - time.time()
                if left is not None and left <= 0:
                    raise requests.Timeout
                job = session.get(f"{base}/v1/jobs/{job['id']}", headers={"Prefer": f"wait={WAIT}"},
                                  timeout=WAIT + 30 if left is None else left).json()
        except requests.Timeout:
            outcome.gone, outcome.error = True, "client gone"
            return
        except requests.RequestException as exc:
            outcome.error = type(exc).__name__
            return
        self._opened(session, outcome, job)

    def _opened(self, session: requests.Session, outcome: Outcome, job: dict) -> None:
        if job["status"] != "stored":
            outcome.error = f"job {job['status']}"
            return
        outcome.url = job["image"]["url"]
        if self.opens(session, outcome.url):
            outcome.opened_at = time.time()

    def come_back(self, session: requests.Session, outcome: Outcome) -> None:
        while outcome.job_id is None:
            # Gave up before the 202: the same request again, with its key, answers the job it made.
            again = session.post(f"{self.bench.base_url}/v1/jobs", json=_body(outcome),
                                 headers={"Idempotency-Key": outcome.prompt}, timeout=WAIT + 30)
            if again.status_code == 202:
                outcome.job_id = again.json()["id"]
            elif again.status_code in (409, 429):  # the first request is still being answered; or paced
                time.sleep(float(again.headers.get("Retry-After") or 1))
            else:
                return
        for _ in range(OPEN_TRIES):
            read = session.get(f"{self.bench.base_url}/v1/jobs/{outcome.job_id}", headers={"Prefer": f"wait={WAIT}"},
                               timeout=WAIT + 30)
            if read.status_code != 429:  # a burst of 300 reads meets the key's reads_per_minute: waited out
                break
            self.opens_refused += 1
            time.sleep(float(read.headers.get("Retry-After") or 1))
        job = read.json()
        if job.get("status") == "stored":
            outcome.url = job["image"]["url"]

    def pids(self) -> list[int]:
        redis = self.bench.stack.redis
        return [self.bench.web.pid, *(w.pid for w in self.bench.workers), *([redis.process.pid] if redis else [])]

    def redis_calls(self) -> int | None:
        return commandstats_calls(self.bench.redis().info("commandstats"))


class LiteLLM(Gateway):
    name = "litellm"

    def start(self, bfl: dict) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fluxhook-bench-peers-litellm-"))
        port = free_port()
        self.sim_base = f"http://127.0.0.1:{port}"
        self.sim = start_simulator(port, str(self.dir / "simulator.log"), *_IMAGE_FLAGS,
                                   "--public-url", f"https://{peers_litellm.BFL_HOST}")
        sim_settings(self.sim_base, **bfl)
        self.cert, key = make_certificate(self.dir, peers_litellm.BFL_HOST)
        self.front = start_process([python(), "-m", "bench.peers_tls", "--host-name", peers_litellm.BFL_HOST,
                                    "--upstream", f"127.0.0.1:{port}", "--cert", str(self.cert), "--key", str(key)],
                                   {"PATH": "/usr/bin:/bin"}, ready_line="tls front listening",
                                   log_path=str(self.dir / "tls-front.log"))
        self.front_url = self.front.ready_line.split()[-1]  # type: ignore[attr-defined]
        env = peers_litellm.proxy_env(SIMULATOR_KEY, self.sim_base, self.front_url, self.cert)
        self.proxy = peers_litellm.LiteLLMProxy.start(self.dir, self.sim_base, env)

    def stop(self) -> None:
        for stop in (lambda: self.proxy.stop(), lambda: stop_process(self.front), lambda: stop_process(self.sim)):
            try:
                stop()
            except (AttributeError, subprocess.SubprocessError, OSError):
                pass
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def session(self, app: str) -> requests.Session:
        # Both apps hold the master key: virtual keys need LiteLLM's Postgres.
        session = _session()
        session.proxies = {"https": self.front_url}
        session.verify = str(self.cert)
        return session

    def request(self, session: requests.Session, outcome: Outcome, give_up: float | None) -> None:
        url, error = peers_litellm.generate(session, self.proxy.base_url, outcome.prompt, give_up or 600)
        outcome.url, outcome.error = url, error
        outcome.gone = error == "client gone"
        if url and self.opens(session, url):
            outcome.opened_at = time.time()

    def come_back(self, session: requests.Session, outcome: Outcome) -> None:
        """Nothing to come back to: LiteLLM keeps no record a client could ask for without its database."""

    def pids(self) -> list[int]:
        return [self.proxy.process.pid]  # type: ignore[attr-defined]


GATEWAYS = {"fluxhook": Fluxhook, "litellm": LiteLLM}
