"""What an app key sees, over real HTTP against the Procfile's processes: only its own jobs (another key's
answers 404 on every route, media included), only its own spend in /v1/usage; admins see everything and
filter by ``key_id``."""

from __future__ import annotations

import time

import pytest

from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key


@pytest.fixture()
def two_keys(api):
    """Keys A and B, each with a stored job of its own."""
    _, a = make_key(api, name="scope-a")
    _, b = make_key(api, name="scope-b")
    job_a = a.submit("a fox of A's")
    job_b = b.submit("a fox of B's")
    return a, b, a.wait_for(job_a["id"], "stored"), b.wait_for(job_b["id"], "stored")


def _key_id(client) -> str:
    return "key_" + client.http.headers["Authorization"].split("_")[1]


def test_jobs_carry_the_key_that_created_them(api, two_keys):
    a, b, job_a, job_b = two_keys
    admin_job = api.submit("an admin's fox")

    assert job_a["key_id"] == _key_id(a) and job_b["key_id"] == _key_id(b)
    assert admin_job["key_id"] is None
    assert api.job(job_a["id"])["key_id"] == _key_id(a)


@pytest.mark.parametrize("method, suffix, headers", [
    pytest.param("GET", "", {}, id="read"),
    pytest.param("GET", "", {"Prefer": "wait=10"}, id="wait"),
    pytest.param("GET", "/image", {}, id="image"),
    pytest.param("HEAD", "/image", {}, id="image-head"),
    pytest.param("GET", "/video", {}, id="video"),
    pytest.param("GET", "/poster", {}, id="poster"),
    pytest.param("GET", "/draft_cache", {}, id="draft-cache"),
    pytest.param("DELETE", "", {}, id="delete"),
])
def test_another_keys_job_answers_404_and_stays(api, two_keys, method, suffix, headers):
    a, b, job_a, _ = two_keys

    started = time.monotonic()
    response = b.request(method, f"/v1/jobs/{job_a['id']}{suffix}", headers=headers)

    assert response.status_code == 404
    if method != "HEAD":
        assert response.json()["error"]["code"] == "not_found"
    assert time.monotonic() - started < 5  # a wait on another key's job is not a wait (of the 10 s asked)
    assert a.job(job_a["id"])["status"] == "stored"
    assert a.get(f"/v1/jobs/{job_a['id']}/image").status_code == 200


def test_a_key_reads_waits_on_downloads_and_deletes_its_own_job(two_keys):
    a, _, job_a, _ = two_keys

    waited = a.get(f"/v1/jobs/{job_a['id']}", headers={"Prefer": "wait=5"})
    image = a.get(f"/v1/jobs/{job_a['id']}/image")

    assert waited.status_code == 200 and waited.headers["Preference-Applied"] == "wait=5"
    assert image.status_code == 200 and image.headers["ETag"].strip('"') == job_a["image"]["sha256"]
    assert a.delete(f"/v1/jobs/{job_a['id']}").status_code == 204
    assert a.get(f"/v1/jobs/{job_a['id']}").status_code == 404
    assert job_a["id"] not in [j["id"] for j in a.get("/v1/jobs").json()["jobs"]]


def test_the_signed_link_still_opens_the_image_without_a_token(two_keys):
    import requests

    _, _, job_a, _ = two_keys

    assert requests.get(job_a["image"]["url"], timeout=10).status_code == 200


def test_a_key_lists_only_its_own_jobs(api, two_keys):
    a, b, job_a, job_b = two_keys
    more = a.submit("another fox of A's")

    listed = [j["id"] for j in a.get("/v1/jobs", params={"limit": 100}).json()["jobs"]]
    filtered = a.get("/v1/jobs", params={"status": "stored", "model": "flux-2-pro"}).json()["jobs"]
    asked_for_b = a.get("/v1/jobs", params={"key_id": _key_id(b)}).json()

    assert listed == [more["id"], job_a["id"]]
    assert [j["id"] for j in filtered] == [job_a["id"]]
    assert asked_for_b == {"jobs": [], "next_cursor": None}


