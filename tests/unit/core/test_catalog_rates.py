"""Price rules that depend on request fields (fluxhook/core/catalog.py, catalog.toml): FLUX 3 Image by resolution
class, FLUX 3 Video by mode, draft and resolution per second, video upscaling per megapixel-second; and the
pure rules of tasks that take no webhook (sent without webhook fields, polled from their submission)."""

from __future__ import annotations

import pytest

from fluxhook.core import catalog
from fluxhook.core.catalog import SHIPPED_CATALOG, first_poll_at, takes_webhook, without_webhook
from fluxhook.credits.budget import bound, request_size

VIDEO = SHIPPED_CATALOG.get("flux-3-video")
IMAGE = SHIPPED_CATALOG.get("flux-3-image")


@pytest.mark.parametrize("body, rate", [
    ({"resolution": "768sq"}, 4.1), ({}, 4.8), ({"resolution": "1K"}, 4.8), ({"resolution": "2k"}, 10.0),
    ({"resolution": "1.5k"}, 10.0), ({"resolution": "4k"}, 60.7), ({"resolution": "8k"}, 60.7),
    ({"resolution": 7}, 60.7),
])
def test_flux_3_image_is_priced_by_its_resolution_class_and_an_unknown_one_at_the_highest(body, rate):
    assert IMAGE.price.rate(body) == rate


@pytest.mark.parametrize("body, rate", [
    ({"mode": "t2v"}, 17.0), ({"mode": "t2v", "resolution": "uhd"}, 80.0), ({"mode": "i2v", "resolution": "fhd"}, 29.0),
    ({"mode": "t2v", "draft": True, "resolution": "uhd"}, 6.0), ({"mode": "v2v", "draft": "true"}, 12.0),
    ({"mode": "v2v", "resolution": "qhd"}, 65.0), ({"mode": "draft_enhance"}, 53.0),  # its default is fhd
    ({"mode": "draft-enhance", "resolution": "hd"}, 41.0), ({"mode": "text-to-video"}, 17.0),
    ({"mode": "t2v", "resolution": "8k"}, 95.0), ({}, 95.0), ({"mode": "x2v"}, 95.0),
])
def test_flux_3_video_is_priced_per_second_by_mode_draft_and_resolution(body, rate):
    assert VIDEO.price.rate(body) == rate


def test_a_videos_bound_is_its_rate_times_its_seconds():
    def credits(body):
        return bound(VIDEO, request_size(VIDEO, body)) / 1_000_000

    assert credits({"mode": "t2v", "duration": 10}) == 170
    assert credits({"mode": "t2v", "duration": 10, "draft": True, "batch": 2}) == 120
    assert credits({"mode": "v2v", "resolution": "uhd", "duration": "auto"}) == 95 * 20  # at most 20 s
    edit = SHIPPED_CATALOG.get("flux-tools/video-edit-v1")
    assert bound(edit, request_size(edit, {"video": "v", "prompt": "p"})) == 45_000_000  # 15 s at 3 credits
    upscale = SHIPPED_CATALOG.get("flux-tools/video-upscale-v1")
    assert bound(upscale, request_size(upscale, {"input_video": "v", "creativity": 0.0})) == 7 * 20 * 13.75 * 1e6
    assert bound(upscale, request_size(upscale, {"input_video": "v"})) == 10 * 20 * 13.75 * 1e6


def test_every_shipped_model_but_a_finetunes_has_a_price_rule_and_says_what_is_uncertain():
    text = catalog.SHIPPED.read_text()
    for model in SHIPPED_CATALOG.models.values():
        assert model.price is not None or model.name.endswith("-finetuned"), model.name
    assert {"flux-3-image", "flux-3-video", "flux-tools/video-edit-v1", "flux-tools/video-upscale-v1",
            "flux-tools/outpainting-v1", "flux-tools/erase-v1", "flux-tools/deblur-v1", "flux-tools/vto-v1",
            "flux-tools/vto-v2", "flux-2-pro-preview", "flux-2-klein-9b-preview"} <= set(SHIPPED_CATALOG.models)
    assert "1.5k" in IMAGE.uncertain[0] and "UNCERTAIN" in text


def test_models_that_take_no_webhook_are_sent_without_and_polled_from_their_submission():
    edit = SHIPPED_CATALOG.get("flux-tools/video-edit-v1")
    body = {"video": "v", "prompt": "p", "webhook_url": "https://x/h", "webhook_secret": "s"}
    assert not takes_webhook(edit) and not takes_webhook(IMAGE)
    assert without_webhook(edit, body) == {"video": "v", "prompt": "p"}
    assert first_poll_at(edit, 1000.0, 45.0) == 1000.0
    assert first_poll_at(edit, 1000.0, 45.0, watched=True) == 1000.0
    # A model that takes webhooks keeps them, and waits for its callback for the grace period first, at most as
    # long as a running job's state may take to reach it (docs/api.md "Live": 15 s unwatched, 3 s watched).
    assert takes_webhook(VIDEO) and takes_webhook(None)
    assert without_webhook(VIDEO, body) == body
    assert first_poll_at(VIDEO, 1000.0, 45.0) == first_poll_at(None, 1000.0, 45.0) == 1010.0
    assert first_poll_at(VIDEO, 1000.0, 5.0) == 1005.0
    assert first_poll_at(VIDEO, 1000.0, 45.0, watched=True) == 1000.5  # then the sweep's next round: within 1.5 s


@pytest.mark.parametrize("entry, problem", [
    ({"kind": "image", "price": {"rule": "image", "by": ["resolution"], "rates": {"1k/2": 3}}}, "one value of each"),
    ({"kind": "image", "price": {"rule": "image", "by": [], "rates": {"1k": 3}}}, "'by' must list"),
    ({"kind": "image", "price": {"rule": "megapixel", "by": ["r"], "rates": {"a": 1}}}, "'rates' is for the rules"),
    ({"kind": "image", "price": {"rule": "image", "by": ["r"], "rates": {"a": -1}}}, "be a number of credits"),
    ({"kind": "image", "price": {"rule": "image", "credits": 1, "colour": 2}}, "unknown price field(s) colour"),
    ({"kind": "image", "webhook": "no"}, "'webhook' must be true or false"),
    ({"kind": "image", "url_life": 0}, "'url_life' must be a positive whole number"),
    ({"kind": "image", "inputs": "image"}, "'inputs' must be a list"),
])
def test_a_bad_rate_table_or_flag_is_one_problem(entry, problem):
    problems: list[str] = []
    catalog.parse_entry("flux-tools/x-v1", entry, "BFL_MODELS_FILE", problems)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize("name, valid", [
    ("flux-tools/video-edit-v1", True), ("flux-2-pro", True), ("flux-tools/../finetune", False),
    ("flux-tools/..", False), ("flux-tools//x", False), ("flux-tools%2Fx", False), ("/flux-2-pro", False),
    ("flux-tools/x/y", False), ("flux-tools/", False), ("delete_finetune", False), ("Flux-2-pro", False),
])
def test_a_name_is_one_segment_or_two(name, valid):
    problems: list[str] = []
    found = catalog.parse_entry(name, {"kind": "image"}, "BFL_MODELS_FILE", problems)
    assert (found is not None) == valid and (not problems) == valid
