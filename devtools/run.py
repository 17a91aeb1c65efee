"""``make run``: the whole service on this machine, with an embedded Redis and the BFL simulator (and with
``RUN_S3=1``, a local S3 stand-in that stores its files)."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from devtools.settings_file import run_settings, write_dev_run
from fluxhook.cli.dev_run import DEV_RUN_FILE
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError
from fluxhook.core.holds import STOP_TIMEOUT
from worker.processes import HEALTHY_AFTER, restart_delay

from .local_s3 import BUCKET, LocalS3, run_s3_wanted
from .processes import ROOT, group_alive, start_process
from .stack import Stack, host_port, procfile_commands, reach_host, run_account_names

# Where the web listens unless HOST says otherwise: a dev run's token and dashboard are for this machine.
# The Procfile's web keeps production's 0.0.0.0:$PORT.
DEV_HOST = "127.0.0.1"
# What a notify_url may name during a dev run beside NOTIFY_HOST_ALLOWLIST, so that docs/api.md's
# walk-through works as written: a receiver on this machine, at any port.
DEV_NOTIFY_HOSTS = ("127.0.0.1:*", "localhost:*")
# A worker that ends unasked is started again as the worker's own supervisor starts a child again
# (worker/processes.py: pauses of RESTART_DELAYS, growing while it keeps failing, starting over once one ran
# HEALTHY_AFTER). Unlike that supervisor, which runs unwatched on a PaaS, a dev run has someone at its terminal: a
# worker that ended this many times in a row, each soon after its start, will not be mended by one more start, and a
# run that takes jobs it never sends would mislead them. It says so and stops.
GIVE_UP_AFTER = 5
# The worker's exit code for a configuration error (worker/__main__.py): a new start reads the same settings.
CONFIG_ERROR = 2
# How often the run looks at its processes.
LOOK_INTERVAL = 0.2


class _Reads(dict):
    """The environment, noting each name the configuration reads from it: those are the service's settings."""

    def __init__(self, env: dict[str, str]):
        super().__init__(env)
        self.names: set[str] = set()

    def get(self, name, default=None):
        self.names.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.names.add(name)
        return super().__getitem__(name)


def bfl_lines(stack: Stack, config: Config) -> list[str]:
    """Where the run's BFL is (the simulator's one account or its accounts, or the environment's accounts, each at its
    endpoint), then each warning of the configuration: at start, not only in ``fluxhook doctor``, a run whose BFL
    cannot call back (a real key and endpoint, a localhost PUBLIC_BASE_URL) says so."""
    env = stack.env
    if stack.sim_accounts:
        each = ", ".join(f"{a.name} at {a.base} (key {a.key})" for a in stack.sim_accounts.values())
        where = f"simulator accounts {each}; BFL_ACCOUNTS={env['BFL_ACCOUNTS']}"
    elif "simulator" in stack.processes:
        where = "simulator at " + env["BFL_API_BASE"]
    elif config.named_accounts:
        each = ", ".join(f"{a.name} at {a.api_base}" for a in config.named_accounts)
        where = f"accounts {each} (BFL_ACCOUNTS from the environment)"
    else:
        where = config.bfl_api_base
    return [f"  BFL:    {where}", *(f"  warning: {warning}" for warning in config.warnings())]


def notify_allowlist(env: dict[str, str]) -> str:
    """NOTIFY_HOST_ALLOWLIST for a dev run: the environment's (left unset, the service's default: NOTIFY_URL's host),
    then the receivers on this machine (DEV_NOTIFY_HOSTS)."""
    given = (env.get("NOTIFY_HOST_ALLOWLIST") or "").strip()
    url = (env.get("NOTIFY_URL") or "").strip()
    if not given and url:
        try:
            given = urlsplit(url).hostname or ""
        except ValueError:
            pass  # the configuration says what is wrong with NOTIFY_URL
    return ",".join([given, *DEV_NOTIFY_HOSTS] if given else DEV_NOTIFY_HOSTS)


def _loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return bare.lower() == "localhost"


def dev_stack(env: dict[str, str], var_dir: Path, accounts: Sequence[str] = ()) -> Stack:
    """The dev run's stack: its web on ``HOST`` (else this machine only), and a NOTIFY_SECRET made when the environment
    has none, so that a notify_url of the dev token's jobs reaches a receiver here as the banner says (without one to
    sign with, an admin token's notify_url is refused)."""
    return Stack(env=env, var_dir=var_dir, accounts=accounts, host=(env.get("HOST") or "").strip() or DEV_HOST,
                 signs_notifications=True)


def run_url(stack: Stack) -> str:
    """The URL the banner shows: the docs' ``localhost`` when the web is reached on this machine's loopback."""
    reach = reach_host(stack.host)
    return f"http://{host_port('localhost' if _loopback(reach) else reach, stack.env['PORT'])}"