def test_admins_see_every_job_and_filter_by_key(api, two_keys):
    a, b, job_a, job_b = two_keys

    everything = [j["id"] for j in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"]]
    only_b = api.get("/v1/jobs", params={"key_id": _key_id(b)}).json()["jobs"]
    b_stored = api.get("/v1/jobs", params={"key_id": _key_id(b), "status": "stored", "model": "flux-2-pro"}).json()

    assert job_a["id"] in everything and job_b["id"] in everything
    assert [j["id"] for j in only_b] == [job_b["id"]]
    assert [j["id"] for j in b_stored["jobs"]] == [job_b["id"]]
    assert_error(api.get("/v1/jobs", params={"key_id": "nobody"}), 400, "invalid_request")


def test_paging_through_one_keys_jobs(api):
    _, app = make_key(api)
    ids = [app.submit(f"page {n}")["id"] for n in range(5)]

    first = app.get("/v1/jobs", params={"limit": 2}).json()
    second = app.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = app.get("/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()

    seen = [j["id"] for page in (first, second, third) for j in page["jobs"]]
    assert seen == ids[::-1] and third["next_cursor"] is None


def test_a_key_tracks_tasks_as_its_own(api):
    _, a = make_key(api)
    _, b = make_key(api)

    tracked = a.track("scope-tracked-task-1")

    assert tracked.status_code == 201 and tracked.json()["key_id"] == _key_id(a)
    assert b.get(f"/v1/jobs/{tracked.json()['id']}").status_code == 404
    theirs = b.track("scope-tracked-task-1")  # tracking is per key: b's own job, and a's untouched
    assert theirs.status_code == 201 and theirs.json()["id"] != tracked.json()["id"]
    assert theirs.json()["key_id"] == _key_id(b) and a.job(tracked.json()["id"])["key_id"] == _key_id(a)
    assert a.track("scope-tracked-task-1").json()["id"] == tracked.json()["id"]


def test_usage_counts_only_the_keys_own_spend(api, two_keys):
    a, b, job_a, _ = two_keys

    mine = a.get("/v1/usage").json()
    theirs = b.get("/v1/usage").json()
    asked_for_b = a.get("/v1/usage", params={"key_id": _key_id(b)}).json()
    admin_a = api.get("/v1/usage", params={"key_id": _key_id(a)}).json()
    everyone = api.get("/v1/usage").json()

    cost = job_a["cost"]["credits"]
    assert [(r["key_id"], r["jobs"], r["stored"], r["credits"]) for r in mine["days"]] == [(_key_id(a), 1, 1, cost)]
    assert mine["total_credits"] == cost and mine["spent_today"] == cost and mine["daily_limit"] is None
    assert [r["key_id"] for r in theirs["days"]] == [_key_id(b)]
    assert asked_for_b == mine  # an app key's usage is its own, whatever it asks
    assert admin_a == mine
    keys_seen = {r["key_id"] for r in everyone["days"]}
    assert {_key_id(a), _key_id(b)} <= keys_seen
    assert everyone["total_credits"] == round(sum(r["credits"] for r in everyone["days"]), 6)
    assert everyone["spent_today"] >= 2 * cost
    assert_error(api.get("/v1/usage", params={"key_id": "key_x"}), 400, "invalid_request")


def test_a_key_object_shows_its_spend_and_jobs_today(api, two_keys):
    a, _, job_a, _ = two_keys

    shown = api.get(f"/v1/keys/{_key_id(a)}").json()

    assert (shown["spent_today"], shown["jobs_today"], shown["active"], shown["queued"]) == (
        job_a["cost"]["credits"], 1, 0, 0)


def test_credits_spent_carry_the_keys_name_in_the_metrics(api, two_keys):
    import requests

    a, _, job_a, _ = two_keys

    def spent() -> float:
        text = requests.get(api.base_url + "/metrics", timeout=10, headers=api.http.headers).text
        series = 'fluxhook_credits_spent_total{account="default",key="scope-a",model="flux-2-pro"} '
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(series))

    # The worker writes its counts every few seconds.
    wait_until(lambda: spent() >= job_a["cost"]["credits"], timeout=15, message="the credits under the key's name")


def test_a_dearer_price_in_the_result_counts_under_the_keys_name(api, sim):
    import requests

    created, app = make_key(api)

    def spent(text: str) -> float:
        line = f'fluxhook_credits_spent_total{{account="default",key="{created["name"]}",model="flux-2-pro"}}'
        return sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line + " "))

    sim.settings(result_cost_fields={"cost": 4.5, "output_mp": 1.0})  # dearer than its answer said
    before = spent(requests.get(api.base_url + "/metrics", timeout=10, headers=api.http.headers).text)
    job = app.submit("a fox whose price went up")
    assert job["cost"]["credits"] < 4.5 and app.wait_for(job["id"], "stored")["cost"]["credits"] == 4.5
    # The worker writes its counts every few seconds.
    wait_until(lambda: spent(requests.get(api.base_url + "/metrics", timeout=10, headers=api.http.headers).text)
               - before >= 4.5 - 1e-9, timeout=15, message="the worker's counts")
    after = requests.get(api.base_url + "/metrics", timeout=10, headers=api.http.headers).text
    assert spent(after) - before == pytest.approx(4.5)


def test_what_a_key_may_still_spend_today(api, two_keys, stack):
    from fluxhook.core.config import Config
    from fluxhook.lifecycle.steps import key_limits
    from fluxhook.services import build_services

    a, _, job_a, _ = two_keys
    svc = build_services(Config.from_env(stack.env))
    key = svc.store.app_keys.get(_key_id(a))
    assert key_limits.credits_left_today(svc, key, time.time()) is None
    api.request("PATCH", f"/v1/keys/{key.id}", json={"daily_credits": job_a["cost"]["credits"] + 2})

    left = key_limits.credits_left_today(svc, svc.store.app_keys.get(key.id), time.time())

    assert left == 2.0


def test_the_bfl_compatible_routes_keep_each_key_to_its_own(api, two_keys):
    import requests

    a, b, job_a, _ = two_keys
    secret_b = b.http.headers["Authorization"].split()[1]

    def get_result(job_id: str, key: str) -> dict:
        return requests.get(api.base_url + "/v1/get_result", params={"id": job_id}, headers={"x-key": key},
                            timeout=10).json()

    assert get_result(job_a["id"], secret_b) == {"id": job_a["id"], "status": "Task not found"}
    assert get_result(job_a["id"], a.http.headers["Authorization"].split()[1])["status"] == "Ready"
    api.request("PATCH", f"/v1/keys/{_key_id(b)}", json={"daily_credits": 100})
    expected = {"credits": 100 - job_a["cost"]["credits"]}  # both keys' jobs cost the same

    # A change of the key reaches every web process within a second.
    wait_until(lambda: requests.get(api.base_url + "/v1/credits", headers={"x-key": secret_b},
                                    timeout=10).json() == expected, timeout=2, message="the key's credits left")
