"""A store that fails for a while (a full, read-only or vanished directory; an S3 endpoint that is down)
is transient: the download is retried, nothing partial is visible, /readyz's check says
storage, and the job is stored once the store is back. Directories are a small tmpfs of their own
(needs root and mount); S3 is a moto server of the test's own, stopped and started again."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from devtools.processes import free_port, python, start_process, stop_process, wait_until
from fluxhook.core import job as st
from fluxhook.core.errors import RetryableError
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle import readiness
from fluxhook.lifecycle.storing import download_and_store
from fluxhook.media import thumbnails
from helpers import png_bytes
from s3_helpers import AWS_ENV, BUCKET, S3Server

DB = 12


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "images"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root and mount")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def _ready_job(svc, spy, name: str) -> Job:
    url = spy.route(f"/{name}.png", body=png_bytes())
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{name}", created_at=now,
                                 updated_at=now, submitted_at=now))
    assert svc.jobs.transition(job.id, st.READY, result_url=url, bfl_status=st.BFL_READY, finished_at=now)
    return job


def _storage_check(svc):
    return next(c for c in readiness.check(svc) if c.name == "storage")


def _visible(disk: Path) -> list[str]:
    return sorted(p.name for p in disk.iterdir() if p.name != "filler")


def test_a_full_disk_is_retried_says_storage_and_stores_once_freed(make_services, small_disk, spy):
    svc = make_services(DB, STORAGE_URL=f"file://{small_disk}")
    job = _ready_job(svc, spy, "full")
    filler = _fill(small_disk)

    assert _storage_check(svc).failed
    with pytest.raises(RetryableError):
        download_and_store(svc, job.id, last_attempt=False)
    assert svc.jobs.get(job.id).status == st.READY and _visible(small_disk) == []

    filler.unlink()
    assert not _storage_check(svc).failed
    assert download_and_store(svc, job.id, last_attempt=False) == st.STORED
    assert _visible(small_disk) == sorted([f"{job.id}.png", thumbnails.key_for(job.id)])  # its thumbnail with it


def test_a_read_only_store_is_retried_and_stores_once_writable_again(make_services, small_disk, spy):
    svc = make_services(DB, STORAGE_URL=f"file://{small_disk}")
    job = _ready_job(svc, spy, "read-only")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert _storage_check(svc).failed
        with pytest.raises(RetryableError):
            download_and_store(svc, job.id, last_attempt=False)
        assert svc.jobs.get(job.id).status == st.READY
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert download_and_store(svc, job.id, last_attempt=False) == st.STORED
    assert _visible(small_disk) == sorted([f"{job.id}.png", thumbnails.key_for(job.id)])  # its thumbnail with it


def test_a_vanished_directory_is_made_again(make_services, tmp_path, spy):
    images = tmp_path / "gone" / "images"
    svc = make_services(DB, STORAGE_URL=f"file://{images}")
    job = _ready_job(svc, spy, "vanished")
    assert not images.exists()
    assert download_and_store(svc, job.id, last_attempt=False) == st.STORED
    assert (images / f"{job.id}.png").exists()


def _moto(port: int, log: Path):
    """A moto S3 server on ``port`` with the test bucket (a fresh, empty one each start)."""
    process = start_process([python(), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], dict(os.environ),
                            log_path=str(log))
    server = S3Server(port, process)
    wait_until(lambda: process.poll() is None and _answers(server.url), timeout=60, interval=0.1,
               message="the moto S3 server to answer")
    server.client.create_bucket(Bucket=BUCKET)
    return server


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def test_an_s3_endpoint_that_is_down_is_retried_and_stores_once_back(make_services, spy, tmp_path, monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    moto = _moto(port, tmp_path / "moto-1.log")
    svc = make_services(DB, STORAGE_URL=f"s3://{BUCKET}/faults", S3_ENDPOINT_URL=moto.url)
    job = _ready_job(svc, spy, "s3-down")
    stop_process(moto.process)
    try:
        assert _storage_check(svc).failed
        with pytest.raises(RetryableError):
            download_and_store(svc, job.id, last_attempt=False)
        assert svc.jobs.get(job.id).status == st.READY
        moto = _moto(port, tmp_path / "moto-2.log")
        assert not _storage_check(svc).failed
        assert download_and_store(svc, job.id, last_attempt=False) == st.STORED
        assert moto.exists(f"faults/{job.id}.png")
    finally:
        stop_process(moto.process)
