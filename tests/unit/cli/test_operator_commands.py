"""The operator commands' rules (fluxhook/cli/operator_commands.py): the sweep's summary, the doctor's configuration
lines, and where the service's settings come from. The commands as processes are in
tests/e2e/cli/test_operator_commands.py."""

from __future__ import annotations

from devtools import settings_file
from fluxhook.cli import dev_run, operator_commands
from fluxhook.core.config import Config


def test_sweep_summary():
    assert operator_commands.sweep_summary({"due": 2, "deadlines": 1}) == (
        "swept: 2 due (a check queued for each), 1 deadlines (jobs ended at their Cancel-After deadline)")


def test_doctor_warns_about_a_public_base_url_bfl_cannot_reach():
    # Checked without the network: the BFL check itself would contact api.bfl.ai.
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": "key", "SECRET_KEY": "x" * 32,
                              "API_TOKENS": "token-123456", "PUBLIC_BASE_URL": "http://localhost:8000"})
    lines = [operator_commands.check_line(check) for check in operator_commands.config_checks(config)]
    assert lines[0].startswith("ok    config    valid (BFL_API_BASE=https://api.bfl.ai")
    assert lines[1].startswith("warn  config    PUBLIC_BASE_URL is http://localhost:8000: BFL cannot call back")


def test_doctor_names_each_accounts_endpoint_and_warns_only_for_bfls_own():
    settings = {"REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "x" * 32, "API_TOKENS": "token-123456",
                "BFL_ACCOUNTS": "eu,us", "BFL_EU_API_KEY": "eu-key", "BFL_EU_API_BASE": "http://127.0.0.1:8901",
                "BFL_US_API_KEY": "us-key", "BFL_US_API_BASE": "http://127.0.0.1:8902"}
    lines = [operator_commands.check_line(c) for c in operator_commands.config_checks(Config.from_env(settings))]
    # Both accounts at the simulator (make run's RUN_ACCOUNTS=2): their callbacks arrive at localhost.
    assert lines == ["ok    config    valid (BFL_ACCOUNTS=eu,us: eu at http://127.0.0.1:8901; us at "
                     "http://127.0.0.1:8902, STORAGE_URL=file://./var/images, PUBLIC_BASE_URL=http://localhost:8000)"]
    real = Config.from_env({**settings, "BFL_US_API_BASE": "https://api.us.bfl.ai"})
    lines = [operator_commands.check_line(c) for c in operator_commands.config_checks(real)]
    assert lines[1] == ("warn  config    PUBLIC_BASE_URL is http://localhost:8000: BFL cannot call back there, so every "
                        "job through us waits for the fallback poll (set it to this service's public https address)")


def test_service_settings_take_a_dev_run_unless_the_environment_names_another_service(tmp_path):
    settings_file.write_dev_run(tmp_path / dev_run.DEV_RUN_FILE, {
        "REDIS_URL": "redis://127.0.0.1:7000/0", "SECRET_KEY": "dev-key", "API_TOKENS": "dev-token", "PORT": "8123"})
    found = operator_commands.service_settings({"FLUXHOOK_VAR": str(tmp_path), "PORT": "9000", "LOG_LEVEL": " "})
    assert found.dev_run == tmp_path / dev_run.DEV_RUN_FILE
    assert found.values["REDIS_URL"] == "redis://127.0.0.1:7000/0" and found.values["SECRET_KEY"] == "dev-key"
    assert found.values["PORT"] == "9000"  # the environment's own value wins
    assert "LOG_LEVEL" not in found.values and str(found.dev_run) in found.source()
    assert "dev-key" not in found.source() and "dev-token" not in found.source()

    # A shell that exports the run's own REDIS_URL (and Sentinel's settings) still checks that run.
    same = operator_commands.service_settings({"FLUXHOOK_VAR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:7000/0"})
    assert same.dev_run == tmp_path / dev_run.DEV_RUN_FILE and same.values["SECRET_KEY"] == "dev-key"

    # Another service's settings are never completed from a dev run's file, and the doctor says why.
    own = operator_commands.service_settings({"FLUXHOOK_VAR": str(tmp_path), "REDIS_URL": "redis://prod:6379/0",
                                              "REDIS_SENTINELS": "10.0.0.1:26379"})
    assert own.dev_run is None and "SECRET_KEY" not in own.values
    assert own.source() == (f"from the environment alone: its REDIS_URL and REDIS_SENTINELS are not the running make "
                            f"run's, so that run's settings ({tmp_path / dev_run.DEV_RUN_FILE}) are not read; unset "
                            "REDIS_URL and REDIS_SENTINELS to check that run")
    assert operator_commands.config_problem(own, "SECRET_KEY: is required but not set") == (
        "SECRET_KEY: is required but not set (the environment's REDIS_URL and REDIS_SENTINELS are not the running "
        f"make run's, so its settings ({tmp_path / dev_run.DEV_RUN_FILE}) are not read: set SECRET_KEY as the "
        "service has it, or unset REDIS_URL and REDIS_SENTINELS to check that run)")
    alone = operator_commands.service_settings({"FLUXHOOK_VAR": str(tmp_path / "none"), "REDIS_URL": "redis://a/0"})
    assert alone.dev_run is None and alone.source() == "from the environment"
    assert operator_commands.config_problem(alone, "API_TOKENS: is required but not set").endswith(
        "(read from the environment alone, as there is no make run here: set API_TOKENS as the service has it, or "
        "run this command where the service runs)")


def test_a_dev_runs_file_holds_boto3s_settings_only_with_s3_storage():
    env = {"STORAGE_URL": "s3://bucket/images", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_PROFILE": "work", "PATH": "/usr/bin", "REDIS_URL": "redis://a/0"}
    assert settings_file.run_settings(env, {"STORAGE_URL", "REDIS_URL", "SECRET_KEY"}) == {
        "STORAGE_URL": "s3://bucket/images", "REDIS_URL": "redis://a/0", "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret", "AWS_PROFILE": "work"}
    on_disk = {**env, "STORAGE_URL": "file:///srv/images"}
    assert settings_file.run_settings(on_disk, {"STORAGE_URL"}) == {"STORAGE_URL": "file:///srv/images"}
