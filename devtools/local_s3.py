"""``make run RUN_S3=1``: a local stand-in for S3 (moto's server) with its bucket, for a dev run that stores as a
deployment on S3 does. Its objects are kept in ``var/s3/`` between runs, as the embedded Redis keeps its jobs."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import requests

from .processes import free_port, python, start_process, stop_process, wait_until

BUCKET = "fluxhook-dev"
PREFIX = "images"
# moto takes any credentials, and boto3 needs some to sign with: these are no secret. The rest keeps a shell's own
# AWS settings (a profile, a config file naming another region or endpoint) away from the stand-in.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fluxhook-dev",
    "AWS_SECRET_ACCESS_KEY": "fluxhook-dev-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_MANIFEST = "objects.json"


def run_s3_wanted(value: str | None) -> bool:
    """Whether ``RUN_S3`` asks for the stand-in: ``1`` yes, unset or ``0`` no; ValueError for anything else."""
    text = (value or "").strip()
    if text not in ("", "0", "1"):
        raise ValueError(f"RUN_S3 must be 1 (a local S3 stand-in stores the files) or 0, not {value!r}")
    return text == "1"


@dataclass
class LocalS3:
    """moto's S3 server on 127.0.0.1 at a free port, its bucket made and filled with what ``directory`` kept of the
    last run; ``stop`` writes the bucket back there (each object a file under ``directory/BUCKET/``)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: Popen | None = None
    ready: bool = False  # the bucket is made and filled: only then is it kept at stop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        """The service's settings for this store: those of any S3-compatible service (docs/operating.md, README)."""
        return {"STORAGE_URL": f"s3://{BUCKET}/{PREFIX}", "S3_ENDPOINT_URL": self.url, **CREDENTIALS}

    def start(self) -> LocalS3:
        if importlib.util.find_spec("moto") is None:
            raise RuntimeError("RUN_S3=1 needs moto's S3 server, which `make run RUN_S3=1` installs "
                               "(requirements-s3.txt); run it that way, or pip install -r requirements-s3.txt")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory.parent / "s3.log"
        self.process = start_process([python(), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     dict(os.environ), log_path=str(log))
        wait_until(lambda: self._answers(log), timeout=60, interval=0.1, message="the local S3 server to answer")
        client = self.client()
        client.create_bucket(Bucket=BUCKET)
        for key, head in self._kept().items():
            client.upload_file(str(self.directory / BUCKET / key), BUCKET, key,
                               ExtraArgs={"ContentType": head["content_type"], "Metadata": head["metadata"]})
        self.ready = True
        return self

    def stop(self) -> None:
        """Keep the bucket's objects in ``directory``, then stop the server (stop the service first)."""
        if self.process is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self.ready and self.process.poll() is None:
                self._keep()
        except (BotoCoreError, ClientError, OSError) as exc:
            raise RuntimeError(f"the local S3's objects were not kept in {self.directory}: {exc}") from exc
        finally:
            stop_process(self.process)

    def client(self):
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client("s3", endpoint_url=self.url, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            config=BotoConfig(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}))

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def _answers(self, log: Path) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the local S3 server exited; see {log}")
        try:
            return requests.get(self.url + "/moto-api/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _kept(self) -> dict[str, dict]:
        try:
            return json.loads((self.directory / _MANIFEST).read_text())
        except FileNotFoundError:
            return {}

    def _keep(self) -> None:
        # Only what changed since the last run is copied: a stop takes as long as this run's new files.
        client, root, before = self.client(), self.directory / BUCKET, self._kept()
        now = {}
        for key in self.keys():
            head = client.head_object(Bucket=BUCKET, Key=key)
            now[key] = {"etag": head["ETag"], "content_type": head.get("ContentType", "application/octet-stream"),
                        "metadata": head.get("Metadata", {})}
            path = root / key
            if before.get(key, {}).get("etag") != now[key]["etag"] or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(BUCKET, key, str(path))
        for key in before.keys() - now.keys():
            (root / key).unlink(missing_ok=True)
        partial = self.directory / f".{_MANIFEST}.partial"
        partial.write_text(json.dumps(now, indent=1, sort_keys=True))
        os.replace(partial, self.directory / _MANIFEST)
