"""receiver/batch_room.py: a web process's room for batches waiting to be made, divided between keys: one key holds
at most its places however many of its batches arrive, so another key's batch still finds one; a place is given back
when its request leaves, whatever ends it."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from flask import Flask

from receiver.batch_room import PLACES_PER_KEY, DividedRoom, batch_room
from receiver.bulkheads import BATCH_MAKING_ROOM


@pytest.fixture()
def request_context():
    app = Flask(__name__)
    with app.test_request_context("/v1/batches", method="POST"):
        yield app


def test_one_key_cannot_fill_the_room_and_another_keys_batch_finds_a_place(request_context):
    room = DividedRoom(BATCH_MAKING_ROOM, PLACES_PER_KEY)
    assert PLACES_PER_KEY < BATCH_MAKING_ROOM  # the rule this test holds the room to
    with ExitStack() as inside:
        attacker = [inside.enter_context(room.enter("key_a")) for _ in range(BATCH_MAKING_ROOM + 4)]
        assert attacker.count(True) == PLACES_PER_KEY and room.held("key_a") == PLACES_PER_KEY
        assert inside.enter_context(room.enter("key_b")) is True  # B is in, beside A's flood
        assert inside.enter_context(room.enter("")) is True  # and the admin tokens' batch
    assert room.held("key_a") == room.held("key_b") == 0  # every place given back
    with room.enter("key_a") as again:
        assert again is True


def test_the_room_holds_at_most_its_size_and_a_place_comes_back_when_its_request_fails(request_context):
    room = DividedRoom(size=2, per_key=1)
    with room.enter("key_a") as a, room.enter("key_b") as b, room.enter("key_c") as c:
        assert (a, b, c) == (True, True, False)
    assert room.held("key_c") == 0  # refused: held nothing

    with pytest.raises(RuntimeError), room.enter("key_a"):
        raise RuntimeError("its batch failed while it waited")
    assert room.held("key_a") == 0
    with room.enter("key_a") as a, room.enter("key_b") as b:
        assert (a, b) == (True, True)


def test_a_process_has_one_room(request_context):
    assert batch_room() is batch_room()
