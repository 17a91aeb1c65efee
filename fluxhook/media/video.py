"""What a downloaded MP4 holds, read with PyAV (FFmpeg's libraries, bundled in its wheel): its size in
pixels, duration, frame rate and audio, and a poster frame made from it.

A file is accepted as a video only if its top-level boxes cover it exactly (not cut short, nothing
appended), FFmpeg can read its header and decode a frame of it: an ``ftyp`` followed by garbage, or a
truncated download, is not a video.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

from PIL import Image

from fluxhook.core.errors import InvalidResult

CONTENT_TYPE = "video/mp4"
EXTENSION = "mp4"
POSTER_CONTENT_TYPE = "image/jpeg"
# A poster is a still for a <video> tag and the dashboard: full HD at most, whatever the video.
POSTER_MAX_SIDE = 1920
# Where the poster frame is taken, in seconds, when the video is longer than twice this.
POSTER_AT = 1.0
# FFmpeg reads headers and one frame: a file that needs more than this many packets to yield a frame is refused.
MAX_PACKETS_FOR_A_FRAME = 2000
# What an ISO base media four-character code (a box's type, a brand) is made of: printable ASCII.
FOURCC_BYTES = frozenset(range(0x20, 0x7F))
# Real files have a handful of top-level boxes (ftyp, moov, mdat, free...); more is not an MP4 we take.
MAX_TOP_LEVEL_BOXES = 10_000


@dataclass(frozen=True)
class VideoInfo:
    """What the ``video`` object of a job says of its file, besides size and digest."""

    width: int
    height: int
    duration: float
    fps: float
    has_audio: bool
    poster: bytes


def inspect(file: IO[bytes], size: int) -> VideoInfo:
    """Probe an MP4 of ``size`` bytes and make its poster; InvalidResult if it is not a real video."""
    if not boxes_cover_file(file, size):
        raise InvalidResult("the downloaded bytes are not a whole MP4 (its boxes do not cover the file)")
    # Imported here, on the first video: FFmpeg's libraries cost a process memory that the web
    # processes and image-only workers never need.
    import av

    file.seek(0)
    name = getattr(file, "name", None)
    source = name if isinstance(name, str) else file  # a path lets FFmpeg read the file itself
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                raise InvalidResult("the MP4 has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = _duration(container, stream)
            rate = stream.average_rate or stream.guessed_rate
            fps = round(float(rate), 3) if rate else 0.0
            has_audio = bool(container.streams.audio)
            poster = _poster(container, stream, duration)
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise InvalidResult(f"the downloaded MP4 cannot be read: {type(exc).__name__}") from None
    finally:
        file.seek(0)
    if width <= 0 or height <= 0 or duration <= 0:
        raise InvalidResult("the MP4 has no picture or no duration")
    return VideoInfo(width, height, round(duration, 3), fps, has_audio, poster)


def boxes_cover_file(file: IO[bytes], size: int) -> bool:
    """Whether the top-level boxes of an ISO base media file of ``size`` bytes end exactly at its end.

    A file cut short (or padded with garbage) fails: its last box claims bytes that are not there.
    """
    position, count = 0, 0
    while position < size:
        count += 1
        if count > MAX_TOP_LEVEL_BOXES:
            return False
        file.seek(position)
        header = file.read(16)
        if len(header) < 8:
            return False
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(b in FOURCC_BYTES for b in kind):
            return False
        if box_size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return False
            box_size = int.from_bytes(header[8:16], "big")
            if box_size < 16:
                return False
        elif box_size == 0:  # the last box, up to the end of the file
            return True
        elif box_size < 8:
            return False
        position += box_size
    return position == size


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else 0.0  # AV_TIME_BASE: microseconds


def _poster(container, stream, duration: float) -> bytes:
    """JPEG bytes of a frame near ``POSTER_AT`` s (the first frame of a short video)."""
    if duration > 2 * POSTER_AT:
        container.seek(int(POSTER_AT / stream.time_base), stream=stream)
    packets = 0
    for packet in container.demux(stream):
        packets += 1
        if packets > MAX_PACKETS_FOR_A_FRAME:
            break
        for frame in packet.decode():
            return _encode_poster(frame.to_image())
    raise InvalidResult("no frame of the MP4 can be decoded")


def _encode_poster(image: Image.Image) -> bytes:
    if max(image.size) > POSTER_MAX_SIDE:
        image.thumbnail((POSTER_MAX_SIDE, POSTER_MAX_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()
