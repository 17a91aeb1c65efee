"""The bound a submission reserves before BFL states its price (fluxhook/credits/price_bounds.py), against the
simulator's price list (simulator/pricing.py), which is priced as BFL prices."""

from __future__ import annotations

import itertools

import pytest

from fluxhook.bfl.costs import parse_cost
from fluxhook.credits.price_bounds import Learned, Size, bound, observe, request_size
from simulator import pricing

SIDES = (256, 512, 1024, 1440, 2048, 4096)


def test_a_request_is_measured_by_the_output_it_asks_for_at_least_a_megapixel_and_its_input_images():
    assert request_size({"prompt": "x"}) == Size(100, 0, 100)
    assert request_size({"width": 512, "height": 512}) == Size(100, 0, 100)  # the first megapixel is charged whole
    assert request_size({"width": 4096, "height": 4096}) == Size(1600, 0, 1600)
    assert request_size({"width": 1440, "height": 2048}) == Size(282, 0, 281)  # 2.8125 megapixels
    assert request_size({"width": 4096.0, "height": "big", "input_image": "https://x/a.png",
                         "input_image_3": "b64"}) == Size(400, 2, 400)
    assert request_size({"width": True, "height": -5, "input_image_2": ""}) == Size(100, 0, 100)
    assert request_size({"width": 10**400, "height": 10**400}).output > 1600


def test_nothing_learned_bounds_nothing():
    assert bound(Learned(), Size(100, 0)) is None
    assert observe(Size(100, 0), None) is None
    assert observe(Size(100, 0), parse_cost({"input_mp": 1})) is None


def _learned(model: str, bodies) -> Learned:
    rate, smallest, per_image = None, None, None
    for body in bodies:
        seen = observe(request_size(body), parse_cost(pricing.price(model, body)))
        rate = max(rate or 0, seen.rate)
        smallest = min(smallest or seen.units, seen.units)
        if seen.input_per_image is not None:
            per_image = max(per_image or 0, seen.input_per_image)
    return Learned(rate, smallest, per_image)


def _micro(model: str, body) -> int:
    return round(pricing.price(model, body)["cost"] * 1_000_000)


@pytest.mark.parametrize("model", sorted({*pricing.PER_MEGAPIXEL, *pricing.PER_IMAGE, "flux-dev"}))
def test_the_bound_is_never_below_the_price_once_a_request_as_small_was_priced(model):
    sizes = [{"width": w, "height": h} for w, h in itertools.product(SIDES, SIDES)]
    for seen in sizes:
        learned = _learned(model, [seen])
        for asked in sizes:
            most = bound(learned, request_size(asked))
            if most is None:
                assert request_size(asked).output < request_size(seen).output  # smaller than anything priced
            else:
                assert most >= _micro(model, asked), (seen, asked, most)


def test_cheap_tasks_first_do_not_lower_an_expensive_ones_bound():
    # The attack on an average per job: many small ones, then a large one.
    learned = _learned("flux-2-flex", [{"width": 1024, "height": 1024}] * 20)
    large = {"width": 4096, "height": 4096}
    assert bound(learned, request_size(large)) == _micro("flux-2-flex", large) == 80_000_000
    pro = _learned("flux-2-pro", [{"width": 1024, "height": 1024}])
    assert bound(pro, request_size(large)) >= _micro("flux-2-pro", large)


def test_a_smaller_request_than_any_priced_has_no_bound():
    learned = _learned("flux-2-pro", [{"width": 4096, "height": 4096}])
    assert bound(learned, request_size({"width": 1024, "height": 1024})) is None  # its first megapixel costs more


def test_input_images_count_at_the_most_bfl_read_per_image():
    plain = _learned("flux-2-pro", [{"prompt": "x"}])
    edit = {"prompt": "x", "input_image": "a", "input_image_2": "b"}
    assert bound(plain, request_size(edit)) is None  # never seen reading one
    learned = _learned("flux-2-pro", [{"prompt": "x"}, {"input_image": "a"}])
    assert learned.input_per_image == 100
    assert bound(learned, request_size(edit)) >= _micro("flux-2-pro", edit)


def test_a_size_is_kept_as_text_and_read_back():
    size = request_size({"width": 1440, "height": 2048, "input_image": "a"})
    assert Size.decode(size.encode()) == size
    for text in (None, "", "1,2", "a,b,c", "1,2,3,4", "²,1,1", "9" * 20 + ",1,1"):
        assert Size.decode(text) is None
