"""Where a request ends, found as its bytes arrive, and the limits on bodies still arriving
(receiver/request_assembly.py), pure: the pace over a sliding window, the process's spool space, and how a
request being assembled takes from it and gives back. No sockets: the same attacks over real sockets against
gunicorn are tests/e2e/processes/test_spool_limits.py."""

from __future__ import annotations

import pytest

from receiver.request_assembly import (
    CALLBACK_BODY_BYTES,
    MAX_HEAD_BYTES,
    MEMORY_BODY_BYTES,
    RATE_WINDOW_SECONDS,
    BodyPace,
    Refused,
    RequestAssembler,
    SpoolSpace,
    is_callback,
    refusal,
)

MIB = 1024 * 1024
RATE = 64 * 1024
HEAD = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
CHUNKED = (b"POST /webhooks/bfl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n")
NEXT = b"GET /healthz HTTP/1.1\r\n\r\n"


def _fed(data: bytes, step: int | None = None, max_body: int = 10**6) -> RequestAssembler:
    request = RequestAssembler(max_body)
    step = step or len(data)
    for at in range(0, len(data), step):
        request.feed(data[at:at + step])
    return request


@pytest.mark.parametrize("step", [1, 2, 7, None])
def test_a_request_with_content_length_ends_after_its_body_whatever_the_pieces(step):
    request = _fed(HEAD + b"hello" + NEXT, step)

    assert request.complete and not request.head_only
    assert b"".join(request.pieces()) == HEAD + b"hello"
    assert request.leftover == NEXT


@pytest.mark.parametrize("step", [1, 3, None])
def test_a_chunked_request_ends_after_its_last_chunk_and_trailers(step):
    request = _fed(CHUNKED + NEXT, step)

    assert request.complete
    assert b"".join(request.pieces()) == CHUNKED
    assert request.leftover == NEXT


def test_a_request_is_not_complete_until_its_last_byte():
    assert not _fed(HEAD + b"hell").complete
    assert not _fed(CHUNKED[:-1]).complete
    assert not _fed(HEAD[:-1]).head_complete


def test_a_request_without_a_body_ends_with_its_head():
    request = _fed(NEXT + NEXT)

    assert request.complete and request.leftover == NEXT


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
])
def test_framing_we_cannot_tell_goes_on_as_the_head_alone_for_gunicorn_to_refuse(head):
    request = _fed(head + b"hello")

    assert request.complete and request.head_only
    assert b"".join(request.pieces()) == head


def test_a_body_announced_or_grown_past_the_limit_is_refused():
    with pytest.raises(Refused) as announced:
        _fed(b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", max_body=100)
    with pytest.raises(Refused) as grown:
        _fed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n" + b"40\r\n"
             + b"x" * 64, max_body=100)
    assert announced.value.status == grown.value.status == 413


def test_a_head_that_never_ends_is_refused():
    with pytest.raises(Refused) as headers:
        _fed(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6))
    with pytest.raises(Refused) as line:
        _fed(b"GET /" + b"a" * MAX_HEAD_BYTES)
    assert (headers.value.status, line.value.status) == (431, 414)


@pytest.mark.parametrize("step", [4096, None])
def test_a_head_over_the_limit_is_refused_though_it_arrives_whole(step):
    """gunicorn has no request-line limit of its own (gunicorn_conf): this one bounds the line too."""
    with pytest.raises(Refused) as line:
        _fed(b"GET /v1/jobs?q=" + b"a" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n", step)
    with pytest.raises(Refused) as headers:
        _fed(b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n", step)
    request = _fed(b"GET /v1/jobs?q=" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", step)

    assert (line.value.status, headers.value.status) == (414, 431)
    assert request.complete  # a long query within it goes on to the app, which answers for its parameters


def test_a_chunk_size_that_is_not_hex_is_refused():
    with pytest.raises(Refused) as refused:
        _fed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert refused.value.status == 400


def test_a_large_body_goes_to_a_file_not_memory():
    size = MEMORY_BODY_BYTES + 10
    request = _fed(f"POST / HTTP/1.1\r\nContent-Length: {size}\r\n\r\n".encode() + b"y" * size, step=65536,
                  max_body=2 * size)

    assert request.complete and request._memory is None
    assert sum(len(piece) for piece in list(request.pieces())[1:]) == size


def test_the_expect_header_is_taken_out_once_100_continue_was_sent():
    head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    request = _fed(head)

    assert request.expects_continue and request.waits_for_body
    request.feed(b"{}")
    assert next(request.pieces(continue_sent=True)) == b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    assert next(request.pieces(continue_sent=False)) == head


def test_the_head_alone_is_handed_on_when_the_body_is_not_wanted():
    request = _fed(b"POST /webhooks/bfl/bad HTTP/1.1\r\nContent-Length: 60000\r\n\r\nx")

    assert request.request_line() == ("POST", "/webhooks/bfl/bad")
    request.head_alone()
    assert request.complete and request.head_only and request.leftover == b""


def test_refusals_are_json_errors_that_close_the_connection():
    answer = refusal(408)

    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n")
    assert answer.endswith(b'"code": "request_timeout", "message": "the request did not arrive in time; send it again '
                           b'at a steady pace"}}')


def test_a_callback_too_large_is_told_the_callbacks_limit_not_the_requests():
    callback, request = refusal(413, callback=True), refusal(413)

    assert b"callback bodies are at most 1 MiB" in callback and b"256" not in callback
    assert b"256 MiB" in request and b"callback" not in request


def test_a_header_is_read_from_the_head_whatever_its_case_and_spacing():
    request = _fed(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-KEY:\t  fhk_1 \r\nauthorization: Bearer a\r\n"
                   b"Authorization: Bearer b\r\nContent-Length: 5\r\n\r\n")
    assert request.header("x-key") == "fhk_1"
    assert request.header("Authorization") == "Bearer a"  # the first of two
    assert request.header("Host") == "x" and request.header("Cookie") is None
    assert _fed(b"POST /v1/jobs HTTP/1.1\r\nX-Not-Key: 1\r\n\r\n").header("key") is None


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