def web_lines(stack: Stack) -> list[str]:
    """Where the web listens (and how to open it to other machines), and the notify_url a receiver here may have."""
    host = stack.host or "0.0.0.0"
    only = " (this machine only; HOST=0.0.0.0 to be reached from others)" if _loopback(host) else ""
    return [f"  web:    listening on {host_port(host, stack.env['PORT'])}{only}",
            "  notify: a notify_url on http://127.0.0.1:<any port> (or localhost) reaches a receiver on this "
            "machine, signed with the key's notify_secret, or for the dev token's jobs with NOTIFY_SECRET (in the "
            "settings file below); NOTIFY_HOST_ALLOWLIST adds any other host:port"]


def storage_lines(env: dict[str, str], s3: LocalS3 | None) -> list[str]:
    """Where the run stores files; with the S3 stand-in, where it listens and how to list its bucket."""
    if s3 is None:
        return [f"  files:  {env['STORAGE_URL']}"]
    return [f"  files:  {env['STORAGE_URL']} on a local S3 stand-in (moto) at {s3.url}, kept in {s3.directory}/ "
            "between runs",
            f"          list them: curl -s '{s3.url}/{BUCKET}?list-type=2'"]


def say(text: str, err: bool = False) -> None:
    """Print a line of the run's own, to stderr with ``err``. Its reader may be gone (`make run | tee run.log`, the
    tee ended by the same Ctrl-C): the stop must still run, so a dead pipe ends printing, never the run."""
    stream = sys.stderr if err else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: a stream already closed
        _silence(stream)


