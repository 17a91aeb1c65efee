"""Real MP4 files for the tests (H.264 video, AAC audio, made with the simulator's encoder): small, a few seconds long."""

from __future__ import annotations

import struct

from PIL import Image

from simulator.videos import encode_mp4


def make_mp4(seconds: float = 2.0, width: int = 320, height: int = 240, fps: int = 24, audio: bool = True,
             faststart: bool = True) -> bytes:
    """An MP4 of ``seconds`` of changing colour, with a 440 Hz tone when ``audio``."""
    pictures = (Image.new("RGB", (width, height), ((n * 9) % 256, 90, 200 - (n * 5) % 200))
                for n in range(round(seconds * fps)))
    return encode_mp4(pictures, seconds, width, height, fps, tone=440 if audio else None, faststart=faststart)


def free_box(size: int) -> bytes:
    """A top-level ``free`` box of ``size`` bytes: padding any ISO base media file may carry."""
    return struct.pack(">I", size) + b"free" + b"\0" * (size - 8)
