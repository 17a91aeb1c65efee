"""A real cache in front: Debian's nginx with proxy_cache (devtools/nginx_cache.py) before the Procfile's web, set up
as docs/api.md tells a CDN to be. A page of images rendered from a fresh API read each time is answered by the cache
from its second view on, and the service serves each variant's bytes once; a deleted job's image is gone from the
service at once, while the CDN's copy stays until it is purged (what docs/api.md says a purge needs)."""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import urlsplit

import pytest
import requests

from devtools.nginx_cache import BROWSER_ACCEPT, CachingProxy, nginx_binary
from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key
from link_helpers import next_second, within_one_link_window

# What a page asks of each image: a 256-px slot, on a screen of 1 and of 2 device pixels per CSS pixel.
PAGE_WIDTHS = (256, 512)
VIEWS = 3


@pytest.fixture()
def cdn(stack, tmp_path):
    if nginx_binary() is None:
        pytest.skip("no nginx: `sh devtools/nginx.sh` installs Debian's (needs root and apt-get)")
    with CachingProxy(urlsplit(stack.base_url).netloc, tmp_path / "nginx") as proxy:
        yield proxy


@pytest.fixture()
def photos(sim):
    sim.settings(scene_images=True, image_format="jpeg")
    return sim


def _stored(client, prompt: str) -> dict:
    answer = client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": 512,
                                                                            "height": 512}})
    assert answer.status_code == 202, answer.text
    job = client.wait_for(answer.json()["id"], timeout=30)
    assert job["status"] == "stored", job
    return job


def _through(cdn: CachingProxy, url: str) -> str:
    """The link with the CDN's host in place of fluxhook's (a token names its job and file, not a host)."""
    parts = urlsplit(url)
    return f"{cdn.base_url}{parts.path}?{parts.query}"


def _page(client, cdn: CachingProxy, job_ids: list[str]) -> list[str]:
    """The images a page shows, from a fresh read of each job: each srcset's link at the page's widths, on the CDN."""
    urls = []
    for job_id in job_ids:
        srcset = dict(reversed(entry.rsplit(" ", 1)) for entry in client.get(f"/v1/jobs/{job_id}").json()["image"][
            "srcset"].split(", "))
        urls += [_through(cdn, srcset[f"{width}w"]) for width in PAGE_WIDTHS]
    return urls


def _fetch(url: str) -> requests.Response:
    answer = requests.get(url, headers={"Accept": BROWSER_ACCEPT}, timeout=30)
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:200])
    return answer


def _served_by_the_web(stack, job_ids: list[str]) -> int:
    """How many times the service answered one of these jobs' images with their bytes (its own request log)."""
    served = 0
    for line in (stack.var_dir / "web.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and '"/v1/jobs/<job_id>/image"' in line:
            entry = json.loads(line)
            served += entry.get("job_id") in job_ids and entry.get("status") == 200
    return served


def test_a_page_rendered_from_fresh_reads_is_the_caches_from_its_second_view(stack, api, photos, cdn):
    _, client = make_key(api)
    job_ids = [_stored(client, f"a valley for the CDN {n}")["id"] for n in range(3)]
    within_one_link_window(12)
    views, bodies = [], {}
    for _ in range(VIEWS):
        started = time.time()
        urls = _page(client, cdn, job_ids)
        answers = [_fetch(url) for url in urls]
        views.append([answer.headers.get("X-Cache-Status") for answer in answers])
        for url, answer in zip(urls, answers, strict=True):
            assert answer.headers["Content-Type"] == "image/avif"
            bodies.setdefault(url, set()).add(hashlib.sha256(answer.content).hexdigest())
        next_second(started)  # each view's read in a later second than the last: per-second links would differ

    variants = len(job_ids) * len(PAGE_WIDTHS)
    assert len(bodies) == variants and all(len(seen) == 1 for seen in bodies.values())  # one URL per variant
    assert views[0] == ["MISS"] * variants
    assert views[1:] == [["HIT"] * variants] * (VIEWS - 1)
    # The origin was asked once per variant (nginx's log), and the web served each one's bytes once (its own log).
    logged = wait_until(lambda: (lambda lines: lines if len(lines) == variants * VIEWS else None)(
        [line for line in cdn.log() if line["uri"].startswith("/v1/jobs/")]), message="nginx's log lines")
    asked = [line["uri"] for line in logged if line["origin"]]
    assert sorted(asked) == sorted(urlsplit(url).path + "?" + urlsplit(url).query for url in bodies)
    wait_until(lambda: _served_by_the_web(stack, job_ids) >= variants, message="the web's log")
    assert _served_by_the_web(stack, job_ids) == variants


def test_a_deleted_jobs_image_is_gone_from_the_service_at_once_and_the_cdns_copy_awaits_a_purge(stack, api,
                                                                                               photos, cdn):
    _, client = make_key(api)
    job = _stored(client, "a valley to delete")
    [direct, _] = [entry.rsplit(" ", 1)[0] for entry in job["image"]["srcset"].split(", ")
                   if entry.endswith((" 256w", " 512w"))]
    cached = _through(cdn, direct)
    assert [_fetch(cached).headers["X-Cache-Status"] for _ in range(2)] == ["MISS", "HIT"]

    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    # The service: the same signed link, and the original's, answer 404 from the moment the delete is answered.
    assert_error(requests.get(direct, headers={"Accept": BROWSER_ACCEPT}, timeout=10), 404, "not_found")
    assert_error(requests.get(job["image"]["url"], timeout=10), 404, "not_found")
    # The CDN still holds the copy it was allowed to keep for a year: that is what a purge of the job's paths is for.
    assert _fetch(cached).headers["X-Cache-Status"] == "HIT"
