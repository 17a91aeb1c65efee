"""Downloading BFL's results: how long their URLs may be fetched, and fetching them safely (allowlisted hosts,
checked redirects, capped size, real image or video bytes, told by the bytes themselves).

A result URL lives as the model catalog says per model: 10 minutes for FLUX.1 and FLUX.2 images, about an hour for
FLUX 3 Image and BFL's tools, about 2 hours for FLUX 3 video and its draft cache. Downloads are retried for as long
as a URL may still be fetched, and a URL past its life is not fetched at all: BFL is asked for a fresh one instead.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from dataclasses import dataclass
from functools import partial
from typing import IO, Callable, Iterator, Self
from urllib.parse import urljoin

import requests
from PIL import Image, UnidentifiedImageError

from fluxhook.core import stopping
from fluxhook.core.catalog import URL_LIFE_BY_KIND, Catalog, in_force
from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import (
    DownloadError,
    ImageTooLarge,
    InvalidResult,
    ResultURLExpired,
    StorageError,
    TransientDownloadError,
)
from fluxhook.core.hosts import HostPattern, check_url
from fluxhook.media.storage import discard_upload
from fluxhook.media.video import CONTENT_TYPE as VIDEO_CONTENT_TYPE
from fluxhook.media.video import EXTENSION as VIDEO_EXTENSION
from fluxhook.media.video import FOURCC_BYTES, VideoInfo
from fluxhook.media.video import inspect as inspect_video
from fluxhook.net.deadlines import Deadline, DeadlinePassed, within
from fluxhook.net.http_client import HTTPClient

MAX_REDIRECTS = 3
TIMEOUT = (5, 30)  # connect, read (between bytes)
# The whole exchange, from connecting to the last byte (a host that trickles bytes is cut there): the answer's head and
# first bytes within this, an image's whole body within this of them.
TOTAL_DEADLINE = 120
# A large body (a video) may take longer than TOTAL_DEADLINE, but must come at this rate at least (bytes/s).
MIN_RATE = 1024 * 1024
_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
_EXPIRED = (403, 404, 410)
# The kinds of result, told apart by the first HEAD_BYTES of a file (``sniff``).
IMAGE, VIDEO = "image", "video"
HEAD_BYTES = 16

IMAGE_URL_LIFE = URL_LIFE_BY_KIND["image"]
VIDEO_URL_LIFE = URL_LIFE_BY_KIND["video"]
# FLUX 3 Image's and BFL's tools' URLs, as the catalog gives them: between an image's and a video's.
HOUR_URL_LIFE = 3600


def expects_video(model: str | None, catalog: Catalog | None = None) -> bool:
    """Whether a model's results are videos: its catalog kind; a name the catalog does not know is taken for a
    video when it says so (``flux-3-video`` and its kin)."""
    entry = (catalog or in_force()).get(model)
    if entry is not None:
        return entry.kind == "video"
    return model is not None and "video" in model


def model_url_life(model: str | None, catalog: Catalog | None = None) -> int:
    """Seconds a result URL of this model lives after BFL finished the task, from the catalog (``catalog``, else the
    one in force). A model the catalog does not know gets an image's life unless its name says video, and none (a task
    tracked without one) a video's: retrying an image's URL too long costs a few requests, giving up on a video's too
    early loses it."""
    entry = (catalog or in_force()).get(model)
    if entry is not None:
        return entry.result_url_life
    return IMAGE_URL_LIFE if model is not None and not expects_video(model, catalog) else VIDEO_URL_LIFE


def past_life(model: str | None, finished_at: float | None, now: float) -> bool:
    """Whether a result URL of a task BFL finished at ``finished_at`` has outlived its life by ``now``."""
    return finished_at is not None and now > finished_at + model_url_life(model)


class _InUpload:
    """Bytes in a storage upload file, closed and removed by ``close`` (and on leaving a ``with``) unless stored."""

    file: IO[bytes]

    def close(self) -> None:
        discard_upload(self.file)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class FetchedResult(_InUpload):
    """A downloaded, verified result in a storage upload file (closed and removed by ``close``, unless stored).

    A video (``kind == VIDEO``) also carries what its ``video`` object says (``info``), poster included.
    """

    file: IO[bytes]
    content_type: str
    extension: str
    size: int
    sha256: str
    width: int
    height: int
    kind: str = IMAGE
    info: VideoInfo | None = None

    def describe(self) -> dict:
        """The ``image`` (or ``video``) fields of the job object, without the URLs."""
        described = {
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
        }
        if self.info is not None:
            described.update(duration=self.info.duration, fps=self.info.fps, has_audio=self.info.has_audio)
        return described


@dataclass(frozen=True)
class SizeLimits:
    """The largest image and the largest video (and draft cache) accepted, in bytes."""

    image: int
    video: int


@dataclass
class FetchedFile(_InUpload):
    """Downloaded opaque bytes (a draft cache) in a storage upload file."""

    file: IO[bytes]
    size: int
    sha256: str


def fetch_result(http: HTTPClient, url: str, allowlist: tuple[HostPattern, ...], limits: SizeLimits,
                new_upload: Callable[[], IO[bytes]]) -> FetchedResult:
    """Download ``url`` into a file from ``new_upload``: a JPEG, PNG or WebP (up to ``limits.image`` bytes) or an MP4
    (up to ``limits.video``), judged by its bytes, and probed. Raises HostNotAllowed, ResultURLExpired,
    TransientDownloadError, ImageTooLarge or InvalidResult (or, in a stopping worker, StopRequested)."""
    kinds = {}

    def limit_for(head: bytes) -> int:
        kind = sniff(head)
        if kind is None:
            raise InvalidResult("the downloaded bytes are not a JPEG, PNG, WebP image or an MP4 video")
        kinds["kind"] = kind
        return limits.video if kind == VIDEO else limits.image

    out, digest, size = _download(http, url, allowlist, limit_for, new_upload)
    try:
        if kinds["kind"] == VIDEO:
            info = inspect_video(out, size)
            fetched = FetchedResult(out, VIDEO_CONTENT_TYPE, VIDEO_EXTENSION, size, digest, info.width, info.height,
                                    VIDEO, info)
        else:
            content_type, extension, width, height = identify(out)
            fetched = FetchedResult(out, content_type, extension, size, digest, width, height)
    except BaseException:
        discard_upload(out)
        raise
    out.seek(0)
    return fetched


def fetch_file(http: HTTPClient, url: str, allowlist: tuple[HostPattern, ...], max_bytes: int,
               new_upload: Callable[[], IO[bytes]]) -> FetchedFile:
    """Download opaque bytes (a draft cache) of at most ``max_bytes`` with the same rules as a result."""
    out, digest, size = _download(http, url, allowlist, lambda head: max_bytes, new_upload)
    out.seek(0)
    return FetchedFile(out, size, digest)


def _download(http: HTTPClient, url: str, allowlist, limit_for: Callable[[bytes], int],
              new_upload: Callable[[], IO[bytes]]) -> tuple[IO[bytes], str, int]:
    """Stream ``url`` into an upload file; ``limit_for(first bytes)`` says (or refuses) how large it may be."""
    try:
        with within(TOTAL_DEADLINE) as deadline:
            return _download_within(http, url, allowlist, limit_for, new_upload, deadline)
    except DeadlinePassed as exc:
        raise TransientDownloadError(f"the download took longer than {round(exc.seconds)} s") from None


def _download_within(http: HTTPClient, url: str, allowlist, limit_for: Callable[[bytes], int],
                     new_upload: Callable[[], IO[bytes]], deadline: Deadline) -> tuple[IO[bytes], str, int]:
    response = _get_following_allowed_redirects(http, url, allowlist)
    with response:
        if response.status_code in _EXPIRED:
            raise ResultURLExpired(f"the delivery host answered {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientDownloadError(f"the delivery host answered {response.status_code}")
        if response.status_code != 200:
            raise DownloadError(f"the delivery host answered {response.status_code}")
        chunks = _chunks(response)
        head = _read_head(chunks)
        max_bytes = limit_for(head)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ImageTooLarge(f"the result is {declared} bytes, more than the {max_bytes} allowed")
        # Written where the store keeps results: storing it is then a rename, not a second copy.
        out = new_upload()
        try:
            # Threads pay off for large bodies (a video); an image of a few MB is done before they would start.
            large = not (declared and declared.isdigit() and int(declared) <= PIPELINE_FROM)
            # Minutes for an image, longer for what may be gigabytes.
            deadline.move(max(TOTAL_DEADLINE, max_bytes / MIN_RATE))
            digest, size = _stream(head, chunks, out, max_bytes, threaded=large)
        except BaseException:
            discard_upload(out)
            raise
    return out, digest, size


def _get_following_allowed_redirects(http: HTTPClient, url: str, allowlist) -> requests.Response:
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, allowlist)
        try:
            response = http.session_for(target).get(url, stream=True, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            # from None: urllib3's messages carry the URL, and a delivery URL's query is its signature.
            raise TransientDownloadError(f"download failed: {type(exc).__name__}") from None
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers.get("Location", ""))
    raise DownloadError(f"the delivery host redirected more than {MAX_REDIRECTS} times")


def _chunks(response: requests.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_content(CHUNK)
    except requests.RequestException as exc:
        raise TransientDownloadError(f"download interrupted: {type(exc).__name__}") from None


def _read_head(chunks: Iterator[bytes]) -> bytes:
    """The body's first bytes, enough to tell what it is (all of it, if shorter)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    return head


