"""Where a queued job's BFL input waits: in its record when small, in storage when large (reference images as
base64 make bodies of 100 MB), so Redis never holds it; it is dropped once BFL has the task."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

from fluxhook.core.chunks import CHUNK
from fluxhook.core.errors import InvalidRequest, StorageError
from fluxhook.core.json_body import json_chunks

if TYPE_CHECKING:
    from fluxhook.services import Services

# An input at most this large (as JSON) stays in the job's record; a larger one goes to storage.
INLINE_INPUT_BYTES = 16 * 1024


def key_for(job_id: str) -> str:
    """The storage key of a job's input while it waits (beside its results)."""
    return f"{job_id}-input.json"


def keep(svc: "Services", job_id: str, task_input: dict | None, size: int) -> dict | None:
    """Store a large input for the job; the ``input`` its record keeps (None when it went to storage)."""
    if size <= INLINE_INPUT_BYTES:
        return task_input
    # Streamed: a second whole copy of an input of 100 MB, as one JSON string, is not needed.
    svc.storage.put(key_for(job_id), io.BufferedReader(_JSONReader(task_input), buffer_size=CHUNK))
    return None


class _JSONReader(io.RawIOBase):
    """A value's JSON as a readable, non-seekable binary stream, encoded as it is read."""

    def __init__(self, value):
        self._chunks = json_chunks(value)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._pending = memoryview(piece.encode())
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def load(svc: "Services", job_id: str, recorded: dict | None) -> dict:
    """The job's input: the one its record keeps, else the one in storage."""
    if recorded:
        return recorded
    file = svc.storage.open(key_for(job_id))
    if file is None:
        raise InvalidRequest("the job's input is no longer stored; submit it again")
    with file:
        try:
            return json.loads(file.read())
        except ValueError as exc:
            raise StorageError("the job's stored input cannot be read") from exc


def drop(svc: "Services", job_id: str) -> None:
    """Forget a stored input (BFL has the task, or the job ended without it); never fails the caller."""
    try:
        svc.storage.delete(key_for(job_id))
    except (StorageError, OSError):
        pass  # retention removes what a failing store kept
