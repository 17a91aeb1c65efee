"""Each app key's limits, over real HTTP against the Procfile's processes and a second web process: each
refuses only that key while other keys go on, and holds under concurrency over several processes; a revoked
key's queued jobs end ``failed`` / ``key_revoked``, unpaid, while its submitted ones finish; a job a key's limit
holds back says so (``waiting``) in its JSON, on its page and in its key's counts."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from cli_helpers import operator_cli, run_cli
from conftest import API, API_TOKEN, service_env
from devtools.processes import free_port, wait_until
from devtools.stack import Stack
from helpers import assert_error, sign_in
from key_helpers import as_key, make_key, second_web

STACK_DB = 1
MAX_ACTIVE = 2


@pytest.fixture(scope="module")
def limits_stack(redis_server, simulator, _spies, tmp_path_factory):
    """The Procfile's processes with BFL_MAX_ACTIVE=2 on a database of their own, and a second web process."""
    var_dir = Path(tmp_path_factory.mktemp("limits-stack"))
    env = dict(os.environ)
    env.update(service_env(redis_server, simulator, _spies[0].port, free_port(),
                           STORAGE_URL=f"file://{var_dir / 'images'}", BFL_MAX_ACTIVE=str(MAX_ACTIVE)))
    env["REDIS_URL"] = redis_server.url.replace("/0", f"/{STACK_DB}")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    running = Stack(env=env, var_dir=var_dir)
    running.start()
    with second_web(env) as other:
        yield API(running.base_url), other, env
    running.stop()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


@pytest.fixture()
def webs(limits_stack, sim):
    """Both web front doors: gunicorn's and the second process."""
    return limits_stack[:2]


def _post(client: API, prompt: str, model: str = "flux-2-pro"):
    return client.post("/v1/jobs", json={"model": model, "input": {"prompt": prompt}})


def test_a_key_may_use_only_its_models(webs):
    admin, _ = webs
    created, app = make_key(admin, models=["flux-2-pro", "flux-dev"])
    _, other = make_key(admin)

    error = assert_error(_post(app, "a fox", model="flux-2-max"), 403, "model_not_allowed")

    assert "flux-2-pro" in error["message"]
    assert app.get("/v1/jobs").json()["jobs"] == []
    assert _post(app, "a fox").status_code == 202
    assert _post(other, "a fox", model="flux-2-max").status_code == 202


def test_requests_per_minute_hold_over_two_web_processes(webs):
    admin, second = webs
    created, app = make_key(admin, requests_per_minute=5)
    _, other = make_key(admin)
    clients = [app, as_key(second, app.http.headers["Authorization"].split()[1])]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: _post(clients[n % 2], f"rate {n}"), range(16)))

    codes = sorted(r.status_code for r in answers)
    assert codes == [202] * 5 + [429] * 11
    for refused in (r for r in answers if r.status_code == 429):
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(app.get("/v1/jobs", params={"limit": 100}).json()["jobs"]) == 5
    assert _post(other, "another app goes on").status_code == 202
    assert_error(_post(app, "still refused"), 429, "rate_limited")


def test_bad_submissions_do_not_count_against_the_rate(webs):
    admin, _ = webs
    _, app = make_key(admin, requests_per_minute=2)

    for _ in range(3):
        assert_error(app.post("/v1/jobs", json={"model": "flux-2-pro"}), 400, "invalid_request")

    assert [_post(app, f"ok {n}").status_code for n in range(3)] == [202, 202, 429]


def test_daily_credits_hold_under_concurrency_over_two_web_processes(api, stack, sim):
    # On the session stack: with BFL's slots free, what is measured is the credit limit alone.
    with second_web(stack.env) as second:
        _daily_credits_hold(api, second)


