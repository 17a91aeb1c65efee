"""How long each result URL lives (fluxhook/media/lifetimes.py): 10 minutes for an image, 2 hours for a video."""

from __future__ import annotations

import pytest

from fluxhook.media import lifetimes


@pytest.mark.parametrize("model, life", [
    ("flux-2-pro", 600), ("flux-kontext-max", 600), ("flux-3-video", 7200), ("flux-3-video-preview", 7200),
    (None, 7200),
])
def test_each_url_has_its_own_life(model, life):
    assert lifetimes.url_life(model) == life
    assert not lifetimes.past_life(model, 1000.0, 1000.0 + life)
    assert lifetimes.past_life(model, 1000.0, 1000.0 + life + 1)
    assert not lifetimes.past_life(model, None, 10**12)
