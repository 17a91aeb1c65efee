"""The limits on bodies still arriving (receiver/body_limits.py), pure: the pace over a sliding window, the
process's spool spool, and how a request being assembled takes from it and gives back. No sockets: the
same attacks over real sockets against gunicorn are tests/test_spool_limits.py."""

from __future__ import annotations

import pytest

from receiver.body_limits import (
    CALLBACK_BODY_BYTES,
    RATE_WINDOW_SECONDS,
    BodyPace,
    SpoolSpace,
    is_callback,
)
from receiver.request_assembly import MEMORY_BODY_BYTES, Refused, RequestAssembler, refusal

MIB = 1024 * 1024
RATE = 64 * 1024


def _head(path: str, length: int, method: str = "POST") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


# --- the pace -----------------------------------------------------------------------------------------------

def test_a_body_sent_fast_then_trickled_is_cut_one_window_after_its_fast_part_however_large():
    pace = BodyPace(0.0, RATE)
    pace.update(0.5, 200 * MIB)
    received, now = 200 * MIB, 0.5
    cut_at = pace.deadline(now)
    while now + 8 < cut_at:  # a byte every 8 s (never a pause of 10 s) for as long as it is let
        now += 8
        received += 1
        pace.update(now, received)
        cut_at = pace.deadline(now)
    assert cut_at == 0.5 + RATE_WINDOW_SECONDS


def test_a_steady_body_at_the_rate_is_never_cut_off():
    pace = BodyPace(0.0, RATE)
    received, now = 0, 0.0
    while now < 120:
        now += 0.1
        received += int(RATE * 1.05 * 0.1)
        pace.update(now, received)
        assert pace.deadline(now) > now


def test_a_body_that_slows_below_the_rate_is_cut_within_a_window_whatever_it_sent_before():
    pace = BodyPace(0.0, RATE)
    received, now = 0, 0.0
    while now < 60:  # a minute at 1 MiB/s...
        now += 0.1
        received += MIB // 10
        pace.update(now, received)
    slowed = now
    while pace.deadline(now) > now:  # ...then half the rate
        now += 0.1
        received += RATE // 20
        pace.update(now, received)
        assert now - slowed <= RATE_WINDOW_SECONDS + 0.5
    assert now - slowed >= RATE_WINDOW_SECONDS / 2 - 0.5  # the fast minute's last window still counted


def test_a_body_is_first_judged_one_window_after_its_head():
    assert BodyPace(5.0, RATE).deadline(5.0) == 5.0 + RATE_WINDOW_SECONDS


# --- the spool ---------------------------------------------------------------------------------------------

def test_the_spool_space_keeps_room_that_only_callbacks_may_take():
    spool = SpoolSpace(8 * MIB)

    assert spool.largest_body == 8 * MIB - spool.callback_room and spool.callback_room == 2 * MIB
    assert spool.acquire(spool.largest_body, callback=False)
    assert not spool.acquire(1, callback=False) and not spool.has_room(1, callback=False)
    assert spool.acquire(3 * MIB, callback=True) and spool.has_room(MIB, callback=True)  # callbacks: never refused
    spool.release(spool.largest_body + 3 * MIB)
    assert spool.held == 0 and spool.acquire(MIB, callback=False)


@pytest.mark.parametrize("method, target, callback", [
    ("POST", "/webhooks/bfl", True), ("POST", "/webhooks/bfl/abc.def", True), ("POST", "/webhooks/bfl?x=1", True),
    ("POST", "/webhooks/bflx", False), ("GET", "/webhooks/bfl", False), ("POST", "/signin", False),
])
def test_callbacks_are_told_by_their_path(method, target, callback):
    assert is_callback(method, target) is callback


# --- a request being assembled takes from the spool --------------------------------------------------------

def test_a_body_announced_past_the_room_left_is_refused_503_at_once():
    spool = SpoolSpace(8 * MIB)
    spool.acquire(spool.largest_body - MIB, callback=False)
    with pytest.raises(Refused) as refused:
        RequestAssembler(10**9, spool=spool).feed(_head("/signin", MIB + 1))
    assert refused.value.status == 503
    assert spool.held == spool.largest_body - MIB  # nothing taken for it


def test_a_body_grown_past_the_room_left_is_refused_503_and_gives_back_what_it_held():
    spool = SpoolSpace(8 * MIB)
    spool.acquire(spool.largest_body - MIB, callback=False)
    request = RequestAssembler(10**9, spool=spool)
    request.feed(b"POST /signin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (MIB // 2) + b"x" * (MIB // 2) + b"\r\n"
    request.feed(chunk)
    with pytest.raises(Refused) as refused:
        request.feed(chunk + chunk)
    assert refused.value.status == 503
    request.discard()
    assert spool.held == spool.largest_body - MIB


def test_a_body_is_counted_until_it_is_handed_on_or_dropped():
    spool = SpoolSpace(8 * MIB)
    size = MEMORY_BODY_BYTES * 4
    handed = RequestAssembler(10**9, spool=spool)
    handed.feed(_head("/v1/jobs", size) + b"y" * size)
    dropped = RequestAssembler(10**9, spool=spool)
    dropped.feed(_head("/signin", size) + b"y" * (size - 1))
    assert spool.held == 2 * size - 1

    assert sum(len(piece) for piece in list(handed.pieces())[1:]) == size
    assert spool.held == size - 1
    dropped.discard()
    handed.discard()
    assert spool.held == 0


def test_callbacks_are_taken_when_the_spool_space_is_full_but_only_up_to_their_own_bound():
    spool = SpoolSpace(8 * MIB)
    spool.acquire(spool.largest_body, callback=False)
    callback = RequestAssembler(10**9, spool=spool)
    callback.feed(_head("/webhooks/bfl", 300_000) + b"{" * 300_000)
    assert callback.complete and callback.callback

    with pytest.raises(Refused) as announced:
        RequestAssembler(10**9, spool=spool).feed(_head("/webhooks/bfl/token", CALLBACK_BODY_BYTES + 1))
    grown = RequestAssembler(10**9, spool=spool)
    grown.feed(b"POST /webhooks/bfl HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(Refused) as chunked:
        for _ in range(CALLBACK_BODY_BYTES // (64 * 1024) + 1):
            grown.feed(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
    assert announced.value.status == chunked.value.status == 413


def test_the_503_says_when_to_come_back():
    answer = refusal(503)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 10\r\n" in head and b"\r\nConnection: close\r\n" in head
    assert b'"code": "unavailable"' in body
