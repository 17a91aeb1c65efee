"""What an image was and what it cost (the job's ``prompt``, ``seed`` and ``cost``), end to end: the Procfile's
processes, the BFL simulator reporting prices, the API and the ``fluxhook`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conftest import API_TOKEN, ready_payload
from devtools.processes import ROOT
from helpers import serve_png

LONG = "a red fox in the snow, " + "ünïcödé ✓ " * 300  # over 2,000 characters, many of them several bytes


def test_a_job_keeps_its_prompt_seed_and_cost(api, sim):
    job = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": LONG, "seed": 4242, "width": 2048,
                                                                       "height": 1024}}).json()
    assert job["prompt"] == LONG[:2000] and len(job["prompt"]) == 2000
    assert job["cost"] == {"credits": 4.5, "input_mp": 0.0, "output_mp": 2.0}
    assert job["seed"] is None  # BFL reports it with the result
    done = api.wait_for(job["id"])
    assert done["status"] == "stored"
    assert (done["prompt"], done["seed"], done["cost"]) == (LONG[:2000], 4242, job["cost"])
    assert sim.task(job["bfl_id"])["prompt"] == LONG  # BFL had it whole


@pytest.mark.parametrize("fields, shown", [
    ({}, None),
    ({"cost": "12", "input_mp": -1, "output_mp": 1e300}, None),
    ({"cost": 10 ** 30}, None),
    ({"cost": True, "output_mp": 0.5}, {"credits": None, "input_mp": None, "output_mp": 0.5}),
    ({"cost": 2.5, "input_mp": [1], "output_mp": {"mp": 1}}, {"credits": 2.5, "input_mp": None, "output_mp": None}),
])
def test_unusable_cost_fields_are_unknown_and_never_fail_a_submission(api, sim, fields, shown):
    sim.settings(cost_fields=fields)
    response = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "odd price"}})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "submitted" and job["cost"] == shown
    assert api.wait_for(job["id"])["status"] == "stored"


def test_a_price_in_the_result_replaces_the_submissions(api, sim):
    today = datetime.now(timezone.utc).date().isoformat()
    model = "flux-provenance-settled"
    sim.settings(result_cost_fields={"cost": 0.85, "output_mp": 1.5})
    job = api.submit("settled later", model=model)
    assert job["cost"] == {"credits": 1.0, "input_mp": 0.0, "output_mp": 1.0}
    done = api.wait_for(job["id"])
    assert done["cost"] == {"credits": 0.85, "input_mp": 0.0, "output_mp": 1.5}
    row = next(r for r in api.get("/v1/usage").json()["days"] if r["model"] == model and r["date"] == today)
    assert (row["jobs"], row["stored"], row["credits"]) == (1, 1, 0.85)


def test_a_tracked_task_has_no_prompt_and_its_cost_only_if_the_result_says(api, sim, spy):
    tracked = api.track("provenance-tracked-1", model="flux-2-pro").json()
    assert (tracked["prompt"], tracked["seed"], tracked["cost"]) == (None, None, None)
    job = api.submit("[pending] callback with a price")
    payload = ready_payload(job["bfl_id"], serve_png(spy, "priced"))
    payload["cost"] = 7
    payload["result"]["seed"] = 99
    assert api.callback(job["id"], payload).status_code == 200
    done = api.wait_for(job["id"])
    assert (done["seed"], done["cost"]["credits"]) == (99, 7.0)


def test_the_command_shows_them(stack, api, sim):
    job = api.wait_for(api.submit("shown by the command")["id"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXHOOK_") and k != "API_TOKENS"}
    env.update(PYTHONPATH=str(ROOT), FLUXHOOK_VAR=str(ROOT / "var" / "no-such-dev-run"))

    def cli(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "fluxhook.cli", args[0], "--url", stack.base_url, "--token",
                                 API_TOKEN, *args[1:]], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    shown = json.loads(cli("show", job["id"]))
    assert (shown["prompt"], shown["seed"], shown["cost"]) == ("shown by the command", job["seed"], job["cost"])
    row = next(line for line in cli("list", "--limit", "5").splitlines() if line.startswith(job["id"]))
    assert row.split()[4] == "3"  # the COST column
