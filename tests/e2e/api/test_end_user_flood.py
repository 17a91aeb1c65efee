"""An attacker's end user against its key's limits, over real HTTP against the Procfile's processes: end user X of key
A floods (past its requests a minute, then its queue, then blocked) while end user Y of key A and end user X of key B
(each given more by its own limits) go on; each answer to X names it, nothing of X's refused requests is created, and
Y's and B's requests take about as long as with no flood. The figures are printed (the report's probe)."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import API
from helpers import stack_on_db
from key_helpers import make_key

DB = 11
FLOOD = 120
OTHERS = 12


@pytest.fixture(scope="module")
def admin(redis_server, simulator, _spies, tmp_path_factory):
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("end-user-flood")), DB,
                     BFL_MAX_ACTIVE="2") as running:
        yield API(running.base_url)


def _post(client: API, end_user: str, n: int):
    started = time.monotonic()
    answer = client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": f"[pending] {end_user} {n}"},
                                           "end_user": end_user})
    return answer, time.monotonic() - started


def _others(a: API, b: API) -> list[float]:
    """Y's jobs with key A and X's with key B, one after another: each accepted; their times."""
    times = []
    for n in range(OTHERS):
        for client, end_user in ((a, "y"), (b, "x")):
            answer, took = _post(client, end_user, n)
            assert answer.status_code == 202, answer.text
            times.append(took)
    return times


def _p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100)[q - 1] * 1000 if len(times) > 1 else times[0] * 1000


def test_an_end_user_flooding_its_key_is_refused_alone(admin, sim):
    created, a = make_key(admin, requests_per_minute=10_000,
                          end_user_limits={"requests_per_minute": 20, "max_queued": 10})
    other, b = make_key(admin, end_user_limits={"requests_per_minute": 20, "max_queued": 10})
    # The others are users of the same limits given more by their own (an admin's override).
    for key_id, end_user in ((created["id"], "y"), (other["id"], "x")):
        assert admin.request("PUT", f"/v1/keys/{key_id}/end_users/{end_user}",
                             json={"requests_per_minute": 1000, "max_queued": 1000}).status_code == 200
    alone = _others(a, b)
    made_before = len(a.get("/v1/jobs?limit=100").json()["jobs"])

    with ThreadPoolExecutor(16) as pool:
        flood = [pool.submit(_post, a, "x", n) for n in range(FLOOD)]
        during = _others(a, b)
        answers = [f.result()[0] for f in flood]

    codes = {code: sum(r.status_code == code for r in answers) for code in sorted({r.status_code for r in answers})}
    # At most its minute's 20, and never more than its 10 queued at once (its jobs leave the line as BFL takes them).
    assert set(codes) <= {202, 429} and codes.get(202, 0) <= 20, codes
    assert sum(j["status"] == "queued" for j in a.get("/v1/jobs?end_user=x&limit=100").json()["jobs"]) <= 10
    refused = [r.json()["error"] for r in answers if r.status_code == 429]
    assert all("end user 'x'" in e["message"] for e in refused) and {e["code"] for e in refused} <= {
        "rate_limited", "queue_full"}
    made = len(a.get("/v1/jobs?end_user=x&limit=100").json()["jobs"])
    assert made == codes.get(202, 0)
    assert len(a.get("/v1/jobs?limit=100").json()["jobs"]) == made_before + made + OTHERS

    admin.post(f"/v1/keys/{created['id']}/end_users/x/block")
    with ThreadPoolExecutor(16) as pool:
        blocked = [pool.submit(_post, a, "x", n) for n in range(FLOOD)]
        while_blocked = _others(a, b)
        assert all(f.result()[0].status_code == 403 for f in blocked)

    print(f"\nX's flood of {FLOOD}: {codes}; {len(refused)} refusals naming X "
          f"({', '.join(sorted({e['code'] for e in refused}))}); blocked: {FLOOD} x 403 end_user_blocked\n"
          f"Y of A and X of B, {len(alone)} jobs each run: alone p50 {_p(alone, 50):.0f} ms p99 {_p(alone, 99):.0f} ms; "
          f"during the flood p50 {_p(during, 50):.0f} ms p99 {_p(during, 99):.0f} ms; during the blocked flood "
          f"p50 {_p(while_blocked, 50):.0f} ms p99 {_p(while_blocked, 99):.0f} ms")
    assert _p(during, 50) <= max(3 * _p(alone, 50), 250)
