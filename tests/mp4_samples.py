"""Real MP4 files for the tests, made with PyAV (H.264 video, AAC audio): small, a few seconds long."""

from __future__ import annotations

import math
import struct
import tempfile
from pathlib import Path

import av
from PIL import Image


def make_mp4(seconds: float = 2.0, width: int = 320, height: int = 240, fps: int = 24, audio: bool = True,
             faststart: bool = True) -> bytes:
    """An MP4 of ``seconds`` of changing colour, with a 440 Hz tone when ``audio``."""
    # A file, not memory: faststart (the index before the media, as BFL's files have it) rewrites the file.
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / "sample.mp4"
    options = {"movflags": "+faststart"} if faststart else {}
    with folder, av.open(str(path), "w", format="mp4", options=options) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for n in range(round(seconds * fps)):
            picture = Image.new("RGB", (width, height), ((n * 9) % 256, 90, 200 - (n * 5) % 200))
            for packet in video.encode(av.VideoFrame.from_image(picture)):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = 1024
            for block in range(int(seconds * 48000) // samples):
                pcm = b"".join(struct.pack("<h", int(5000 * math.sin(2 * math.pi * 440 * (i + block * samples) / 48000)))
                               for i in range(samples))
                frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
                frame.planes[0].update(pcm)
                frame.sample_rate, frame.pts = 48000, block * samples
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
        out.close()
        return path.read_bytes()


def free_box(size: int) -> bytes:
    """A top-level ``free`` box of ``size`` bytes: padding any ISO base media file may carry."""
    return struct.pack(">I", size) + b"free" + b"\0" * (size - 8)
