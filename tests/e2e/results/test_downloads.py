"""Downloading and storing result images, and serving them, through the Procfile's processes.

Each test submits a ``[pending]`` job, sends a Ready callback whose ``result.sample`` is the
URL under test, and waits for the job's terminal status.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from rq import Worker

from conftest import MAX_IMAGE_BYTES, SECRET_KEY, ready_payload
from devtools.processes import wait_until
from fluxhook.core import signing
from fluxhook.lifecycle.steps.enqueueing import download_task_name
from helpers import rq_task_ids

# -- helpers ----------------------------------------------------------------


def image_bytes(fmt: str, width: int = 16, height: int = 9, color=(10, 120, 200), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt, **save)
    return out.getvalue()


def noise_png(min_size: int) -> bytes:
    """A valid PNG that compresses badly, larger than ``min_size`` bytes."""
    side = int((min_size / 3) ** 0.5) + 16
    data = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    data.save(out, "PNG", compress_level=0)
    assert len(out.getvalue()) > min_size
    return out.getvalue()


def storage_dir(stack) -> Path:
    return Path(stack.env["STORAGE_URL"].removeprefix("file://"))


def deliver(api, sample_url: str, prompt: str = "[pending] download") -> dict:
    """Submit a job, send its Ready callback pointing at ``sample_url``, return the terminal job."""
    job = api.submit(prompt)
    response = api.callback(job["id"], ready_payload(job["bfl_id"], sample_url))
    assert response.status_code == 200, response.text
    return api.wait_for(job["id"])


def assert_failed(job: dict, status: str, code: str) -> None:
    assert job["status"] == status, job
    assert job["error"]["code"] == code, job
    assert job["error"]["message"]
    assert job["image"] is None
    assert job["completed_at"] is not None


def assert_error_body(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"]
    return error


def stored_files(stack, job_id: str) -> list[Path]:
    return sorted(storage_dir(stack).glob(f"{job_id}.*"))


# -- hosts that must never be contacted ---------------------------------------


def test_unlisted_host_is_refused_unsent(api, sim, unlisted_spy, stack):
    url = unlisted_spy.route("/img.png", body=image_bytes("PNG"), headers={"Content-Type": "image/png"})

    job = deliver(api, url)

    assert_failed(job, "failed", "host_not_allowed")
    assert job["attempts"]["downloads"] == 1
    assert unlisted_spy.hits == []
    assert stored_files(stack, job["id"]) == []


@pytest.mark.parametrize("make_url", [
    pytest.param(lambda port: "file:///etc/passwd", id="file-scheme"),
    pytest.param(lambda port: f"ftp://127.0.0.1:{port}/img.png", id="ftp-scheme"),
    pytest.param(lambda port: f"https://delivery.bfl.ai@127.0.0.1:{port}/img.png", id="userinfo-trick"),
    pytest.param(lambda port: f"http://delivery.bfl.ai:x@127.0.0.1:{port}/img.png", id="userinfo-password"),
    pytest.param(lambda port: "http://localhost/img.png", id="glob-host-over-http"),
    pytest.param(lambda port: "https://localhost/img.png", id="glob-host-resolving-to-loopback"),
    pytest.param(lambda port: f"https://localhost:{port}/img.png", id="glob-host-other-port"),
    pytest.param(lambda port: f"http://127.0.0.1:{port}/img.png", id="exact-ip-other-port"),
    pytest.param(lambda port: f"http://[::ffff:127.0.0.1]:{port}/img.png", id="mapped-ipv6"),
    # *.fluxhook-test.invalid is a glob entry whose names never resolve: refusing them must not need DNS.
    pytest.param(lambda port: "http://img.fluxhook-test.invalid/img.png", id="glob-listed-host-over-http"),
    pytest.param(lambda port: "http://img.fluxhook-test.invalid:443/img.png", id="glob-listed-host-http-on-443"),
    pytest.param(lambda port: "https://img.fluxhook-test.invalid:8443/img.png", id="glob-listed-host-other-port"),
    pytest.param(lambda port: "https://fluxhook-test.invalid/img.png", id="glob-does-not-cover-parent"),
    pytest.param(lambda port: "https://a.b.fluxhook-test.invalid/img.png", id="glob-covers-one-label"),
    pytest.param(lambda port: "https://nothing.fluxhook-test.invalid.evil.example/img.png", id="suffix-trick"),
])
def test_disallowed_sample_url_is_refused_unsent(api, sim, spy, unlisted_spy, make_url):
    unlisted_spy.route("/img.png", body=image_bytes("PNG"), headers={"Content-Type": "image/png"})

    job = deliver(api, make_url(unlisted_spy.port))

    assert_failed(job, "failed", "host_not_allowed")
    assert unlisted_spy.hits == []
    assert spy.hits == []


# -- what comes back must be a JPEG, PNG or WebP within the size limit ---------


@pytest.mark.parametrize("body, content_type", [
    pytest.param(b"just some text, not an image", "text/plain", id="text"),
    pytest.param(b"<html><body>AuthenticationFailed</body></html>", "image/png", id="html-claiming-png"),
    pytest.param(image_bytes("GIF"), "image/gif", id="gif"),
    pytest.param(image_bytes("BMP"), "image/bmp", id="bmp"),
    pytest.param(image_bytes("PNG")[:40], "image/png", id="truncated-png"),
    pytest.param(b"", "image/png", id="empty"),
])
def test_non_image_bytes_are_refused(api, sim, spy, stack, body, content_type):
    url = spy.route("/thing", body=body, headers={"Content-Type": content_type})

    job = deliver(api, url)

    assert_failed(job, "failed", "not_an_image")
    assert spy.hits == ["/thing"]
    assert stored_files(stack, job["id"]) == []


def test_png_header_and_padding_over_the_limit_is_too_large(api, sim, spy, stack):
    body = image_bytes("PNG")[:33] + b"\0" * MAX_IMAGE_BYTES
    url = spy.route("/big-padding.png", body=body, headers={"Content-Type": "image/png"})

    job = deliver(api, url)

    assert_failed(job, "failed", "too_large")
    assert stored_files(stack, job["id"]) == []


def test_valid_png_over_the_limit_is_too_large(api, sim, spy, stack):
    body = noise_png(MAX_IMAGE_BYTES + 1)
    url = spy.route("/big-noise.png", body=body, headers={"Content-Type": "image/png"})

    job = deliver(api, url)

    assert_failed(job, "failed", "too_large")
    assert stored_files(stack, job["id"]) == []


@pytest.mark.parametrize("fmt, content_type, extension", [
    ("JPEG", "image/jpeg", "jpg"),
    ("WEBP", "image/webp", "webp"),
    ("PNG", "image/png", "png"),
])
def test_jpeg_webp_and_png_are_stored_byte_identical(api, sim, spy, stack, fmt, content_type, extension):
    # The delivery host's Content-Type is deliberately wrong: the format is judged by the bytes.
    data = image_bytes(fmt, width=33, height=21)
    url = spy.route(f"/image.{extension}", body=data, headers={"Content-Type": "application/octet-stream"})

    job = deliver(api, url)

    assert job["status"] == "stored", job
    image = job["image"]
    assert image["content_type"] == content_type
    assert (image["width"], image["height"]) == (33, 21)
    assert image["size"] == len(data)
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    served = api.get(f"/v1/jobs/{job['id']}/image")
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["Content-Type"] == content_type
    assert served.headers["ETag"] == f'"{image["sha256"]}"'
    files = stored_files(stack, job["id"])
    assert len(files) == 1 and files[0].read_bytes() == data


def test_image_at_exactly_the_limit_is_stored(api, sim, spy):
    # A PNG may carry trailing bytes after IEND; pad a real one to exactly MAX_IMAGE_BYTES.
    data = image_bytes("PNG")
    data += b"\0" * (MAX_IMAGE_BYTES - len(data))
    url = spy.route("/exact-limit.png", body=data, headers={"Content-Type": "image/png"})

    job = deliver(api, url)

    assert job["status"] == "stored", job
    assert job["image"]["size"] == MAX_IMAGE_BYTES


def test_a_download_task_that_succeeded_leaves_nothing_in_redis_and_its_worker_idle(api, sim, spy, redis_server):
    # Nobody reads a task's return value: RQ keeps no record and no result of a download that succeeded (it
    # was most of what a stored job held its first hour), and nothing written with the task's end brings its
    # record back. The worker writes its own idle state with the task's end, not in a round trip after it.
    url = spy.route("/recorded.png", body=image_bytes("PNG"), headers={"Content-Type": "image/png"})
    job = deliver(api, url)
    assert job["status"] == "stored", job

    db = redis.Redis.from_url(redis_server.url)
    # Each enqueue's task id is its own (enqueueing.task_id): every key RQ keeps of one names the task's name.
    name = download_task_name(job["id"])
    wait_until(lambda: not rq_task_ids(db, name), timeout=10, message="the download task's record gone")
    assert [k for k in db.scan_iter(match=f"rq:*{name}*")] == []  # no result, no execution
    # Idle in Redis, not only in the worker's own memory (which skips writing an unchanged state).
    wait_until(lambda: {w.get_state() for w in Worker.all(connection=db)} == {"idle"}, timeout=10,
               message="the one worker's lanes idle once the queue is empty")


# -- redirects ----------------------------------------------------------------


def _redirect_chain(spy, hops: int, final_url: str, name: str) -> str:
    """``hops`` redirects on the allowlisted spy ending at ``final_url``; returns the first URL."""
    target = final_url
    for n in range(hops, 0, -1):
        target = spy.route(f"/{name}-hop{n}", status=302, headers={"Location": target})
    return target


def test_redirect_to_an_allowed_host_is_followed(api, sim, spy):
    data = image_bytes("PNG", color=(1, 2, 3))
    final = spy.route("/redirected.png", body=data, headers={"Content-Type": "image/png"})
    # A relative Location, as delivery hosts often send.
    spy.route("/moved", status=302, headers={"Location": "/redirected.png"})

    job = deliver(api, spy.url + "/moved")

    assert job["status"] == "stored", job
    assert job["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert spy.hits == ["/moved", "/redirected.png"]
    assert final.endswith("/redirected.png")


def test_redirect_to_an_unlisted_host_is_refused_unsent(api, sim, spy, unlisted_spy):
    target = unlisted_spy.route("/img.png", body=image_bytes("PNG"), headers={"Content-Type": "image/png"})
    spy.route("/to-unlisted", status=302, headers={"Location": target})

    job = deliver(api, spy.url + "/to-unlisted")

    assert_failed(job, "failed", "host_not_allowed")
    assert spy.hits == ["/to-unlisted"]
    assert unlisted_spy.hits == []


@pytest.mark.parametrize("location", [
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("http://localhost/img.png", id="glob-host-over-http"),
    pytest.param("https://localhost/img.png", id="loopback-glob-host"),
])
def test_redirect_to_a_refused_url_is_not_followed(api, sim, spy, location):
    spy.route("/bounce", status=302, headers={"Location": location})

    job = deliver(api, spy.url + "/bounce")

    assert_failed(job, "failed", "host_not_allowed")
    assert spy.hits == ["/bounce"]


def test_three_redirects_are_followed(api, sim, spy):
    data = image_bytes("PNG", color=(9, 9, 9))
    final = spy.route("/three.png", body=data, headers={"Content-Type": "image/png"})

    job = deliver(api, _redirect_chain(spy, 3, final, "three"))

    assert job["status"] == "stored", job
    assert spy.hits == ["/three-hop1", "/three-hop2", "/three-hop3", "/three.png"]


def test_four_redirects_are_too_many(api, sim, spy):
    final = spy.route("/four.png", body=image_bytes("PNG"), headers={"Content-Type": "image/png"})

    job = deliver(api, _redirect_chain(spy, 4, final, "four"))

    assert_failed(job, "failed", "download_failed")
    assert "/four.png" not in spy.hits
    assert len(spy.hits) == 4


# -- transient failures and expired URLs ---------------------------------------


def test_transient_server_error_is_retried_until_stored(api, sim, spy):
    data = image_bytes("PNG", color=(4, 5, 6))
    calls = []
    lock = threading.Lock()

    def flaky():
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            return 500, {"Content-Type": "text/plain"}, b"temporarily broken"
        return 200, {"Content-Type": "image/png"}, data

    url = spy.route("/flaky.png", body=flaky)
    job = api.submit("[pending] flaky")
    assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200

    final = api.wait_for(job["id"], timeout=15)

    assert final["status"] == "stored", final
    assert final["attempts"]["downloads"] >= 2
    assert spy.hits.count("/flaky.png") >= 2
    assert final["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert final["attempts"]["polls"] == 0


def _ready_at_bfl_without_callback(api, sim) -> dict:
    """A job whose task is Ready at the simulator, whose own callback was dropped."""
    job = api.submit("[pending] [drop] expiring")
    task = sim.task(job["bfl_id"])
    assert {"pending", "drop"} <= set(task["markers"])
    sim.complete(job["bfl_id"])
    # Read through the control API: a get_result here would count as a poll of the task.
    wait_until(lambda: sim.task(job["bfl_id"])["status"] == "Ready", timeout=10,
               message="the simulator task to be Ready")
    assert sim.task(job["bfl_id"])["callback_plan"] == "dropped"
    return job


def test_expired_url_is_renewed_by_one_poll(api, sim, spy):
    job = _ready_at_bfl_without_callback(api, sim)
    expired = spy.route("/expired.png", status=403, body=b"AuthenticationFailed",
                        headers={"Content-Type": "text/plain"})

    assert api.callback(job["id"], ready_payload(job["bfl_id"], expired)).status_code == 200
    final = api.wait_for(job["id"])

    assert final["status"] == "stored", final
    assert final["attempts"]["polls"] == 1
    assert sim.task(job["bfl_id"])["polls"] == 1
    assert spy.hits == ["/expired.png"]
    assert final["image"]["sha256"] == hashlib.sha256(sim.image_bytes(job["bfl_id"])).hexdigest()


@pytest.mark.parametrize("status", [403, 404, 410])
def test_url_that_stays_expired_ends_expired(api, sim, spy, status):
    job = _ready_at_bfl_without_callback(api, sim)
    sim.settings(delivery_fail_status=status, delivery_fail_count=5)
    expired = spy.route("/gone.png", status=status, body=b"gone", headers={"Content-Type": "text/plain"})

    assert api.callback(job["id"], ready_payload(job["bfl_id"], expired)).status_code == 200
    final = api.wait_for(job["id"])

    assert_failed(final, "expired", "result_expired")
    assert final["attempts"]["polls"] == 1
    # The fresh URL from that one poll was tried once, and nothing more.
    assert sim.control("GET", "/settings")["delivery_fail_count"] == 4
    assert spy.hits == ["/gone.png"]


# -- storage --------------------------------------------------------------------


def test_storage_is_atomic_and_holds_only_the_image(api, sim, spy, stack):
    data = image_bytes("PNG", color=(7, 7, 7))
    job = deliver(api, spy.route("/atomic.png", body=data, headers={"Content-Type": "image/png"}))

    assert job["status"] == "stored", job
    root = storage_dir(stack)
    assert (root / f"{job['id']}.png").read_bytes() == data
    # Its thumbnail is written after "stored", in the same task, through a partial file of its own (renamed into
    # place), and the stack's other jobs may be writing theirs meanwhile: none is left once they are done.
    wait_until(lambda: (root / f"{job['id']}-thumb.webp").exists(), timeout=20, message="the job's thumbnail")
    wait_until(lambda: not [p for p in root.iterdir() if p.name.startswith(".partial-")], timeout=20,
               message="no partial file left in storage")
    assert sorted(p.name for p in root.iterdir() if job["id"] in p.name) == [f"{job['id']}-thumb.webp",
                                                                          f"{job['id']}.png"]


# -- GET /v1/jobs/{id}/image and DELETE -------------------------------------------


def _stored_job(api, spy, name: str, color) -> tuple[dict, bytes]:
    data = image_bytes("PNG", color=color)
    job = deliver(api, spy.route(f"/{name}.png", body=data, headers={"Content-Type": "image/png"}))
    assert job["status"] == "stored", job
    return job, data


def test_image_of_a_job_not_stored_yet_is_404(api, sim):
    job = api.submit("[pending] not yet")

    error = assert_error_body(api.get(f"/v1/jobs/{job['id']}/image"), 404)

    assert error["code"]
    assert api.job(job["id"])["image"] is None


def test_image_of_an_unknown_job_is_404(api, sim):
    assert_error_body(api.get("/v1/jobs/job_00000000000000000000000000/image"), 404)


def test_image_of_a_failed_job_is_410(api, sim, unlisted_spy):
    job = deliver(api, unlisted_spy.route("/x.png", body=image_bytes("PNG")))
    assert_failed(job, "failed", "host_not_allowed")

    assert_error_body(api.get(f"/v1/jobs/{job['id']}/image"), 410)


def test_image_etag_and_conditional_get(api, sim, spy):
    job, data = _stored_job(api, spy, "etag", (1, 1, 1))
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    first = api.get(f"/v1/jobs/{job['id']}/image")
    assert first.status_code == 200 and first.headers["ETag"] == etag
    assert "max-age" in first.headers.get("Cache-Control", "")

    again = api.get(f"/v1/jobs/{job['id']}/image", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    other = api.get(f"/v1/jobs/{job['id']}/image", headers={"If-None-Match": '"' + "0" * 64 + '"'})
    assert other.status_code == 200 and other.content == data


def test_signed_image_url_works_for_its_own_job_only(api, sim, spy):
    job_a, data_a = _stored_job(api, spy, "job-a", (10, 0, 0))
    job_b, data_b = _stored_job(api, spy, "job-b", (0, 10, 0))
    url_a = job_a["image"]["url"]
    token_a = url_a.split("token=", 1)[1]

    own = requests.get(url_a, timeout=10)
    assert own.status_code == 200 and own.content == data_a

    # Job A's token on job B's path.
    crossed = requests.get(f"{api.base_url}/v1/jobs/{job_b['id']}/image", params={"token": token_a}, timeout=10)
    assert_error_body(crossed, 401)

    tampered = token_a[:-3] + ("xyz" if not token_a.endswith("xyz") else "abc")
    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image",
                                   params={"token": tampered}, timeout=10), 401)

    # A webhook-URL token for the same job is signed for another purpose.
    webhook_token = signing.webhook_token(SECRET_KEY, job_a["id"])
    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image",
                                   params={"token": webhook_token}, timeout=10), 401)

    # An image token minted with another SECRET_KEY.
    foreign = signing.file_token("another-key-0123456789abcdef", job_a["id"], "image")
    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image",
                                   params={"token": foreign}, timeout=10), 401)

    # A token of the right job, signed with the right key, but older than IMAGE_URL_TTL_SECONDS (60).
    class IssuedAnHourAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3600

    stale = URLSafeTimedSerializer(SECRET_KEY, salt=signing._IMAGE_URL_SALT,
                                   signer=IssuedAnHourAgo).dumps(job_a["id"])
    assert signing.file_token_valid(SECRET_KEY, stale, job_a["id"], "image", 7200)  # only its age is wrong
    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image",
                                   params={"token": stale}, timeout=10), 401)

    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image", timeout=10), 401)
    assert_error_body(requests.get(f"{api.base_url}/v1/jobs/{job_a['id']}/image",
                                   headers={"Authorization": "Bearer not-a-real-token"}, timeout=10), 401)

    # The bearer token reaches either image.
    assert api.get(f"/v1/jobs/{job_b['id']}/image").content == data_b


def test_delete_removes_record_and_image(api, sim, spy, stack):
    job, _ = _stored_job(api, spy, "to-delete", (3, 3, 3))
    path = storage_dir(stack) / f"{job['id']}.png"
    assert path.exists()

    deleted = api.delete(f"/v1/jobs/{job['id']}")

    assert deleted.status_code == 204
    assert_error_body(api.get(f"/v1/jobs/{job['id']}"), 404)
    assert_error_body(api.get(f"/v1/jobs/{job['id']}/image"), 404)
    assert not path.exists()
    assert stored_files(stack, job["id"]) == []
