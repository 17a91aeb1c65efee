"""Where stored images live: a directory (``file://``) or an S3-compatible bucket (``s3://``).

Both write atomically (a crash never leaves a partial image visible) and idempotently (storing
the same key twice is harmless).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from fluxhook.core.chunks import CHUNK
from fluxhook.core.config import parse_s3_url
from fluxhook.core.errors import StorageError

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}\.[a-z0-9]{1,5}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                  "avif": "image/avif", "mp4": "video/mp4", "bin": "application/octet-stream", "json": "application/json"}


class Storage(Protocol):
    """What the rest of fluxhook needs of an image store."""

    def put(self, key: str, source: IO[bytes], *, sha256: str | None = None) -> None: ...

    def new_upload(self) -> IO[bytes]: ...

    def open(self, key: str) -> IO[bytes] | None: ...

    def open_at(self, key: str, start: int, end: int) -> IO[bytes] | None: ...

    def delete(self, key: str) -> None: ...

    def delete_many(self, keys: list[str]) -> None: ...

    def check_writable(self) -> None: ...

    def remove_older_than(self, cutoff: float, *, partial_before: float) -> int: ...

    def url_for(self, key: str, expires: int, content_type: str) -> str | None: ...

    def exists(self, key: str) -> bool: ...

    @property
    def location(self) -> str:
        """The store as a ``STORAGE_URL`` names it, in one form (``file:///abs/path``, ``s3://bucket/prefix``): what a
        job's record keeps as where its files are (``Job.stored_in``)."""
        ...


# Temporary files of images being written: never served, removed by retention if a crash leaves one.
_PARTIAL = ".partial-"
# An image being downloaded for S3 stays in memory up to this size, beyond it in a temporary file.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


def _sync_directory(path: Path) -> None:
    # The rename itself survives a power loss only once the directory is synced: without this, a job
    # could read "stored" while its image is back under its .partial- name.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _WriteBehind(io.FileIO):
    """An upload file that has the disk take what was written while more is still coming: every
    ``SYNC_EVERY`` bytes a thread syncs the file, so the sync before the rename has little left to do
    (a large video's fdatasync would otherwise come all at once, after its download)."""

    SYNC_EVERY = 32 * 1024 * 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._unsynced = 0
        self._syncing: threading.Thread | None = None

    def write(self, data) -> int:
        written = super().write(data)
        self._unsynced += written or 0
        if self._unsynced >= self.SYNC_EVERY and (self._syncing is None or not self._syncing.is_alive()):
            self._unsynced = 0
            self._syncing = threading.Thread(target=self._sync, name="write-behind", daemon=True)
            self._syncing.start()
        return written

    def _sync(self) -> None:
        try:
            os.fdatasync(self.fileno())
        except (OSError, ValueError):
            pass  # the final sync in put() reports any failure; a closed file was discarded

    def settle(self) -> None:
        """Wait for a sync under way (before the final one)."""
        if self._syncing is not None:
            self._syncing.join()

    def close(self) -> None:
        self.settle()
        super().close()


def discard_upload(upload: IO[bytes]) -> None:
    """Close a file from ``new_upload`` and remove it, unless ``put`` has stored it."""
    try:
        upload.close()
    except OSError:
        pass  # bytes a full disk would not take: the file is being thrown away anyway
    name = getattr(upload, "name", None)
    if isinstance(name, str) and os.path.basename(name).startswith(_PARTIAL):
        Path(name).unlink(missing_ok=True)


def _check_key(key: str) -> str:
    # Keys are made by us from job ids, but a key must never escape the store's root whatever it holds.
    if not _KEY.fullmatch(key):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class FileStorage:
    """Images as files in one directory, named by key."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def location(self) -> str:
        return "file://" + str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def new_upload(self) -> IO[bytes]:
        """An empty temporary file beside the images, for a download to be written into: ``put`` stores it by renaming
        it into place, so the image is written once, not spooled and copied; ``discard_upload`` removes it if unstored."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=_PARTIAL)
            os.close(fd)
            return io.BufferedRandom(_WriteBehind(tmp, "w+"), buffer_size=CHUNK)
        except OSError as exc:
            raise StorageError(f"cannot write images: {exc.strerror}") from exc

    def put(self, key: str, source: IO[bytes], *, sha256: str | None = None) -> None:
        """Store ``source`` under ``key``: written to a temp file, fsynced, renamed into place, the directory synced
        (``sha256`` is for the interface's sake: the job record keeps the digest)."""
        path = self._path(key)
        name = getattr(source, "name", None)
        # One of new_upload's files: stored by its rename into place.
        if isinstance(name, str) and os.path.dirname(name) == str(self.root) and os.path.basename(name).startswith(_PARTIAL):
            try:
                source.flush()
                raw = getattr(source, "raw", None)
                if isinstance(raw, _WriteBehind):
                    raw.settle()
                os.fdatasync(source.fileno())
                os.replace(name, path)
                _sync_directory(self.root)
            except OSError as exc:
                raise StorageError(f"cannot write image {key}: {exc.strerror}") from exc
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=_PARTIAL)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
                    out.flush()
                    # The data and the size, which is what a reader after a crash needs.
                    os.fdatasync(out.fileno())
                os.replace(tmp, path)
                _sync_directory(self.root)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write image {key}: {exc.strerror}") from exc

    def open(self, key: str) -> IO[bytes] | None:
        """The stored bytes as an open file, or None if there are none."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            return None

    def open_at(self, key: str, start: int, end: int) -> IO[bytes] | None:
        """The stored bytes from ``start`` on (the caller reads up to ``end``, inclusive), or None."""
        file = self.open(key)
        if file is not None:
            file.seek(start)
        return file

    def delete(self, key: str) -> None:
        """Remove the image; removing a missing image is not an error."""
        self._path(key).unlink(missing_ok=True)

    def delete_many(self, keys: list[str]) -> None:
        """Remove each of ``keys``' files (a job's variants); missing ones are not an error."""
        for key in keys:
            self.delete(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def remove_older_than(self, cutoff: float, *, partial_before: float) -> int:
        """Remove images last written before ``cutoff`` and partial files older than ``partial_before``: files whose
        record is gone (a crash between storing and recording, an expired record) go too."""
        removed = 0
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0
        for entry in entries:
            partial = entry.name.startswith(_PARTIAL)
            if not (partial or _KEY.fullmatch(entry.name)) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < (partial_before if partial else cutoff):
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def check_writable(self) -> None:
        """Create a file in the store and write a byte to it; a StorageError says why that fails, naming the setting."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # One byte, not an empty file: a full disk still creates empty files, then refuses their bytes.
            with tempfile.TemporaryFile(dir=self.root) as probe:
                probe.write(b"\0")
                probe.flush()
        except OSError as exc:
            raise StorageError(f"cannot write a file in {self.root}: {exc.strerror or type(exc).__name__} "
                               "(STORAGE_URL names this directory: it must exist or be creatable, with room, "
                               "and be writable by this user)") from exc

    def url_for(self, key: str, expires: int, content_type: str) -> str | None:
        """Files have no URL of their own: the web process streams them."""
        return None


