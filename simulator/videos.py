"""Real MP4s for FLUX 3 video tasks (H.264 and an AAC tone, a few seconds, made with PyAV), padded on demand
to any size with a top-level ``free`` box that is streamed, never held in memory; and draft-cache bundles."""

from __future__ import annotations

import hashlib
import math
import random
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
from PIL import Image, ImageDraw

WIDTH, HEIGHT, FPS = 640, 360, 24
_PAD_PIECE = 1024 * 1024
_ZEROS = bytes(_PAD_PIECE)


def render_mp4(task_id: str, seconds: float) -> bytes:
    """A ``seconds``-long MP4 for the task: a moving shape over the task's colours, and a tone."""
    digest = hashlib.sha256(task_id.encode()).digest()
    back, fore = tuple(digest[0:3]), tuple(digest[3:6])
    frames = max(1, round(seconds * FPS))

    def picture(n: int) -> Image.Image:
        image = Image.new("RGB", (WIDTH, HEIGHT), back)
        x = int((WIDTH - 120) * n / max(frames - 1, 1))
        ImageDraw.Draw(image).ellipse((x, 120, x + 120, 240), fill=fore)
        return image

    return encode_mp4((picture(n) for n in range(frames)), seconds, WIDTH, HEIGHT, FPS, tone=220 + digest[6])


def encode_mp4(pictures: Iterable[Image.Image], seconds: float, width: int, height: int, fps: int, *,
               tone: float | None, faststart: bool = True) -> bytes:
    """H.264 of ``pictures`` at ``fps``, with an AAC sine of ``tone`` Hz for ``seconds`` (None: no audio track)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        # faststart: the index before the media, as delivered MP4s have it.
        options = {"movflags": "+faststart"} if faststart else {}
        with av.open(str(path), "w", format="mp4", options=options) as out:
            video = out.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"preset": "ultrafast"}
            sound = out.add_stream("aac", rate=48000, layout="mono") if tone is not None else None
            for image in pictures:
                for packet in video.encode(av.VideoFrame.from_image(image)):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
            if sound is not None:
                samples = 1024
                for block in range(int(seconds * 48000) // samples):
                    pcm = b"".join(struct.pack("<h", int(4000 * math.sin(2 * math.pi * tone * (i + block * samples) / 48000)))
                                   for i in range(samples))
                    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
                    frame.planes[0].update(pcm)
                    frame.sample_rate, frame.pts = 48000, block * samples
                    for packet in sound.encode(frame):
                        out.mux(packet)
                for packet in sound.encode():
                    out.mux(packet)
        return path.read_bytes()


def padded_size(video: bytes, target: int | None) -> int:
    """The delivered size: ``target`` when it leaves room for a ``free`` box after the video, else the video's."""
    return target if target and target >= len(video) + 16 else len(video)


def stream_padded(video: bytes, target: int | None) -> Iterator[bytes]:
    """The video, then a ``free`` box up to ``target`` bytes (a 64-bit box size, so any size works)."""
    yield video
    total = padded_size(video, target)
    pad = total - len(video)
    if pad <= 0:
        return
    yield struct.pack(">I", 1) + b"free" + struct.pack(">Q", pad)
    left = pad - 16
    while left > 0:
        piece = min(left, _PAD_PIECE)
        yield _ZEROS[:piece]
        left -= piece


def draft_bundle(task_id: str, size: int) -> bytes:
    """The task's opaque draft-cache bundle: ``size`` deterministic bytes."""
    return random.Random(task_id).randbytes(size)


class VideoCache:
    """Rendered MP4s per task, each made once even under concurrent requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, bytes] = {}

    def get(self, task_id: str, seconds: float) -> bytes:
        with self._lock:
            found = self._entries.get(task_id)
        if found is None:
            found = render_mp4(task_id, seconds)
            with self._lock:
                found = self._entries.setdefault(task_id, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
