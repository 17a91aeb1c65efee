"""Where a request ends, found as its bytes arrive (receiver/request_assembly.py): pure, no sockets."""

from __future__ import annotations

import pytest

from receiver.request_assembly import MAX_HEAD_BYTES, MEMORY_BODY_BYTES, Refused, RequestAssembler, refusal

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