def _stream(head: bytes, chunks: Iterator[bytes], out: IO[bytes], max_bytes: int, *,
            threaded: bool) -> tuple[str, int]:
    """Receive the body while (``threaded``) other threads hash and write what came before: the network,
    sha256 and the disk work at once (each releases the GIL), with at most ``_AHEAD`` pieces between them.

    Raises StopRequested at the next piece once a stopping worker wants its tasks back (``stopping.REQUESTED``)."""
    digest = hashlib.sha256()
    size = 0
    with (_Writer if threaded else _InlineWriter)(out, digest) as writer:
        for chunk in itertools.chain((head,), chunks):
            if stopping.REQUESTED.is_set():
                raise stopping.StopRequested()
            size += len(chunk)
            if size > max_bytes:
                raise ImageTooLarge(f"the result is larger than the {max_bytes} bytes allowed")
            writer.put(chunk)
    return digest.hexdigest(), size


# Pieces received but not yet hashed (or written): the memory a download holds, whatever its size.
_AHEAD = 4
# Bodies declared larger than this (or not declared) are received, hashed and written in three threads.
PIPELINE_FROM = 8 * 1024 * 1024


class _InlineWriter:
    """Hashes and writes each piece in the receiving thread."""

    def __init__(self, out: IO[bytes], digest):
        self.out, self.digest = out, digest

    def __enter__(self) -> "_InlineWriter":
        return self

    def put(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        _write(self.out, chunk)

    def __exit__(self, kind, exc, tb) -> None:
        if exc is None:
            _write(self.out, b"")  # what the buffer still holds reaches the disk now, or fails as the store's fault


class _Writer(_InlineWriter):
    """Hashes pieces in one thread and writes them in another (sha256 and the disk each release the GIL, so
    they run beside the receiving thread and each other); a failure (a full disk) is raised in the caller."""

    def __init__(self, out: IO[bytes], digest):
        super().__init__(out, digest)
        self.error: BaseException | None = None
        self.pipes: list[queue.Queue[bytes | None]] = [queue.Queue(maxsize=_AHEAD), queue.Queue(maxsize=_AHEAD)]
        self.threads = [threading.Thread(target=self._run, args=(pipe, work), name=f"download-{name}", daemon=True)
                        for pipe, work, name in zip(self.pipes, (self.digest.update, partial(_write, out)), ("hash", "write"),
                                                    strict=True)]

    def __enter__(self) -> "_Writer":
        for thread in self.threads:
            thread.start()
        return self

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        for pipe in self.pipes:
            pipe.put(chunk)

    def __exit__(self, kind, exc, tb) -> None:
        for pipe in self.pipes:
            pipe.put(None)
        for thread in self.threads:
            thread.join()
        if exc is None and self.error is not None:
            raise self.error
        super().__exit__(kind, exc, tb)

    def _run(self, pipe: queue.Queue, work) -> None:
        while (chunk := pipe.get()) is not None:
            if self.error is not None:
                continue  # drain, so the receiving side never blocks on a thread that gave up
            try:
                work(chunk)
            except BaseException as exc:  # handed to the receiving thread
                self.error = exc


def _write(out: IO[bytes], chunk: bytes) -> None:
    """Write to the store's upload file: a full or read-only disk is the store failing for a while."""
    try:
        out.write(chunk)
        if not chunk:
            out.flush()
    except OSError as exc:
        raise StorageError(f"cannot write the download: {exc.strerror or type(exc).__name__}") from exc


def identify(file: IO[bytes]) -> tuple[str, str, int, int]:
    """Content type, extension, width and height of a JPEG, PNG or WebP, judged by its bytes."""
    try:
        with Image.open(file, formats=list(_FORMATS)) as image:
            kind = _FORMATS.get(image.format or "")
            if kind is None:
                raise InvalidResult(f"{image.format} images are not accepted; only JPEG, PNG and WebP")
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidResult("the downloaded bytes are not a JPEG, PNG or WebP image") from exc
    finally:
        file.seek(0)
    return kind[0], kind[1], width, height


def sniff(head: bytes) -> str | None:
    """``IMAGE`` for a JPEG, PNG or WebP start, ``VIDEO`` for an ISO base media (MP4) start, else None."""
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return IMAGE
    if len(head) >= 12 and head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        if 16 <= size <= 4096 and all(b in FOURCC_BYTES for b in head[8:12]):
            return VIDEO
    return None
