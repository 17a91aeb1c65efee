"""BFL's official Python SDK (``blackforest`` on PyPI), unchanged but for its base URL and key, against the
Procfile's web and worker processes: it submits, polls fluxhook's ``polling_url`` to ``Ready`` and downloads
the sample, as an app would.

The SDK runs from a virtual environment of its own, in a process of its own, as an app does: its release pins
Pillow 10.4, which fluxhook's own environment (Pillow 13) cannot share. The environment is made once, from
PyPI, and kept in pytest's cache directory (``.pytest_cache``; the temporary directory without one) for later runs.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

import sdk_helpers
from conftest import API, API_TOKEN

sdk_python = sdk_helpers.sdk_python  # a fixture: the SDK's virtual environment

# What an app written for BFL does with the SDK, with fluxhook's URL and key in place of BFL's.
APP = textwrap.dedent("""
    import hashlib, json, sys

    import requests
    from blackforest import BFLClient, BFLError
    from blackforest.types.general.client_config import ClientConfig

    base_url, api_key, model, prompt = sys.argv[1:5]
    client = BFLClient(api_key=api_key, base_url=base_url)
    try:
        done = client.generate(model, {"prompt": prompt, "width": 1024, "height": 768},
                               ClientConfig(sync=True, timeout=60, polling_interval=0.2, max_retries=300))
    except BFLError as exc:
        print(json.dumps({"error": str(exc)}))
        sys.exit(0)
    sample = requests.get(done.result["sample"], timeout=30)
    sample.raise_for_status()
    status = client.get_task_status(done.id)
    print(json.dumps({"id": done.id, "result": done.result, "status": status.status,
                      "content_type": sample.headers["Content-Type"],
                      "sha256": hashlib.sha256(sample.content).hexdigest()}))
""")


def run_app(python: str, base_url: str, key: str, model: str, prompt: str) -> dict:
    finished = subprocess.run([python, "-c", APP, base_url, key, model, prompt], capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    # The SDK prints a line per poll; the app's own answer is the last line.
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_bfls_sdk_generates_through_fluxhook_with_its_base_url_changed(sdk_python, stack, sim):
    app = run_app(sdk_python, stack.base_url, API_TOKEN, "flux-pro-1.1", "a paper boat on a pond")
    assert "error" not in app, app
    job = API(stack.base_url).job(app["id"])  # the SDK's task id is the fluxhook job's
    assert job["status"] == "stored" and job["model"] == "flux-pro-1.1"
    assert app["status"] == "Ready"
    assert app["result"]["sample"].startswith(f"{stack.base_url}/v1/jobs/{job['id']}/image?token=")
    assert app["result"]["prompt"] == "a paper boat on a pond"
    assert app["sha256"] == job["image"]["sha256"]  # the bytes fluxhook stored, through its durable link
    assert app["content_type"] == job["image"]["content_type"]
    # BFL (which accepts only fluxhook's own BFL_API_KEY) got the task: the app's key went no further.
    assert sim.task(job["bfl_id"])["model"] == "flux-pro-1.1"


def test_bfls_sdk_hears_a_refused_key_as_an_error(sdk_python, stack, sim):
    app = run_app(sdk_python, stack.base_url, "not-a-fluxhook-token", "flux-pro-1.1", "nothing")
    assert "403" in app["error"]
    assert sim.stats()["submitted"] == 0  # refused before anything reached BFL
