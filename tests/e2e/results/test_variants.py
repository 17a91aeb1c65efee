"""Variants of stored images through the Procfile's web (two gunicorn workers) and worker, of photo-like
images (the simulator's JPEG landscapes at the size asked): widths, formats and their bytes against the original's,
the caching headers of a signed link and of a bearer token, ``auto`` by Accept, 304; first requests at once, spread
over both web processes, make a variant once; ``srcset`` in the job and in a batch's results lines, each of its links
served at its width; key B gets 404 for key A's job; deleting a job deletes its variant files, B's untouched."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from conftest import API
from devtools.processes import wait_until
from fluxhook.core.variants import WIDTHS
from key_helpers import make_key

SIZE = 1024
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
# First requests for one variant at once: as many as one key may have waiting in one web process's variant room
# (receiver/variant_makers.py, PLACES_PER_OWNER), however the kernel spreads them over the two.
ASKERS = 8


@pytest.fixture()
def photos(sim):
    """The simulator makes photo-like JPEGs (landscapes with grain) at the size a request asks for."""
    sim.settings(scene_images=True, image_format="jpeg")
    return sim


def _stored(api: API, prompt: str, width: int = SIZE, height: int = SIZE) -> dict:
    answer = api.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": prompt, "width": width,
                                                                         "height": height}})
    assert answer.status_code == 202, answer.text
    job = api.wait_for(answer.json()["id"], timeout=30)
    assert job["status"] == "stored" and job["image"]["content_type"] == "image/jpeg", job
    return job


def _images_folder(stack):
    return stack.var_dir / "images"


def test_widths_and_formats_keep_the_aspect_and_take_fewer_bytes_than_the_original(stack, api, photos):
    _, as_a = make_key(api)
    job = _stored(as_a, "a fox on a hill", 1024, 768)
    original = as_a.get(f"/v1/jobs/{job['id']}/image")
    assert original.status_code == 200 and len(original.content) == job["image"]["size"]

    sizes = {}
    for fmt in ("jpeg", "png", "webp", "avif"):
        answer = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 1000, "format": fmt})
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == f"image/{fmt}"
        with Image.open(io.BytesIO(answer.content)) as made:
            assert made.size == (1024, 768), fmt  # 1000 snapped up to 1024: the original's own width
        sizes[fmt] = len(answer.content)
    assert sizes["webp"] <= 0.7 * len(original.content) and sizes["avif"] <= 0.55 * len(original.content), sizes

    small = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 300})
    with Image.open(io.BytesIO(small.content)) as made:
        assert made.format == "JPEG" and made.size == (384, 288)  # the original's format, snapped up, aspect kept


def test_a_signed_link_is_public_for_a_year_a_bearer_token_private_and_auto_varies_by_accept(stack, api, photos):
    _, as_a = make_key(api)
    job = _stored(as_a, "a lake at dawn")
    link = f"{job['image']['url']}&w=512&format=auto"

    first = requests.get(link, headers={"Accept": BROWSER_ACCEPT}, timeout=20)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "image/avif"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["Vary"] == "Accept"
    assert first.headers["ETag"] == f'"{hashlib.sha256(first.content).hexdigest()}"'
    webp = requests.get(link, headers={"Accept": "image/webp,*/*"}, timeout=20)
    assert webp.headers["Content-Type"] == "image/webp" and webp.headers["Vary"] == "Accept"
    plain = requests.get(link, headers={"Accept": "*/*"}, timeout=20)
    assert plain.headers["Content-Type"] == "image/jpeg"

    cached = requests.get(link, headers={"Accept": BROWSER_ACCEPT, "If-None-Match": first.headers["ETag"]}, timeout=20)
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == first.headers["ETag"]

    bearer = as_a.get(f"/v1/jobs/{job['id']}/image", params={"w": 512, "format": "avif"})
    assert bearer.headers["Cache-Control"].startswith("private")
    assert bearer.content == first.content  # the same stored variant, whoever asks
    assert "Vary" not in bearer.headers


def test_first_requests_at_once_over_both_web_processes_make_a_variant_once(stack, api, photos):
    _, as_a = make_key(api)
    job = _stored(as_a, "a storm over the sea")
    assert len(stack.web_workers()) >= 2
    start = threading.Barrier(ASKERS)
    bodies: list[bytes] = []

    def ask():
        http = requests.Session()  # a connection each: the kernel spreads them over both workers
        start.wait()
        answer = http.get(f"{job['image']['url']}&w=768&format=webp&q=90", timeout=30)
        assert answer.status_code == 200, answer.text
        bodies.append(answer.content)

    threads = [threading.Thread(target=ask) for _ in range(ASKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(bodies) == ASKERS and len(set(bodies)) == 1
    made = [line for line in (stack.var_dir / "web.log").read_text().splitlines()
            if '"variant made"' in line and job["id"] in line]
    assert len(made) == 1, made
    assert json.loads(made[0])["variant"] == f"{job['id']}-image-768w-q90.webp"


def test_srcset_links_serve_each_width_and_another_key_gets_404(stack, api, photos):
    _, as_a = make_key(api)
    _, as_b = make_key(api)
    job = _stored(as_a, "a meadow")
    job_b = _stored(as_b, "a desert", 640, 640)

    entries = [entry.rsplit(" ", 1) for entry in job["image"]["srcset"].split(", ")]
    assert [d for _, d in entries] == [f"{w}w" for w in WIDTHS if w <= SIZE]
    for url, descriptor in entries:
        answer = requests.get(url, headers={"Accept": "image/webp"}, timeout=20)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/webp", url
        with Image.open(io.BytesIO(answer.content)) as made:
            assert made.width == int(descriptor[:-1])

    assert as_b.get(f"/v1/jobs/{job['id']}/image", params={"w": 64}).status_code == 404
    assert as_b.get(f"/v1/jobs/{job['id']}/image", params={"w": "bad"}).status_code == 404  # not even a 400
    own = as_b.get(f"/v1/jobs/{job_b['id']}/image")
    assert own.status_code == 200 and hashlib.sha256(own.content).hexdigest() == job_b["image"]["sha256"]
    assert job_b["image"]["srcset"].endswith("&w=640&format=auto 640w")


def test_a_batchs_results_lines_carry_srcset(stack, api, photos):
    _, as_a = make_key(api)
    answer = as_a.post("/v1/batches", json={"model": "flux-2-pro", "items": [
        {"input": {"prompt": f"a hill {n}", "width": 512, "height": 512}} for n in range(2)]})
    assert answer.status_code in (200, 201, 202), answer.text
    batch_id = answer.json()["id"]
    wait_until(lambda: as_a.get(f"/v1/batches/{batch_id}").json().get("ended_at"), timeout=40,
               message="the batch to end")

    lines = [json.loads(line) for line in as_a.get(f"/v1/batches/{batch_id}/results").text.splitlines()]
    assert len(lines) == 2
    for line in lines:
        srcset = line["image"]["srcset"]
        assert srcset.startswith(line["image"]["url"] + "&w=64&format=auto 64w")
        assert srcset.endswith("&w=512&format=auto 512w")


def test_deleting_a_job_deletes_its_variant_files_and_not_another_keys(stack, api, photos):
    _, as_a = make_key(api)
    _, as_b = make_key(api)
    job_a, job_b = _stored(as_a, "a fox to delete"), _stored(as_b, "a fox to keep")
    for job, client in ((job_a, as_a), (job_b, as_b)):
        for query in ({"w": 64, "format": "webp"}, {"w": 256, "format": "avif"}, {"w": 512}):
            assert client.get(f"/v1/jobs/{job['id']}/image", params=query).status_code == 200
    folder = _images_folder(stack)

    def variants_of(job_id):
        return sorted(path.name for path in folder.glob(f"{job_id}-image-*"))

    assert len(variants_of(job_a["id"])) == 3 and len(variants_of(job_b["id"])) == 3

    assert as_b.delete(f"/v1/jobs/{job_a['id']}").status_code == 404  # not B's to delete
    assert as_a.delete(f"/v1/jobs/{job_a['id']}").status_code == 204

    assert variants_of(job_a["id"]) == []
    assert len(variants_of(job_b["id"])) == 3
    gone = requests.get(f"{job_a['image']['url']}&w=64&format=webp", timeout=10)
    assert gone.status_code == 404
    kept = requests.get(f"{job_b['image']['url']}&w=64&format=webp", timeout=10)
    assert kept.status_code == 200
    assert urlsplit(job_b["image"]["url"]).path == f"/v1/jobs/{job_b['id']}/image"
