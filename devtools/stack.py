"""The whole service on one machine: Redis, the BFL simulator, and the Procfile's web and worker."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from fluxhook.core.config import DEFAULT_PORT
from fluxhook.lifecycle.steps.notify_secrets import new_secret as new_notify_secret
from simulator.accounts import default_key

from .processes import ROOT, RedisServer, free_port, python, start_process, stop_processes, wait_until

SIMULATOR_KEY = "sim-dev-key"
# The accounts of `RUN_ACCOUNTS=N make run`, the first N of these, each labelled with its name as its region.
RUN_ACCOUNT_NAMES = ("eu", "us")
# Images that look like generations: JPEG landscapes at the requested size (1 MP by default).
_DEV_IMAGES = ("--scene-images", "--image-format", "jpeg")
# How long the dev run's simulator keeps a `[pending]` task running before it ends it, as BFL ends every task: long
# enough to watch the job run and cancel it, short enough that a canceled job's slot, which BFL's task keeps, comes
# back soon (the tests' simulators keep such a task until told).
DEV_PENDING_LIMIT = 120
_DEV_FLAGS = (*_DEV_IMAGES, "--pending-limit", str(DEV_PENDING_LIMIT))
# gunicorn's line for each worker it forks, and its number of workers when WEB_CONCURRENCY is unset
# (receiver/gunicorn_conf.py).
_BOOTED = re.compile(r"Booting worker with pid: (\d+)")
_GUNICORN_WORKERS = 2
# The running stack with a worker on each Redis URL (a database), in this process.
_WORKER_STACKS: dict[str, "Stack"] = {}
_ACCOUNT_LINE = re.compile(r"simulator account (\S+) listening on (http://\S+)")
# Addresses that listen on every interface: a client on this machine reaches them on loopback.
_EVERY_INTERFACE = ("0.0.0.0", "::")


def worker_stacks() -> list["Stack"]:
    """The stacks of this process whose worker was started and is not being stopped (its process may have died, or
    been taken out of ``processes`` by a test that kills it)."""
    return [stack for stack in list(_WORKER_STACKS.values()) if not stack.stopping]


def host_port(host: str, port: str) -> str:
    """``host:port`` as gunicorn's ``--bind`` and a URL take it: an IPv6 address in brackets."""
    bare = host.strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def reach_host(host: str | None) -> str:
    """The address a client on this machine reaches a web listening on ``host`` at (None: the Procfile's 0.0.0.0)."""
    bare = (host or "0.0.0.0").strip("[]")
    return "127.0.0.1" if bare in _EVERY_INTERFACE else bare


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The process types of the Procfile and their commands."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def start_simulator(port: int, log_path: str | None = None, *extra: str) -> subprocess.Popen:
    """Run the BFL simulator on 127.0.0.1:``port``."""
    return start_process(
        [python(), "-m", "simulator", "--host", "127.0.0.1", "--port", str(port), "--api-key", SIMULATOR_KEY, *extra],
        dict(os.environ), ready_line="simulator listening", log_path=log_path,
    )


@dataclass(frozen=True)
class SimAccount:
    """One account of a simulator process: its name, base URL and API key."""

    name: str
    base: str
    key: str

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as the allowlists name it."""
        return urlsplit(self.base).netloc

    @property
    def env_prefix(self) -> str:
        """``BFL_<NAME>_``, as fluxhook reads the account's settings."""
        return f"BFL_{self.name.upper().replace('-', '_')}_"


def start_simulator_accounts(names: Sequence[str], log_path: str | None = None,
                             *extra: str) -> tuple[subprocess.Popen, dict[str, SimAccount]]:
    """Run one BFL simulator process serving the accounts ``names``, each on a free port of 127.0.0.1 with the
    key ``sim-NAME-key`` (``extra``: flags that are every account's starting settings); the process, and each
    account by name."""
    keys = {name: default_key(name) for name in names}
    flags = [arg for name in names for arg in ("--account", f"{name}=0:{keys[name]}")]
    process = start_process([python(), "-m", "simulator", "--host", "127.0.0.1", *flags, *extra],
                            dict(os.environ), ready_line="simulator listening", log_path=log_path)
    bases = dict(m.groups() for line in process.startup_lines if (m := _ACCOUNT_LINE.fullmatch(line)))
    return process, {name: SimAccount(name, bases[name], keys[name]) for name in names}


