"""The simulator's gateway host (``gateway_every``): every Nth task is handed a polling_url on another host that
reaches the same simulator, as BFL hands out regional gateways (gateway.bfl.ai), and the global host answers 404
for it, as BFL's does for a task that lives in a region."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from simulator_helpers import KEY, set_settings, submit, task_state

pytestmark = pytest.mark.usefixtures("fresh")


def _submit(base: str) -> dict:
    response = submit(base, "a fox")
    assert response.status_code == 200, response.text
    return response.json()


def _get(url: str) -> requests.Response:
    return requests.get(url, headers=KEY, timeout=5)


def test_every_nth_task_is_polled_at_the_gateway_and_only_there(base):
    set_settings(base, gateway_every=3)
    answers = [_submit(base) for _ in range(6)]
    port = urlsplit(base).port
    hosts = [urlsplit(a["polling_url"]).netloc for a in answers]
    assert hosts == [f"127.0.0.1:{port}"] * 2 + [f"localhost:{port}"] + [f"127.0.0.1:{port}"] * 2 + [f"localhost:{port}"]
    regional, plain = answers[2], answers[0]
    assert all(a["polling_url"].endswith(f"/v1/get_result?id={a['id']}") for a in answers)

    at_gateway = _get(regional["polling_url"])
    assert at_gateway.status_code == 200 and at_gateway.json()["id"] == regional["id"]
    at_global = _get(f"{base}/v1/get_result?id={regional['id']}")
    assert (at_global.status_code, at_global.json()["status"]) == (404, "Task not found")
    assert _get(plain["polling_url"]).status_code == 200

    state = task_state(base, regional["id"])
    assert state["gateway"] is True and state["polls"] == 1
    assert state["polled_hosts"] == [f"localhost:{port}", f"127.0.0.1:{port}"]
    assert task_state(base, plain["id"])["gateway"] is False


@pytest.mark.parametrize("value", [-1, True, 1.5, "2", None])
def test_a_bad_gateway_every_is_refused_and_changes_nothing(base, value):
    response = requests.post(f"{base}/_sim/settings", json={"gateway_every": value}, timeout=5)
    assert response.status_code == 400 and "gateway_every" in response.json()["detail"]
    assert requests.get(f"{base}/_sim/settings", timeout=5).json()["gateway_every"] == 0
