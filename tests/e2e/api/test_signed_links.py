"""Signed links open one file: a job's image, video, poster and draft-cache links each open
only the file they were made for, of their own job, and nothing else; and every read within a window
(IMAGE_URL_WINDOW_SECONDS) gives byte-identical links on every surface that shows them."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests

from conftest import SECRET_KEY
from devtools.processes import wait_until
from fluxhook.core import signing
from helpers import assert_error, stored_job
from link_helpers import next_second, within_one_link_window

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


def _links(api, job_id: str, batch_id: str) -> dict[str, str]:
    """Every signed link one read of each surface gives: the job, the job list, the drop-in's get_result, and the
    batch's results line."""
    job = api.get(f"/v1/jobs/{job_id}").json()
    [listed] = [shown for shown in api.get("/v1/jobs", params={"limit": 100}).json()["jobs"] if shown["id"] == job_id]
    result = api.get("/v1/get_result", params={"id": job_id}).json()["result"]
    [line] = [json.loads(line) for line in api.get(f"/v1/batches/{batch_id}/results").text.splitlines()]
    return {"image.url": job["image"]["url"], "srcset": job["image"]["srcset"],
            "listed": listed["image"]["url"], "listed srcset": listed["image"]["srcset"],
            "result.sample": result["sample"], "batch": line["image"]["url"], "batch srcset": line["image"]["srcset"]}


def test_two_reads_2_s_apart_give_byte_identical_links_that_open(api, spy):
    job = stored_job(api, spy, "stable-links")
    batch = api.post("/v1/batches", json={"model": "flux-2-pro", "items": [{"input": {"prompt": "a hill"}}]})
    assert batch.status_code == 202, batch.text
    wait_until(lambda: api.get(f"/v1/batches/{batch.json()['id']}").json().get("ended_at"), timeout=40,
               message="the batch to end")
    [line] = [json.loads(line) for line in api.get(f"/v1/batches/{batch.json()['id']}/results").text.splitlines()]
    within_one_link_window(8, job["id"], line["job_id"])
    first, read_at = _links(api, job["id"], batch.json()["id"]), time.time()
    next_second(read_at + 1)  # two seconds later: two tokens of the old per-second kind would differ
    again = _links(api, job["id"], batch.json()["id"])
    assert again == first
    assert first["image.url"] == first["result.sample"] == first["listed"]
    for url in (first["image.url"], first["srcset"].split(", ")[0].rsplit(" ", 1)[0], first["batch"]):
        assert requests.get(url, timeout=10).status_code == 200, url
