"""Requests to a BFL simulator process of the simulator tests' own (its ``base`` URL is a fixture of
tests/unit/simulator/conftest.py), made as a client of BFL makes them."""

from __future__ import annotations

from typing import Any

import requests

from devtools.processes import wait_until

API_KEY = "test-key-do-not-log"
KEY = {"x-key": API_KEY}


def submit(base: str, prompt: str, model: str = "flux-dev", **extra: Any) -> requests.Response:
    body = {"prompt": prompt, **extra}
    if model == "flux-3-video":
        body.setdefault("mode", "t2v")  # BFL's FLUX 3 video schema requires one
    return requests.post(f"{base}/v1/{model}", json=body, headers=KEY, timeout=5)


def submit_ok(base: str, prompt: str, **extra: Any) -> str:
    response = submit(base, prompt, **extra)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def poll(base: str, task_id: str) -> dict[str, Any]:
    response = requests.get(f"{base}/v1/get_result", params={"id": task_id}, headers=KEY, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def wait_ready(base: str, task_id: str) -> dict[str, Any]:
    return wait_until(lambda: (body := poll(base, task_id))["status"] != "Pending" and body)


def set_settings(base: str, **values: Any) -> dict[str, Any]:
    response = requests.post(f"{base}/_sim/settings", json=values, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def stats(base: str) -> dict[str, Any]:
    return requests.get(f"{base}/_sim/stats", timeout=5).json()


def task_state(base: str, task_id: str) -> dict[str, Any]:
    return requests.get(f"{base}/_sim/tasks/{task_id}", timeout=5).json()
