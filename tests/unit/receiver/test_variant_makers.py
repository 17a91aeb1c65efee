"""receiver/variant_makers.py: a web process's variant makers and their room. One owner holds at most its places in
the room however many of its requests arrive (the rest 503 ``variants_busy`` with Retry-After, at once), so another
owner's request still finds one; makers go to owners in turns, so key B's variant is made while key A's backlog
waits; the makers are processes of their own at a lower CPU priority; a maker that dies costs one request a 503, and
the next is made by a new one, as is the next after a maker stuck past ``MAKE_SECONDS``; a place comes back whatever
ends it."""

from __future__ import annotations

import io
import os
import signal
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image

from devtools.processes import wait_until
from fluxhook.core.errors import VariantsBusy
from fluxhook.core.variants import Variant
from receiver.variant_makers import MAKING_NICENESS, PLACES_PER_OWNER, VARIANT_ROOM, VariantMakers, variant_makers


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((400, 300)).convert("RGB").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture()
def makers():
    made = VariantMakers()
    yield made
    made.close()


@pytest.fixture()
def request_context():
    app = Flask(__name__)
    with app.test_request_context("/v1/jobs/j/image?w=64"):
        yield app


def test_one_owner_cannot_fill_the_room_and_another_owners_request_finds_a_place(request_context, makers):
    assert PLACES_PER_OWNER < VARIANT_ROOM  # the rule this test holds the room to
    refused = 0
    with ExitStack() as inside:
        for _ in range(VARIANT_ROOM + 4):
            try:
                inside.enter_context(makers.waiting("key_a"))
            except VariantsBusy as busy:
                refused += 1
                assert busy.status == 503 and busy.retry_after and busy.code == "variants_busy"
        assert refused == VARIANT_ROOM + 4 - PLACES_PER_OWNER and makers.places("key_a") == PLACES_PER_OWNER
        inside.enter_context(makers.waiting("key_b"))  # B is in, beside A's flood
        inside.enter_context(makers.waiting("admin"))
    assert makers.places("key_a") == makers.places("key_b") == 0  # every place given back


def test_the_room_holds_at_most_its_size_and_a_place_comes_back_when_its_request_fails(request_context):
    makers = VariantMakers(room=2, per_owner=1)
    with makers.waiting("key_a"), makers.waiting("key_b"):
        with pytest.raises(VariantsBusy):
            with makers.waiting("key_c"):
                pass
    assert makers.places("key_c") == 0
    with pytest.raises(RuntimeError), makers.waiting("key_a"):
        raise RuntimeError("its making failed")
    assert makers.places("key_a") == 0


def test_makers_go_to_owners_in_turns_so_key_bs_variant_is_not_behind_key_as_backlog(makers):
    release = threading.Event()
    reading = threading.Semaphore(0)
    made: list[str] = []

    def slow_original():
        reading.release()
        release.wait(10)  # A's original is read in its turn, and takes long
        return _jpeg()

    def a_asks(n):
        makers.make("key_a", slow_original, Variant(64, "webp", 50))
        made.append(f"a{n}")

    threads = [threading.Thread(target=a_asks, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    assert reading.acquire(timeout=5)  # A's first holds a maker; A holds one of the two at most
    wait_until(lambda: makers._turns.waiting("key_a") == 5, timeout=5, message="A's backlog in line")

    data = makers.make("key_b", _jpeg, Variant(128, "png", None))  # on the other maker, while A's backlog waits

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (128, 96)
    assert made == []
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(made) == [f"a{n}" for n in range(6)]


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_makers_are_processes_of_their_own_at_a_lower_priority(makers):
    data = makers.make("key_a", _jpeg, Variant(64, "jpeg", 75))

    assert data[:3] == b"\xff\xd8\xff"
    pids = list(makers._pool._processes)
    assert pids and os.getpid() not in pids
    own = _nice(os.getpid())
    assert all(_nice(pid) == min(19, own + MAKING_NICENESS) for pid in pids)


def test_a_maker_that_dies_costs_a_503_and_the_next_variant_is_made(makers):
    makers.make("key_a", _jpeg, Variant(64, "webp", 75))
    for pid in list(makers._pool._processes):
        os.kill(pid, signal.SIGKILL)

    with pytest.raises(VariantsBusy):
        for _ in range(50):  # the pool learns of its dead processes a moment later
            makers.make("key_a", _jpeg, Variant(64, "webp", 75))

    assert makers.make("key_a", _jpeg, Variant(256, "webp", 75))[:4] == b"RIFF"


def test_a_process_has_one_set_of_makers(request_context):
    assert variant_makers() is variant_makers()


def test_a_stuck_maker_costs_its_request_a_503_at_the_bound_and_the_next_variant_is_made(makers, monkeypatch):
    import multiprocessing

    import receiver.variant_makers as variant_makers_module

    makers.make("key_a", _jpeg, Variant(64, "webp", 75))
    stuck = multiprocessing.active_children()
    bound = variant_makers_module.MAKE_SECONDS
    monkeypatch.setattr(variant_makers_module, "MAKE_SECONDS", 1)
    for child in stuck:
        os.kill(child.pid, signal.SIGSTOP)
    try:
        with pytest.raises(VariantsBusy, match="not made within 1 s"):
            makers.make("key_a", _jpeg, Variant(128, "webp", 75))
    finally:
        for child in stuck:
            os.kill(child.pid, signal.SIGKILL)
        # The next make starts a new pool (a process spawned, its imports read): its own bound, not the stuck one's.
        monkeypatch.setattr(variant_makers_module, "MAKE_SECONDS", bound)

    assert makers.make("key_b", _jpeg, Variant(256, "webp", 75))[:4] == b"RIFF"
    assert not {child.pid for child in stuck} & {child.pid for child in multiprocessing.active_children()}
