"""``make run``'s own settings (devtools/run.py, devtools/stack.py), README.md: its web listens on 127.0.0.1 unless
``HOST`` says otherwise while the Procfile's command keeps production's 0.0.0.0, and a key's ``notify_url`` may name
a receiver on this machine. The run itself: tests/e2e/dev/test_make_run.py."""

from __future__ import annotations

import shlex
import sys

import pytest
from gunicorn.app.wsgiapp import WSGIApplication

from devtools.run import DEV_HOST, DEV_NOTIFY_HOSTS, dev_stack, notify_allowlist, run_url, web_lines
from devtools.stack import Stack, procfile_commands
from fluxhook.core.config import Config

SETTINGS = {"REDIS_URL": "redis://127.0.0.1:1/0", "BFL_API_KEY": "bfl-key", "SECRET_KEY": "x" * 32,
            "API_TOKENS": "token-123456", "PORT": "8000"}
NOTIFY_SECRET = "whsec_" + "A" * 43  # base64 of 32 bytes


def _prepared(tmp_path, host: str | None, **env: str) -> Stack:
    """A stack with the dev defaults filled in (nothing started: Redis and BFL are the settings')."""
    stack = Stack(env={**SETTINGS, **env}, var_dir=tmp_path, host=host)
    stack.prepare()
    return stack


def _gunicorn_binds(env: dict[str, str], monkeypatch) -> list[str]:
    """Where gunicorn listens when it runs the Procfile's web command in ``env`` (its configuration as it resolves
    it: config file, then GUNICORN_CMD_ARGS, then the command line)."""
    monkeypatch.setattr(sys, "argv", shlex.split(procfile_commands()["web"]))
    for name in ("PORT", "GUNICORN_CMD_ARGS"):
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])
    return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg.bind


def test_the_dev_run_listens_on_loopback_and_the_procfile_on_every_interface(tmp_path, monkeypatch):
    dev = _prepared(tmp_path / "dev", DEV_HOST)
    assert _gunicorn_binds(dev.env, monkeypatch) == ["127.0.0.1:8000"]
    assert dev.base_url == "http://127.0.0.1:8000" and run_url(dev) == "http://localhost:8000"

    procfile = _prepared(tmp_path / "procfile", None)
    assert "GUNICORN_CMD_ARGS" not in procfile.env
    binds = _gunicorn_binds(procfile.env, monkeypatch)
    assert len(binds) == 1 and binds[0].startswith("0.0.0.0:"), binds


@pytest.mark.parametrize(("host", "bind", "base_url", "shown"), [
    ("0.0.0.0", "0.0.0.0:8000", "http://127.0.0.1:8000", "http://localhost:8000"),
    ("::", "[::]:8000", "http://127.0.0.1:8000", "http://localhost:8000"),
    ("::1", "[::1]:8000", "http://[::1]:8000", "http://localhost:8000"),
    ("192.168.1.5", "192.168.1.5:8000", "http://192.168.1.5:8000", "http://192.168.1.5:8000"),
])
def test_host_says_where_the_dev_run_listens_and_is_reached(tmp_path, host, bind, base_url, shown):
    stack = _prepared(tmp_path, host)
    assert stack.env["GUNICORN_CMD_ARGS"] == f"--bind {bind}"
    assert (stack.base_url, run_url(stack)) == (base_url, shown)


def test_gunicorn_args_of_the_environment_are_kept_and_a_bind_among_them_wins(tmp_path):
    assert _prepared(tmp_path / "a", DEV_HOST, GUNICORN_CMD_ARGS="--log-level debug").env["GUNICORN_CMD_ARGS"] == (
        "--log-level debug --bind 127.0.0.1:8000")
    assert _prepared(tmp_path / "b", DEV_HOST, GUNICORN_CMD_ARGS="-b 10.0.0.1:8000").env["GUNICORN_CMD_ARGS"] == (
        "-b 10.0.0.1:8000")


def test_the_banner_says_where_the_web_listens_and_which_receivers_here_are_allowed(tmp_path):
    web, notify = web_lines(_prepared(tmp_path / "dev", DEV_HOST))
    assert web == "  web:    listening on 127.0.0.1:8000 (this machine only; HOST=0.0.0.0 to be reached from others)"
    assert notify.startswith("  notify: a notify_url on http://127.0.0.1:<any port> (or localhost) reaches a receiver")
    assert web_lines(_prepared(tmp_path / "open", "0.0.0.0"))[0] == "  web:    listening on 0.0.0.0:8000"


