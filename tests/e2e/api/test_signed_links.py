"""Signed links open one file: a job's image, video, poster and draft-cache links each open
only the file they were made for, of their own job, and nothing else."""

from __future__ import annotations

import itertools

import pytest
import requests

from conftest import SECRET_KEY
from fluxhook.core import signing
from helpers import assert_error, stored_job

KINDS = signing.FILE_KINDS


def test_each_kind_has_its_own_token():
    job_id = "job_01TESTSIGNEDLINKS"
    tokens = {kind: signing.file_token(SECRET_KEY, job_id, kind) for kind in KINDS}
    assert len(set(tokens.values())) == len(KINDS)
    for minted, asked in itertools.product(KINDS, KINDS):
        assert signing.file_token_valid(SECRET_KEY, tokens[minted], job_id, asked, 60) is (minted == asked)


def test_an_unknown_kind_has_no_link():
    with pytest.raises(ValueError):
        signing.file_token(SECRET_KEY, "job_x", "everything")
    assert signing.file_token_valid(SECRET_KEY, signing.image_token(SECRET_KEY, "job_x"), "job_x", "nope", 60) is False


@pytest.mark.parametrize(("minted", "asked"), list(itertools.product(KINDS, KINDS)))
def test_a_link_opens_only_its_own_file_over_http(api, minted, asked):
    # Authorization is decided before the file is looked for: on a job still pending, a link of the
    # right kind is let in (and told the file is not there yet), any other is refused.
    job = api.submit("[pending] signed links")
    token = signing.file_token(SECRET_KEY, job["id"], minted)
    answer = requests.get(f"{api.base_url}/v1/jobs/{job['id']}/{asked}", params={"token": token}, timeout=10)
    if minted == asked:
        assert_error(answer, 404, "not_ready")
    else:
        assert_error(answer, 401, "unauthorized")


def test_a_stored_images_link_opens_the_image_and_no_other_file(api, spy):
    job = stored_job(api, spy, "signed-links-image")
    url = job["image"]["url"]
    assert requests.get(url, timeout=10).status_code == 200
    for other in ("video", "poster", "draft_cache"):
        moved = url.replace("/image?", f"/{other}?")
        assert_error(requests.get(moved, timeout=10), 401, "unauthorized")
