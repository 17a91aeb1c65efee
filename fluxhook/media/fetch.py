"""Downloading a result image safely: allowlisted hosts, checked redirects, capped size, real image bytes."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable
from urllib.parse import urljoin

import requests
from PIL import Image, UnidentifiedImageError

from fluxhook.errors import (DownloadError, ImageTooLarge, NotAnImage, ResultURLExpired, StorageError,
                             TransientDownloadError)
from fluxhook.net.hosts import HostPattern, check_url
from fluxhook.net.http_client import HTTPClient
from fluxhook.media.storage import discard_upload

MAX_REDIRECTS = 3
TIMEOUT = (5, 30)  # connect, read (between bytes)
TOTAL_DEADLINE = 120
_CHUNK = 256 * 1024
_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
_EXPIRED = (403, 404, 410)


@dataclass
class FetchedImage:
    """A downloaded, verified image in a storage upload file (closed and removed by ``close``, unless stored)."""

    file: BinaryIO
    content_type: str
    extension: str
    size: int
    sha256: str
    width: int
    height: int

    def close(self) -> None:
        discard_upload(self.file)

    def __enter__(self) -> "FetchedImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        """The ``image`` fields of the job object, without ``url``."""
        return {
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
        }


def fetch_image(http: HTTPClient, url: str, allowlist: tuple[HostPattern, ...], max_bytes: int,
                new_upload: Callable[[], BinaryIO]) -> FetchedImage:
    """Download ``url`` into a file from ``new_upload`` and check it is a JPEG, PNG or WebP of at most ``max_bytes``.

    Raises HostNotAllowed, ResultURLExpired, TransientDownloadError, ImageTooLarge or NotAnImage.
    """
    response = _get_following_allowed_redirects(http, url, allowlist)
    with response:
        if response.status_code in _EXPIRED:
            raise ResultURLExpired(f"the delivery host answered {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientDownloadError(f"the delivery host answered {response.status_code}")
        if response.status_code != 200:
            raise DownloadError(f"the delivery host answered {response.status_code}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ImageTooLarge(f"the image is {declared} bytes, more than the {max_bytes} allowed")
        # Written where the store keeps images: storing it is then a rename, not a second copy.
        out = new_upload()
        try:
            digest, size = _stream(response, out, max_bytes)
            out.seek(0)
            content_type, extension, width, height = identify(out)
        except BaseException:
            discard_upload(out)
            raise
    out.seek(0)
    return FetchedImage(out, content_type, extension, size, digest, width, height)


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


def _stream(response: requests.Response, out: BinaryIO, max_bytes: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    # The read timeout bounds each wait; this bounds the whole body against a host that trickles bytes.
    deadline = time.monotonic() + TOTAL_DEADLINE
    try:
        for chunk in response.iter_content(_CHUNK):
            if time.monotonic() > deadline:
                raise TransientDownloadError(f"the download took longer than {TOTAL_DEADLINE} s")
            size += len(chunk)
            if size > max_bytes:
                raise ImageTooLarge(f"the image is larger than the {max_bytes} bytes allowed")
            digest.update(chunk)
            _write(out, chunk)
    except requests.RequestException as exc:
        raise TransientDownloadError(f"download interrupted: {type(exc).__name__}") from None
    _write(out, b"")  # what the buffer still holds reaches the disk now, or fails as the store's fault
    return digest.hexdigest(), size


def _write(out: BinaryIO, chunk: bytes) -> None:
    """Write to the store's upload file: a full or read-only disk is the store failing for a while."""
    try:
        out.write(chunk)
        if not chunk:
            out.flush()
    except OSError as exc:
        raise StorageError(f"cannot write the download: {exc.strerror or type(exc).__name__}") from exc


def identify(file: BinaryIO) -> tuple[str, str, int, int]:
    """Content type, extension, width and height of a JPEG, PNG or WebP, judged by its bytes."""
    try:
        with Image.open(file, formats=list(_FORMATS)) as image:
            kind = _FORMATS.get(image.format or "")
            if kind is None:
                raise NotAnImage(f"{image.format} images are not accepted; only JPEG, PNG and WebP")
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage("the downloaded bytes are not a JPEG, PNG or WebP image") from exc
    finally:
        file.seek(0)
    return kind[0], kind[1], width, height
