"""Real, deterministic images for delivery: a per-task gradient, padded with noise on demand."""

from __future__ import annotations

import hashlib
import io
import math
import random
import threading

from PIL import Image

BASE_SIZE = (64, 48)
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG"}


def _seed(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big")


def _gradient(task_id: str, size: tuple[int, int]) -> Image.Image:
    digest = hashlib.sha256(task_id.encode()).digest()
    start, end = digest[0:3], digest[3:6]
    width, height = size
    # Build one row, then stretch: cheap even for large sizes.
    row = Image.new("RGB", (width, 1))
    row.putdata(
        [tuple(int(s + (e - s) * x / max(width - 1, 1)) for s, e in zip(start, end)) for x in range(width)]
    )
    return row.resize(size)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=_PIL_FORMATS[fmt], **({"quality": 90} if fmt == "jpeg" else {}))
    return buf.getvalue()


def _noisy(task_id: str, pixels: int) -> Image.Image:
    width = max(8, round(math.sqrt(pixels * 4 / 3)))
    height = max(6, round(width * 3 / 4))
    noise = Image.frombytes("RGB", (width, height), random.Random(_seed(task_id)).randbytes(width * height * 3))
    return Image.blend(_gradient(task_id, (width, height)), noise, 0.5)


def render_image(task_id: str, fmt: str, target_bytes: int | None = None) -> bytes:
    """Encode the task's image as `fmt`; with `target_bytes`, grow it to roughly that size."""
    base = _encode(_gradient(task_id, BASE_SIZE), fmt)
    if not target_bytes or target_bytes <= len(base):
        return base
    # Noise compresses at a near-constant rate per pixel, so a few proportional
    # corrections converge on the target size.
    pixels = max(48, target_bytes // 3)
    data = b""
    for _ in range(6):
        data = _encode(_noisy(task_id, pixels), fmt)
        ratio = target_bytes / len(data)
        if 0.95 <= ratio <= 1.05:
            break
        pixels = max(48, int(pixels * ratio))
    return data


class ImageCache:
    """Encoded images per task, each generated once even under concurrent requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, bytes] = {}
        self._key_locks: dict[str, threading.Lock] = {}

    def get(self, task_id: str, fmt: str, target_bytes: int | None) -> bytes:
        """Cached bytes for the task, rendering them on first use."""
        with self._lock:
            if task_id in self._entries:
                return self._entries[task_id]
            key_lock = self._key_locks.setdefault(task_id, threading.Lock())
        # Render outside the shared lock so one large image does not stall other tasks.
        with key_lock:
            with self._lock:
                if task_id in self._entries:
                    return self._entries[task_id]
            data = render_image(task_id, fmt, target_bytes)
            with self._lock:
                self._entries[task_id] = data
                self._key_locks.pop(task_id, None)
            return data

    def clear(self) -> None:
        """Forget every cached image."""
        with self._lock:
            self._entries.clear()
            self._key_locks.clear()
