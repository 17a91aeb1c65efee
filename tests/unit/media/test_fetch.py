"""Downloading results (fluxhook/media/fetch.py): how long each result URL lives, as the catalog says per model (10
minutes for FLUX.1/FLUX.2, about an hour for FLUX 3 Image and the tools, about 2 hours for FLUX 3 video); telling
results apart by their first bytes; identifying a downloaded image: JPEG, PNG and WebP only, judged by its bytes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from fluxhook.core.catalog import load
from fluxhook.core.errors import InvalidResult
from fluxhook.media import fetch
from fluxhook.media.fetch import IMAGE, VIDEO, identify, sniff


@pytest.mark.parametrize("model, life", [
    ("flux-2-pro", 600), ("flux-kontext-max", 600), ("flux-3-video", 7200), ("flux-3-video-preview", 7200),
    ("flux-3-image", 3600), ("flux-tools/video-edit-v1", 3600), ("flux-tools/erase-v1", 600),
    ("flux-unknown-image", 600), (None, 7200),
])
def test_each_url_has_its_own_life(model, life):
    assert fetch.model_url_life(model) == life
    assert not fetch.past_life(model, 1000.0, 1000.0 + life)
    assert fetch.past_life(model, 1000.0, 1000.0 + life + 1)
    assert not fetch.past_life(model, None, 10**12)


def test_the_kind_comes_from_the_catalog_before_the_name():
    assert fetch.expects_video("flux-tools/video-upscale-v1")
    assert not fetch.expects_video("flux-3-image")
    assert fetch.expects_video("flux-3-video-preview")  # not catalogued: its name says video


def test_an_operators_entry_sets_a_models_life(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[models."flux-3-image"]\nkind = "image"\nurl_life = 900\n'
                    '[models."flux-new-video"]\nkind = "video"\n')
    problems: list[str] = []
    catalog = load(path, problems)
    assert not problems
    assert fetch.model_url_life("flux-3-image", catalog) == 900
    assert fetch.model_url_life("flux-new-video", catalog) == 7200  # by its kind when the entry says none
    assert fetch.model_url_life("flux-2-pro", catalog) == 600


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0\0\x10JFIF\0", IMAGE),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", IMAGE),
    (b"RIFF\0\0\0\0WEBPVP8 ", IMAGE),
    (b"\0\0\0\x20ftypisom\0\0\x02\0", VIDEO),
    (b"\0\0\0\x18ftypmp42\0\0\0\0", VIDEO),
    (b"\0\0\0\x08ftyp", None),  # too short to hold a brand
    (b"\0\0\0\x20ftyp\x00\x01\x02\x03", None),  # a brand that is not text
    (b"\xff\xff\xff\xffftypisom", None),  # an ftyp box larger than any real one
    (b"GIF89a\0\0\0\0\0\0", None),
    (b"<html><body>", None),
    (b"", None),
])
def test_sniff(head, kind):
    assert sniff(head) == kind


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