def _daily_credits_hold(admin: API, second: API) -> None:
    from simulator import pricing

    limit, model = 50, "flux-2-flex"
    cheap, dear = {"width": 1024, "height": 1024}, {"width": 4096, "height": 4096}
    dearest = pricing.price(model, dear)["cost"]
    created, app = make_key(admin, daily_credits=limit)
    _, other = make_key(admin)
    clients = [app, as_key(second, app.http.headers["Authorization"].split()[1])]
    # BFL's prices for the model are known (from another app's jobs), so each request reserves its bound.
    for size in (cheap, dear):
        admin.wait_for(admin.post("/v1/jobs", json={"model": model, "input": dict(size, prompt="priced")}).json()["id"])
    # The cheap ones alone cannot reach the limit: a dear one must go too, bounded by what BFL charged.
    bodies = [dict(cheap, prompt=f"cheap {n}") for n in range(6)] + [dict(dear, prompt=f"dear {n}") for n in range(14)]

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: clients[n % 2].post("/v1/jobs", json={"model": model, "input": bodies[n]}),
                                range(20)))

    assert {r.status_code for r in answers} <= {202, 402}, [r.text for r in answers]
    refused = [r.json()["error"] for r in answers if r.status_code == 402]
    assert all(e["code"] == "budget_exceeded" and "daily_credits" in e["message"] for e in refused)
    ids = [r.json()["id"] for r in answers if r.status_code == 202]

    def settled():
        # Once the key's spend reaches its limit nothing more of it is sent; what was sent before must end.
        spent = admin.get(f"/v1/keys/{created['id']}").json()["spent_today"]
        jobs = [admin.job(job_id) for job_id in ids]
        sent = [j for j in jobs if j["bfl_id"]]
        done = all(j["status"] == "stored" or (j["status"] == "queued" and not j["bfl_id"]) for j in jobs)
        return (spent, sent) if spent >= limit and done and spent == pytest.approx(
            sum(j["cost"]["credits"] for j in sent)) else None

    spent, sent = wait_until(settled, timeout=90, interval=0.3, message="the key's credits to be spent")
    assert limit <= spent <= limit + dearest, spent
    assert any(j["cost"]["credits"] == dearest for j in sent)  # dear ones went too, within the bound
    assert_error(_post(app, "one more"), 402, "budget_exceeded")
    assert _post(other, "another app goes on").status_code == 202  # only that key is refused
    assert admin.get("/v1/usage", params={"key_id": created["id"]}).json()["daily_limit"] == limit
    # What waits for tomorrow's credits is canceled: at UTC midnight it would reach a later test's simulator.
    for job_id in {j["id"] for j in map(admin.job, ids) if j["status"] == "queued"}:
        assert app.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "canceled"


def test_max_active_holds_back_only_that_keys_jobs(webs, sim):
    admin, _ = webs
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the stack's earlier jobs to end")
    created, app = make_key(admin, max_active=1)
    _, other = make_key(admin)

    first, second = app.submit("[pending] its only place"), app.submit("[pending] waits its turn")
    theirs = other.submit("[pending] another app's")

    assert (first["status"], second["status"], theirs["status"]) == ("submitted", "queued", "submitted")
    assert (first["waiting"], second["waiting"], theirs["waiting"]) == (None, {"reason": "key_max_active"}, None)
    assert app.job(second["id"]) == second  # a queued job's answer is the job as recorded, though not read back
    shown = admin.get(f"/v1/keys/{created['id']}").json()
    assert (shown["active"], shown["queued"], shown["queued_by_reason"]) == (1, 1, {"key_max_active": 1})
    sim.complete(first["bfl_id"])
    sent = admin.wait_for(second["id"], "submitted", "ready", "stored")
    assert sent["bfl_id"] and sent["waiting"] is None
    for job in (second, theirs):
        sim.complete(admin.job(job["id"])["bfl_id"])
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the jobs to end")


def _idle(admin: API) -> bool:
    """Whether no job of the stack is still under way (earlier tests' jobs hold slots until they end)."""
    return all(not admin.get("/v1/jobs", params={"status": s}).json()["jobs"] for s in ("queued", "submitted", "ready"))


