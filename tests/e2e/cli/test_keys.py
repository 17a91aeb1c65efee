"""``fluxhook keys create|list|update|revoke`` as a real process against the session stack."""

from __future__ import annotations

import json

from cli_helpers import run_cli
from conftest import API, API_TOKEN


def keys_cli(stack, action: str, *args: str, token: str = API_TOKEN):
    return run_cli("keys", action, "--url", stack.base_url, "--token", token, *args)


def test_create_list_update_and_revoke(stack, api):
    created = keys_cli(stack, "create", "cli-shop", "--models", "flux-2-pro,flux-dev", "--requests-per-minute", "30",
                       "--daily-credits", "12.5", "--max-queued", "500", "--reads-per-minute", "900",
                       "--items-per-minute", "700", "--items-per-day", "7000")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("fhk_") and "shown this once" in created.stderr
    assert (key["models"], key["requests_per_minute"], key["daily_credits"]) == (["flux-2-pro", "flux-dev"], 30, 12.5)
    assert key["max_queued"] == 500
    assert (key["reads_per_minute"], key["items_per_minute"], key["items_per_day"]) == (900, 700, 7000)
    assert API(api.base_url, token=key["key"]).get("/v1/jobs").status_code == 200

    listed = keys_cli(stack, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if key["id"] in line)
    assert "cli-shop" in row and "30/min" in row and "0 / 12.5" in row and "active" in row
    assert key["key"] not in listed.stdout
    as_json = json.loads(keys_cli(stack, "list", "--json").stdout)
    assert key["id"] in [k["id"] for k in as_json["keys"]]

    updated = keys_cli(stack, "update", key["id"], "--weight", "3", "--requests-per-minute", "none", "--name", "cli-2",
                       "--max-queued", "none", "--items-per-day", "none")
    assert updated.returncode == 0, updated.stderr
    assert (json.loads(updated.stdout)["weight"], json.loads(updated.stdout)["requests_per_minute"],
            json.loads(updated.stdout)["name"], json.loads(updated.stdout)["max_queued"]) == (3, None, "cli-2", None)
    assert (json.loads(updated.stdout)["items_per_day"], json.loads(updated.stdout)["reads_per_minute"]) == (None, 900)

    revoked = keys_cli(stack, "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert api.get(f"/v1/keys/{key['id']}").json()["revoked_at"] is not None


def test_refusals_exit_2_with_the_apis_reason(stack, api):
    key = api.post("/v1/keys", json={"name": "cli-app"}).json()

    with_app_key = keys_cli(stack, "list", token=key["key"])
    bad_limit = keys_cli(stack, "create", "cli-bad", "--weight", "0")
    unknown = keys_cli(stack, "revoke", "key_0123456789abcdef")
    nothing = keys_cli(stack, "update", key["id"])

    assert with_app_key.returncode == 2 and "admin token" in with_app_key.stderr
    assert bad_limit.returncode == 2 and "weight" in bad_limit.stderr
    assert unknown.returncode == 2 and "no app key" in unknown.stderr
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
