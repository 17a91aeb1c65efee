"""A moto S3 server process for the tests of S3-compatible storage: its bucket, fake credentials, and the tests'
own boto3 view of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import requests
from botocore.config import Config as BotoConfig

from devtools.processes import free_port, python, start_process, stop_process, wait_until

BUCKET = "fluxhook-test"
# Fake credentials: moto accepts any; boto3 must find some to sign with.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-access-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never look for real credentials or settings on the machine running the tests.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class S3Server:
    """A moto S3 server process and a plain boto3 client of it (the test's own view of the bucket)."""

    def __init__(self, port: int, process):
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.client = boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            config=BotoConfig(signature_version="s3v4", connect_timeout=5, read_timeout=10),
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def exists(self, key: str) -> bool:
        return key in self.keys(key)


@contextmanager
def moto_server(log: Path) -> Iterator[S3Server]:
    """A moto S3 server process on a free port, with the test bucket made; stopped on leaving."""
    port = free_port()
    process = start_process([python(), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], dict(os.environ),
                            log_path=str(log))
    server = S3Server(port, process)

    def answers():
        if process.poll() is not None:
            raise RuntimeError(f"the moto server exited; see {log}")
        try:
            return requests.get(server.url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout=60, interval=0.1, message="the moto S3 server to answer")
        server.client.create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop_process(process)