def accounts_env(accounts: Iterable[SimAccount]) -> dict[str, str]:
    """fluxhook's settings for these accounts: ``BFL_ACCOUNTS``, each one's ``BFL_<NAME>_API_KEY``, ``_API_BASE``
    and ``_REGION`` (its name), and the allowlists that let fluxhook reach every one over plain http."""
    accounts = list(accounts)
    env = {"BFL_ACCOUNTS": ",".join(a.name for a in accounts)}
    for a in accounts:
        env.update({f"{a.env_prefix}API_KEY": a.key, f"{a.env_prefix}API_BASE": a.base, f"{a.env_prefix}REGION": a.name})
    hosts = ",".join(a.host for a in accounts)
    env.update(RESULT_HOST_ALLOWLIST=hosts, API_HOST_ALLOWLIST=hosts)
    return env


def run_account_names(value: str | None) -> tuple[str, ...]:
    """The accounts ``RUN_ACCOUNTS`` asks of the dev run's simulator: none when unset or 0 (one account, as
    ever), else the first N of RUN_ACCOUNT_NAMES; ValueError for anything else."""
    text = (value or "").strip()
    if text in ("", "0"):
        return ()
    if not text.isdigit() or not 1 <= int(text) <= len(RUN_ACCOUNT_NAMES):
        raise ValueError(f"RUN_ACCOUNTS must be a number from 0 to {len(RUN_ACCOUNT_NAMES)} "
                         f"(accounts {', '.join(RUN_ACCOUNT_NAMES)}), not {value!r}")
    return RUN_ACCOUNT_NAMES[:int(text)]


