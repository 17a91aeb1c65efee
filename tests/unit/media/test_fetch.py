"""Identifying a downloaded image (fluxhook/media/fetch.py): JPEG, PNG and WebP only, judged by its bytes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from fluxhook.core.errors import InvalidResult
from fluxhook.media.fetch import identify


def image_bytes(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 60) if mode == "RGB" else 1).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "size", "content_type", "extension"),
    [
        ("PNG", (7, 5), "image/png", "png"),
        ("JPEG", (13, 11), "image/jpeg", "jpg"),
        ("WEBP", (21, 3), "image/webp", "webp"),
        ("PNG", (1, 1), "image/png", "png"),
        ("JPEG", (640, 480), "image/jpeg", "jpg"),
    ],
)
def test_identify_accepted_formats(fmt, size, content_type, extension):
    file = io.BytesIO(image_bytes(fmt, size))
    assert identify(file) == (content_type, extension, size[0], size[1])
    assert file.tell() == 0  # left rewound for storing


@pytest.mark.parametrize(("fmt", "mode"), [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("ICO", "RGB")])
def test_identify_refuses_other_formats(fmt, mode):
    file = io.BytesIO(image_bytes(fmt, (16, 16), mode))
    with pytest.raises(InvalidResult):
        identify(file)
    assert file.tell() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        os.urandom(4096),
        b"hello, this is text, not an image\n" * 20,
        b"<html><body>Access denied</body></html>",
        b'{"error": "expired"}',
        image_bytes("PNG", (8, 8))[:12],
        image_bytes("PNG", (8, 8))[:20],
        image_bytes("JPEG", (8, 8))[:4],
        image_bytes("WEBP", (8, 8))[:14],
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"\xff\xd8\xff",
    ],
)
def test_identify_refuses_non_images_and_truncated_headers(raw):
    with pytest.raises(InvalidResult):
        identify(io.BytesIO(raw))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_identify_refuses_decompression_bomb_dimensions():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"")) + \
        _png_chunk(b"IEND", b"")
    with pytest.raises(InvalidResult):
        identify(io.BytesIO(raw))
