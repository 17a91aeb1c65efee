"""A real cache in front: Debian's nginx with proxy_cache before the Procfile's web, running deploy/nginx/fluxhook.conf
(devtools/nginx_cache.py), the configuration docs/storefront.md describes. A page of images rendered from a fresh API
read each time, with the guide's own ``<img srcset sizes>`` snippet, opened in Chromium at a phone's and a desktop's
width, each view in a new browser context (a new visitor: Chromium's own cache holds nothing of the views before), is
answered by the cache from its second view on, and the service serves each variant's bytes once; browsers whose
``Accept`` chooses the same format share one copy; a deleted job's image is gone from the service at once, while the
CDN's copy stays until it is purged (what docs/api.md says a purge needs)."""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import sync_playwright

from browser_helpers import needs_chromium
from devtools.browser_page import ARGS, CHROMIUM, PageServer, catalog, on_host, view
from devtools.nginx_cache import BROWSER_ACCEPT, CachingProxy, nginx_binary
from devtools.processes import wait_until
from helpers import assert_error
from key_helpers import make_key
from link_helpers import closest_turns, next_second, within_one_link_window

# Two screens whose windows take different variants of a 1024-px image through the guide's `sizes`: a phone 390 px
# wide at 3x asks for 1,170 device px (the largest there is, 1024w) and a desktop's 640-px column at 1x for 640w.
SCREENS = {(390, 3): "1024", (1400, 1): "640"}
VIEWS = 3
JOBS = 3
# Each job's links turn at a moment of its own: of this many, the JOBS whose turns are closest leave the views
# 20 s with no turn (seven turns over 30 s: some three lie within 9 s of each other).
MADE = 7


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


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _stored(client, prompt: str, size: int = 512) -> dict:
    answer = client.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": size,
                                                                            "height": size}})
    assert answer.status_code == 202, answer.text
    job = client.wait_for(answer.json()["id"], timeout=30)
    assert job["status"] == "stored", job
    return job


def _through(cdn: CachingProxy, url: str) -> str:
    """The link with the CDN's host in place of fluxhook's (a token names its job and file, not a host)."""
    parts = urlsplit(url)
    return f"{cdn.base_url}{parts.path}?{parts.query}"


def _fetch(url: str) -> requests.Response:
    answer = requests.get(url, headers={"Accept": BROWSER_ACCEPT}, timeout=30)
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:200])
    return answer


def _image_lines(cdn: CachingProxy) -> list[dict]:
    return [line for line in cdn.log() if line["uri"].startswith("/v1/jobs/")]


def _lines_after(cdn: CachingProxy, seen: int) -> list[dict]:
    """A view's lines: nginx logs a request once it has answered it, so they are waited for before the next view."""
    def logged() -> list[dict] | None:
        lines = _image_lines(cdn)
        return lines[seen:] if len(lines) == seen + JOBS else None
    return wait_until(logged, message="nginx's log lines of the view")


