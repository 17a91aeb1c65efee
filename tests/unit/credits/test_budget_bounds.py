"""The bound a submission reserves before BFL states its price (fluxhook/credits/budget.py, ``bound``): the catalog's
price rule for the request as BFL reads it, never below what the simulator (priced from the same catalog, as BFL
states prices) charges for any request."""

from __future__ import annotations

import itertools

import pytest

from fluxhook.core.catalog import SHIPPED_CATALOG, Model, Price
from fluxhook.credits.accounting import MICRO
from fluxhook.credits.budget import MAX_BATCH, Size, bound, capped, request_size, whole_number
from simulator import pricing

SIDES = (256, 512, 1024, 1440, 2048, 4096, 4096.0, "2048", 10**6, True, "big", None, -5, 1024.5)
PRO = SHIPPED_CATALOG.get("flux-2-pro")


def _micro(model: str, body) -> int:
    return round(pricing.price(model, body)["cost"] * 1_000_000)


def test_sides_are_read_as_bfls_schema_reads_whole_numbers():
    assert [whole_number(v) for v in (1024, 1024.0, "1024", " 512 ", True, 1024.5, "1e3", None, float("inf"))] == [
        1024, 1024, 1024, 512, None, None, None, None, None]


def test_a_request_is_measured_as_bfl_reads_it_clamped_to_what_the_model_makes():
    assert request_size(PRO, {"prompt": "x"}) == Size(1.05, 0, 0)  # BFL's default 1024 x 1024
    assert request_size(PRO, {"width": 512, "height": 512}) == Size(1.0, 0, 0)  # the first megapixel is charged whole
    assert request_size(PRO, {"width": 1440, "height": 2048}).output_mp == pytest.approx(2.94912)
    # 4096.0 is 4096 to BFL, not the default: at the most the model makes.
    assert request_size(PRO, {"width": 4096.0, "height": 4096.0}) == Size(4.19, 0, 0)
    # A side BFL would not read, or one sized from its input image: the most the model makes.
    assert request_size(PRO, {"width": "big", "height": 1024}).output_mp == 4.19
    assert request_size(PRO, {"input_image": "https://x/a.png", "input_image_3": "b64"}) == Size(4.19, 2, 0)


def test_only_the_input_images_bfl_reads_count():
    # A mask is no input image to FLUX.2, and a klein model reads four at most.
    assert request_size(PRO, {"mask": "x", "control_image": "y", "width": 1024, "height": 1024}).input_images == 0
    klein = SHIPPED_CATALOG.get("flux-2-klein-4b")
    body = {f"input_image_{n}" if n > 1 else "input_image": "x" for n in range(1, 9)}
    assert request_size(klein, body).input_images == 4
    assert request_size(PRO, body).input_images == 8


@pytest.mark.parametrize("model", [m.name for m in SHIPPED_CATALOG.models.values() if m.price is not None])
def test_the_bound_is_never_below_the_price_of_any_request(model):
    entry = SHIPPED_CATALOG.get(model)
    inputs = {name: "x" for name in entry.input_fields}
    for width, height in itertools.product(SIDES, SIDES):
        for extra in ({}, inputs):
            body = {"width": width, "height": height, **extra}
            most = bound(entry, request_size(entry, body))
            assert most is not None and most >= _micro(model, body), (body, most)


def test_the_bound_follows_the_catalogs_rule_in_whole_credits():
    assert bound(PRO, Size(1.0, 0)) == 3_000_000
    assert bound(PRO, Size(1.05, 0)) == 4_000_000  # 3.075 credits, rounded up to a whole credit
    assert bound(PRO, Size(4.19, 2)) == 21_000_000  # 3 + 3.19 x 1.5 + 2 x 4.19 x 1.5 = 20.355
    assert bound(Model("m", "image", Price("image", credits=6.0)), Size(4.0, 1)) == 6_000_000
    video = Model("v", "video", Price("second", credits=10.0), max_seconds=20, default_seconds=5)
    assert bound(video, request_size(video, {"duration": "8", "batch": 2})) == 160_000_000
    assert bound(video, request_size(video, {"duration": 99})) == 200_000_000  # at most max_seconds
    assert bound(video, request_size(video, {})) == 50_000_000


def test_a_model_without_a_price_has_no_bound():
    assert bound(Model("flux-new", "video", None, max_seconds=20), Size(1.0, 0, 5)) is None
    assert all(m.price is not None for m in SHIPPED_CATALOG.models.values() if m.region is None)
    assert bound(None, Size(1.0, 0)) is None


def test_a_size_is_kept_as_text_and_read_back():
    size = request_size(PRO, {"width": 1440, "height": 2048, "input_image": "a"})
    assert Size.decode(size.encode()) == size
    assert Size.decode("1.0,2,3") == Size(1.0, 2, 3)  # a record kept before sizes carried a rate
    assert Size.decode("1.0,0,10,17.0") == Size(1.0, 0, 10, 17.0)
    for text in (None, "", "1,2", "a,b,c", "1,2,3,4,5", "1,2,3,x", "1,2,3,nan", "1,2,3,-1", "1,²,1",
                 "1," + "9" * 20 + ",1", "nan,1,1", "-1,0,0"):
        assert Size.decode(text) is None


def test_a_video_is_sent_no_longer_than_its_bound_counts_and_bfl_prices_it_within_it():
    video = SHIPPED_CATALOG.models["flux-3-video"]
    asked = {"prompt": "p", "duration": 1000, "batch": 50, "resolution": "uhd"}
    sent = capped(video, asked)
    assert (sent["duration"], sent["batch"]) == (video.max_seconds, MAX_BATCH) and asked["duration"] == 1000
    # What BFL then charges for it is within the bound reserved for the request as asked.
    charged = pricing.price("flux-3-video", sent)["cost"]
    assert charged * MICRO <= bound(video, request_size(video, asked))
    assert capped(video, {"prompt": "p", "duration": 8}) == {"prompt": "p", "duration": 8}
    image = SHIPPED_CATALOG.models["flux-2-pro"]
    assert capped(image, {"prompt": "p", "duration": 1000}) == {"prompt": "p", "duration": 1000}