def test_the_loopback_receivers_are_added_to_the_allowlist_the_environment_gives_or_defaults_to():
    loopback = notify_allowlist({}).split(",")
    assert loopback == list(DEV_NOTIFY_HOSTS) == ["127.0.0.1:*", "localhost:*"]
    assert notify_allowlist({"NOTIFY_HOST_ALLOWLIST": " hooks.example.com "}).split(",") == ["hooks.example.com",
                                                                                                *loopback]
    # Unset, NOTIFY_HOST_ALLOWLIST is NOTIFY_URL's host: it stays allowed, or the service would refuse to start.
    env = {**SETTINGS, "NOTIFY_URL": "https://app.example.com/hook", "NOTIFY_SECRET": NOTIFY_SECRET}
    config = Config.from_env({**env, "NOTIFY_HOST_ALLOWLIST": notify_allowlist(env)})
    assert [str(entry) for entry in config.notify_host_allowlist] == ["app.example.com", *loopback]


def test_a_dev_run_accepts_a_key_whose_notify_url_is_a_receiver_on_this_machine(local_app):
    api, _ = local_app(14, NOTIFY_HOST_ALLOWLIST=notify_allowlist({}))
    for url in ("http://127.0.0.1:9000/hook", "http://localhost:5001/hook", "http://127.0.0.1:65000/hook"):
        created = api.post("/v1/keys", json={"name": f"app-{url[-9:-5]}", "notify_url": url})
        assert created.status_code == 201, created.text
        assert api.get(f"/v1/keys/{created.json()['id']}").json()["notify_url"] == url
    # Another machine, as in a deployment: a 400 that names the setting that would allow it.
    refused = api.post("/v1/keys", json={"name": "elsewhere", "notify_url": "http://10.0.0.5:9000/hook"})
    assert refused.status_code == 400 and "NOTIFY_HOST_ALLOWLIST" in refused.json()["error"]["message"]


def test_without_the_dev_runs_allowlist_a_receiver_on_this_machine_is_refused(local_app):
    api, _ = local_app(14)
    refused = api.post("/v1/keys", json={"name": "app", "notify_url": "http://127.0.0.1:9000/hook"})
    assert refused.status_code == 400 and "NOTIFY_HOST_ALLOWLIST" in refused.json()["error"]["message"]


def test_the_dev_run_makes_a_notify_secret_kept_across_runs_and_the_environments_own_wins(tmp_path):
    env = dict(SETTINGS)
    first = dev_stack(env, tmp_path)
    first.prepare()
    made = first.env["NOTIFY_SECRET"]
    assert Config.from_env(first.env).notify_secret == made  # a Standard Webhooks secret the service takes
    assert (tmp_path / "notify_secret").stat().st_mode & 0o777 == 0o600
    again = dev_stack(dict(SETTINGS), tmp_path)
    again.prepare()
    assert again.env["NOTIFY_SECRET"] == made  # a receiver's secret stays valid after a restart
    given = dev_stack({**SETTINGS, "NOTIFY_SECRET": NOTIFY_SECRET}, tmp_path / "given")
    given.prepare()
    assert given.env["NOTIFY_SECRET"] == NOTIFY_SECRET
    # The Procfile's and the tests' stacks make none: a deployment sets its own.
    assert "NOTIFY_SECRET" not in _prepared(tmp_path / "procfile", None).env


def test_the_dev_tokens_job_with_a_notify_url_here_is_taken_as_the_banner_says(tmp_path, local_app):
    stack = dev_stack(dict(SETTINGS), tmp_path)
    stack.prepare()
    api, _ = local_app(14, NOTIFY_HOST_ALLOWLIST=notify_allowlist({}), NOTIFY_SECRET=stack.env["NOTIFY_SECRET"])
    made = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "[pending] a fox"},
                                      "notify_url": "http://127.0.0.1:9000/hook"})
    assert made.status_code == 202, made.text
    (_, notify) = web_lines(stack)
    assert "for the dev token's jobs with NOTIFY_SECRET (in the settings file below)" in notify