def _silence(stream) -> None:
    # What is still buffered, and every later line, goes to /dev/null: Python's own flush at exit would raise too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def ended(code: int) -> str:
    """How a process ended, from its exit status (negative: the signal that ended it)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def restart_pause(code: int, ran: float, failures: int) -> tuple[int, float | None]:
    """After the worker ended with ``code``, having run ``ran`` s, following ``failures`` failures in a row: its
    failures in a row now, and the pause before it is started again (None: it is not, the run stops)."""
    failures = 1 if ran >= HEALTHY_AFTER else failures + 1
    if code == CONFIG_ERROR or failures >= GIVE_UP_AFTER:
        return failures, None
    return failures, restart_delay(failures)


def _tail(path: Path, count: int = 3) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []


class WorkerKeeper:
    """Starts the run's worker again when it ends unasked, saying which process, how it ended and when it starts
    again; tells the run to stop, saying why, when a new start cannot help."""

    def __init__(self, stack: Stack, started: float, command: str | None = None):
        """``started``: when the running worker was started (time.monotonic)."""
        self.stack = stack
        self.command = command or procfile_commands()["worker"]
        self.log = stack.var_dir / "worker.log"
        self.started = started
        self.failures = 0
        self.ended_at: float | None = None  # set while the worker waits to be started again
        self.start_at = 0.0

    def look(self) -> bool:
        """One look at the worker, starting it again when its pause is over; False once the run must stop."""
        process = self.stack.processes["worker"]
        if self.ended_at is not None:
            if time.monotonic() >= self.start_at and self._leftovers_gone(process):
                self._start()
            return True
        code = process.poll()
        return True if code is None else self._ended(process, code)

    def _ended(self, process: subprocess.Popen, code: int) -> bool:
        now = time.monotonic()
        ran = now - self.started
        self.failures, pause = restart_pause(code, ran, self.failures)
        what = f"make run: the worker process (pid {process.pid}) {ended(code)} after {ran:.1f} s"
        if pause is None:
            say("\n".join([f"{what}; {self._hopeless(code)}: not starting it again; stopping everything. "
                           f"{self.log} ends:", *(f"  {line}" for line in _tail(self.log))]), err=True)
            return False
        self.ended_at, self.start_at = now, now + pause
        say(f"{what}; starting it again in {pause:g} s (see {self.log})", err=True)
        return True

    def _hopeless(self, code: int) -> str:
        if code == CONFIG_ERROR:
            return "a configuration error, which a new start would read again"
        return f"it ended {self.failures} times in a row, each within {HEALTHY_AFTER:g} s of its start"

    def _leftovers_gone(self, process: subprocess.Popen) -> bool:
        # What the ended worker started (WORKER_PROCESSES' children, handing their tasks back) ends first, so that no
        # two workers' processes run side by side; past the supervisor's own stop timeout, it is killed.
        if not group_alive(process.pid):
            return True
        if self.ended_at is not None and time.monotonic() - self.ended_at > STOP_TIMEOUT:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return False

    def _start(self) -> None:
        process = start_process(["sh", "-c", "exec " + self.command], self.stack.env, log_path=str(self.log),
                                fresh_log=False)
        self.stack.processes["worker"] = process  # at once: a stop from now on stops this one
        self.started, self.ended_at = time.monotonic(), None
        say(f"make run: the worker process started again (pid {process.pid})", err=True)


def watch(stack: Stack, stopping: list[int], started: float) -> int:
    """Look after the run's processes until Ctrl-C (0) or the end of one the run cannot do without (1): a worker
    that ends is started again (WorkerKeeper); the web and the simulator end the run, as gunicorn already starts
    its own workers again. ``started``: when the stack was started."""
    keeper = WorkerKeeper(stack, started)
    while not stopping:  # looked at before every start: a restart never follows a stop
        if not keeper.look():
            return 1
        for name, process in stack.processes.items():
            if name != "worker" and process.poll() is not None:
                say(f"make run: the {name} process {ended(process.returncode)}; see {stack.var_dir}/{name}.log; "
                    "stopping everything", err=True)
                return 1
        time.sleep(LOOK_INTERVAL)
    return 0


def banner(stack: Stack, config: Config, s3: LocalS3 | None, url: str, settings_file: Path) -> list[str]:
    """What the run prints once everything answers: where it is, its settings, a first job to submit."""
    env = stack.env
    token = env["API_TOKENS"].split(",")[0]
    body = json.dumps({"model": "flux-2-pro", "input": {"prompt": "a lighthouse at dawn, watercolor"}})
    return [
        "",
        f"fluxhook is running at {url}",
        *web_lines(stack),
        f"  Redis:  {'embedded ' + env['REDIS_URL'] if stack.redis else 'REDIS_URL from the environment'}",
        *bfl_lines(stack, config),
        *storage_lines(env, s3),
        f"  logs:   {stack.var_dir}/web.log, worker.log",
        f"  settings for the fluxhook command (fluxhook doctor, fluxhook list): {settings_file}",
        f"  dev token: {token}",
        "",
        "Submit a first job:",
        f"  curl -s -X POST {url}/v1/jobs -H {shlex.quote('Authorization: Bearer ' + token)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}",
        "Then read it (the image is stored within seconds):",
        f"  curl -s {url}/v1/jobs/JOB_ID -H {shlex.quote('Authorization: Bearer ' + token)}",
        f"An app written for BFL works here unchanged but for its base URL ({url}) and x-key ({token}):",
        "  see docs/bfl-compatible.md",
        "\nCtrl-C stops everything.",
    ]


def main() -> int:
    # Installed first: a shell starts background jobs with SIGINT ignored, and Ctrl-C must always stop us.
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, frame: stopping.append(received))
    try:
        accounts = run_account_names(os.environ.get("RUN_ACCOUNTS"))
        s3_wanted = run_s3_wanted(os.environ.get("RUN_S3"))
    except ValueError as exc:
        say(f"make run: {exc}", err=True)
        return 2
    env = dict(os.environ)
    env["NOTIFY_HOST_ALLOWLIST"] = notify_allowlist(env)
    if s3_wanted and (given := [name for name in ("STORAGE_URL", "S3_ENDPOINT_URL") if env.get(name)]):
        say(f"make run: RUN_S3=1 stores in a local S3 stand-in and sets {' and '.join(given)} itself: "
            f"unset {' and '.join(given)}, or RUN_S3", err=True)
        return 2
    stack = dev_stack(env, Path(os.environ.get("FLUXHOOK_VAR", ROOT / "var")), accounts)
    s3 = LocalS3(stack.var_dir / "s3") if s3_wanted else None

    def stop() -> None:
        stack.stop()
        if s3:  # after the service: nothing writes to the bucket while it is kept in var/s3/
            try:
                s3.stop()
            except RuntimeError as exc:
                say(f"make run: {exc}", err=True)

    # `fluxhook doctor` and the other commands read this file to find the run; a stale one must not mislead them.
    settings_file = stack.var_dir / DEV_RUN_FILE
    settings_file.unlink(missing_ok=True)
    try:
        if s3:
            s3.start()
            # The stand-in's settings replace a shell's AWS ones: a dev run never signs with a real account's.
            for name in [name for name in env if name.startswith("AWS_")]:
                del env[name]
            env.update(s3.settings())
        stack.prepare()
        reads = _Reads(stack.env)
        config = Config.from_env(reads)
        started = time.monotonic()
        stack.start()
    except ConfigError as exc:
        for problem in exc.problems:
            say(f"make run: configuration error: {problem}", err=True)
        stop()
        return 2
    except (RuntimeError, TimeoutError) as exc:
        say(f"make run: {exc}", err=True)
        stop()
        return 1
    url = run_url(stack)
    # From here on the stop runs whatever happens, printing included.
    try:
        write_dev_run(settings_file, {**run_settings(env, reads.names), "FLUXHOOK_URL": url})
        say("\n".join(banner(stack, config, s3, url, settings_file)))
        code = watch(stack, stopping, started)
        say("stopping...")
    finally:
        settings_file.unlink(missing_ok=True)
        stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
