"""``make run``: the whole service on this machine, with an embedded Redis and the BFL simulator (and with
``RUN_S3=1``, a local S3 stand-in that stores its files)."""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from devtools.settings_file import run_settings, write_dev_run
from fluxhook.cli.dev_run import DEV_RUN_FILE
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError

from .local_s3 import BUCKET, LocalS3, run_s3_wanted
from .processes import ROOT
from .stack import Stack, host_port, reach_host, run_account_names

# Where the web listens unless HOST says otherwise (SPEC §8): a dev run's token and dashboard are for this machine.
# The Procfile's web keeps production's 0.0.0.0:$PORT.
DEV_HOST = "127.0.0.1"
# What a notify_url may name during a dev run beside NOTIFY_HOST_ALLOWLIST (SPEC §8), so that docs/api.md's
# walk-through works as written: a receiver on this machine, at any port.
DEV_NOTIFY_HOSTS = ("127.0.0.1:*", "localhost:*")


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
            "machine; NOTIFY_HOST_ALLOWLIST adds any other host:port"]


def storage_lines(env: dict[str, str], s3: LocalS3 | None) -> list[str]:
    """Where the run stores files; with the S3 stand-in, where it listens and how to list its bucket."""
    if s3 is None:
        return [f"  files:  {env['STORAGE_URL']}"]
    return [f"  files:  {env['STORAGE_URL']} on a local S3 stand-in (moto) at {s3.url}, kept in {s3.directory}/ "
            "between runs",
            f"          list them: curl -s '{s3.url}/{BUCKET}?list-type=2'"]


def main() -> int:
    # Installed first: a shell starts background jobs with SIGINT ignored, and Ctrl-C must always stop us.
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, frame: stopping.append(received))
    try:
        accounts = run_account_names(os.environ.get("RUN_ACCOUNTS"))
        s3_wanted = run_s3_wanted(os.environ.get("RUN_S3"))
    except ValueError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["NOTIFY_HOST_ALLOWLIST"] = notify_allowlist(env)
    if s3_wanted and (given := [name for name in ("STORAGE_URL", "S3_ENDPOINT_URL") if env.get(name)]):
        print(f"make run: RUN_S3=1 stores in a local S3 stand-in and sets {' and '.join(given)} itself: "
              f"unset {' and '.join(given)}, or RUN_S3", file=sys.stderr)
        return 2
    stack = Stack(env=env, var_dir=Path(os.environ.get("FLUXHOOK_VAR", ROOT / "var")), accounts=accounts,
                  host=(env.get("HOST") or "").strip() or DEV_HOST)
    s3 = LocalS3(stack.var_dir / "s3") if s3_wanted else None

    def stop() -> None:
        stack.stop()
        if s3:  # after the service: nothing writes to the bucket while it is kept in var/s3/
            try:
                s3.stop()
            except RuntimeError as exc:
                print(f"make run: {exc}", file=sys.stderr)

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
        stack.start()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"make run: configuration error: {problem}", file=sys.stderr)
        stop()
        return 2
    except (RuntimeError, TimeoutError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        stop()
        return 1
    token = env["API_TOKENS"].split(",")[0]
    url = run_url(stack)
    write_dev_run(settings_file, {**run_settings(env, reads.names), "FLUXHOOK_URL": url})
    body = json.dumps({"model": "flux-2-pro", "input": {"prompt": "a lighthouse at dawn, watercolor"}})
    print()
    print(f"fluxhook is running at {url}")
    print("\n".join(web_lines(stack)))
    print(f"  Redis:  {'embedded ' + env['REDIS_URL'] if stack.redis else 'REDIS_URL from the environment'}")
    print("\n".join(bfl_lines(stack, config)))
    print("\n".join(storage_lines(env, s3)))
    print(f"  logs:   {stack.var_dir}/web.log, worker.log")
    print(f"  settings for the fluxhook command (fluxhook doctor, fluxhook list): {settings_file}")
    print(f"  dev token: {token}")
    print()
    print("Submit a first job:")
    print(f"  curl -s -X POST {url}/v1/jobs -H {shlex.quote('Authorization: Bearer ' + token)} "
          f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")
    print("Then read it (the image is stored within seconds):")
    print(f"  curl -s {url}/v1/jobs/JOB_ID -H {shlex.quote('Authorization: Bearer ' + token)}")
    print(f"An app written for BFL works here unchanged but for its base URL ({url}) and x-key ({token}):")
    print("  see docs/bfl-compatible.md")
    print("\nCtrl-C stops everything.", flush=True)

    while not stopping:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                print(f"make run: the {name} process exited (code {process.returncode}); "
                      f"see {stack.var_dir}/{name}.log", file=sys.stderr)
                stopping.append(0)
        time.sleep(0.2)
    print("stopping...", flush=True)
    settings_file.unlink(missing_ok=True)
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
