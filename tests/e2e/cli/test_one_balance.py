"""One balance, and a doctor that tells the truth, against a `make run` as a user starts it for a team: two
BFL accounts (the simulator's eu and us), Redis through Sentinel, files in S3 (moto's server). The doctor runs in a
new shell, with only what a user exports; every view of a balance (`fluxhook accounts`, `fluxhook credits`, the
overview, `/metrics`, `/v1/accounts`) shows each account's one reading, and an admin's `/v1/credits` their sum with
when the oldest was read."""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import pytest
import requests

from cli_helpers import bare_env, doctor, run_cli
from devtools.processes import free_port, wait_until
from devtools.replicated_redis import ReplicatedRedis
from fluxhook.cli import dev_run
from fluxhook.credits.figures import format_credits
from helpers import sign_in, start_make_run
from s3_helpers import AWS_ENV, BUCKET, moto_server

ACCOUNTS = ("eu", "us")


class Deployment:
    """The running make run: its settings file and what a test needs of it."""

    def __init__(self, var, topology: ReplicatedRedis, s3):
        self.var, self.topology, self.s3 = var, topology, s3
        self.settings = dev_run.read_dev_run(var / dev_run.DEV_RUN_FILE)
        self.url = self.settings["FLUXHOOK_URL"]
        self.token = self.settings["API_TOKENS"].split(",")[0]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def new_shell(self, **exported: str) -> dict[str, str]:
        """A new terminal's environment: nothing of the service but what the user exports."""
        return bare_env(FLUXHOOK_VAR=str(self.var), **exported)

    def cli(self, *args: str):
        # Next to the run, the command finds its URL and token in the run's file, as a user's would.
        return run_cli(*args, env=dict(self.new_shell(), PYTHONPATH=str(dev_run.PROJECT_ROOT)))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one-balance")
    # The Sentinel deployment docs/operating.md recommends (two replicas, no resync delay): doctor has nothing to warn of.
    topology = ReplicatedRedis(replication_delay=0, replicas=2, diskless_sync_delay=0,
                               directory=str(tmp / "redis")).start()
    try:
        with moto_server(tmp / "moto.log") as s3:
            process, lines = start_make_run(
                tmp, RUN_ACCOUNTS="2", STORAGE_URL=f"s3://{BUCKET}/images", S3_ENDPOINT_URL=s3.url,
                # One reading by a worker as it starts, none after it while the test runs: the doctor's is the next.
                BFL_CREDITS_REFRESH_SECONDS="3600", **topology.env(), **AWS_ENV)
            try:
                assert any("Ctrl-C stops everything" in line for line in lines), "\n".join(lines)
                deployment = Deployment(tmp / "var", topology, s3)
                wait_until(lambda: deployment.http.get(f"{deployment.url}/readyz", timeout=5).status_code == 200,
                           timeout=60, interval=0.2, message="the run's worker to be ready")
                yield deployment
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
    finally:
        topology.stop()


# --- the doctor in a new shell -------------------------------------------------------------------------------------

