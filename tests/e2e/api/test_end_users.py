"""An app key's end users over real HTTP, against the Procfile's processes and a second web process: a burst of one
end user's jobs against its daily allowance spends at most one job's price over it while another end user of the same
key and another key's end user of the same name go on; a blocked end user is refused 403 on fluxhook's routes and
BFL's until unblocked; the end user is on the job and in the usage by end user, and never reaches BFL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cli_helpers import run_cli
from conftest import API, API_TOKEN
from devtools.processes import wait_until
from helpers import assert_error, sign_in, stack_on_db
from key_helpers import as_key, make_key, second_web

DB = 11
BURST = 50
ENDED_OR_WAITING = ("stored", "failed", "moderated", "canceled", "expired", "aborted")


@pytest.fixture(scope="module")
def webs(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("end-users-stack")), DB,
                     BFL_MAX_ACTIVE="8") as running:
        with second_web(running.env) as other:
            yield API(running.base_url), other


def _post(client: API, prompt: str, end_user: str | None, model: str = "flux-2-pro"):
    body = {"model": model, "input": {"prompt": prompt}}
    if end_user is not None:
        body["end_user"] = end_user
    return client.post("/v1/jobs", json=body)


def _settled(client: API, end_user: str) -> list[dict]:
    """The end user's jobs once none is on its way to BFL or at it: each ended, or waiting in line."""
    jobs: list[dict] = []

    def settled() -> bool:
        jobs[:] = client.get(f"/v1/jobs?end_user={end_user}&limit=100").json()["jobs"]
        return all(j["status"] in ENDED_OR_WAITING or (j["status"] == "queued" and j["waiting"]
                                                        and "daily_credits" in j["waiting"]["reason"]) for j in jobs)

    wait_until(settled, timeout=60, message=f"{end_user}'s jobs settled")
    return jobs


def _spent(client: API, end_user: str) -> float:
    rows = client.get(f"/v1/usage?end_user={end_user}").json()["days"]
    return round(sum(row["credits"] for row in rows), 6)


def test_a_burst_against_an_end_users_daily_credits_spends_at_most_one_price_over_it_and_others_go_on(webs, sim):
    admin, second = webs
    _, probe_key = make_key(admin)
    probe = _post(probe_key, "price probe", "probe").json()
    wait_until(lambda: probe_key.get(f"/v1/jobs/{probe['id']}").json()["cost"] is not None, timeout=30,
               message="the probe's price")
    price = probe_key.get(f"/v1/jobs/{probe['id']}").json()["cost"]["credits"]
    allowance = round(price * 4.5, 6)
    created, app = make_key(admin, end_user_limits={"daily_credits": allowance})
    _, other_key = make_key(admin, end_user_limits={"daily_credits": allowance})
    clients = [app, as_key(second, created["key"])]

    with ThreadPoolExecutor(24) as pool:
        burst = pool.map(lambda n: _post(clients[n % 2], f"burst {n}", "x"), range(BURST))
        others = [pool.submit(_post, app, "y's job", "y"), pool.submit(_post, other_key, "b's x", "x")]
        answers = list(burst)

    codes = sorted({r.status_code for r in answers})
    assert set(codes) <= {202, 402}, [r.text for r in answers if r.status_code not in (202, 402)][:3]
    for refused in (r for r in answers if r.status_code == 402):
        assert "end user 'x'" in assert_error(refused, 402, "budget_exceeded")["message"]
    assert all(f.result().status_code == 202 for f in others)
    _settled(app, "x")
    spent = _spent(app, "x")
    assert allowance - price <= spent <= allowance + price, (spent, allowance, price)
    assert any(j["status"] == "stored" for j in _settled(app, "y"))
    assert any(j["status"] == "stored" for j in _settled(other_key, "x"))
    print(f"burst of {BURST}: {sum(r.status_code == 202 for r in answers)} accepted, spent {spent} of {allowance} "
          f"(price {price})")


def test_a_blocked_end_user_is_refused_on_every_route_until_unblocked(webs, sim):
    admin, _ = webs
    created, app = make_key(admin)
    _, other_key = make_key(admin)

    blocked = admin.post(f"/v1/keys/{created['id']}/end_users/x/block")
    assert blocked.status_code == 200 and blocked.json()["blocked_reason"] == "manual"
    refused = assert_error(_post(app, "blocked", "x"), 403, "end_user_blocked")
    assert "end user 'x'" in refused["message"]
    dropin = app.post("/v1/flux-2-pro", json={"prompt": "blocked"}, headers={"X-End-User": "x"})
    assert dropin.status_code == 403 and "end_user_blocked" in dropin.json()["detail"]
    assert app.get("/v1/jobs?end_user=x").json()["jobs"] == []
    # The key's other end user and another key's end user of the same name go on.
    assert _post(app, "y goes on", "y").status_code == 202
    assert _post(other_key, "b's x goes on", "x").status_code == 202
    metrics = requests.get(f"{admin.base_url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    wait_until(lambda: 'fluxhook_end_user_refusals_total{key="' + created["name"] + '",reason="manual"}'
               in requests.get(f"{admin.base_url}/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"},
                               timeout=10).text, timeout=15, message="the refusal counted in /metrics")
    assert metrics.status_code == 200

    assert admin.post(f"/v1/keys/{created['id']}/end_users/x/unblock").json()["blocked"] is False
    assert _post(app, "unblocked", "x").status_code == 202


