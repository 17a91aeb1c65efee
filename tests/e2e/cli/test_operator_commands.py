"""The operator commands (sweep, doctor) as real processes, and where they find the service's settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import requests

from cli_helpers import bare_env, doctor, operator_cli
from conftest import API_TOKEN, SECRET_KEY
from devtools import settings_file
from devtools.processes import ROOT, free_port, wait_until
from devtools.stack import SIMULATOR_KEY
from fluxhook.cli import dev_run

# --- sweep -----------------------------------------------------------------------------------------------

def test_sweep_runs_once_and_says_what_it_did(stack):
    result = operator_cli("sweep", env=dict(stack.env))
    assert result.returncode == 0, result.stderr
    assert re.match(r"swept: \d+ due \(a check queued for each\), \d+ deadlines \(jobs ended at their Cancel-After "
                    r"deadline\)", result.stdout)
    assert len(result.stdout.splitlines()) == 1


def test_sweep_with_a_bad_configuration_exits_2(stack):
    env = {k: v for k, v in stack.env.items() if k != "REDIS_URL"}
    result = operator_cli("sweep", env=env)
    assert result.returncode == 2
    assert "REDIS_URL: is required but not set" in result.stderr
    assert "no make run is running" not in result.stderr  # the environment has settings of its own

    result = operator_cli("sweep", env=bare_env())
    assert result.returncode == 2 and "no make run is running" in result.stderr


def test_sweep_without_redis_exits_3(stack):
    result = operator_cli("sweep", env=dict(stack.env, REDIS_URL=f"redis://:pw-secret@127.0.0.1:{free_port()}/0"))
    assert result.returncode == 3
    assert "redis unreachable at redis://:***@127.0.0.1:" in result.stderr and "pw-secret" not in result.stderr


# --- doctor ----------------------------------------------------------------------------------------------

def test_doctor_passes_against_the_running_stack(stack, sim):
    code, checks, output = doctor(dict(stack.env))
    assert code == 0, output
    assert set(checks) == {"settings", "config", "redis", "clock", "worker", "storage", "budget", "keys", "bfl"}
    # App keys near their limits are the apps' business (a warning), whichever tests made them.
    assert all(line.startswith("ok ") for name, lines in checks.items() if name != "keys" for line in lines), output
    assert checks["settings"] == ["ok from the environment"]
    assert re.search(r"PING \d+\.\d ms", checks["redis"][0])
    assert "worker process(es) alive" in checks["worker"][0]
    assert re.fullmatch(rf"ok {re.escape(sim.url)} answers; balance [\d,.]+ credits, read just now", checks["bfl"][0])
    assert "balance" not in checks["budget"][0]  # one balance per account: on its bfl line, read from it now
    assert SECRET_KEY not in output and API_TOKEN not in output and SIMULATOR_KEY not in output


def test_doctor_names_a_wrong_redis(stack):
    code, checks, output = doctor(dict(stack.env, REDIS_URL=f"redis://:pw-secret@127.0.0.1:{free_port()}/0"))
    assert code == 1, output
    assert checks["redis"][0].startswith("FAIL redis://:***@127.0.0.1:") and "pw-secret" not in output
    assert checks["worker"] == ["skip needs Redis"]
    assert checks["storage"][0].startswith("ok ") and checks["bfl"][0].startswith("ok ")


def test_doctor_names_an_unreachable_bfl(stack):
    base = f"http://127.0.0.1:{free_port()}"
    code, checks, output = doctor(dict(stack.env, BFL_API_BASE=base))
    assert code == 1, output
    assert checks["bfl"] == [f"FAIL {base}: BFL unreachable: ConnectionError: check BFL_API_BASE and that this "
                             "machine reaches it"]
    assert checks["redis"][0].startswith("ok ")


def test_doctor_reports_a_refused_key_and_no_credits(stack, sim):
    code, checks, output = doctor(dict(stack.env, BFL_API_KEY="wrong-key"))
    assert code == 1 and "BFL refused the API key (401)" in checks["bfl"][0], output
    sim.settings(credits=0)
    code, checks, output = doctor(dict(stack.env))
    assert code == 1 and checks["bfl"][0].startswith("FAIL") and "no credits are left" in checks["bfl"][0], output


def test_doctor_lists_every_configuration_problem(stack):
    code, checks, output = doctor(dict(stack.env, API_TOKENS="tok en", CALLBACK_GRACE_SECONDS="soon"))
    assert code == 1, output
    assert any("API_TOKENS: every token must be printable" in line for line in checks["config"])
    assert any("CALLBACK_GRACE_SECONDS: must be a whole number" in line for line in checks["config"])
    assert checks["redis"] == ["skip needs a valid configuration"]


def test_doctor_without_any_settings_says_where_it_looked(tmp_path):
    code, checks, output = doctor(bare_env(FLUXHOOK_VAR=str(tmp_path)))
    assert code == 1, output
    assert checks["settings"] == [f"warn the environment sets none of REDIS_URL, SECRET_KEY, API_TOKENS, and no "
                                  f"make run is running: its settings would be in {tmp_path / dev_run.DEV_RUN_FILE}"]
    assert "FAIL REDIS_URL: is required but not set" in checks["config"]


# --- a running make run's settings -----------------------------------------------------------------------


def test_sweep_uses_the_dev_runs_settings_and_says_so(stack, tmp_path):
    settings = {name: stack.env[name] for name in ("REDIS_URL", "SECRET_KEY", "API_TOKENS", "BFL_API_KEY",
                                                   "BFL_API_BASE", "STORAGE_URL", "PORT")}
    settings_file.write_dev_run(tmp_path / dev_run.DEV_RUN_FILE, settings)
    result = operator_cli("sweep", env=bare_env(FLUXHOOK_VAR=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("swept: ")
    assert f"settings from {tmp_path / dev_run.DEV_RUN_FILE}" in result.stderr
    assert all(settings[name] not in result.stderr for name in ("SECRET_KEY", "API_TOKENS", "BFL_API_KEY"))


def test_doctor_and_list_find_a_running_make_run(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFL_", "REDIS_URL", "API_TOKENS", "SECRET_KEY",
                                                                   "STORAGE_URL", "FLUXHOOK_"))}
    env.update(FLUXHOOK_VAR=str(var), PORT=str(free_port()))
    run = subprocess.Popen([sys.executable, "-m", "devtools.run"], cwd=ROOT, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    settings_file = var / dev_run.DEV_RUN_FILE
    try:
        output = []
        for line in run.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert settings_file.exists(), "".join(output)
        assert f"settings for the fluxhook command (fluxhook doctor, fluxhook list): {settings_file}" in "".join(output)
        assert settings_file.stat().st_mode & 0o777 == 0o600
        written = dev_run.read_dev_run(settings_file)
        assert {"REDIS_URL", "SECRET_KEY", "API_TOKENS", "BFL_API_KEY", "BFL_API_BASE", "STORAGE_URL",
                "FLUXHOOK_URL"} <= set(written)
        assert "PATH" not in written  # the service's settings, not the whole environment
        base = written["FLUXHOOK_URL"]
        wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, timeout=30,
                   message="the dev run's worker to be ready")

        # A new terminal: none of the run's settings in the environment.
        code, checks, text = doctor(bare_env(FLUXHOOK_VAR=str(var)))
        assert code == 0, text
        assert checks["settings"] == [f"ok from {settings_file} (the running make run's; the environment's own "
                                      "values win)"]
        assert all(lines[0].startswith("ok ") for lines in checks.values()), text
        secrets = [written["SECRET_KEY"], written["BFL_API_KEY"], *written["API_TOKENS"].split(",")]
        assert not [secret for secret in secrets if secret in text]

        listed = operator_cli("list", "--json", env=bare_env(FLUXHOOK_VAR=str(var)))
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout)["jobs"] == []
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0
    assert not settings_file.exists()
