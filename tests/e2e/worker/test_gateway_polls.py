"""BFL's regional gateways: a task handed a polling_url on another host of BFL's domain (gateway.bfl.ai) is polled
there, as BFL's guide says, never at the global host, which answers 404 for it. The simulator plays the gateway
(``gateway_every``: every 2nd task here), on a host the stack's API_HOST_ALLOWLIST lists as BFL's default lists
every host of bfl.ai. The rule itself, as a plain function: tests/unit/core/test_hosts.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from devtools.stack import SIMULATOR_KEY
from key_helpers import make_key


def test_a_gateway_task_is_polled_at_its_polling_url_and_each_tenant_sees_only_its_own(api, sim):
    sim.settings(gateway_every=2)
    (_, mine), (_, other) = make_key(api), make_key(api)
    port = urlsplit(sim.url).port
    # Callbacks lost: only polls can end these jobs.
    jobs = [mine.submit("[drop] tenant a"), other.submit("[drop] tenant b")]
    tasks = [sim.task(job["bfl_id"]) for job in jobs]
    assert sorted(t["gateway"] for t in tasks) == [False, True]

    for tenant, job, task in zip((mine, other), jobs, tasks, strict=True):
        done = tenant.wait_for(job["id"], timeout=20)
        assert (done["status"], done["source"]) == ("stored", "poll"), done
        polled = sim.task(job["bfl_id"])["polled_hosts"]
        # The gateway task only ever at the gateway (the global host would have answered Task not found).
        assert polled and set(polled) == {f"localhost:{port}" if task["gateway"] else f"127.0.0.1:{port}"}
    # Neither tenant sees the other's job.
    assert other.get(f"/v1/jobs/{jobs[0]['id']}").status_code == 404
    assert mine.get(f"/v1/jobs/{jobs[1]['id']}").status_code == 404


def _bfl_task(sim, prompt: str) -> dict:
    """A task submitted to the simulator directly, as an app's own code would submit it to BFL."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt},
                             headers={"x-key": SIMULATOR_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_tracked_gateway_tasks_polling_url_off_the_allowlist_never_gets_the_key(api, sim, unlisted_spy):
    sim.settings(gateway_every=1)
    (_, honest), (_, attacker) = make_key(api), make_key(api)
    theirs, mine = _bfl_task(sim, "[drop] the attacker's"), _bfl_task(sim, "[drop] the honest app's")
    # A polling_url off the allowlist is replaced by the global host, which knows no regional task: the job
    # fails as BFL would answer it, and the key never reaches the host named.
    forged = attacker.track(theirs["id"], polling_url=f"{unlisted_spy.url}/v1/get_result?id={theirs['id']}")
    tracked = honest.track(mine["id"], polling_url=mine["polling_url"])
    assert (forged.status_code, tracked.status_code) == (201, 201), (forged.text, tracked.text)
    failed = attacker.wait_for(forged.json()["id"], timeout=20)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "task_not_found")
    assert unlisted_spy.hits == []
    # The other tenant's task, tracked with the gateway URL BFL gave it, ends stored.
    done = honest.wait_for(tracked.json()["id"], timeout=20)
    assert (done["status"], done["source"]) == ("stored", "poll")
    assert set(sim.task(mine["id"])["polled_hosts"]) == {f"localhost:{urlsplit(sim.url).port}"}
