"""A stored image made into a variant (fluxhook/media/variants.py): the width asked and the aspect ratio kept, each
format written, turned upright by its EXIF orientation, its colour profile kept and every other piece of metadata
dropped, transparency kept where the format has it and white where it has not, and a refusal for bytes that are no
image; the rules of core/variants.py it is made by."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from fluxhook.core.errors import InvalidVariant, UnknownField
from fluxhook.core.variants import Ask, Variant, asked, by_accept, resolve, snapped, srcset, storage_key, widths_up_to
from fluxhook.media.variants import Unmakeable, variant_bytes


def _photo(size=(1024, 768), **save) -> bytes:
    out = io.BytesIO()
    image = Image.merge("RGB", [Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                                Image.new("L", size, 90)])
    image.save(out, save.pop("format", "JPEG"), **save)
    return out.getvalue()


def _made(data: bytes, variant: Variant) -> Image.Image:
    return Image.open(io.BytesIO(variant_bytes(data, variant)))


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_each_format_is_written_at_the_width_with_the_aspect_ratio(fmt):
    made = _made(_photo(), Variant(384, fmt, None if fmt == "png" else 75))
    assert made.format == fmt.upper()
    assert made.size == (384, 288)


def test_exif_orientation_is_applied_and_the_other_metadata_dropped_the_icc_profile_kept():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: 768 wide, 1024 high
    exif[0x010F] = "a camera maker"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = _photo(exif=exif.tobytes(), icc_profile=srgb, comment=b"a secret comment", xmp=xmp)
    with Image.open(io.BytesIO(data)) as original:  # the test's own premise
        assert original.size == (1024, 768) and original.getexif()[0x0112] == 6 and original.info["xmp"] == xmp

    for fmt in ("jpeg", "webp", "avif", "png"):
        made = _made(data, Variant(384, fmt, None if fmt == "png" else 75))
        assert made.size == (384, 512), fmt  # upright
        assert made.info.get("icc_profile") == srgb, fmt
        assert not made.getexif(), fmt
        assert "comment" not in made.info and "xmp" not in made.info and "exif" not in made.info, fmt


def test_a_png_s_text_chunks_are_dropped():
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("parameters", "a prompt and a seed")
    out = io.BytesIO()
    Image.new("RGB", (200, 100), (0, 128, 255)).save(out, "PNG", pnginfo=chunks)
    with Image.open(io.BytesIO(out.getvalue())) as original:
        assert original.info["parameters"] == "a prompt and a seed"  # the test's own premise
    for fmt in ("png", "webp"):
        assert "parameters" not in _made(out.getvalue(), Variant(64, fmt, None if fmt == "png" else 75)).info, fmt


def test_transparency_is_kept_where_the_format_has_it_and_white_in_a_jpeg():
    out = io.BytesIO()
    Image.new("RGBA", (200, 100), (255, 0, 0, 0)).save(out, "PNG")

    as_webp = _made(out.getvalue(), Variant(64, "webp", 90))
    assert as_webp.mode == "RGBA" and as_webp.getpixel((10, 10))[3] == 0
    as_jpeg = _made(out.getvalue(), Variant(64, "jpeg", 90))
    assert as_jpeg.mode == "RGB" and min(as_jpeg.getpixel((10, 10))) > 240


def test_bytes_that_are_no_image_are_unmakeable():
    with pytest.raises(Unmakeable):
        variant_bytes(b"\xff\xd8\xff not a jpeg", Variant(64, "webp", 75))


def test_a_smaller_original_is_never_enlarged():
    made = _made(_photo((300, 200)), Variant(512, "webp", 75))
    assert made.size == (300, 200)


def test_widths_snap_up_to_the_list_never_above_the_original():
    assert [snapped(w, 1024) for w in (1, 64, 65, 500, 1024, 1500, 2048)] == [64, 64, 128, 512, 1024, 1024, 1024]
    assert snapped(1300, 1440) == 1440 and snapped(2000, 4096) == 2048
    assert widths_up_to(1024) == [64, 128, 256, 384, 512, 640, 768, 1024]
    assert widths_up_to(1440)[-2:] == [1280, 1440] and widths_up_to(4096)[-1] == 2048


def test_accept_lists_avif_and_webp_by_name_only():
    assert by_accept("image/avif,image/webp,*/*;q=0.8", "jpeg") == "avif"
    assert by_accept("image/webp;q=0.9, image/avif;q=0", "png") == "webp"
    assert by_accept("image/*,*/*", "png") == "png"
    assert by_accept("image/avif;q=bad", "jpeg") == "jpeg"


def test_a_request_names_one_variant_and_its_key():
    assert asked([("token", "t")], where="GET /x", beside=("token",)) is None
    ask = asked([("w", "300"), ("format", "jpeg")], where="GET /x")
    assert ask == Ask(width=300, format="jpeg")
    variant = resolve(ask, 1024, "image/png", None)
    assert variant == Variant(384, "jpeg", 75)
    assert storage_key("job_x", "image", variant) == "job_x-image-384w-q75.jpg"
    assert storage_key("job_x", "poster", resolve(Ask(format="png", quality=90), 640, "image/jpeg", None)) == \
        "job_x-poster-640w.png"  # PNG is lossless: no quality in its key, one file whatever q says
    auto = resolve(Ask(format="auto"), 1024, "image/webp", "text/html")
    assert auto == Variant(1024, "webp", 75, auto=True)
    with pytest.raises(InvalidVariant) as refused:
        asked([("q", "100")], where="GET /x")
    assert refused.value.parameter == "q"


@pytest.mark.parametrize(("name", "value"), [
    ("w", "+512"), ("w", " 512"), ("w", "512 "), ("w", "0512"), ("w", "5_12"), ("w", "５１２"), ("w", "9" * 5000),
    ("q", "075"), ("q", "+75"), ("q", "7" * 5000), ("format", "JPEG"), ("format", "Webp"), ("format", "jpg"),
    ("format", " webp"),
])
def test_a_value_has_one_spelling_and_any_other_is_refused_by_name(name, value):
    with pytest.raises(InvalidVariant) as refused:
        asked([(name, value)], where="GET /x")
    assert refused.value.parameter == name and refused.value.message.startswith(f"'{name}' is ")


def test_a_parameter_a_variant_does_not_take_is_refused_by_name_beside_the_signed_links_own():
    assert asked([("token", "t"), ("w", "512")], where="GET /x", beside=("token",)) == Ask(width=512)
    with pytest.raises(UnknownField) as unknown:
        asked([("token", "t"), ("w", "512"), ("width", "512")], where="GET /x", beside=("token",))
    assert unknown.value.field == "width" and "use w" in unknown.value.message
    with pytest.raises(UnknownField):  # no variant asked for: still refused, never silently the original
        asked([("download", "1")], where="GET /x", beside=("token",))
    with pytest.raises(UnknownField):  # the signed link's parameter only where the route takes one
        asked([("token", "t")], where="GET /x")


def test_a_srcset_is_the_link_at_each_width():
    assert srcset("https://x/v1/jobs/j/image?token=t", 300) == (
        "https://x/v1/jobs/j/image?token=t&w=64&format=auto 64w, "
        "https://x/v1/jobs/j/image?token=t&w=128&format=auto 128w, "
        "https://x/v1/jobs/j/image?token=t&w=256&format=auto 256w, "
        "https://x/v1/jobs/j/image?token=t&w=300&format=auto 300w")
