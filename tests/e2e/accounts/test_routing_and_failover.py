"""Several BFL accounts from outside: the Procfile's web and worker with two simulated accounts, eu and
us, each its own endpoint, key and switch. Residency (an EU key's tasks reach only EU accounts, also while they are
down), billing (a client's key spends only its account), failover and waiting, and nothing sent twice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
import requests

from conftest import API, service_env
from devtools.processes import free_port, stop_process, wait_until
from devtools.stack import Stack, accounts_env, start_simulator_accounts
from key_helpers import make_key

EU_SECRET, US_SECRET = "eu-static-secret-0123456789", "us-static-secret-0123456789"
# A Redis database of this module's own: the stack's RQ queues and slots must not meet the session stack's.
DB = 10


class Account:
    """One simulated BFL account, driven through its control API."""

    def __init__(self, base: str):
        self.base = base

    def settings(self, **changes) -> dict:
        response = requests.post(f"{self.base}/_sim/settings", json=changes, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def submitted(self) -> int:
        return requests.get(f"{self.base}/_sim/stats", timeout=5).json()["submitted"]

    def refused(self) -> int:
        return requests.get(f"{self.base}/_sim/stats", timeout=5).json()["refused"]

    def unauthorized(self) -> int:
        return requests.get(f"{self.base}/_sim/stats", timeout=5).json()["unauthorized"]


@pytest.fixture(scope="module")
def two_accounts(redis_server, simulator, _spies, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("accounts")
    process, accounts = start_simulator_accounts(["eu", "us"], str(var_dir / "simulator.log"), "--task-delay", "0.2")
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{var_dir / 'images'}", **accounts_env(accounts.values())))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{DB}")
    env.update(BFL_EU_WEBHOOK_SECRET=EU_SECRET, BFL_US_WEBHOOK_SECRET=US_SECRET)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=Path(var_dir))
    try:
        running.start()
        yield API(running.base_url), Account(accounts["eu"].base), Account(accounts["us"].base)
    finally:
        running.stop()
        stop_process(process)


@pytest.fixture()
def accounts(two_accounts):
    api, eu, us = two_accounts
    for account in (eu, us):
        account.settings(refuse=None, refuse_retry_after=None)
    # Whatever an earlier test cooled down has recovered: a job of each region goes through.
    for region in ("eu", "us"):
        _, client = make_key(api, region=region)
        job = client.submit("warm-up")
        assert api.wait_for(job["id"], timeout=60)["status"] == "stored"
    return two_accounts


def _waiting(api: API, job_id: str) -> dict | None:
    return api.job(job_id).get("waiting")


def _waits(api: API, job_id: str, timeout: float = 30) -> dict:
    """The job's ``waiting`` once it waits in line; on a timeout, the job as it stands (for the failure's cause)."""
    try:
        return wait_until(lambda: _waiting(api, job_id), timeout=timeout, message="the job to wait")
    except TimeoutError:
        job = api.job(job_id)
        raise AssertionError(f"the job never waited in {timeout} s: {job}") from None


def test_a_region_key_stays_in_its_region_and_a_client_key_spends_its_account(accounts):
    api, eu, us = accounts
    _, eu_app = make_key(api, region="eu")
    _, client = make_key(api, accounts=["us"])
    before = eu.submitted(), us.submitted()
    eu_jobs = [eu_app.submit(f"eu {i}")["id"] for i in range(3)]
    client_jobs = [client.submit(f"client {i}")["id"] for i in range(3)]
    for job_id in eu_jobs + client_jobs:
        assert api.wait_for(job_id, timeout=60)["status"] == "stored"
    assert {api.job(j)["account"] for j in eu_jobs} == {"eu"}
    assert {api.job(j)["account"] for j in client_jobs} == {"us"}
    assert (eu.submitted() - before[0], us.submitted() - before[1]) == (3, 3)

    refused = eu_app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}, "account": "us"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_not_allowed"
    unknown = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}, "account": "mars"})
    assert unknown.status_code == 400 and "GET /v1/accounts" in unknown.json()["error"]["message"]
    bad = api.post("/v1/keys", json={"name": "x", "region": "apac"})
    assert bad.status_code == 400 and "region" in bad.json()["error"]["message"]


def test_an_account_answering_503_cools_and_its_jobs_go_elsewhere_but_never_out_of_region(accounts):
    api, eu, us = accounts
    _, eu_app = make_key(api, region="eu")
    eu.settings(refuse=503, refuse_retry_after=3)
    before_us = us.submitted()
    jobs = [api.submit(f"anywhere {i}")["id"] for i in range(6)]
    for job_id in jobs:
        assert api.wait_for(job_id, timeout=60)["status"] == "stored"
        assert api.job(job_id)["account"] == "us"
    assert us.submitted() - before_us == 6

    # The EU app's job may go nowhere else: it waits, saying why, and us never sees it.
    held = eu_app.submit("eu only")["id"]
    waiting = _waits(api, held)
    assert waiting["reason"] == "account_cooling" and waiting.get("until")
    assert us.submitted() - before_us == 6
    eu.settings(refuse=None)
    done = api.wait_for(held, timeout=60)
    assert (done["status"], done["account"]) == ("stored", "eu")


def test_with_every_account_down_jobs_wait_then_all_complete_none_sent_twice(accounts):
    api, eu, us = accounts
    for account in (eu, us):
        account.settings(refuse=503, refuse_retry_after=1)
    before = eu.submitted() + us.submitted()
    refused_before = eu.refused() + us.refused()
    jobs = [api.submit(f"both down {i}")["id"] for i in range(5)]
    for job_id in jobs:
        assert _waits(api, job_id)["reason"] == "account_cooling"
    wait_until(lambda: eu.refused() + us.refused() > refused_before + 2, timeout=30, message="BFL to refuse retries")
    assert eu.submitted() + us.submitted() == before
    for account in (eu, us):
        account.settings(refuse=None)
    for job_id in jobs:
        assert api.wait_for(job_id, timeout=60)["status"] == "stored"
    assert eu.submitted() + us.submitted() - before == 5  # each job's task accepted once, whatever was refused


def test_an_account_out_of_credits_rests_until_its_balance_reads_above_zero(accounts):
    api, eu, us = accounts
    _, eu_app = make_key(api, region="eu")
    eu.settings(refuse=402)
    job = eu_app.submit("no credits")["id"]
    assert _waits(api, job)["reason"] == "account_cooling"
    assert api.job(job)["status"] == "queued"  # with several accounts, a 402 fails no job
    eu.settings(refuse=None)  # credits again: the balance check ends the cooldown
    done = api.wait_for(job, timeout=90)
    assert (done["status"], done["account"]) == ("stored", "eu")


def test_a_callback_proven_with_one_accounts_secret_cannot_change_anothers_task(accounts):
    api, _, _ = accounts
    tracked = api.track("task-of-us-0001", account="us")
    assert tracked.status_code == 201 and tracked.json()["account"] == "us"
    body = {"id": "task-of-us-0001", "status": "Error", "error": "bad luck"}

    def static(secret: str) -> requests.Response:
        return requests.post(f"{api.base_url}/webhooks/bfl", json=body, timeout=10,
                             headers={"X-Webhook-Secret": secret})

    # eu's secret says nothing of us's task: kept as for a task eu's apps track nowhere, the job untouched.
    other = static(EU_SECRET)
    assert other.status_code == 202 and api.job(tracked.json()["id"])["attempts"]["webhooks"] == 0
    accepted = static(US_SECRET)  # its own account's: a hint, which BFL then confirms or not by a poll
    assert accepted.status_code == 200 and accepted.json()["outcome"] == "confirm_queued"
    assert api.job(tracked.json()["id"])["attempts"]["webhooks"] == 1


def test_a_callback_kept_before_its_task_is_tracked_is_checked_against_the_tracking_account(accounts):
    api, _, _ = accounts
    body = {"id": "task-of-us-0002", "status": "Generating", "progress": 0.5}

    def static(secret: str) -> requests.Response:
        return requests.post(f"{api.base_url}/webhooks/bfl", json=body, timeout=10,
                             headers={"X-Webhook-Secret": secret})

    kept = static(EU_SECRET)  # no job knows the task yet: kept, under eu's secret
    assert kept.status_code == 202, kept.text
    tracked = api.track("task-of-us-0002", account="us")
    assert tracked.status_code == 201 and tracked.json()["account"] == "us"
    job = api.job(tracked.json()["id"])
    assert job["attempts"]["webhooks"] == 0 and job["bfl_status"] != "Generating"  # eu's word is nothing to us's task
    assert static(US_SECRET).status_code == 200  # us's own: a hint, the job asks BFL through us
    assert api.job(job["id"])["attempts"]["webhooks"] == 1
    wait_until(lambda: api.job(job["id"])["attempts"]["polls"] >= 1, timeout=20, message="the confirming poll")


def test_a_tracked_tasks_polling_url_on_another_accounts_endpoint_never_gets_this_accounts_key(accounts):
    api, eu, us = accounts
    _, eu_app = make_key(api, region="eu")
    before = us.unauthorized()
    tracked = eu_app.track("task-of-nobody-0001", polling_url=f"{us.base}/v1/get_result?id=task-of-nobody-0001")
    assert tracked.status_code == 201 and tracked.json()["account"] == "eu"
    wait_until(lambda: api.job(tracked.json()["id"])["attempts"]["polls"] >= 1, timeout=60,
               message="the tracked task to be polled")
    assert us.unauthorized() == before  # polled at eu's own endpoint, never with eu's key at us's


def test_bfls_balance_is_every_accounts_together_for_an_admin_and_its_own_accounts_for_an_app_key(accounts):
    api, _, _ = accounts
    _, eu_app = make_key(api, region="eu")

    balances = wait_until(lambda: (lambda found: found if None not in found.values() else None)(
        {account["name"]: account["balance"] for account in api.get("/v1/accounts").json()["accounts"]}),
        timeout=60, message="a worker to read both accounts' balances")
    admin = api.get("/v1/credits")
    assert admin.status_code == 200, admin.text
    assert admin.json()["credits"] == pytest.approx(sum(balances.values()), abs=1)
    # A key bound to eu sees eu's balance only (docs/bfl-compatible.md: no daily_credits of its own).
    assert eu_app.get("/v1/credits").json()["credits"] == pytest.approx(balances["eu"], abs=1)


def test_a_submission_whose_answer_never_came_is_never_sent_again_and_bfls_callback_settles_it(accounts):
    api, eu, us = accounts
    _, eu_app = make_key(api, region="eu")
    # BFL takes the task but answers after fluxhook's read timeout (20 s): the task exists, the answer is lost.
    eu.settings(submit_delay=22)
    before = eu.submitted(), us.submitted()
    try:
        response = eu_app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "slow answer"}}, timeout=60)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert api.job(job_id)["status"] == "submitted"  # not failed, not sent elsewhere: it waits for BFL's word
    finally:
        eu.settings(submit_delay=0)
    done = api.wait_for(job_id, timeout=60)
    assert (done["status"], done["account"]) == ("stored", "eu") and done["bfl_id"]
    assert (eu.submitted() - before[0], us.submitted() - before[1]) == (1, 0)  # one task, paid once


def test_odd_account_fields_are_refused_and_change_nothing(accounts):
    api, eu, us = accounts
    key, eu_app = make_key(api, region="eu")
    before = eu.submitted() + us.submitted()
    listed = len(api.get("/v1/jobs").json()["jobs"])
    for odd in (5, [], {"eu": 1}, "", "EU", "x" * 10_000, "eu\x00", "../us", True):
        refused = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "x"}, "account": odd})
        assert refused.status_code == 400 and "'account'" in refused.json()["error"]["message"], (odd, refused.text)
    tracked = eu_app.track("task-elsewhere-0001", account="us")
    assert tracked.status_code == 403 and tracked.json()["error"]["code"] == "account_not_allowed"
    assert len(api.get("/v1/jobs").json()["jobs"]) == listed and eu.submitted() + us.submitted() == before

    for field, odd in (("accounts", "eu"), ("accounts", []), ("accounts", [5]), ("accounts", ["eu"] * 33),
                       ("accounts", ["mars"]), ("region", 5), ("region", ""), ("region", "EU!"), ("region", "apac")):
        created = api.post("/v1/keys", json={"name": "odd", field: odd})
        assert created.status_code == 400 and f"'{field}'" in created.json()["error"]["message"], (field, odd)
        changed = requests.patch(f"{api.base_url}/v1/keys/{key['id']}", json={field: odd}, timeout=10,
                                 headers={"Authorization": api.http.headers["Authorization"]})
        assert changed.status_code == 400, (field, odd)
    assert api.get(f"/v1/keys/{key['id']}").json()["region"] == "eu"  # unchanged by any of them


def test_the_accounts_list_is_for_admins_only_and_never_shows_a_key(accounts):
    api, _, _ = accounts
    _, app = make_key(api)
    assert requests.get(f"{api.base_url}/v1/accounts", timeout=10).status_code == 401
    assert API(api.base_url, token="fhk_0000000000000000_" + "x" * 43).get("/v1/accounts").status_code == 401
    assert app.get("/v1/accounts").status_code == 403
    # A key of BFL's in x-key beside the admin token is a credential of its own, and not one fluxhook issued.
    assert api.get("/v1/accounts", headers={"X-Key": "sim-eu-key"}).status_code == 401
    odd = api.get("/v1/accounts", headers={"X-Forwarded-For": "1.2.3.4", "Accept": "text/html;q=0, */*;q=0.1"})
    assert odd.status_code == 200 and [a["name"] for a in odd.json()["accounts"]] == ["eu", "us"]
    assert "sim-eu-key" not in odd.text and "sim-us-key" not in odd.text and "secret" not in odd.text
