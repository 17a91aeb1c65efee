"""fluxhook/media/storage.py's ``location``, ``where`` and ``elsewhere``: a store named in one form (what a job's
record keeps as where its files went), in words, and the one sentence a job's file route answers when the job's
files went to a store that is no longer the configured one."""

from __future__ import annotations

import io

from fluxhook.media.storage import S3Storage, elsewhere, storage_from_url, where


def test_a_store_is_named_as_storage_url_names_it_whatever_the_endpoint(tmp_path, monkeypatch):
    assert storage_from_url(f"file://{tmp_path}/images").location == f"file://{tmp_path}/images"
    monkeypatch.chdir(tmp_path)
    assert storage_from_url("file://./var/images").location == f"file://{tmp_path}/var/images"
    # The dev run's S3 stand-in listens at another port each run: the same bucket all the same.
    first = S3Storage("fluxhook-dev", "/images/", endpoint_url="http://127.0.0.1:40001", region="us-east-1")
    second = S3Storage("fluxhook-dev", "images", endpoint_url="http://127.0.0.1:40002", region="us-east-1")
    assert first.location == second.location == "s3://fluxhook-dev/images"
    assert S3Storage("media", region="us-east-1").location == "s3://media"


def test_a_location_in_words():
    assert where("file:///srv/fluxhook/images") == "the folder /srv/fluxhook/images"
    assert where("s3://fluxhook-dev/images") == "S3 bucket fluxhook-dev (under images/)"
    assert where("s3://media") == "S3 bucket media"


def test_a_file_in_another_store_is_named_with_the_setting_that_reads_it(tmp_path):
    here = storage_from_url(f"file://{tmp_path}/images")
    message = elsewhere(here, "s3://fluxhook-dev/images", "job_x.jpg")
    assert message == (f"this job's files are stored in S3 bucket fluxhook-dev (under images/), but this service "
                       f"now stores files in the folder {tmp_path}/images: to read them, set "
                       "STORAGE_URL=s3://fluxhook-dev/images (with S3_ENDPOINT_URL and the AWS_* credentials that "
                       "reach it)")
    assert elsewhere(here, "file:///old/images", "job_x.jpg") == (
        f"this job's files are stored in the folder /old/images, but this service now stores files in the folder "
        f"{tmp_path}/images: to read them, set STORAGE_URL=file:///old/images")


def test_a_file_that_may_be_read_here_is_not_refused(tmp_path):
    here = storage_from_url(f"file://{tmp_path}/images")
    assert elsewhere(here, here.location, "job_x.jpg") is None  # missing, but from this very store: not "elsewhere"
    assert elsewhere(here, None, "job_x.jpg") is None  # a job stored before records named their store
    here.put("job_x.jpg", io.BytesIO(b"copied over"))
    assert here.exists("job_x.jpg") and not here.exists("job_y.jpg")
    assert elsewhere(here, "s3://fluxhook-dev/images", "job_x.jpg") is None  # its file was moved here
