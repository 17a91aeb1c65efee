"""The simulator's images: each task's its own and valid, while a padded image's noise is drawn once."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from simulator.images import _padded, render_image


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_padded_images_are_valid_near_their_size_and_each_tasks_own(fmt: str) -> None:
    first, second = render_image("task-1", fmt, 200_000), render_image("task-2", fmt, 200_000)
    assert first != second
    assert render_image("task-1", fmt, 200_000) == first
    for data, task in ((first, "task-1"), (second, "task-2")):
        image = Image.open(io.BytesIO(data))
        image.load()  # decodes every byte: a misplaced comment would break it
        assert image.format == fmt.upper()
        assert 180_000 <= len(data) <= 220_000
        comment = image.info.get("comment") or image.info.get("Comment")
        assert (comment.decode() if isinstance(comment, bytes) else comment) == f"task {task}"


def test_the_noise_is_drawn_once_per_format_and_size() -> None:
    _padded.cache_clear()
    for n in range(5):
        render_image(f"task-{n}", "jpeg", 100_000)
    assert _padded.cache_info().misses == 1