def test_the_settings_file_holds_what_boto3_reads(deployment):
    assert {name: deployment.settings.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")} == {
        "AWS_ACCESS_KEY_ID": AWS_ENV["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": AWS_ENV["AWS_SECRET_ACCESS_KEY"]}
    assert "PATH" not in deployment.settings and "REDIS_SENTINELS" in deployment.settings


@pytest.mark.parametrize("exported", ["nothing", "sentinel"])
def test_doctor_in_a_new_shell_reports_ok(deployment, exported):
    # A user with the Sentinel deployment's REDIS_* in their profile, and one who exports nothing.
    env = deployment.new_shell(**(deployment.topology.env() if exported == "sentinel" else {}))
    code, checks, output = doctor(env)
    assert code == 0, output
    assert [line for lines in checks.values() for line in lines if not line.startswith("ok ")] == [], output
    assert checks["settings"] == [f"ok from {deployment.var / dev_run.DEV_RUN_FILE} (the running make run's; the "
                                  "environment's own values win)"]
    assert checks["storage"] == [f"ok s3://{BUCKET}/images is writable"]
    assert re.fullmatch(r"ok primary 127\.0\.0\.1:\d+ \(Sentinel master fluxhook at .*\): PING \d+\.\d ms",
                        checks["redis"][0])
    assert checks["replicas"][0].startswith("ok acknowledgements wait for 1 replica")
    assert {name for name in checks if name.startswith("bfl")} == {"bfl"}  # "bfl eu", "bfl us": split on the name
    assert [line.split(" ", 2)[1] for line in checks["bfl"]] == list(ACCOUNTS)
    secrets = [deployment.settings[name] for name in ("SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "BFL_EU_API_KEY")]
    assert not [secret for secret in secrets if secret in output]


def test_doctor_says_why_it_does_not_read_the_run_for_another_redis_and_what_to_do(deployment):
    other = f"redis://127.0.0.1:{free_port()}/0"
    code, checks, output = doctor(deployment.new_shell(REDIS_URL=other))
    assert code == 1, output
    path = deployment.var / dev_run.DEV_RUN_FILE
    assert checks["settings"] == [f"ok from the environment alone: its REDIS_URL is not the running make run's, so "
                                  f"that run's settings ({path}) are not read; unset REDIS_URL to check that run"]
    assert f"FAIL SECRET_KEY: is required but not set (the environment's REDIS_URL is not the running make run's, " \
           f"so its settings ({path}) are not read: set SECRET_KEY as the service has it, or unset REDIS_URL to " \
           "check that run)" in checks["config"], output


# --- one balance ---------------------------------------------------------------------------------------------------

def _at(iso_time: str) -> int:
    return int(datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp())


def views(deployment: Deployment) -> dict[str, dict[str, tuple[float, int]]]:
    """Each view's reading of each account: (credits, when read, whole epoch seconds)."""
    url, http = deployment.url, deployment.http
    seen: dict[str, dict[str, tuple[float, int]]] = {}
    seen["GET /v1/accounts"] = {a["name"]: (a["balance"], _at(a["balance_at"]))
                               for a in http.get(f"{url}/v1/accounts", timeout=10).json()["accounts"]}
    # BFL's answer, the accounts' readings added up, and when the oldest of them was read.
    answer = http.get(f"{url}/v1/credits", timeout=10)
    assert set(answer.json()) == {"credits"}, answer.text
    seen["GET /v1/credits"] = {"all": (answer.json()["credits"], int(parsedate_to_datetime(
        answer.headers["Last-Modified"]).timestamp()))}
    for command in ("accounts", "credits"):
        result = deployment.cli(command, "--json")
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        seen[f"fluxhook {command}"] = {a["name"]: (a["balance"], _at(a["balance_at"])) if command == "accounts"
                                       else (a["credits"], _at(a["read_at"])) for a in shown["accounts"]}
        if command == "credits":
            seen["fluxhook credits, all"] = {"all": (shown["credits"], _at(shown["read_at"]))}
    metrics = http.get(f"{url}/metrics", timeout=10).text
    series = {(name, account): float(value) for name, account, value in re.findall(
        r'^(fluxhook_bfl_credits(?:_read_timestamp_seconds)?)\{account="([^"]+)"\} (\S+)$', metrics, re.M)}
    # To the millisecond: the whole second it falls in, unless rounding took it over the next one (agreed() allows it).
    seen["/metrics"] = {a: (series[("fluxhook_bfl_credits", a)],
                            int(series[("fluxhook_bfl_credits_read_timestamp_seconds", a)])) for a in ACCOUNTS}
    browser, _ = sign_in(url, deployment.token)
    page = browser.get(f"{url}/", timeout=10).text
    overview = {}
    for name, credits, clock in re.findall(r'<div data-balance="([^"]+)"><strong>[^<]+</strong> ([\d,.]+) credits'
                                           r'<div class="sub">read [^<]* from BFL, at ([\d: -]+) UTC</div>', page):
        at = datetime.strptime(clock, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        overview[name] = (float(credits.replace(",", "")), int(at))
    seen["the overview"] = overview
    return seen


def agreed(seen: dict[str, dict[str, tuple[float, int]]]) -> dict[str, tuple[float, int]]:
    """The one reading every view shows; fails naming the views that differ."""
    first = dict(seen["GET /v1/accounts"])
    assert set(first) == set(ACCOUNTS), seen
    first["all"] = (sum(credits for credits, _ in first.values()), min(at for _, at in first.values()))
    same = all(set(shown) <= set(first) and all(shown[a][0] == first[a][0] and 0 <= shown[a][1] - first[a][1] <= 1
                                                for a in shown) for shown in seen.values())
    assert same, json.dumps(seen, indent=1)
    return {a: first[a] for a in ACCOUNTS}


def test_every_view_shows_each_accounts_one_reading_after_a_doctor_run_and_after_spending(deployment):
    wait_until(lambda: all(a["balance"] is not None for a in
                           deployment.http.get(f"{deployment.url}/v1/accounts", timeout=10).json()["accounts"]),
               timeout=60, interval=0.2, message="a worker to have read both accounts' balance")
    before = agreed(views(deployment))

    # Spend through eu: BFL's balance goes down, the reading stays the worker's, in every view alike.
    job = deployment.http.post(f"{deployment.url}/v1/jobs", timeout=60, json={
        "model": "flux-2-pro", "account": "eu", "input": {"prompt": "a balance spent"}}).json()
    wait_until(lambda: deployment.http.get(f"{deployment.url}/v1/jobs/{job['id']}", timeout=10).json()["status"]
               == "stored", timeout=60, interval=0.2, message="the job to be stored in S3")
    assert deployment.s3.keys("images/")
    cost = deployment.http.get(f"{deployment.url}/v1/jobs/{job['id']}", timeout=10).json()["cost"]["credits"]
    assert cost > 0
    assert agreed(views(deployment)) == before

    # The doctor reads each account now: its figure becomes the reading every view shows.
    asked_from = int(datetime.now(timezone.utc).timestamp())
    code, checks, output = doctor(deployment.new_shell())
    asked_until = int(datetime.now(timezone.utc).timestamp())
    assert code == 0, output
    spent = before["eu"][0] - cost
    assert checks["bfl"][0].endswith(f"answers; balance {format_credits(spent)} credits, read just now"), output
    assert checks["bfl"][1].endswith(f"answers; balance {format_credits(before['us'][0])} credits, read just now")
    after = agreed(views(deployment))
    assert after["eu"][0] == spent and after["us"][0] == before["us"][0]
    assert all(asked_from <= at <= asked_until for _, at in after.values()), (after, asked_from, asked_until)

    # `fluxhook credits` as a person reads it: the same figures as `fluxhook accounts`' BALANCE column.
    table = deployment.cli("credits")
    accounts = deployment.cli("accounts")
    assert table.returncode == 0 and accounts.returncode == 0, table.stderr + accounts.stderr
    for name, (credits, _) in after.items():
        cell = re.search(rf"^{name}\s+({re.escape(format_credits(credits))} \(read [^)]*\))", table.stdout, re.M)
        assert cell and cell.group(1).split(" (")[0] in accounts.stdout, table.stdout + accounts.stdout
    assert re.search(rf"^all\s+{re.escape(format_credits(spent + before['us'][0]))} \(read ", table.stdout, re.M)
