"""fluxhook.client against the session's stack: submit, wait and download, track, list, refusals, and the README's
example run as a program. Against scripted HTTP servers for what the stack never does: tests/unit/test_client.py."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from conftest import API_TOKEN
from devtools.processes import ROOT, wait_until
from fluxhook import client as fc
from key_helpers import make_key


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


def test_list_filters_by_key_account_text_and_time_and_a_key_sees_only_its_own(stack, fluxhook, api, sim):
    tag = uuid.uuid4().hex[:10]
    created_a, _ = make_key(api, name="client-list-a")
    created_b, _ = make_key(api, name="client-list-b")
    with fc.Client(stack.base_url, created_a["key"], backoff=0.05) as a, \
            fc.Client(stack.base_url, created_b["key"], backoff=0.05) as b:
        first = a.submit("flux-2-pro", {"prompt": f"[pending] A Red FOX {tag}"})
        wait_until(lambda: time.time() >= _epoch(first.created_at) + 1, message="the next second")
        second = a.submit("flux-2-pro", {"prompt": f"[pending] a lighthouse {tag}"})
        theirs = b.submit("flux-2-pro", {"prompt": f"[pending] a red fox {tag}"})

        def ids(client: fc.Client, **filters) -> list[str]:
            return [job.id for job in client.list(page_size=2, **filters)]

        assert ids(a, q=f"red fox {tag}") == [first.id]  # any case
        assert ids(fluxhook, q=f"RED FOX {tag}") == [theirs.id, first.id]
        assert ids(fluxhook, q=tag, key_id=created_a["id"]) == [second.id, first.id]
        assert ids(fluxhook, q=tag, account="default", status="submitted") == [theirs.id, second.id, first.id]
        assert ids(fluxhook, q=tag, account="elsewhere") == []
        # since is the first instant kept, until the first left out: as an aware datetime, a date, or the API's text.
        at_second = datetime.fromisoformat(second.created_at.replace("Z", "+00:00"))
        assert ids(a, q=tag, since=at_second) == [second.id]
        assert ids(a, q=tag, until=at_second.astimezone(timezone(timedelta(hours=-5)))) == [first.id]
        days = [datetime.fromisoformat(job.created_at[:10]).date() for job in (first, second)]
        assert ids(a, q=tag, since=days[0], until=days[1]) == [second.id, first.id]  # whole UTC days
        assert ids(a, q=tag, until=second.created_at) == [first.id]
        # Another tenant: B's search finds its own job only, and naming A's key gives it nothing.
        assert ids(b, q=tag) == [theirs.id]
        assert ids(b, key_id=created_a["id"]) == []
        with pytest.raises(fc.InvalidRequest) as refused:
            next(a.pages(since="yesterday"))
        assert refused.value.code == "invalid_request" and "'from' must be a date" in refused.value.message


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_refusals_are_typed(stack, fluxhook, sim):
    with fc.Client(stack.base_url, "not-a-token-123", retries=0) as stranger:
        with pytest.raises(fc.AuthenticationError) as refused:
            stranger.get("job_x")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert str(refused.value).startswith("unauthorized: the token sent was not recognised")
    assert str(refused.value).endswith("(HTTP 401)")

    with pytest.raises(fc.InvalidRequest) as invalid:
        fluxhook.submit("Not A Model", {"prompt": "x"})
    assert (invalid.value.status, invalid.value.code) == (400, "unknown_model")
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