def test_the_end_user_is_kept_by_fluxhook_and_never_reaches_bfl(webs, sim):
    admin, _ = webs
    _, app = make_key(admin)

    sent = app.post("/v1/flux-2-pro", json={"prompt": "from the drop-in", "end_user": "shopper-1"})
    assert sent.status_code == 200, sent.text
    by_header = app.post("/v1/flux-2-pro", json={"prompt": "by header"},
                         headers={"X-End-User": "shopper-1", "Idempotency-Key": "order-1"})
    assert by_header.status_code == 200
    # The same key with another end user is another request.
    other = app.post("/v1/flux-2-pro", json={"prompt": "by header"},
                     headers={"X-End-User": "shopper-2", "Idempotency-Key": "order-1"})
    assert other.status_code == 422 and "Idempotency-Key was first used" in other.text
    jobs = app.get("/v1/jobs?end_user=shopper-1").json()["jobs"]
    assert {j["id"] for j in jobs} == {sent.json()["id"], by_header.json()["id"]}
    assert all(j["end_user"] == "shopper-1" for j in jobs)
    wait_until(lambda: all(app.get(f"/v1/jobs/{j['id']}").json()["status"] in ENDED_OR_WAITING for j in jobs),
               timeout=30, message="both ended")
    assert all("end_user" not in (app.get(f"/v1/jobs/{j['id']}").json().get("input") or {}) for j in jobs)
    rows = app.get("/v1/usage?group_by=end_user").json()["days"]
    assert [(r["end_user"], r["jobs"]) for r in rows] == [("shopper-1", 2)]
    # The key's page on the dashboard lists it among its top end users; the admin API too.
    created_id = jobs[0]["key_id"]
    assert admin.get(f"/v1/keys/{created_id}/end_users").json()["end_users"][0]["end_user"] == "shopper-1"
    http, _ = sign_in(admin.base_url)
    page = http.get(f"{admin.base_url}/keys/{created_id}", timeout=10)
    assert page.status_code == 200 and 'data-end-user="shopper-1"' in page.text
    printed = run_cli("keys", "end-users", "--url", admin.base_url, "--token", API_TOKEN, created_id)
    assert printed.returncode == 0 and "shopper-1" in printed.stdout and "END USER" in printed.stdout
    assert_error(_post(app, "too long", "x" * 129), 400)
    assert_error(app.get("/v1/usage?group_by=model"), 400)


def test_an_end_user_moderated_as_often_as_its_keys_limit_is_blocked_and_counted(webs, sim):
    admin, _ = webs
    created, app = make_key(admin, end_user_moderation_limit=2)

    for n in range(2):
        moderated = _post(app, f"[content-moderated] {n}", "x").json()
        wait_until(lambda job=moderated: app.get(f"/v1/jobs/{job['id']}").json()["status"] == "moderated",
                   timeout=30, message="moderated by BFL")

    refused = assert_error(_post(app, "once more", "x"), 403, "end_user_blocked")
    assert "moderated 2 of its jobs today" in refused["message"]
    assert _post(app, "y goes on", "y").status_code == 202
    rows = app.get("/v1/usage?end_user=x").json()["days"]
    assert [(r["jobs"], r["moderated"]) for r in rows] == [(2, 2)]
    shown = admin.get(f"/v1/keys/{created['id']}/end_users/x").json()
    assert shown["blocked_reason"] == "moderated" and shown["today"]["moderated"] == 2
    admin.post(f"/v1/keys/{created['id']}/end_users/x/unblock")
    assert _post(app, "forgiven", "x").status_code == 202


def test_a_non_ascii_end_user_is_one_end_user_by_header_and_by_body_and_bytes_not_utf8_are_refused(webs, sim):
    """The header is read as UTF-8, as the JSON body is: an app naming 'jürgen' in X-End-User (as curl and most
    clients send it) names the end user its body names, so one person never gets two allowances by switching routes;
    bytes that are not UTF-8 are a 400 (BFL's 422) and nothing is made. Another key's 'jürgen' goes on."""
    admin, _ = webs
    created, app = make_key(admin, end_user_limits={"requests_per_minute": 2})
    _, other_key = make_key(admin, end_user_limits={"requests_per_minute": 2})
    name = "jürgen-ß"
    utf8 = {"X-End-User": name.encode()}

    assert _post(app, "by body 1", name).status_code == 202
    both = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "both"}, "end_user": name},
                    headers=utf8)
    assert both.status_code == 202, both.text
    assert both.json()["end_user"] == name
    # Its minute's two are spent: by header, on fluxhook's route and BFL's, it is the same end user.
    assert "end user 'jürgen-ß'" in assert_error(
        app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "by header"}}, headers=utf8),
        429, "rate_limited")["message"]
    dropin = app.post("/v1/flux-2-pro", json={"prompt": "by header"}, headers=utf8)
    assert dropin.status_code == 429, dropin.text
    assert other_key.post("/v1/flux-2-pro", json={"prompt": "b's"}, headers=utf8).status_code == 200

    before = len(app.get("/v1/jobs?limit=100").json()["jobs"])
    for raw in (b"ab\xff\xfe", b"caf\xe9"):
        assert "UTF-8" in assert_error(
            app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "bad bytes"}},
                     headers={"X-End-User": raw}), 400)["message"]
        refused = app.post("/v1/flux-2-pro", json={"prompt": "bad bytes"}, headers={"X-End-User": raw})
        assert refused.status_code == 422 and "UTF-8" in refused.json()["detail"], refused.text
    assert len(app.get("/v1/jobs?limit=100").json()["jobs"]) == before
    assert [j["end_user"] for j in app.get("/v1/jobs?limit=100").json()["jobs"]] == [name, name]
