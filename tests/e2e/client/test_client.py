"""fluxhook.client against the session's stack: submit, wait and download, track, list, refusals, and the README's
example run as a program. Against scripted HTTP servers for what the stack never does: tests/unit/test_client.py."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import pytest

from conftest import API_TOKEN
from devtools.processes import ROOT
from fluxhook import client as fc


@pytest.fixture()
def fluxhook(stack):
    with fc.Client(stack.base_url, API_TOKEN, backoff=0.05) as client:
        yield client


def test_submit_wait_and_download_a_stored_image(fluxhook, sim, tmp_path):
    job = fluxhook.submit("flux-2-pro", {"prompt": "a red fox", "width": 512}, metadata={"user": 42})
    assert isinstance(job, fc.Job) and job.id.startswith("job_") and job.status in ("queued", "submitted")
    assert job.metadata == {"user": 42} and not job.terminal
    assert sim.task(job.bfl_id)["prompt"] == "a red fox"

    stored = fluxhook.wait(job.id, timeout=30)
    assert stored.status == "stored" and stored.terminal

    saved = fluxhook.download(stored, tmp_path / "fox.png")
    content = saved.read_bytes()
    assert saved == tmp_path / "fox.png" and content == sim.image_bytes(job.bfl_id)
    assert hashlib.sha256(content).hexdigest() == stored.image["sha256"]
    # By id too; and nothing but the results is left in the directory.
    fluxhook.download(job.id, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "fox.png"]


def test_a_download_that_does_not_match_the_sha256_leaves_nothing(fluxhook, api, sim, tmp_path):
    stored = fc.Job(api.wait_for(api.submit("a fox to tamper with")["id"], "stored"))
    tampered = fc.Job(stored, image=dict(stored.image, sha256="0" * 64))
    with pytest.raises(fc.ChecksumMismatch) as mismatch:
        fluxhook.download(tampered, tmp_path / "bad.png")
    assert mismatch.value.code == "checksum_mismatch" and mismatch.value.status is None
    assert list(tmp_path.iterdir()) == []


def test_downloads_of_unfinished_and_failed_jobs_are_refused(fluxhook, api, sim, tmp_path):
    pending = fluxhook.submit("flux-2-pro", {"prompt": "[pending] not yet"})
    with pytest.raises(fc.NotFound) as not_ready:
        fluxhook.download(pending.id, tmp_path / "x.png")
    assert not_ready.value.code == "not_ready"

    failed = fluxhook.wait(fluxhook.submit("flux-2-pro", {"prompt": "[error] fails"}).id, timeout=30)
    assert failed.status == "failed" and failed.error["code"] == "bfl_error"
    with pytest.raises(fc.Gone):
        fluxhook.download(failed, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_track_get_and_delete(fluxhook, sim):
    tracked = fluxhook.track("tracked-by-the-client-1", model="flux-2-pro", metadata={"app": "x"})
    assert tracked.bfl_id == "tracked-by-the-client-1" and tracked.status == "submitted"
    assert fluxhook.track("tracked-by-the-client-1").id == tracked.id  # a known bfl_id: the same job
    assert fluxhook.get(tracked.id).metadata == {"app": "x"}

    fluxhook.delete(tracked.id)
    with pytest.raises(fc.NotFound) as missing:
        fluxhook.get(tracked.id)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(fc.NotFound):
        fluxhook.delete(tracked.id)  # not retried: the first attempt's 404 is the answer


def test_list_walks_every_page_newest_first(fluxhook, sim):
    mine = [fluxhook.submit("flux-2-pro", {"prompt": f"[pending] page {n}"}).id for n in range(5)]
    first = next(fluxhook.pages(page_size=2))
    assert len(first.jobs) == 2 and first.next_cursor and all(isinstance(j, fc.Job) for j in first.jobs)

    listed = [job.id for job in itertools.islice(fluxhook.list(page_size=2), 8)]
    assert listed[:5] == mine[::-1]
    assert len(set(listed)) == len(listed)

    other = fluxhook.submit("flux-kontext-pro", {"prompt": "[pending] another model"})
    by_model = list(itertools.islice(fluxhook.list(model="flux-kontext-pro", page_size=3), 3))
    assert by_model[0].id == other.id and {job.model for job in by_model} == {"flux-kontext-pro"}
    assert all(job.status == "submitted" for job in itertools.islice(fluxhook.list(status="submitted"), 10))


def test_refusals_are_typed(stack, fluxhook, sim):
    with fc.Client(stack.base_url, "not-a-token-123", retries=0) as stranger:
        with pytest.raises(fc.AuthenticationError) as refused:
            stranger.get("job_x")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert str(refused.value).startswith("unauthorized: send 'Authorization: Bearer <token>'")
    assert str(refused.value).endswith("(HTTP 401)")

    with pytest.raises(fc.InvalidRequest) as invalid:
        fluxhook.submit("Not A Model", {"prompt": "x"})
    assert (invalid.value.status, invalid.value.code) == (400, "invalid_request")
    with pytest.raises(fc.InvalidRequest):
        next(fluxhook.pages(page_size=500))

    sim.settings(credits=0)
    with pytest.raises(fc.InsufficientCredits) as broke:
        fluxhook.submit("flux-2-pro", {"prompt": "no money"})
    assert (broke.value.status, broke.value.code) == (402, "insufficient_credits")
    for cls in (fc.AuthenticationError, fc.InvalidRequest, fc.InsufficientCredits, fc.NotFound, fc.ServiceUnavailable):
        assert issubclass(cls, fc.APIError)


def test_the_readme_example_runs(stack, sim, tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From Python"):]
    example = section[section.index("```python\n") + len("```python\n"):section.index("```\n", 10)]
    example = example.replace("http://localhost:8000", stack.base_url).replace("your-token", API_TOKEN)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "fluxhook said" not in result.stdout
    assert (tmp_path / "fox.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
