"""Waiting on the clock that signed links follow: a job's link is the same for every read within its own window of
the stacks' IMAGE_URL_WINDOW_SECONDS (each job's windows start at its offset, ``signing.window_offset``), and was a new
one every second before windows."""

from __future__ import annotations

import time

from conftest import IMAGE_URL_WINDOW
from devtools.processes import wait_until
from fluxhook.core import signing


def window_left(job_id: str, now: float) -> float:
    """The seconds left at ``now`` in ``job_id``'s current link window."""
    return IMAGE_URL_WINDOW - (now - signing.window_offset(job_id, IMAGE_URL_WINDOW)) % IMAGE_URL_WINDOW


def within_one_link_window(seconds: float, *job_ids: str) -> None:
    """Returns once the current window of each of ``job_ids`` has at least ``seconds`` left (at once, or when they
    next have), so reads of them made within ``seconds`` all fall in one window each. Their windows start at moments
    of their own: ``seconds`` may be at most the window less the spread of their turns."""
    assert seconds < IMAGE_URL_WINDOW and job_ids
    wait_until(lambda: min(window_left(job_id, time.time()) for job_id in job_ids) >= seconds,
               timeout=IMAGE_URL_WINDOW, interval=0.1, message=f"a link window with {seconds} s left for {job_ids}")


def closest_turns(job_ids: list[str], count: int) -> list[str]:
    """The ``count`` of ``job_ids`` whose links turn closest together in the window: reads of them all may then fall
    in one window each for the longest time (``within_one_link_window``)."""
    turns = sorted(job_ids, key=lambda job_id: signing.window_offset(job_id, IMAGE_URL_WINDOW))
    rings = [(turns * 2)[first:first + count] for first in range(len(turns))]
    return min(rings, key=lambda ring: (signing.window_offset(ring[-1], IMAGE_URL_WINDOW)
                                        - signing.window_offset(ring[0], IMAGE_URL_WINDOW)) % IMAGE_URL_WINDOW)


def next_second(after: float) -> None:
    """Returns once the clock's second is past ``after``'s: a per-second token read now differs from one read then."""
    wait_until(lambda: int(time.time()) > int(after), timeout=2, interval=0.02, message="the next second")
