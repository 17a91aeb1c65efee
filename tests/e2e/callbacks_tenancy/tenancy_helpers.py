"""What the tenancy tests of the static callback URL and of tracking share: two app keys, a task an app sent
straight to BFL (the simulator, answering a submission after about 1 s as BFL does), and a callback on
``/webhooks/bfl`` proven with the account's static secret, which every app of the account holds."""

from __future__ import annotations

import hashlib

import requests

from conftest import API, STATIC_SECRET
from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY
from key_helpers import make_key

# BFL answers a submission after about a second.
BFL_ANSWERS_AFTER = 1.0


def as_bfl(sim) -> None:
    """The simulator answers submissions as BFL does: not at once."""
    sim.settings(submit_delay=BFL_ANSWERS_AFTER)


def tenants(admin: API) -> tuple[API, API]:
    """Two tenants, V (the victim) and X (the attacker): an app key each on the same account."""
    return make_key(admin, name="tenant-v")[1], make_key(admin, name="tenant-x")[1]


def sim_task(sim, prompt: str) -> dict:
    """A task an app sent straight to BFL, with no callback URL of fluxhook's."""
    response = requests.post(f"{sim.url}/v1/flux-2-pro", json={"prompt": prompt}, headers={"x-key": SIMULATOR_KEY},
                             timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def static_post(api: API, payload: dict, session: requests.Session | None = None) -> requests.Response:
    """A callback on the static URL with the account's static secret, as BFL's SDK sends it (or any app of it)."""
    return (session or requests).post(api.base_url + "/webhooks/bfl", json=payload, timeout=10,
                                      headers={"X-Webhook-Secret": STATIC_SECRET})


def bfl_sha256(sim, task_id: str) -> str:
    """The sha256 of the image BFL made for the task."""
    return hashlib.sha256(sim.image_bytes(task_id)).hexdigest()


def polled(api: API, job_id: str, at_least: int = 1) -> dict:
    """The job once BFL has been polled for it ``at_least`` times."""
    return wait_until(lambda: (lambda j: j if j["attempts"]["polls"] >= at_least else None)(api.job(job_id)),
                      timeout=10, interval=0.05, message=f"{at_least} polls of {job_id}")