def _served_by_the_web(stack, job_ids: list[str]) -> list[tuple[str, str]]:
    """The service's answers with bytes of these jobs' images (its own request log): job and variant, one a time."""
    served = []
    for line in (stack.var_dir / "web.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and '"/v1/jobs/<job_id>/image"' in line:
            entry = json.loads(line)
            if entry.get("job_id") in job_ids and entry.get("status") == 200:
                served.append((entry["job_id"], entry.get("variant", "")))
    return served


@needs_chromium
def test_a_page_rendered_from_fresh_reads_is_the_caches_from_its_second_view(stack, api, photos, cdn, chromium):
    _, client = make_key(api)
    job_ids = closest_turns([_stored(client, f"a valley for the CDN {n}", 1024)["id"] for n in range(MADE)], JOBS)
    within_one_link_window(20, *job_ids)
    views, taken = [], {screen: set() for screen in SCREENS}
    with PageServer() as page:
        for _ in range(VIEWS):
            started = time.time()
            # A fresh read of each job, as an app's server renders each view.
            page.html = catalog([on_host(client.get(f"/v1/jobs/{job_id}").json(), stack.base_url, cdn.base_url)
                                 for job_id in job_ids])
            for width, ratio in SCREENS:
                seen = len(_image_lines(cdn))
                for url in view(chromium, page.url, width, ratio):
                    taken[width, ratio].add(parse_qs(urlsplit(url).query)["w"][0])
                views.append([line["cache"] for line in _lines_after(cdn, seen)])
            next_second(started)  # each view's read in a later second than the last: per-second links would differ

    assert taken == {screen: {w} for screen, w in SCREENS.items()}  # the browser's choice, through `sizes`
    assert views[:len(SCREENS)] == [["MISS"] * JOBS] * len(SCREENS)
    assert views[len(SCREENS):] == [["HIT"] * JOBS] * (len(views) - len(SCREENS))
    # The origin was asked once per variant (nginx's log), and the web served each one's bytes once (its own log).
    asked = [(urlsplit(line["uri"]).path, parse_qs(urlsplit(line["uri"]).query)["w"][0])
             for line in _image_lines(cdn) if line["origin"]]
    assert sorted(asked) == sorted((f"/v1/jobs/{job_id}/image", w) for job_id in job_ids for w in SCREENS.values())
    variants = sorted((job_id, f"{w}w avif") for job_id in job_ids for w in SCREENS.values())
    wait_until(lambda: len(_served_by_the_web(stack, job_ids)) >= len(variants), message="the web's log")
    assert sorted(_served_by_the_web(stack, job_ids)) == variants


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


# Accept strings of today's browsers for an <img>, and what a format=auto variant is for each.
ACCEPTS = {
    "chromium": (BROWSER_ACCEPT, "image/avif"),
    "firefox": ("image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", "image/avif"),
    "safari 14": ("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "image/webp"),
    "an old edge": ("image/webp,image/apng,image/*,*/*;q=0.8", "image/webp"),
    "curl": ("*/*", "image/jpeg"),
    "an old browser": ("image/png,image/*;q=0.8,*/*;q=0.5", "image/jpeg"),
}


def test_the_cache_keeps_one_copy_per_format_accept_chooses_and_each_key_only_its_own(stack, api, photos, cdn):
    shop, other = (make_key(api)[1] for _ in range(2))
    job, theirs = _stored(shop, "a valley, one copy per format", 1024), _stored(other, "another shop's valley", 1024)
    within_one_link_window(10, job["id"], theirs["id"])
    link = _through(cdn, _width(job, "512"))
    seen = {}
    for browser, (accept, kind) in ACCEPTS.items():
        answer = requests.get(link, headers={"Accept": accept}, timeout=30)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == kind, (browser, answer.headers)
        seen[browser] = (answer.headers["X-Cache-Status"], hashlib.sha256(answer.content).hexdigest())
    # The origin was asked once per format: a second browser whose Accept chooses the same format gets the copy.
    assert [status for status, _ in seen.values()] == ["MISS", "HIT", "MISS", "HIT", "MISS", "HIT"]
    assert seen["chromium"][1] == seen["firefox"][1] != seen["safari 14"][1] == seen["an old edge"][1]
    assert len([line for line in _image_lines(cdn) if line["origin"]]) == 3

    # The other shop: its own link is its own copy; the shop's token on its job's path opens nothing, and is kept
    # by no cache.
    assert _fetch(_through(cdn, _width(theirs, "512"))).headers["X-Cache-Status"] == "MISS"
    moved = link.replace(job["id"], theirs["id"])
    for _ in range(2):
        refused = requests.get(moved, headers={"Accept": BROWSER_ACCEPT}, timeout=30)
        assert_error(refused, 401, "unauthorized")
        assert refused.headers["X-Cache-Status"] == "MISS"


def _width(job: dict, width: str) -> str:
    [url] = [entry.rsplit(" ", 1)[0] for entry in job["image"]["srcset"].split(", ") if entry.endswith(f" {width}w")]
    return url
