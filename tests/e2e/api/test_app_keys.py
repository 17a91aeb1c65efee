"""App keys at run time, over real HTTP against the Procfile's processes: ``/v1/keys`` for admin tokens, the
secret shown once and kept nowhere, app keys as bearer tokens, and revocation and expiry seen by every web
process within a second."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import redis
import requests

from conftest import API
from devtools.processes import wait_until
from fluxhook.lifecycle.steps import callers
from helpers import assert_error
from key_helpers import as_key, make_key, second_web

ROUND_TRIPS_DB = 9  # a web app of its own, no stack running beside it (the stacks on 9 are other modules')
KEY_FIELDS = {"id", "name", "prefix", "models", "daily_credits", "max_active", "max_queued", "requests_per_minute",
              "reads_per_minute", "items_per_minute", "items_per_day", "weight",
              "expires_at", "created_at", "last_used_at", "revoked_at", "spent_today", "jobs_today", "active",
              "canceled_running", "queued", "queued_by_reason", "accounts", "region", "notify_url", "notify_events",
              "notify_secret_rotated_at", "strict_input", "end_user_limits", "end_user_moderation_limit"}


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _everything_in(connection: redis.Redis) -> bytes:
    """Every key name and value of the database, as bytes (to look for a secret in)."""
    found = []
    for name in connection.scan_iter(count=1000):
        found.append(name)
        kind = connection.type(name)
        if kind == b"string":
            found.append(connection.get(name) or b"")
        elif kind == b"hash":
            found += [part for pair in connection.hgetall(name).items() for part in pair]
        elif kind == b"zset":
            found += connection.zrange(name, 0, -1)
        elif kind == b"list":
            found += connection.lrange(name, 0, -1)
        elif kind == b"set":
            found += list(connection.smembers(name))
    return b"\n".join(found)


def test_a_key_is_created_with_its_secret_once_and_listed_without_it(api, stack, redis_server):
    expires = time.time() + 30 * 86400
    response = api.post("/v1/keys", json={"name": "shop", "models": ["flux-2-pro"], "daily_credits": 50,
                                          "max_active": 3, "requests_per_minute": 30, "weight": 2,
                                          "expires_at": _iso(expires)})

    assert response.status_code == 201, response.text
    created = response.json()
    secret = created.pop("key")
    notify_secret = created.pop("notify_secret")
    assert set(created) == KEY_FIELDS
    assert notify_secret.startswith("whsec_") and notify_secret != secret
    assert secret.startswith("fhk_") and len(secret) > 40 and created["prefix"] == secret[:8]
    assert created["id"].startswith("key_") and created["name"] == "shop"
    assert (created["models"], created["daily_credits"], created["max_active"], created["requests_per_minute"],
            created["weight"]) == (["flux-2-pro"], 50.0, 3, 30, 2)
    assert created["expires_at"] == _iso(expires) and created["revoked_at"] is None
    assert (created["spent_today"], created["jobs_today"], created["active"], created["queued"],
            created["queued_by_reason"]) == (0.0, 0, 0, 0, {})

    listed = api.get("/v1/keys").json()["keys"]
    assert listed[0]["id"] == created["id"] and "key" not in listed[0]
    shown = api.get(f"/v1/keys/{created['id']}").json()
    assert "key" not in shown and "notify_secret" not in shown and shown["name"] == "shop"
    assert as_key(api, secret).get("/v1/jobs").status_code == 200
    # Neither Redis nor the web log keeps the secret; Redis keeps its hash.
    everything = _everything_in(redis.Redis.from_url(redis_server.url))
    assert secret.encode() not in everything
    assert callers.digest(secret).encode() in everything
    assert secret not in (stack.var_dir / "web.log").read_text()
    # Its notification secret is kept sealed: neither it nor its base64 part is in Redis or the log.
    for part in (notify_secret, notify_secret.removeprefix("whsec_")):
        assert part.encode() not in everything and part not in (stack.var_dir / "web.log").read_text()


def test_a_new_key_has_no_limits_and_weight_one(api):
    created, _ = make_key(api)

    assert (created["models"], created["daily_credits"], created["max_active"], created["requests_per_minute"],
            created["expires_at"], created["weight"]) == (None, None, None, None, None, 1)


@pytest.mark.parametrize("body, names", [
    pytest.param({}, "name", id="no-name"),
    pytest.param({"name": ""}, "name", id="empty-name"),
    pytest.param({"name": "x" * 101}, "name", id="long-name"),
    pytest.param({"name": "a", "models": []}, "models", id="no-models"),
    pytest.param({"name": "a", "models": ["Flux Pro"]}, "models", id="bad-model"),
    pytest.param({"name": "a", "daily_credits": 0}, "daily_credits", id="zero-credits"),
    pytest.param({"name": "a", "daily_credits": "10"}, "daily_credits", id="credits-as-text"),
    pytest.param({"name": "a", "max_active": 0}, "max_active", id="zero-active"),
    pytest.param({"name": "a", "max_active": 1.5}, "max_active", id="fractional-active"),
    pytest.param({"name": "a", "max_queued": 0}, "max_queued", id="zero-queued"),
    pytest.param({"name": "a", "requests_per_minute": True}, "requests_per_minute", id="boolean-rate"),
    pytest.param({"name": "a", "reads_per_minute": 0}, "reads_per_minute", id="zero-reads"),
    pytest.param({"name": "a", "items_per_minute": 2.5}, "items_per_minute", id="fractional-items"),
    pytest.param({"name": "a", "items_per_day": "100"}, "items_per_day", id="items-as-text"),
    pytest.param({"name": "a", "weight": 0}, "weight", id="zero-weight"),
    pytest.param({"name": "a", "weight": 101}, "weight", id="heavy-weight"),
    pytest.param({"name": "a", "expires_at": "tomorrow"}, "expires_at", id="bad-time"),
    pytest.param({"name": "a", "expires_at": "2030-01-01T00:00:00"}, "expires_at", id="time-without-zone"),
    pytest.param({"name": "a", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", id="time-past"),
    pytest.param({"name": "a", "key": "fhk_mine"}, "key", id="own-secret"),
    pytest.param(["name"], "object", id="not-an-object"),
])
def test_a_bad_key_body_is_refused_and_creates_nothing(api, body, names):
    before = len(api.get("/v1/keys").json()["keys"])

    error = assert_error(api.post("/v1/keys", json=body), 400, "invalid_request")

    assert names in error["message"]
    assert len(api.get("/v1/keys").json()["keys"]) == before


def test_an_app_key_may_not_manage_keys(api):
    created, app = make_key(api)

    for response in (app.get("/v1/keys"), app.post("/v1/keys", json={"name": "mine"}),
                     app.get(f"/v1/keys/{created['id']}"), app.delete(f"/v1/keys/{created['id']}"),
                     app.request("PATCH", f"/v1/keys/{created['id']}", json={"weight": 9})):
        assert_error(response, 403, "forbidden")
    assert api.get(f"/v1/keys/{created['id']}").json()["weight"] == 1
    assert_error(requests.get(api.base_url + "/v1/keys", timeout=5), 401, "unauthorized")


def test_a_key_changes_its_name_and_limits_and_null_removes_one(api):
    created, app = make_key(api, requests_per_minute=5, models=["flux-2-pro"])

    response = api.request("PATCH", f"/v1/keys/{created['id']}",
                           json={"name": "renamed", "requests_per_minute": None, "max_active": 2, "weight": 3})

    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["name"], changed["requests_per_minute"], changed["max_active"], changed["weight"],
            changed["models"]) == ("renamed", None, 2, 3, ["flux-2-pro"])
    assert changed["prefix"] == created["prefix"] and "key" not in changed
    assert app.get("/v1/jobs").status_code == 200  # the secret is unchanged
    assert_error(api.request("PATCH", f"/v1/keys/{created['id']}", json={"weight": -1}), 400, "invalid_request")
    limits = api.request("PATCH", f"/v1/keys/{created['id']}",
                         json={"reads_per_minute": 900, "items_per_minute": 700, "items_per_day": 7000}).json()
    assert (limits["reads_per_minute"], limits["items_per_minute"], limits["items_per_day"]) == (900, 700, 7000)
    shown = api.get(f"/v1/keys/{created['id']}").json()
    assert (shown["reads_per_minute"], shown["items_per_minute"], shown["items_per_day"]) == (900, 700, 7000)
    back = api.request("PATCH", f"/v1/keys/{created['id']}", json={"reads_per_minute": None}).json()
    assert (back["reads_per_minute"], back["items_per_day"]) == (None, 7000)  # null: READS_PER_MINUTE again
    assert "'items_per_day'" in assert_error(api.request("PATCH", f"/v1/keys/{created['id']}",
                                                         json={"items_per_day": 0}), 400, "invalid_request")["message"]


def test_unknown_keys_answer_404(api):
    for path in ("/v1/keys/key_0123456789abcdef", "/v1/keys/nothing"):
        assert_error(api.get(path), 404, "not_found")
        assert_error(api.request("PATCH", path, json={"weight": 2}), 404, "not_found")
        assert_error(api.delete(path), 404, "not_found")


@pytest.mark.parametrize("token", [
    pytest.param("fhk_0123456789abcdef_" + "x" * 43, id="unknown-key"),
    pytest.param("fhk_", id="prefix-only"),
    pytest.param("fhk_zz", id="bad-id"),
])
def test_tokens_shaped_like_keys_that_are_none_answer_401(api, token):
    assert_error(as_key(api, token).get("/v1/jobs"), 401, "unauthorized")


def test_a_wrong_secret_for_a_real_key_answers_401(api):
    _, app = make_key(api)
    secret = app.http.headers["Authorization"].split()[1]

    forged = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")

    assert_error(as_key(api, forged).get("/v1/jobs"), 401, "unauthorized")


def test_last_used_at_is_recorded_when_the_key_is_used(api):
    created, app = make_key(api)
    assert created["last_used_at"] is None

    app.get("/v1/jobs")

    used = api.get(f"/v1/keys/{created['id']}").json()["last_used_at"]
    assert used is not None
    assert abs(datetime.fromisoformat(used).timestamp() - time.time()) < 5


def test_revocation_is_seen_by_every_web_process_within_a_second(api, stack):
    created, app = make_key(api)
    with second_web(stack.env) as other:
        other_app = as_key(other, app.http.headers["Authorization"].split()[1])
        # Both processes (and gunicorn's two workers) have read the key and hold it in their caches.
        for _ in range(10):
            assert requests.get(api.base_url + "/v1/jobs", headers=app.http.headers, timeout=5).status_code == 200
        assert other_app.get("/v1/jobs").status_code == 200

        assert api.delete(f"/v1/keys/{created['id']}").status_code == 204
        revoked_at = time.monotonic()
        accepted: list[float] = []  # when each request the key still passed was sent

        def refused(send) -> bool:
            sent = time.monotonic()
            if send().status_code == 401:
                return True
            accepted.append(sent - revoked_at)
            return False

        def refused_everywhere() -> bool:
            fresh = [refused(lambda: requests.get(api.base_url + "/v1/jobs", headers=app.http.headers, timeout=5))
                     for _ in range(6)]
            return all([*fresh, refused(lambda: other_app.get("/v1/jobs"))])

        wait_until(refused_everywhere, timeout=10, interval=0.05, message="the revoked key to be refused")
        # Judged by when each request was sent, not by when the rounds of them ended, which a loaded machine
        # stretches: a process that kept the key a second or more (a longer cache) passes one sent after it.
        assert max(accepted, default=0.0) < 1.0, accepted
    error = assert_error(app.get("/v1/jobs"), 401, "unauthorized")
    assert "revoked" in error["message"]
    shown = api.get(f"/v1/keys/{created['id']}").json()
    assert shown["revoked_at"] is not None
    assert api.delete(f"/v1/keys/{created['id']}").status_code == 204  # revoking twice is harmless
    assert api.get(f"/v1/keys/{created['id']}").json()["revoked_at"] == shown["revoked_at"]
    assert_error(api.request("PATCH", f"/v1/keys/{created['id']}", json={"weight": 2}), 409, "key_revoked")


def test_a_key_answers_401_once_it_expires(api):
    expires = int(time.time()) + 3
    _, app = make_key(api, expires_at=_iso(expires))
    assert app.get("/v1/jobs").status_code == 200

    error = wait_until(lambda: (lambda r: r.json() if r.status_code == 401 else None)(app.get("/v1/jobs")),
                       timeout=5, message="the key to expire")

    assert "expired" in error["error"]["message"]
    assert time.time() >= expires


def test_admin_tokens_keep_working_beside_keys(api):
    make_key(api)

    assert api.get("/v1/jobs").status_code == 200
    assert API(api.base_url, token="second-token-abcdef").get("/v1/keys").status_code == 200


def test_an_app_key_costs_one_read_then_none_while_cached(local_app):
    from helpers import commands_during

    api, connection = local_app(ROUND_TRIPS_DB)
    _, app = make_key(api)
    job = app.track("round-trip-task").json()

    def key_commands(action) -> list[str]:
        commands = commands_during(connection, ROUND_TRIPS_DB, action)
        return [c["command"] for c in commands if c["client_type"] != "lua" and "fh:appkey:" in c["command"]]

    # A process that has not read the key yet: one read (the first use also records last_used_at, once a minute).
    fresh, _ = make_key(api)
    fresh_app = as_key(api, fresh["key"])
    first = key_commands(lambda: fresh_app.get("/v1/jobs?limit=1"))
    assert [c.split()[0] for c in first] in (["HGETALL"], ["HGETALL", "EVALSHA"]), first
    # The same key again and again: from the process's cache (at most one read, should half a second pass).
    again = key_commands(lambda: [app.get(f"/v1/jobs/{job['id']}") for _ in range(5)])
    assert len(again) <= 1, again