def test_a_job_waiting_for_its_keys_spent_daily_credits_says_so_everywhere(webs, limits_stack, sim):
    """docs/fair-share.md: a job accepted 202 that its key's spent daily_credits hold back says why in its JSON, its page and
    its key's counts (the reason was once only in the worker's log, and the key's queued count missed the job)."""
    admin, _ = webs
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the stack's earlier jobs to end")
    created, app = make_key(admin, daily_credits=1000)
    held = [app.submit(f"[pending] holds {n}") for n in range(MAX_ACTIVE)]
    waiting = app.submit("waits for a slot, then for its key's credits")
    assert [j["status"] for j in held] == ["submitted"] * MAX_ACTIVE and waiting["status"] == "queued"
    assert waiting["waiting"] == {"reason": "bfl_slots"}
    # Its key's credits for today end while it waits: the admin lowers them to what the key has spent.
    spent = admin.get(f"/v1/keys/{created['id']}").json()["spent_today"]
    assert spent > 0
    assert admin.request("PATCH", f"/v1/keys/{created['id']}", json={"daily_credits": spent}).status_code == 200

    sim.complete(held[0]["bfl_id"])  # a slot frees; the worker tries to send the job, and the budget says no

    job = wait_until(lambda: (j := admin.job(waiting["id"]))["waiting"] == {
        "reason": "key_daily_credits", "until": _next_utc_midnight()} and j, timeout=20, interval=0.2,
        message="the job to wait for its key's credits")
    assert (job["status"], job["bfl_id"]) == ("queued", None)
    assert app.job(waiting["id"])["waiting"]["reason"] == "key_daily_credits"  # the app sees it too
    listed = app.get("/v1/jobs", params={"status": "queued"}).json()["jobs"]
    assert [(j["id"], j["waiting"]["reason"]) for j in listed] == [(waiting["id"], "key_daily_credits")]
    shown = admin.get(f"/v1/keys/{created['id']}").json()
    assert (shown["queued"], shown["queued_by_reason"]) == (1, {"key_daily_credits": 1})
    keys_list = admin.get("/v1/keys").json()["keys"]
    assert next(k for k in keys_list if k["id"] == created["id"])["queued_by_reason"] == {"key_daily_credits": 1}

    # The dashboard: the job's page and timeline, and the Keys page, say why.
    http, signed_in = sign_in(admin.base_url)
    assert signed_in.status_code == 303
    page = http.get(f"{admin.base_url}/jobs/{waiting['id']}", timeout=10).text
    assert "key_daily_credits" in page and "its app key&#39;s daily_credits are spent for today" in page
    assert "Waiting: key daily credits" in page  # the timeline's entry
    live = http.get(f"{admin.base_url}/live/jobs/{waiting['id']}", timeout=10).json()["job"]
    assert [e["title"] for e in live["timeline"] if e["kind"] == "waiting"] == [
        "Waiting: BFL slots", "Waiting: key daily credits"]
    keys_page = http.get(f"{admin.base_url}/keys", timeout=10).text
    row = keys_page[keys_page.index(f'data-key-id="{created["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert '<span data-field="active_queued">1 / 1</span>' in row
    assert re.search(r'data-reason="key_daily_credits"[^>]*>1 key daily credits<', row), row
    # fluxhook keys list.
    listed = run_cli("keys", "list", "--url", admin.base_url, "--token", API_TOKEN)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if created["id"] in line)
    assert "key_daily_credits 1" in line and "1/1" in line

    # Revoked, its waiting job ends unpaid, and no count is left behind.
    assert admin.delete(f"/v1/keys/{created['id']}").status_code == 204
    ended = admin.job(waiting["id"])
    assert (ended["status"], ended["error"]["code"], ended["waiting"]) == ("failed", "key_revoked", None)
    shown = admin.get(f"/v1/keys/{created['id']}").json()
    assert (shown["queued"], shown["queued_by_reason"]) == (0, {})
    sim.complete(held[1]["bfl_id"])
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the jobs to end")


def _next_utc_midnight() -> str:
    tomorrow = datetime.fromtimestamp(time.time(), UTC) + timedelta(days=1)
    return tomorrow.strftime("%Y-%m-%dT00:00:00Z")


def test_revoking_ends_queued_jobs_unpaid_and_lets_submitted_ones_finish(webs, sim):
    admin, second = webs
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the stack's earlier jobs to end")
    sent_before = sim.stats()["submitted"]
    created, app = make_key(admin)
    # Tasks that stay pending at BFL hold both slots: the key's later jobs wait in line.
    held = [app.submit(f"[pending] held {n}") for n in range(MAX_ACTIVE)]
    queued = [app.submit(f"waits {n}") for n in range(3)]
    assert [j["status"] for j in held] == ["submitted"] * MAX_ACTIVE
    assert [j["status"] for j in queued] == ["queued"] * 3
    assert admin.get(f"/v1/keys/{created['id']}").json()["queued"] == 3
    spent_before = admin.get("/v1/usage", params={"key_id": created["id"]}).json()["spent_today"]

    assert second.delete(f"/v1/keys/{created['id']}").status_code == 204

    for job in queued:
        ended = admin.job(job["id"])
        assert (ended["status"], ended["error"]["code"], ended["cost"], ended["bfl_id"]) == (
            "failed", "key_revoked", None, None)
    for job in held:
        sim.complete(admin.job(job["id"])["bfl_id"])
    finished = [admin.wait_for(job["id"]) for job in held]
    assert [j["status"] for j in finished] == ["stored"] * MAX_ACTIVE
    usage = admin.get("/v1/usage", params={"key_id": created["id"]}).json()
    assert usage["spent_today"] == spent_before
    assert sum(r["jobs"] for r in usage["days"]) == MAX_ACTIVE
    assert sim.stats()["submitted"] - sent_before == MAX_ACTIVE
    shown = admin.get(f"/v1/keys/{created['id']}").json()
    assert (shown["queued"], shown["active"]) == (0, 0)


def test_the_doctor_lists_the_keys_near_their_limits(webs, limits_stack):
    admin, _ = webs
    wait_until(lambda: _idle(admin), timeout=30, interval=0.2, message="the stack's earlier jobs to end")
    _, app = make_key(admin, name="doctor-busy", max_active=1)
    in_an_hour = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    make_key(admin, name="doctor-soon", expires_at=in_an_hour)
    make_key(admin, name="doctor-calm", max_active=5, daily_credits=1000)
    app.submit("[pending] holds its only place")

    result = operator_cli("doctor", env=dict(limits_stack[2]))

    lines = [line for line in result.stdout.splitlines() if line.split()[1:2] == ["keys"]]
    assert any(line.startswith("warn") and "doctor-busy" in line and "its max_active" in line for line in lines)
    assert any(line.startswith("warn") and "doctor-soon" in line and "expires at" in line for line in lines)
    assert not any("doctor-calm" in line for line in lines), result.stdout