@dataclass
class Stack:
    """Starts what ``env`` leaves out (Redis, simulator), then the Procfile's processes. With ``accounts``
    (names), the simulator serves those accounts and ``env`` gets ``BFL_ACCOUNTS`` and theirs."""

    env: dict[str, str]
    var_dir: Path
    accounts: Sequence[str] = ()
    sim_accounts: dict[str, SimAccount] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    redis: RedisServer | None = None
    # Where the web listens instead of the Procfile's 0.0.0.0 (the dev run's HOST); None keeps the Procfile's.
    host: str | None = None
    # Whether a NOTIFY_SECRET is made when the environment has none (the dev run's: a notify_url of the dev token's
    # jobs is refused without one to sign with), kept across runs as SECRET_KEY is.
    signs_notifications: bool = False
    prepared: bool = False
    # From the start of ``stop`` until the next ``start``: its processes are being told to end.
    stopping: bool = False

    def prepare(self) -> dict[str, str]:
        """Fill in the dev defaults: embedded Redis, simulator, generated secrets (once)."""
        env = self.env
        if self.prepared:
            return env
        self.prepared = True
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not env.get("REDIS_URL"):
            self.redis = RedisServer(directory=str(self._dir("redis"))).start()
            env["REDIS_URL"] = self.redis.url
        # A BFL of the environment's own (one account or several) is used as it is, never shadowed by the simulator.
        if not env.get("BFL_API_KEY") and not env.get("BFL_ACCOUNTS"):
            self._start_simulator()
        env.setdefault("PORT", str(DEFAULT_PORT))  # the port the docs show: `make run` prints it
        env.setdefault("SECRET_KEY", self._persistent_secret("secret_key"))
        env.setdefault("API_TOKENS", self._persistent_secret("api_token"))
        if self.signs_notifications and not env.get("NOTIFY_SECRET"):
            env["NOTIFY_SECRET"] = self._persistent_secret("notify_secret", new_notify_secret)
        env.setdefault("STORAGE_URL", f"file://{self._dir('images')}")
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The Procfile names gunicorn and python: they must be this virtual environment's.
        env["PATH"] = os.pathsep.join([str(Path(python()).parent), env.get("PATH", "")])
        if self.host is not None:
            self._bind_web(self.host)
        return env

    def _bind_web(self, host: str) -> None:
        # The Procfile's command stays production's (its config file binds 0.0.0.0:$PORT); GUNICORN_CMD_ARGS
        # outranks the config file. A bind the environment's GUNICORN_CMD_ARGS names already is kept: with a
        # second, gunicorn would listen on both.
        given = self.env.get("GUNICORN_CMD_ARGS", "")
        if not any(arg.startswith(("--bind", "-b")) for arg in shlex.split(given)):
            self.env["GUNICORN_CMD_ARGS"] = f"{given} --bind {host_port(host, self.env['PORT'])}".strip()

    def _start_simulator(self) -> None:
        log = str(self.var_dir / "simulator.log")
        if self.accounts:
            self.processes["simulator"], self.sim_accounts = start_simulator_accounts(self.accounts, log, *_DEV_FLAGS)
            self.env.update(accounts_env(self.sim_accounts.values()))
            return
        port = free_port()
        self.processes["simulator"] = start_simulator(port, log, *_DEV_FLAGS)
        self.env.update(BFL_API_KEY=SIMULATOR_KEY, BFL_API_BASE=f"http://127.0.0.1:{port}",
                        RESULT_HOST_ALLOWLIST=f"127.0.0.1:{port}", API_HOST_ALLOWLIST=f"127.0.0.1:{port}")

    def start(self, *kinds: str) -> None:
        """Start the Procfile's process types (all of them by default) and wait until the web answers.

        A worker only on a Redis database no other running stack of this process has a worker on: a worker sends
        every queued job of its database, under its own settings (a daily credit limit, or none)."""
        env = self.prepare()
        self.stopping = False
        for kind, command in procfile_commands().items():
            if kinds and kind not in kinds:
                continue
            if kind == "worker":
                self._claim_database()
            self.processes[kind] = start_process(["sh", "-c", "exec " + command], env,
                                                 log_path=str(self.var_dir / f"{kind}.log"))
        if "web" in self.processes:
            wait_until(self._web_answers, timeout=30, message="the web process to answer /healthz")

    @property
    def base_url(self) -> str:
        return f"http://{host_port(reach_host(self.host), self.env['PORT'])}"

    def _web_answers(self) -> bool:
        if self.processes["web"].poll() is not None:
            log = self.var_dir / "web.log"
            said = log.read_text(errors="replace").splitlines()[-3:] if log.exists() else []
            raise RuntimeError("\n".join([f"the web process exited; see {log}, which ends:", *said]))
        try:
            answered = requests.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False
        # gunicorn forks its workers one after another, and the first answers before the last is forked:
        # started means all of them, so that a test counting workers sees none booted late as one replaced.
        return answered and len(self.web_workers()) >= int(self.env.get("WEB_CONCURRENCY") or _GUNICORN_WORKERS)

    def web_workers(self) -> list[str]:
        """The pids of the web workers gunicorn has booted so far: a crashed one is replaced, and the list grows."""
        log = self.var_dir / "web.log"
        return _BOOTED.findall(log.read_text()) if log.exists() else []

    def stop(self) -> None:
        self.stopping = True
        stop_processes(list(reversed(self.processes.values())))
        if _WORKER_STACKS.get(self.env.get("REDIS_URL", "")) is self:
            del _WORKER_STACKS[self.env["REDIS_URL"]]
        if self.redis:
            self.redis.stop()

    def _claim_database(self) -> None:
        url = self.env["REDIS_URL"]
        other = _WORKER_STACKS.get(url)
        if other is not None and other is not self and other.processes.get("worker") is not None \
                and other.processes["worker"].poll() is None:
            raise RuntimeError(f"the stack in {other.var_dir} already runs a worker on Redis database "
                               f"{urlsplit(url).path or '/0'}: stop it first, or give this stack a database of its own")
        _WORKER_STACKS[url] = self

    def _dir(self, name: str) -> Path:
        path = self.var_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _persistent_secret(self, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
        # Kept across dev runs so signed image URLs and webhook URLs stay valid after a restart, and a receiver keeps
        # verifying the notifications with the secret it was given.
        path = self.var_dir / name
        if not path.exists():
            # Created private: never readable by others, not even for a moment.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(make())
        return path.read_text().strip()
