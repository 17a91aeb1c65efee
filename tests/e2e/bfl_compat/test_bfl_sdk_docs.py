"""What the README and docs/bfl-compatible.md say of BFL's SDK holds for the SDK itself: the models they list
are the ones its release knows (it refuses any other name before sending anything), their example uses one
of them, and the README's example runs, as written but for its base URL and key, against the Procfile's
web and worker processes from the SDK's own virtual environment (tests/sdk_helpers.py)."""

from __future__ import annotations

import json
import re
import subprocess

import sdk_helpers
from conftest import API_TOKEN
from devtools.processes import ROOT
from sdk_helpers import SDK

sdk_python = sdk_helpers.sdk_python  # a fixture: the SDK's virtual environment
DOCS = [ROOT / "README.md", ROOT / "docs" / "bfl-compatible.md"]


def sdk_models(python: str) -> list[str]:
    code = ("import json\nfrom blackforest.resources.mapping.model_input_registry import MODEL_INPUT_REGISTRY\n"
            "print(json.dumps(list(MODEL_INPUT_REGISTRY)))")
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def sdk_example(text: str) -> str:
    """The document's Python example that uses BFL's SDK."""
    return next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "from blackforest" in block)


def listed_models(text: str) -> list[str]:
    """The models of the sentence that says which ones the SDK knows."""
    sentence = re.search(r"`Model flux-2-pro not supported`\):(.*?)\.\s", text, re.S).group(1)
    return re.findall(r"`([a-z0-9.-]+)`", sentence)


def test_the_docs_list_the_models_the_sdk_knows_and_use_one(sdk_python):
    known = sdk_models(sdk_python)
    assert "flux-2-pro" not in known and "flux-pro-1.1" in known
    for doc in DOCS:
        text = doc.read_text()
        assert SDK.split("==")[1] in text, doc  # the release they speak of
        assert sorted(listed_models(text)) == sorted(known), doc
        model = re.search(r'\.generate\("([^"]+)"', sdk_example(text)).group(1)
        assert model in known, (doc, model)


def test_the_readmes_sdk_example_runs_against_fluxhook(sdk_python, stack, sim):
    example = sdk_example((ROOT / "README.md").read_text())
    assert '"<a fluxhook token or app key>"' in example and '"http://localhost:8000"' in example
    code = example.replace('"<a fluxhook token or app key>"', repr(API_TOKEN)).replace(
        '"http://localhost:8000"', repr(stack.base_url))
    done = subprocess.run([sdk_python, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    sample = done.stdout.strip().splitlines()[-1]  # the SDK prints a line per poll; the example's own is last
    assert re.fullmatch(rf"{re.escape(stack.base_url)}/v1/jobs/job_\w+/image\?token=\S+", sample), sample
    assert sim.stats()["submitted"] == 1
