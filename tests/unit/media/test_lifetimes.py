"""How long each result URL lives (fluxhook/media/lifetimes.py), as the catalog says per model: 10 minutes for
FLUX.1/FLUX.2, about an hour for FLUX 3 Image and the tools, about 2 hours for FLUX 3 video."""

from __future__ import annotations

import pytest

from fluxhook.core.catalog import load
from fluxhook.media import lifetimes


@pytest.mark.parametrize("model, life", [
    ("flux-2-pro", 600), ("flux-kontext-max", 600), ("flux-3-video", 7200), ("flux-3-video-preview", 7200),
    ("flux-3-image", 3600), ("flux-tools/video-edit-v1", 3600), ("flux-tools/erase-v1", 600),
    ("flux-unknown-image", 600), (None, 7200),
])
def test_each_url_has_its_own_life(model, life):
    assert lifetimes.model_url_life(model) == life
    assert not lifetimes.past_life(model, 1000.0, 1000.0 + life)
    assert lifetimes.past_life(model, 1000.0, 1000.0 + life + 1)
    assert not lifetimes.past_life(model, None, 10**12)


def test_the_kind_comes_from_the_catalog_before_the_name():
    assert lifetimes.expects_video("flux-tools/video-upscale-v1")
    assert not lifetimes.expects_video("flux-3-image")
    assert lifetimes.expects_video("flux-3-video-preview")  # not catalogued: its name says video


def test_an_operators_entry_sets_a_models_life(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[models."flux-3-image"]\nkind = "image"\nurl_life = 900\n'
                    '[models."flux-new-video"]\nkind = "video"\n')
    problems: list[str] = []
    catalog = load(path, problems)
    assert not problems
    assert lifetimes.model_url_life("flux-3-image", catalog) == 900
    assert lifetimes.model_url_life("flux-new-video", catalog) == 7200  # by its kind when the entry says none
    assert lifetimes.model_url_life("flux-2-pro", catalog) == 600
