"""Every command the docs and the dashboard give for downloading a job's file works under both stores as written:
with files in S3 (``make run RUN_S3=1``, ``S3_IMAGE_DELIVERY=redirect``, the default) the file routes answer with a
``302`` to the bucket, which ``curl`` follows only with ``-L`` (without it, it saves the redirect's page). Run
against both stores: tests/e2e/dev/test_store_switch.py."""

from __future__ import annotations

import re
import shlex

from devtools.processes import ROOT
from fluxhook.core.job import Job
from receiver.dashboard_view import api_examples

PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A command line that asks for a job's stored file.
FILE_ROUTE = re.compile(r"/v1/jobs/[^/\s]+/(image|video|poster|draft_cache)\b")


def _follows_redirects(command: str) -> bool:
    words = shlex.split(command.split("#", 1)[0])
    return any(w == "--location" or (w.startswith("-") and not w.startswith("--") and "L" in w) for w in words)


def download_commands(text: str) -> list[str]:
    """The ``curl`` lines of ``text`` that fetch a job's file."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("curl") and FILE_ROUTE.search(line)]


def test_every_download_in_the_docs_follows_the_redirect_to_the_bucket():
    found = {page.relative_to(ROOT): download_commands(page.read_text()) for page in PAGES}
    assert found[PAGES[0].relative_to(ROOT)], "the README's downloads are looked at"
    wrong = [f"{page}: {command}" for page, commands in found.items() for command in commands
             if not _follows_redirects(command)]
    assert not wrong, f"without -L, curl saves the redirect's page when files are in S3: {wrong}"


def test_the_dashboards_download_command_follows_it_too():
    for stored in ({"image": {"content_type": "image/jpeg"}}, {"video": {"content_type": "video/mp4"}}):
        job = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status="stored", storage_key="k", **stored)
        [download] = [e["command"] for e in api_examples("http://localhost:8000", job) if FILE_ROUTE.search(e["command"])]
        assert _follows_redirects(download), download


def test_a_download_without_l_is_found():
    assert not _follows_redirects('curl -s -o a.jpg $FH/v1/jobs/$JOB/image -H "Authorization: Bearer $TOKEN"')
    assert _follows_redirects("curl -sL -o a.jpg $FH/v1/jobs/$JOB/image")
    assert _follows_redirects("curl --location -o a.jpg $FH/v1/jobs/$JOB/image")