class S3Storage:
    """Images as objects in an S3-compatible bucket (AWS S3, R2, MinIO, B2...), under an optional prefix.

    One PUT per image: an object is whole or absent, never partial, and putting a key again
    replaces it with the same bytes. Credentials and region come from boto3's usual sources
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ~/.aws, instance roles).
    """

    CONNECT_TIMEOUT = 5
    READ_TIMEOUT = 30
    # One try and one retry here: a failed store is retried by the download task, with backoff.
    MAX_ATTEMPTS = 2
    # /readyz is probed often: a successful write check is trusted this long.
    WRITABLE_FOR = 30.0
    PROBE_NAME = ".fluxhook-writable"
    # Objects this large (videos) go up in parts of PART_SIZE, PART_CONCURRENCY at a time: memory
    # stays at a few parts whatever the size, and S3's 5 GB limit on one PUT never applies.
    MULTIPART_THRESHOLD = 64 * 1024 * 1024
    PART_SIZE = 8 * 1024 * 1024
    PART_CONCURRENCY = 2

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self._root = f"{self.prefix}/" if self.prefix else ""
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_pid: int | None = None
        self._writable_until = 0.0
        # Built here, not on import nor per request. Loading botocore's models takes a quarter of a
        # second; done once, before RQ forks a work horse per task, a horse's own client is cheap.
        import boto3

        self._session = boto3.session.Session(region_name=region)
        self._s3()
        # botocore's DEBUG lines carry request signatures and presigned URLs.
        for name in ("boto3", "botocore", "s3transfer"):
            logging.getLogger(name).setLevel(logging.WARNING)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def location(self) -> str:
        # Not the endpoint: one bucket may be reached at another address (the dev run's stand-in changes port).
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _s3(self) -> Any:
        """This process's client: a forked child (RQ's work horse) makes its own, never sharing sockets."""
        pid = os.getpid()
        if self._client is not None and self._client_pid == pid:
            return self._client
        with self._lock:
            if self._client is None or self._client_pid != pid:
                from botocore.config import Config as BotoConfig

                self._client = self._session.client("s3", endpoint_url=self.endpoint_url, config=BotoConfig(
                    connect_timeout=self.CONNECT_TIMEOUT, read_timeout=self.READ_TIMEOUT,
                    retries={"max_attempts": self.MAX_ATTEMPTS, "mode": "standard"},
                    # SigV4 everywhere: R2 and MinIO refuse the legacy signature, also in presigned URLs.
                    signature_version="s3v4",
                ))
                self._client_pid = pid
            return self._client

    def _name(self, key: str) -> str:
        return self._root + _check_key(key)

    def _call(self, doing: str, operation: str, **params) -> Any:
        """One S3 call; any failure of the store or the network becomes a (retryable) StorageError."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3(), operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StorageError(f"cannot {doing} in s3://{self.bucket}: {error.get('Code') or 'error'} "
                               f"(HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')})",
                               status=503) from exc
        except (BotoCoreError, Boto3Error, OSError) as exc:
            # Boto3Error: the transfer manager's S3UploadFailedError, around a multipart upload's failure.
            raise StorageError(f"cannot {doing} in s3://{self.bucket}: {type(exc).__name__}", status=503) from exc

    def new_upload(self) -> IO[bytes]:
        """A temporary file (in memory up to 8 MiB) for a download to be written into, then ``put``."""
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)

    def put(self, key: str, source: IO[bytes], *, sha256: str | None = None) -> None:
        """Store ``source`` (from its current position) under ``key`` in one PUT, or from ``MULTIPART_THRESHOLD`` bytes on
        (a video) in parts through boto3's transfer manager. The object carries its sha256 (``sha256``, else computed
        here) as metadata and, unless AWS_REQUEST_CHECKSUM_CALCULATION=when_required, as x-amz-checksum-sha256, so that
        S3 refuses bytes that changed on the way."""
        name = self._name(key)
        if sha256 is not None and not _SHA256.fullmatch(sha256):
            raise StorageError(f"invalid sha256 {sha256[:80]!r} for image {key}")
        try:
            body = _Measured(source, sha256)
        except OSError as exc:
            raise StorageError(f"cannot read image {key} to store it: {exc.strerror or type(exc).__name__}") from exc
        with body:
            extra = {"ContentType": _CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"),
                     "Metadata": {"sha256": body.sha256}}
            if self._s3().meta.config.request_checksum_calculation != "when_required":
                extra["ChecksumAlgorithm"] = "SHA256"  # in parts, each part's own, checked by S3
            if body.size >= self.MULTIPART_THRESHOLD:
                self._put_in_parts(key, name, body, extra)
                return
            if "ChecksumAlgorithm" in extra:  # with the value given, botocore computes nothing itself
                extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(body.sha256)).decode()
            self._call(f"write image {key}", "put_object", Bucket=self.bucket, Key=name, Body=body.file,
                       ContentLength=body.size, **extra)

    def _put_in_parts(self, key: str, name: str, body: "_Measured", extra: dict[str, Any]) -> None:
        """A multipart upload: a few parts in memory at a time, whatever the size; whole or absent."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=self.MULTIPART_THRESHOLD, multipart_chunksize=self.PART_SIZE,
                                max_concurrency=self.PART_CONCURRENCY)
        # s3transfer reads a part of a file object into memory before sending it: bound how many wait.
        config.max_in_memory_upload_chunks = self.PART_CONCURRENCY
        self._call(f"write {key}", "upload_fileobj", Fileobj=body.file, Bucket=self.bucket, Key=name,
                   ExtraArgs=extra, Config=config)

    def open(self, key: str) -> IO[bytes] | None:
        """The stored bytes as a stream (close it), or None if there are none."""
        return self._get(key, {})

    def open_at(self, key: str, start: int, end: int) -> IO[bytes] | None:
        """Bytes ``start`` to ``end`` (inclusive) of the stored object as a stream, or None."""
        return self._get(key, {"Range": f"bytes={start}-{end}"})

    def _get(self, key: str, params: dict) -> IO[bytes] | None:
        try:
            return self._call(f"read {key}", "get_object", Bucket=self.bucket, Key=self._name(key), **params)["Body"]
        except StorageError as exc:
            if _missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (one HEAD)."""
        try:
            self._call(f"look for {key}", "head_object", Bucket=self.bucket, Key=self._name(key))
        except StorageError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove the image; removing a missing image is not an error (S3 answers 204 either way)."""
        self._call(f"delete image {key}", "delete_object", Bucket=self.bucket, Key=self._name(key))

    def delete_many(self, keys: list[str]) -> None:
        """Remove each of ``keys``' objects (a job's variants), up to 1000 in one request; missing ones are not an
        error."""
        names = [self._name(key) for key in keys]
        for start in range(0, len(names), 1000):
            self._delete_many(names[start:start + 1000])

    def remove_older_than(self, cutoff: float, *, partial_before: float) -> int:
        """Remove images under the prefix last written before ``cutoff`` (``partial_before`` has nothing to act on: a
        single PUT never leaves a partial object)."""
        removed = 0
        token: str | None = None
        while True:
            page = self._call("list images", "list_objects_v2", Bucket=self.bucket, Prefix=self._root,
                              Delimiter="/", **({"ContinuationToken": token} if token else {}))
            # A page lists at most 1000 keys, as many as one DeleteObjects takes.
            old = [item["Key"] for item in page.get("Contents", ())
                   if _KEY.fullmatch(item["Key"][len(self._root):]) and item["LastModified"].timestamp() < cutoff]
            if old:
                removed += self._delete_many(old)
            if not page.get("IsTruncated"):
                return removed
            token = page["NextContinuationToken"]

    def _delete_many(self, names: list[str]) -> int:
        answer = self._call("remove old images", "delete_objects", Bucket=self.bucket,
                            Delete={"Objects": [{"Key": n} for n in names], "Quiet": True})
        return len(names) - len(answer.get("Errors", ()))

    def check_writable(self) -> None:
        """Write the probe object; a StorageError says why that fails and which setting to look at."""
        if time.monotonic() < self._writable_until:
            return
        try:
            self._call("write a probe", "put_object", Bucket=self.bucket, Key=self._root + self.PROBE_NAME, Body=b"")
        except StorageError as exc:
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise StorageError(f"{exc.message}{where} ({_setting_at_fault(exc.__cause__)})",
                               status=503) from exc.__cause__
        self._writable_until = time.monotonic() + self.WRITABLE_FOR

    def url_for(self, key: str, expires: int, content_type: str) -> str | None:
        """A presigned GET URL of the image, valid ``expires`` seconds (signed locally, no request)."""
        return self._call(f"sign a URL of image {key}", "generate_presigned_url", ClientMethod="get_object",
                          ExpiresIn=expires, Params={"Bucket": self.bucket, "Key": self._name(key),
                                                     "ResponseContentType": content_type})


