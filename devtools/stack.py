"""The whole service on one machine: Redis, the BFL simulator, and the Procfile's web and worker."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import requests

from fluxhook.core.config import DEFAULT_PORT

from .processes import ROOT, RedisServer, free_port, python, start_process, stop_process, wait_until

SIMULATOR_KEY = "sim-dev-key"


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


@dataclass
class Stack:
    """Starts what ``env`` leaves out (Redis, simulator), then the Procfile's processes."""

    env: dict[str, str]
    var_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    redis: RedisServer | None = None
    prepared: bool = False

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
        if not env.get("BFL_API_KEY"):
            port = free_port()
            # Images that look like generations: JPEG landscapes at the requested size (1 MP by default).
            self.processes["simulator"] = start_simulator(port, str(self.var_dir / "simulator.log"),
                                                          "--scene-images", "--image-format", "jpeg")
            base = f"http://127.0.0.1:{port}"
            env.update(BFL_API_KEY=SIMULATOR_KEY, BFL_API_BASE=base,
                       RESULT_HOST_ALLOWLIST=f"127.0.0.1:{port}", API_HOST_ALLOWLIST=f"127.0.0.1:{port}")
        env.setdefault("PORT", str(DEFAULT_PORT))  # the port the docs show: `make run` prints it
        env.setdefault("SECRET_KEY", self._persistent_secret("secret_key"))
        env.setdefault("API_TOKENS", self._persistent_secret("api_token"))
        env.setdefault("STORAGE_URL", f"file://{self._dir('images')}")
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The Procfile names gunicorn and python: they must be this virtual environment's.
        env["PATH"] = os.pathsep.join([str(Path(python()).parent), env.get("PATH", "")])
        return env

    def start(self, *kinds: str) -> None:
        """Start the Procfile's process types (all of them by default) and wait until the web answers."""
        env = self.prepare()
        for kind, command in procfile_commands().items():
            if kinds and kind not in kinds:
                continue
            self.processes[kind] = start_process(["sh", "-c", "exec " + command], env,
                                                 log_path=str(self.var_dir / f"{kind}.log"))
        if "web" in self.processes:
            wait_until(self._web_answers, timeout=30, message="the web process to answer /healthz")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def _web_answers(self) -> bool:
        if self.processes["web"].poll() is not None:
            raise RuntimeError(f"the web process exited; see {self.var_dir / 'web.log'}")
        try:
            return requests.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop_process(process)
        if self.redis:
            self.redis.stop()

    def _dir(self, name: str) -> Path:
        path = self.var_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _persistent_secret(self, name: str) -> str:
        # Kept across dev runs so signed image URLs and webhook URLs stay valid after a restart.
        path = self.var_dir / name
        if not path.exists():
            # Created private: never readable by others, not even for a moment.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(secrets.token_urlsafe(32))
        return path.read_text().strip()
