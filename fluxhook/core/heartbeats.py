"""A heartbeat: a thread of its own that says, every few seconds while a block runs, that what the block does goes on,
so a lease it holds lapses only once its process died."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def beating(every: float, beat: Callable[[], bool], name: str, *,
            missed: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """While the block runs, ``beat()`` every ``every`` s on a thread named ``name``, until it returns False. A beat
    that raises one of ``missed`` (its store unreachable a while) is tried again at the next: what the block does fails
    by itself if the store is gone."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                if not beat():
                    return
            except missed:
                continue

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
