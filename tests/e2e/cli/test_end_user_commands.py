"""``fluxhook`` naming end users, as a real process against the session stack: ``submit``, ``list`` and ``batch
submit`` take ``--end-user``; ``keys create|update --end-user-limits`` and ``keys end-users KEY --set-limits|--show
NAME`` set and read what the end users' API does (docs/end-users.md). Each with two app keys: one key's end user is
never the other's."""

from __future__ import annotations

import json
import uuid

from cli_helpers import run_cli
from conftest import API_TOKEN
from devtools.processes import wait_until
from key_helpers import make_key


def _cli(stack, *args: str, token: str = API_TOKEN):
    return run_cli("--url", stack.base_url, "--token", token, *args)


def _name() -> str:
    return f"shopper-{uuid.uuid4().hex[:8]}"


def test_submit_and_list_name_an_end_user_and_another_keys_namesake_stays_its_own(stack, api, sim):
    shopper = _name()
    created_a, app_a = make_key(api)
    created_b, app_b = make_key(api)

    submitted = _cli(stack, "submit", "--prompt", "a red fox", "--end-user", shopper, token=created_a["key"])
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["end_user"] == shopper and app_a.job(job["id"])["end_user"] == shopper
    theirs = app_b.submit("b's namesake", end_user=shopper)["id"]
    app_a.submit("no end user")

    listed = _cli(stack, "list", "--end-user", shopper, "--json", token=created_a["key"])
    assert listed.returncode == 0, listed.stderr
    assert [j["id"] for j in json.loads(listed.stdout)["jobs"]] == [job["id"]]
    other = json.loads(_cli(stack, "list", "--end-user", shopper, "--json", token=created_b["key"]).stdout)
    assert [j["id"] for j in other["jobs"]] == [theirs]
    too_long = _cli(stack, "submit", "--prompt", "x", "--end-user", "x" * 129, token=created_a["key"])
    assert too_long.returncode == 2 and "end_user" in too_long.stderr


def test_batch_submit_names_the_end_user_of_every_item_without_its_own(stack, api, sim, tmp_path):
    shopper, own = _name(), _name()
    created, app = make_key(api)
    _, other_app = make_key(api)
    lines = tmp_path / "items.jsonl"
    lines.write_text(json.dumps({"input": {"prompt": "one"}}) + "\n"
                     + json.dumps({"input": {"prompt": "two"}, "end_user": own}) + "\n")

    sent = _cli(stack, "batch", "submit", str(lines), "--model", "flux-2-pro", "--end-user", shopper, "--no-wait",
                   token=created["key"])
    assert sent.returncode == 0, sent.stderr
    batch_id = sent.stdout.strip()
    jobs = wait_until(lambda: (lambda found: found if len(found) == 2 else None)(
        app.get(f"/v1/jobs?batch_id={batch_id}").json()["jobs"]), timeout=30, message="the batch's two items")
    assert sorted((j["batch_index"], j["end_user"]) for j in jobs) == [(0, shopper), (1, own)]
    assert other_app.get(f"/v1/jobs?end_user={shopper}").json()["jobs"] == []


def test_keys_set_and_show_an_end_users_limits_and_the_keys_defaults(stack, api):
    shopper = _name()
    made = _cli(stack, "keys", "create", f"cli-{shopper}", "--end-user-limits", '{"max_queued": 7}')
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["end_user_limits"]["max_queued"] == 7
    other, _ = make_key(api)

    set_limits = _cli(stack, "keys", "end-users", key["id"], "--set-limits", shopper, "--daily-credits", "2.5",
                         "--max-active", "1", "--requests-per-minute", "10")
    assert set_limits.returncode == 0, set_limits.stderr
    described = json.loads(set_limits.stdout)
    assert described["limits"] == {"requests_per_minute": 10, "max_active": 1, "max_queued": None,
                                   "daily_credits": 2.5}
    assert described["effective_limits"]["max_queued"] == 7  # the key's default where it set none of its own
    shown = json.loads(_cli(stack, "keys", "end-users", key["id"], "--show", shopper).stdout)
    assert shown["limits"] == described["limits"]
    assert api.get(f"/v1/keys/{key['id']}/end_users/{shopper}").json()["limits"]["daily_credits"] == 2.5
    # The other key's end user of the same name has none of them.
    assert set(api.get(f"/v1/keys/{other['id']}/end_users/{shopper}").json()["limits"].values()) == {None}

    updated = _cli(stack, "keys", "update", key["id"], "--end-user-limits", "none")
    assert updated.returncode == 0, updated.stderr
    assert set(json.loads(updated.stdout)["end_user_limits"].values()) == {None}
    cleared = json.loads(_cli(stack, "keys", "end-users", key["id"], "--set-limits", shopper).stdout)
    assert set(cleared["limits"].values()) == {None}

    stray = _cli(stack, "keys", "end-users", key["id"], "--daily-credits", "1")
    bad = _cli(stack, "keys", "end-users", key["id"], "--set-limits", shopper, "--max-active", "0")
    not_json = _cli(stack, "keys", "update", key["id"], "--end-user-limits", "[1]")
    assert stray.returncode == 2 and "--set-limits" in stray.stderr
    assert bad.returncode == 2 and "max_active" in bad.stderr
    assert not_json.returncode == 2 and "--end-user-limits" in not_json.stderr
    assert api.get(f"/v1/keys/{key['id']}/end_users/{shopper}").json()["limits"]["max_active"] is None
