"""Where stored images live. ``file://`` stores write atomically: a crash never leaves a partial image."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from .errors import StorageError

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}\.[a-z0-9]{1,5}$")


class FileStorage:
    """Images as files in one directory, named by key."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        # Keys are made by us from job ids, but a path must never escape the root whatever it holds.
        if not _KEY.fullmatch(key):
            raise StorageError(f"invalid storage key {key!r}")
        return self.root / key

    def put(self, key: str, source: BinaryIO) -> None:
        """Store ``source`` under ``key``: written to a temp file, fsynced, then renamed into place."""
        path = self._path(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write image {key}: {exc.strerror}") from exc

    def open(self, key: str) -> BinaryIO | None:
        """The stored bytes as an open file, or None if there are none."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove the image; removing a missing image is not an error."""
        self._path(key).unlink(missing_ok=True)

    def remove_older_than(self, cutoff: float, *, partial_before: float) -> int:
        """Remove images last written before ``cutoff`` and partial files older than ``partial_before``.

        Catches files whose record is gone (a crash between storing and recording, an expired record).
        """
        removed = 0
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0
        for entry in entries:
            partial = entry.name.startswith(".partial-")
            if not (partial or _KEY.fullmatch(entry.name)) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < (partial_before if partial else cutoff):
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def writable(self) -> bool:
        """Whether a new file can be created in the store."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                return True
        except OSError:
            return False


def storage_from_url(url: str) -> FileStorage:
    """The store a ``STORAGE_URL`` names (``file:///abs/path`` or ``file://./relative``)."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise StorageError(f"unsupported storage URL scheme {parts.scheme!r}")
    # file://./images is relative to the working directory; file:///srv/images and file://localhost/srv/images are not.
    path = parts.netloc + parts.path if parts.netloc in (".", "..") else parts.path
    return FileStorage(Path(path).resolve())
