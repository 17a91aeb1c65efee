"""Real, deterministic images for delivery: a per-task gradient, padded with noise on demand, or (``scene``)
a landscape at the requested size, as a generation looks.

A padded image's noise is drawn once per format and size and shared by every task, each made its own by a
comment naming its task (a JPEG COM segment, a PNG tEXt chunk): BFL draws its images on its own machines,
and a stand-in that drew a megabyte of noise per task would spend the cores of the fluxhook under test
(about 56 ms of CPU per 1 MB JPEG, seconds for a backlog finishing at once).
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import struct
import threading
import zlib
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter

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
        [tuple(int(s + (e - s) * x / max(width - 1, 1)) for s, e in zip(start, end, strict=False)) for x in range(width)]
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
    """Encode the task's image as `fmt`; with `target_bytes`, roughly that size (shared noise, named for the task)."""
    base = _encode(_gradient(task_id, BASE_SIZE), fmt)
    if not target_bytes or target_bytes <= len(base):
        return base
    return _named(_padded(fmt, target_bytes), fmt, task_id)


@lru_cache(maxsize=8)
def _padded(fmt: str, target_bytes: int) -> bytes:
    # Noise compresses at a near-constant rate per pixel, so a few proportional
    # corrections converge on the target size.
    pixels = max(48, target_bytes // 3)
    data = b""
    for _ in range(6):
        data = _encode(_noisy("padding", pixels), fmt)
        ratio = target_bytes / len(data)
        if 0.95 <= ratio <= 1.05:
            break
        pixels = max(48, int(pixels * ratio))
    return data


def _named(data: bytes, fmt: str, task_id: str) -> bytes:
    """``data`` with a comment naming ``task_id`` right after its signature (the image itself unchanged)."""
    text = f"task {task_id}".encode()
    if fmt == "jpeg":  # after SOI: COM, its length counting itself
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    chunk = b"tEXt" + b"Comment\0" + text  # after the signature and IHDR, which must come first
    end = 8 + 4 + 4 + 13 + 4
    return data[:end] + struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[end:]


def render_scene(task_id: str, fmt: str, size: tuple[int, int]) -> bytes:
    """A landscape of the task's colours at ``size``: sky, sun, hills and grain, encoded as ``fmt``."""
    rng = random.Random(_seed(task_id))
    width, height = size
    top, bottom = hashlib.sha256(task_id.encode()).digest()[0:3], hashlib.sha256(task_id.encode()).digest()[3:6]
    sky = Image.new("RGB", (1, 2))
    sky.putdata([tuple(top), tuple(bottom)])
    image = sky.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    sun = rng.randint(height // 12, height // 6)
    cx, cy = rng.randint(sun, width - sun), rng.randint(sun, height // 2)
    draw.ellipse((cx - sun, cy - sun, cx + sun, cy + sun), fill=(255, 236, 180))
    for layer in range(4):
        base = height * (0.5 + 0.12 * layer)
        shade = tuple(rng.randint(20, 90) + 30 * layer for _ in range(3))
        points = [(0, height)] + [(x, base + rng.uniform(-0.08, 0.08) * height)
                                  for x in range(0, width + 64, 64)] + [(width, height)]
        draw.polygon(points, fill=shade)
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    grain = Image.effect_noise((width, height), 12).convert("RGB")
    image = Image.blend(image, grain, 0.06)
    return _encode(image, fmt)


class ImageCache:
    """Encoded images per task, each generated once even under concurrent requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, bytes] = {}
        self._key_locks: dict[str, threading.Lock] = {}

    def get(self, task_id: str, fmt: str, target_bytes: int | None, size: tuple[int, int] | None = None) -> bytes:
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
            data = render_scene(task_id, fmt, size) if size else render_image(task_id, fmt, target_bytes)
            with self._lock:
                self._entries[task_id] = data
                self._key_locks.pop(task_id, None)
            return data

    def clear(self) -> None:
        """Forget every cached image."""
        with self._lock:
            self._entries.clear()
            self._key_locks.clear()
