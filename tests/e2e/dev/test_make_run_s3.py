"""`make run RUN_S3=1` as a newcomer meets it: a local S3 stand-in (moto's server) with its bucket, and the service
set up for it as for any S3 (STORAGE_URL, S3_ENDPOINT_URL, AWS_*). A job's file and thumbnail are objects in that
bucket, its image is served from there, `fluxhook doctor` in a new shell finds storage OK, and the bucket is kept in
var/s3/ for the next run."""

from __future__ import annotations

import hashlib
import re
import signal

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig

from cli_helpers import bare_env, doctor
from devtools.local_s3 import BUCKET, CREDENTIALS, PREFIX
from devtools.processes import wait_until
from e2e.dev.test_make_install import dry_run
from fluxhook.media import thumbnails
from helpers import start_make_run

# A shell's own storage settings would be refused beside RUN_S3=1: a newcomer's has none.
NO_STORAGE = {"STORAGE_URL": "", "S3_ENDPOINT_URL": ""}


class Run:
    """A `make run RUN_S3=1` started for a test: its printed addresses, token and the stand-in's endpoint."""

    def __init__(self, tmp_path):
        self.process, lines = start_make_run(tmp_path, RUN_S3="1", **NO_STORAGE)
        text = "\n".join(lines)
        if "Ctrl-C stops everything" not in text:
            raise AssertionError(f"make run RUN_S3=1 did not start:\n{text}\n{self.process.stderr.read()}")
        self.endpoint = re.search(r"on a local S3 stand-in \(moto\) at (http://127\.0\.0\.1:\d+)", text).group(1)
        assert f"  files:  s3://{BUCKET}/{PREFIX} on a local S3 stand-in" in text, text
        self.base = re.search(r"fluxhook is running at (http://localhost:\d+)", text).group(1)
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer " + re.search(r"dev token: (\S+)", text).group(1)

    def job(self, job_id: str) -> dict:
        return self.http.get(f"{self.base}/v1/jobs/{job_id}", timeout=10).json()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=60) == 0
        assert "Traceback" not in self.process.stderr.read()


def bucket_of(endpoint: str):
    """The test's own boto3 view of the stand-in: any credentials do, as with moto."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a-newcomer",
                        aws_secret_access_key="any-secret", config=BotoConfig(connect_timeout=5, read_timeout=10))


def keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", ())}


def served(url: str, endpoint: str) -> bytes:
    """The bytes of a job's image URL, checking the service answers with a redirect into the stand-in's bucket (the
    S3 store's default delivery)."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"].startswith(f"{endpoint}/{BUCKET}/{PREFIX}/"), answer.headers["Location"]
    from_bucket = requests.get(answer.headers["Location"], timeout=10)
    assert from_bucket.status_code == 200 and from_bucket.headers["Content-Type"] == "image/jpeg"
    return from_bucket.content


def test_a_job_lands_in_the_local_bucket_is_served_from_it_and_is_kept_for_the_next_run(tmp_path):
    run = Run(tmp_path)
    try:
        job = run.http.post(f"{run.base}/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "a lighthouse"}},
                            timeout=10).json()
        stored = wait_until(lambda: (lambda j: j if j["status"] == "stored" else None)(run.job(job["id"])),
                            timeout=30, message="the job to be stored")
        image_key, thumb_key = f"{PREFIX}/{job['id']}.jpg", f"{PREFIX}/{thumbnails.key_for(job['id'])}"
        bucket = bucket_of(run.endpoint)
        wait_until(lambda: {image_key, thumb_key} <= keys(bucket), timeout=30, message="the file and its thumbnail")
        in_bucket = bucket.get_object(Bucket=BUCKET, Key=image_key)["Body"].read()
        assert hashlib.sha256(in_bucket).hexdigest() == stored["image"]["sha256"]
        assert bucket.head_object(Bucket=BUCKET, Key=thumb_key)["ContentType"] == thumbnails.CONTENT_TYPE
        assert served(stored["image"]["url"], run.endpoint) == in_bucket

        # A new terminal exports nothing: the doctor signs with the run's AWS_* from its settings file.
        code, checks, output = doctor(bare_env(FLUXHOOK_VAR=str(tmp_path / "var")))
        assert code == 0, output
        assert checks["storage"] == [f"ok s3://{BUCKET}/{PREFIX} is writable"], output
        assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in output
    finally:
        run.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(run.endpoint, timeout=2)  # the stand-in stopped with the run
    kept = tmp_path / "var" / "s3" / BUCKET
    assert (kept / image_key).read_bytes() == in_bucket and (kept / thumb_key).exists()

    # The next run's stand-in holds them again: the job recorded in the embedded Redis is still served.
    again = Run(tmp_path)
    try:
        assert {image_key, thumb_key} <= keys(bucket_of(again.endpoint))
        assert served(again.job(job["id"])["image"]["url"], again.endpoint) == in_bucket
    finally:
        again.stop()


@pytest.mark.parametrize(("env", "named"), [({"RUN_S3": "yes"}, "RUN_S3 must be 1"),
                                            ({"RUN_S3": "1", "STORAGE_URL": "file:///tmp/x"}, "unset STORAGE_URL")])
def test_a_wrong_run_s3_is_named_on_the_terminal_before_anything_starts(tmp_path, env, named):
    process, _ = start_make_run(tmp_path, **{**NO_STORAGE, **env})
    assert process.wait(timeout=30) == 2
    stderr = process.stderr.read()
    assert named in stderr and "Traceback" not in stderr
    assert not (tmp_path / "var" / "s3").exists()


def test_only_run_s3_installs_the_stand_in(tmp_path, monkeypatch):
    monkeypatch.setenv("RUN_S3", "1")
    with_s3 = dry_run("run", tmp_path / "venv")
    assert "-r requirements-s3.txt" in with_s3 and "requirements-dev.txt" not in with_s3
    assert with_s3.strip().splitlines()[-1].endswith("python -m devtools.run")
    monkeypatch.setenv("RUN_S3", "0")
    assert "requirements-s3.txt" not in dry_run("run", tmp_path / "venv")
