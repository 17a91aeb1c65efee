"""A stored image made into one variant: its bytes at a width and in a format, with Pillow.

Orientation is applied (the pixels turned as the EXIF tag says, as browsers show the original) and the colour profile
kept (its ICC bytes written into the variant); every other piece of metadata (EXIF, XMP, comments, text chunks) is
left out. Memory stays near the variant's own size, not the decoded original's: a JPEG is decoded at the smallest scale
(1/2, 1/4, 1/8) that is still as large as the variant (``Image.draft``), the rest reduced by whole factors before the
last resampling (``reducing_gap``), and every image made on the way is closed once the bytes are written.

Pillow rather than libvips: it takes less CPU for WebP, AVIF and JPEG in about the same bytes (libvips is faster at PNG
only, which a browser rarely asks for) and needs no binary wheel (``make bench-variants PYVIPS_PYTHON=...`` compares)."""

from __future__ import annotations

import io

from PIL import Image

from fluxhook.core.variants import Variant

# Decoding costs memory in proportion to pixels; FLUX images are a few megapixels, never this many.
MAX_SOURCE_PIXELS = 40_000_000
# Each format's encoder settings beside its quality, chosen on `make bench-variants`' figures: WebP's method 2 and AVIF's
# speed 8 take a fraction of the CPU of the libraries' defaults (4 and 6) for a few percent more bytes.
_OPTIONS: dict[str, dict[str, object]] = {
    "jpeg": {"optimize": False, "progressive": False},
    "png": {"compress_level": 6},
    "webp": {"method": 2},
    # One thread: a variant is made by one of the process's makers, whose number is the CPU it may take.
    "avif": {"speed": 8, "max_threads": 1},
}
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
# ``q`` is the quality asked for on JPEG's scale: AVIF's encoder reaches that fidelity at a lower setting (quality - 20,
# as Next.js's image optimizer has it), in about WebP's bytes at ``q`` (`make bench-variants` compares them).
_QUALITY_BELOW = {"avif": 20}


class Unmakeable(ValueError):
    """The stored bytes cannot be made into a variant (not an image Pillow reads, or too large to decode)."""


def variant_bytes(original: bytes, variant: Variant) -> bytes:
    """``variant``'s bytes of the image ``original`` (JPEG, PNG or WebP bytes): what a maker process is handed
    (``receiver/variant_makers``). ``Unmakeable`` when it cannot be made."""
    made: list[Image.Image] = []  # the images made on the way, closed once the bytes are written
    try:
        with Image.open(io.BytesIO(original)) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                raise Unmakeable(f"{image.width}x{image.height} is too large to make a variant of")
            icc = image.info.get("icc_profile")
            turn = _TURNS.get(image.getexif().get(_ORIENTATION, 1))
            sideways = turn in _SIDEWAYS
            # The size as it is shown (turned), the variant's size in it, and that size in the stored pixels' axes.
            width, height = (image.height, image.width) if sideways else image.size
            target_width = min(variant.width, width)  # never enlarged
            target = (target_width, max(1, round(height * target_width / width)))
            stored = (target[1], target[0]) if sideways else target
            if image.format == "JPEG":
                image.draft(None, stored)
            image.load()
            picture: Image.Image = image
            if picture.size != stored:
                # A fast reduction by a whole factor first, LANCZOS only over the last factor of 3.
                picture = _kept(made, picture.resize(stored, Image.Resampling.LANCZOS, reducing_gap=3.0))
            if turn is not None:
                picture = _kept(made, picture.transpose(turn))
            picture = _kept(made, _in_mode(picture, variant.format))
            return _encoded(picture, variant, icc)
    except Unmakeable:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise Unmakeable(f"the stored image cannot be decoded: {type(exc).__name__}") from exc
    finally:
        for each in made:
            each.close()


def _kept(made: list[Image.Image], image: Image.Image) -> Image.Image:
    if not any(image is other for other in made):
        made.append(image)
    return image


_ORIENTATION = 0x0112  # EXIF's Orientation tag
# How each EXIF orientation is undone (as ImageOps.exif_transpose does); 5 to 8 swap width and height.
_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}
_SIDEWAYS = (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
             Image.Transpose.ROTATE_90)


def _encoded(image: Image.Image, variant: Variant, icc: bytes | None) -> bytes:
    """``image`` written as ``variant``'s format and quality, with the colour profile ``icc`` and no other metadata."""
    # A resized or converted image carries its original's info (EXIF, XMP, comments...): none of it is written.
    image.info = {}
    options: dict[str, object] = dict(_OPTIONS[variant.format])
    if variant.quality is not None:
        options["quality"] = variant.quality - _QUALITY_BELOW.get(variant.format, 0)
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    image.save(out, format=_PILLOW_FORMATS[variant.format], **options)
    return out.getvalue()


def _in_mode(image: Image.Image, format_: str) -> Image.Image:
    """``image`` in a mode ``format_`` writes: RGB (or L) for JPEG, a transparent image's alpha kept by the others."""
    alpha = "A" in image.getbands() or "transparency" in image.info
    if format_ == "jpeg":
        if image.mode in ("RGB", "L"):
            return image
        if alpha:
            # JPEG has no alpha: what was transparent shows white, not black.
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            flat = Image.alpha_composite(white, rgba).convert("RGB")
            rgba.close()
            white.close()
            return flat
        return image.convert("RGB")
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if alpha else "RGB")
