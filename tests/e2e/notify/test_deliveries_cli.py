"""``fluxhook deliveries list|replay`` and ``fluxhook keys notify-secret|notify-enable`` as real processes, and the
Python client's ``deliveries``/``replay``, against the notification tests' stack."""

from __future__ import annotations

import json
import time

from cli_helpers import run_cli
from conftest import API_TOKEN
from devtools.processes import wait_until
from fluxhook.client import Client
from key_helpers import make_key


def _cli(stack, *args: str, token: str = API_TOKEN):
    return run_cli(*args[:2], "--url", stack.base_url, "--token", token, *args[2:])


def _state(api, job_id: str, state: str) -> dict:
    return wait_until(lambda: next((m for m in api.get(f"/v1/jobs/{job_id}/deliveries").json()["deliveries"]
                                    if m["state"] == state), None), timeout=30, message=f"a {state} message")


def test_list_and_replay_failed_deliveries_from_the_command_line(napi, sim, notify_stack, fourth_hooks):
    key, app = make_key(napi, notify_url=fourth_hooks.url("/refuses"))
    fourth_hooks.statuses["/refuses"] = 404
    job = app.submit("a fox for an app that refuses it")
    failed = _state(app, job["id"], "failed")

    listed = _cli(notify_stack, "deliveries", "list", "--state", "failed", token=key["key"])
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if failed["id"] in line)
    assert "job.ended" in row and "failed" in row and "404" in row and f"127.0.0.1:{fourth_hooks.port}" in row
    as_json = json.loads(_cli(notify_stack, "deliveries", "list", "--job", job["id"], "--json",
                              token=key["key"]).stdout)
    assert [m["id"] for m in as_json["deliveries"]] == [failed["id"]]

    fourth_hooks.statuses["/refuses"] = 200
    replayed = _cli(notify_stack, "deliveries", "replay", "--state", "failed", token=key["key"])
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed: 1" in replayed.stdout
    _state(app, job["id"], "delivered")
    assert {d.headers["webhook-id"] for d in fourth_hooks.for_job(job["id"])} == {failed["id"]}

    with Client(notify_stack.base_url, key["key"]) as client:
        [message] = client.deliveries(job["id"])
        assert message["state"] == "delivered" and [a["status"] for a in message["attempts"]] == [404, 200]
        assert failed["id"] in [m["id"] for m in client.deliveries(state="delivered")]
        assert client.replay(message["id"]) == 1
    wait_until(lambda: len(fourth_hooks.for_job(job["id"])) == 3, timeout=20, message="the replay")

    usage = _cli(notify_stack, "deliveries", "replay")
    assert usage.returncode == 2 and "--state" in usage.stderr


def test_an_admin_lists_and_replays_every_key_s_deliveries_without_naming_a_key(napi, sim, notify_stack, fourth_hooks):
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    key, app = make_key(napi, notify_url=fourth_hooks.url("/admin-sees"))
    other, _ = make_key(napi)
    fourth_hooks.statuses["/admin-sees"] = 404
    job = app.submit("a fox whose app refuses it, seen by an admin")
    failed = _state(app, job["id"], "failed")

    listed = _cli(notify_stack, "deliveries", "list", "--state", "failed", "--from", since)
    assert listed.returncode == 0, listed.stderr
    row = next((line for line in listed.stdout.splitlines() if failed["id"] in line), None)
    assert row is not None and "404" in row, listed.stdout  # was "no deliveries" without --key-id
    as_json = json.loads(_cli(notify_stack, "deliveries", "list", "--json").stdout)["deliveries"]
    assert failed["id"] in [m["id"] for m in as_json]
    assert failed["id"] in _cli(notify_stack, "deliveries", "list", "--key-id", key["id"]).stdout
    assert failed["id"] not in _cli(notify_stack, "deliveries", "list", "--key-id", other["id"]).stdout
    with Client(notify_stack.base_url, API_TOKEN) as client:
        assert failed["id"] in [m["id"] for m in client.deliveries(state="failed", since=since)]

    # What the list shows, a replay sends: the key's message too.
    fourth_hooks.statuses["/admin-sees"] = 200
    replayed = _cli(notify_stack, "deliveries", "replay", "--state", "failed", "--from", since)
    assert replayed.returncode == 0 and "replayed: 1" in replayed.stdout, (replayed.stdout, replayed.stderr)
    _state(app, job["id"], "delivered")


def test_a_key_s_notification_secret_and_targets_from_the_command_line(napi, notify_stack, fourth_hooks):
    created = _cli(notify_stack, "keys", "create", "cli-notified", "--notify-url", fourth_hooks.url("/cli"),
                   "--notify-events", "job.submitted,job.progress")
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert (made["notify_url"], made["notify_events"]) == (fourth_hooks.url("/cli"), ["job.submitted", "job.progress"])
    assert made["notify_secret"].startswith("whsec_")
    updated = _cli(notify_stack, "keys", "update", made["id"], "--notify-url", "none", "--notify-events", "job.progress")
    assert updated.returncode == 0, updated.stderr
    assert (json.loads(updated.stdout)["notify_url"], json.loads(updated.stdout)["notify_events"]) == (
        None, ["job.progress"])
    key, _ = make_key(napi)
    rotated = _cli(notify_stack, "keys", "notify-secret", key["id"])
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip().startswith("whsec_") and rotated.stdout.strip() != key["notify_secret"]
    assert "shown this once" in rotated.stderr
    enabled = _cli(notify_stack, "keys", "notify-enable", key["id"])
    assert enabled.returncode == 0 and "enabled: 0" in enabled.stdout
    assert _cli(notify_stack, "keys", "notify-enable", "key_0000000000000000").returncode == 2
