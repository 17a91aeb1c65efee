"""`make run` switched between its stores, files and `RUN_S3=1`, over one var/ folder, as a newcomer switches it: the
README's download command works under both as written, and a job whose files went to the other store answers one clear
`410` naming where they are and the setting that reads them (never moto's `403 SignatureDoesNotMatch` nor "the stored
image is missing"); switched back, it is served again."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess

import requests

from devtools.local_s3 import BUCKET, PREFIX
from devtools.processes import ROOT
from helpers import start_make_run

README_DOWNLOAD = next(line.strip() for line in (ROOT / "README.md").read_text().splitlines()
                       if line.strip().startswith("curl") and "$FH/v1/jobs/$JOB/image" in line)


class Run:
    """A `make run` over ``tmp_path``'s var/, with the S3 stand-in or without: its address and token."""

    def __init__(self, tmp_path, *, s3: bool):
        env = {"RUN_S3": "1", "STORAGE_URL": "", "S3_ENDPOINT_URL": ""} if s3 else {"RUN_S3": "0"}
        self.process, lines = start_make_run(tmp_path, **env)
        text = "\n".join(lines)
        if "Ctrl-C stops everything" not in text:
            raise AssertionError(f"make run did not start:\n{text}\n{self.process.stderr.read()}")
        self.base = re.search(r"fluxhook is running at (http://localhost:\d+)", text).group(1)
        self.token = re.search(r"dev token: (\S+)", text).group(1)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def stored_job(self, prompt: str) -> dict:
        answer = self.http.post(f"{self.base}/v1/jobs", headers={"Prefer": "wait=30"}, timeout=40,
                                json={"model": "flux-2-pro", "input": {"prompt": prompt}})
        assert answer.status_code == 202 and answer.json()["status"] == "stored", answer.text
        return answer.json()

    def readme_download(self, tmp_path, job: dict) -> bytes:
        """The README's download command, run as written in a shell that set FH, TOKEN and JOB as the README does."""
        folder = tmp_path / "shell"
        folder.mkdir(exist_ok=True)
        saved = folder / "lighthouse.jpg"
        saved.unlink(missing_ok=True)
        done = subprocess.run(["sh", "-c", README_DOWNLOAD], cwd=folder, capture_output=True, text=True, timeout=30,
                              env={"PATH": "/usr/bin:/bin", "FH": self.base, "TOKEN": self.token, "JOB": job["id"]})
        assert done.returncode == 0, done.stderr
        return saved.read_bytes()

    def refused(self, job: dict) -> dict:
        """The job's image, by token and by its signed link: one 410 each, the same error; that error."""
        by_token = self.http.get(f"{self.base}/v1/jobs/{job['id']}/image", allow_redirects=False, timeout=10)
        by_link = requests.get(self.http.get(f"{self.base}/v1/jobs/{job['id']}", timeout=10).json()["image"]["url"],
                               allow_redirects=False, timeout=10)
        assert by_token.status_code == by_link.status_code == 410, (by_token.text, by_link.text)
        assert by_token.json() == by_link.json()
        return by_token.json()["error"]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=60) == 0
        assert "Traceback" not in self.process.stderr.read()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_switching_stores_names_where_an_old_jobs_file_is_and_the_readme_download_works_under_both(
        tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_URL", raising=False)  # the run's own default folder, as a newcomer's
    folder = tmp_path / "var" / "images"
    assert "-L" in README_DOWNLOAD.split() or "-sL" in README_DOWNLOAD.split(), README_DOWNLOAD

    files = Run(tmp_path, s3=False)
    try:
        in_folder = files.stored_job("a lighthouse kept in a folder")
        assert _sha256(files.readme_download(tmp_path, in_folder)) == in_folder["image"]["sha256"]
    finally:
        files.stop()

    s3 = Run(tmp_path, s3=True)
    try:
        error = s3.refused(in_folder)
        assert error == {"code": "stored_elsewhere", "message": (
            f"this job's files are stored in the folder {folder}, but this service now stores files in S3 bucket "
            f"{BUCKET} (under {PREFIX}/): to read them, set STORAGE_URL=file://{folder}")}, error
        in_bucket = s3.stored_job("a lighthouse kept in a bucket")
        # Answered with a redirect to the bucket: the README's command follows it.
        assert s3.http.get(in_bucket["image"]["url"], allow_redirects=False, timeout=10).status_code == 302
        assert _sha256(s3.readme_download(tmp_path, in_bucket)) == in_bucket["image"]["sha256"]
    finally:
        s3.stop()

    back = Run(tmp_path, s3=False)
    try:
        error = back.refused(in_bucket)
        assert error["code"] == "stored_elsewhere" and error["message"].startswith(
            f"this job's files are stored in S3 bucket {BUCKET} (under {PREFIX}/), but this service now stores files "
            f"in the folder {folder}: to read them, set STORAGE_URL=s3://{BUCKET}/{PREFIX} (with S3_ENDPOINT_URL"), error
        # The folder's job is served again, as the README downloads it.
        assert _sha256(back.readme_download(tmp_path, in_folder)) == in_folder["image"]["sha256"]
    finally:
        back.stop()
