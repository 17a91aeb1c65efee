"""receiver/variant_makers.py: a web process's variant makers and their room. One owner holds at most its places in
the room however many of its requests arrive (the rest 503 ``variants_busy`` with Retry-After, at once), so another
owner's request still finds one; makers go to owners in turns, so key B's variant is made while key A's backlog
waits; the makers run at a lower CPU priority than the request threads; a place comes back whatever ends it."""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack

import pytest
from flask import Flask

from devtools.processes import wait_until
from fluxhook.core.errors import VariantsBusy
from receiver.variant_makers import MAKING_NICENESS, PLACES_PER_OWNER, VARIANT_ROOM, VariantMakers, variant_makers


@pytest.fixture()
def request_context():
    app = Flask(__name__)
    with app.test_request_context("/v1/jobs/j/image?w=64"):
        yield app


def test_one_owner_cannot_fill_the_room_and_another_owners_request_finds_a_place(request_context):
    makers = VariantMakers()
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


def test_makers_go_to_owners_in_turns_so_key_bs_variant_is_not_behind_key_as_backlog():
    makers = VariantMakers(makers=2)
    release = threading.Event()
    order: list[str] = []
    busy = threading.Semaphore(0)

    def slow(name):
        def work():
            busy.release()
            release.wait(5)
            order.append(name)
            return name
        return work

    threads = [threading.Thread(target=makers.run, args=("key_a", slow(f"a{n}"))) for n in range(6)]
    for thread in threads:
        thread.start()
    assert busy.acquire(timeout=5)  # A's first is being made; one maker of two is A's at most
    wait_until(lambda: makers._turns.waiting("key_a") == 5, timeout=5, message="A's backlog in line")
    assert makers._turns.held("key_a") == 1
    b_done = threading.Event()
    threading.Thread(target=lambda: (makers.run("key_b", lambda: order.append("b")), b_done.set())).start()
    assert b_done.wait(5)  # made on the other maker while A's backlog waits
    assert order == ["b"]
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(order) == ["a0", "a1", "a2", "a3", "a4", "a5", "b"]


def test_makers_run_at_a_lower_priority_than_the_request_threads():
    makers = VariantMakers(makers=1)
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = makers.run("key_a", lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert theirs == min(19, own + MAKING_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the request's thread is unchanged


def test_a_process_has_one_set_of_makers(request_context):
    assert variant_makers() is variant_makers()
