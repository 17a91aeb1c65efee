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
