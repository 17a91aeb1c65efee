"""A graceful stop, as on every PaaS deploy: SIGTERM to the worker finishes or hands back the task in hand within
the grace period, a download stops at its next piece, and every job is stored once after the restart. Each test a
stack of its own (fault_helpers), on a Redis of its own."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest
import requests
from PIL import Image

from conftest import API, ready_payload
from devtools.processes import wait_until
from fluxhook.core.holds import HAND_BACK_GRACE, IMMINENT_SHUTDOWN_DELAY
from fluxhook.lifecycle.steps.enqueueing import task_name

from .fault_helpers import DOWNLOAD_LANES, fault_stack, handed_back, handed_back_downloads, stored_exactly_once


def test_sigterm_finishes_or_hands_back_the_task_in_hand_within_the_grace_period(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=3.0)
    jobs = [api.submit(f"deploy {n}") for n in range(3)]
    wait_until(lambda: any(api.job(j["id"])["attempts"]["downloads"] for j in jobs), timeout=20,
               message="a download to start")
    started = time.monotonic()
    faults.kill("worker", signal.SIGTERM)
    assert time.monotonic() - started < 30  # Heroku's grace before SIGKILL
    sim.settings(delivery_delay=0)
    faults.start("worker")
    stored_exactly_once(api, sim, jobs, faults)


def test_sigterm_hands_back_a_task_too_long_for_the_grace_period(faults, sim):
    api = API(faults.base_url)
    sim.settings(delivery_delay=25.0)
    job = api.submit("a very slow delivery host")
    wait_until(lambda: api.job(job["id"])["attempts"]["downloads"] >= 1, timeout=20, message="the download")
    started = time.monotonic()
    faults.kill("worker", signal.SIGTERM)
    assert time.monotonic() - started < 20  # handed back after 10 s, not waited for
    # Waiting on the host's answer, it could not stop by itself: its lane gave it back, and did not wait for its read.
    assert [(task_name(line["task"]), line["stuck"]) for line in handed_back((faults.var_dir / "worker.log").read_text())] == [
        (f"download-{job['id']}", True)]
    sim.settings(delivery_delay=0)
    faults.start("worker")
    stored_exactly_once(api, sim, [job], faults)


@pytest.fixture()
def faults_large(simulator, _spies, tmp_path):
    """A FaultStack that takes images of up to 64 MiB: downloads that last longer than a stop's grace."""
    yield from fault_stack(simulator, _spies, tmp_path, MAX_IMAGE_BYTES=str(64 * 1024 * 1024))


def _noise_png(side: int) -> bytes:
    """A PNG of ``side``² random pixels, stored uncompressed: 3 bytes a pixel, whatever the pixels."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def test_sigterm_stops_downloads_mid_body_at_their_next_piece_and_the_jobs_are_stored_after_the_restart(
        faults_large, spy):
    api = API(faults_large.base_url)
    body = _noise_png(3600)  # 39 MB: 18 s at the host's pace, past the 10 s grace
    piece, fast = 256 * 1024, threading.Event()

    class Paced(list):
        """The delivery host's body at 2 MiB/s (a quarter MiB every 1/8 s) until ``fast`` is set."""

        def __iter__(self):
            for start in range(0, len(body), piece):
                if not fast.is_set():
                    fast.wait(1 / 8)  # the host's pace, not a test waiting for something
                yield body[start:start + piece]

    url = spy.route("/paced.png", body=Paced(), headers={"Content-Type": "image/png"})
    jobs = [api.submit(f"[pending] mid-body {n}") for n in range(DOWNLOAD_LANES)]
    for job in jobs:
        assert api.callback(job["id"], ready_payload(job["bfl_id"], url)).status_code == 200
    wait_until(lambda: len(spy.hits) >= DOWNLOAD_LANES, timeout=20, message="a download in every lane")
    started = time.monotonic()
    assert faults_large.kill("worker", signal.SIGTERM) == 0
    took = time.monotonic() - started

    log = (faults_large.var_dir / "worker.log").read_text()
    assert handed_back_downloads(log) == sorted(f"download-{j['id']}" for j in jobs)  # each once
    # Each stopped at its next piece, by itself: none was still in a read for its lane to give back.
    assert not [line for line in handed_back(log) if line["stuck"]]
    assert took < IMMINENT_SHUTDOWN_DELAY + HAND_BACK_GRACE, took
    assert "exception raised while executing" not in log  # a stop, not a failure
    assert {api.job(j["id"])["status"] for j in jobs} == {"ready"}

    fast.set()
    faults_large.start("worker")
    for job in jobs:
        done = api.wait_for(job["id"], timeout=60)
        # Downloaded twice, once cut off: the stop spent no retry, and nothing else went wrong.
        assert (done["status"], done["attempts"]["downloads"]) == ("stored", 2), done
        assert requests.get(done["image"]["url"], timeout=30).content == body
