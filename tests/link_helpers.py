"""Waiting on the clock that signed links follow: a link is the same for every read within the stacks'
IMAGE_URL_WINDOW_SECONDS (windows start at multiples of it since the epoch), and was a new one every second before."""

from __future__ import annotations

import time

from conftest import IMAGE_URL_WINDOW
from devtools.processes import wait_until


def within_one_link_window(seconds: float) -> None:
    """Returns once the current window has at least ``seconds`` left (at once, or when the next one starts), so reads
    made within ``seconds`` all fall in one window."""
    assert seconds < IMAGE_URL_WINDOW
    wait_until(lambda: IMAGE_URL_WINDOW - time.time() % IMAGE_URL_WINDOW >= seconds, timeout=IMAGE_URL_WINDOW,
               interval=0.1, message=f"a link window with {seconds} s left")


def next_second(after: float) -> None:
    """Returns once the clock's second is past ``after``'s: a per-second token read now differs from one read then."""
    wait_until(lambda: int(time.time()) > int(after), timeout=2, interval=0.02, message="the next second")