def seekable(source: IO[bytes]) -> bool:
    try:
        return source.seekable()
    except (AttributeError, ValueError):
        return False  # a bare stream without seekable(); ValueError: a closed file


def spool(source: IO[bytes]) -> IO[bytes]:
    """``source`` from its position on, copied into a temporary file at its start (in memory up to
    ``SPOOL_IN_MEMORY``, beyond it on disk): for a reader that seeks, given a stream that cannot (an S3 object's)."""
    copy = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        shutil.copyfileobj(source, copy, CHUNK)
        copy.seek(0)
    except BaseException:
        copy.close()
        raise
    return copy


def _missing(exc: StorageError) -> bool:
    """Whether S3 failed the call for want of the object."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


# S3's error codes by the setting that is wrong when S3 answers them.
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
                     "AllAccessDisabled", "AccountProblem", "Forbidden", "403"}
_REGION_CODES = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException",
                 "InvalidRegion", "301"}
_BUCKET_CODES = {"NoSuchBucket", "InvalidBucketName", "404"}


def _setting_at_fault(cause: BaseException | None) -> str:
    """The settings to look at for an S3 failure, in words: the credentials, the region, the bucket or the endpoint."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(cause, (NoCredentialsError, PartialCredentialsError)):
        return "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile or instance role)"
    if isinstance(cause, ClientError):
        code = str(cause.response.get("Error", {}).get("Code") or "")
        if code in _CREDENTIAL_CODES:
            return "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the store refused them for this bucket"
        if code in _REGION_CODES:
            return "check AWS_REGION (or AWS_DEFAULT_REGION): the bucket is in another region"
        if code in _BUCKET_CODES:
            return "check STORAGE_URL's bucket, and S3_ENDPOINT_URL: no such bucket there"
        return "check STORAGE_URL, S3_ENDPOINT_URL and the AWS_* credentials"
    if isinstance(cause, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return "check S3_ENDPOINT_URL (unset: AWS itself) and the network: the store cannot be reached"
    return "check STORAGE_URL, S3_ENDPOINT_URL and the AWS_* credentials"


class _Measured:
    """``source`` from its position on as a seekable file, with its size and sha256 (read once here)."""

    def __init__(self, source: IO[bytes], sha256: str | None):
        self._spool = None
        try:
            if not seekable(source):
                source = self._spool = spool(source)
            start = source.tell()
            if sha256 is None:
                digest = hashlib.sha256()
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                sha256 = digest.hexdigest()
            end = source.seek(0, os.SEEK_END)
            source.seek(start)
        except BaseException:
            self.__exit__()
            raise
        self.file, self.size, self.sha256 = source, end - start, sha256

    def __enter__(self) -> "_Measured":
        return self

    def __exit__(self, *exc) -> None:
        if self._spool is not None:
            self._spool.close()


def where(location: str) -> str:
    """A store's ``location`` (``Storage.location``) in words: "the folder /srv/images", "S3 bucket media (under
    fluxhook/)"."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return f"the folder {parts.netloc + parts.path}"
    if parts.scheme == "s3":
        prefix = parts.path.strip("/")
        return f"S3 bucket {parts.netloc}" + (f" (under {prefix}/)" if prefix else "")
    return location


def elsewhere(storage: Storage, stored_in: str | None, key: str) -> str | None:
    """Why a job's file ``key`` cannot be read from ``storage``, when the job's record says its files went to another
    store (``stored_in``, ``Job.stored_in``) and ``storage`` has no copy of it: the one sentence naming both stores
    and the setting that reads it. None when it may be read here (the same store, a record that names none, or a
    file copied over)."""
    if not stored_in or stored_in == storage.location or storage.exists(key):
        return None
    reach = " (with S3_ENDPOINT_URL and the AWS_* credentials that reach it)" if stored_in.startswith("s3:") else ""
    return (f"this job's files are stored in {where(stored_in)}, but this service now stores files in "
            f"{where(storage.location)}: to read them, set STORAGE_URL={stored_in}{reach}")


def storage_from_url(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> Storage:
    """The store a ``STORAGE_URL`` names: ``file:///abs/path``, ``file://./relative`` or ``s3://bucket/prefix``.

    ``endpoint_url`` (an S3-compatible service instead of AWS) and ``region`` apply to ``s3://`` only.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        try:
            bucket, prefix = parse_s3_url(url)
        except ValueError as exc:
            raise StorageError(f"bad storage URL: {exc}") from None
        return S3Storage(bucket, prefix, endpoint_url=endpoint_url, region=region)
    if parts.scheme != "file":
        raise StorageError(f"unsupported storage URL scheme {parts.scheme!r}")
    # file://./images is relative to the working directory; file:///srv/images and file://localhost/srv/images are not.
    path = parts.netloc + parts.path if parts.netloc in (".", "..") else parts.path
    return FileStorage(Path(path).resolve())
