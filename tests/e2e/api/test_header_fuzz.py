"""Request headers from a hostile client never reach a 500: any ``Range``, ``If-None-Match``,
``Prefer``, ``Idempotency-Key`` and ``Authorization`` value a client can send, however malformed or long
(digits int() refuses, numbers of thousands of digits, huge lists, UTF-8 read as Latin-1), is answered
by the Procfile's gunicorn with a success or a 4xx in the JSON error shape, or ignored, as the API documents.

Values are what HTTP lets through (tab, space, visible ASCII, obs-text bytes), up to 8,000 bytes each;
longer header lines are gunicorn's to refuse before the app sees them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from conftest import API_TOKEN
from helpers import deliver, send_raw, serve_png
from mp4_samples import make_mp4

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fluxhook-hypothesis")
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
AUTH = ("Authorization", f"Bearer {API_TOKEN}")
MAX_VALUE = 8000

_HTTP_CHARS = st.sampled_from([9, 32, *range(0x21, 0x7F), *range(0x80, 0x100)])
# Numbers of any length are made by repeating a digit run: generating thousands of digits one by one is slow.
_digits = st.tuples(st.text("0123456789", min_size=1, max_size=20), st.integers(1, 300)).map(lambda t: t[0] * t[1])
_odd_digits = st.text("0123456789²³¹٣۴०௫๕١", min_size=1, max_size=40)
_number = st.one_of(_digits, _odd_digits, st.integers(-10**6, 10**30).map(str))
_many = st.integers(1, 2000)


def _bytes(text: str) -> bytes:
    # Control characters other than tab cannot be sent in a header at all (http.client refuses them).
    return bytes(c for c in text.encode("utf-8")[:MAX_VALUE] if c == 9 or c >= 32 and c != 127)


_any_value = st.one_of(
    st.lists(_HTTP_CHARS, max_size=300).map(bytes),
    st.text(max_size=200).map(_bytes),
    st.tuples(st.lists(_HTTP_CHARS, min_size=1, max_size=40).map(bytes), _many)
    .map(lambda t: (t[0] * t[1])[:MAX_VALUE]),
)
_range = st.one_of(
    _any_value,
    st.tuples(st.sampled_from(["bytes", "BYTES", "items", "bytes ", ""]), st.sampled_from(["=", " = ", ""]),
              st.lists(st.tuples(st.one_of(st.just(""), _number), st.sampled_from(["-", "--", ""]),
                                 st.one_of(st.just(""), _number)), min_size=1, max_size=4), _many)
    .map(lambda t: _bytes(t[0] + t[1] + ",".join(a + d + b for a, d, b in t[2] * t[3]))),
)
_etags = st.one_of(
    _any_value,
    st.tuples(st.lists(st.one_of(st.just("*"), st.text(max_size=70).map(lambda s: f'"{s}"'),
                                 st.text(max_size=70).map(lambda s: f'W/"{s}"'), st.text(max_size=20)),
                       max_size=5), _many).map(lambda t: _bytes(", ".join(t[0] * t[1]))),
)
_prefer = st.one_of(
    _any_value,
    st.lists(st.tuples(st.sampled_from(["wait", "WAIT", "respond-async", "return", "wait "]),
                       st.sampled_from(["=", "", "=="]),
                       st.one_of(_number, st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", '"5"', "1.5"])),
                       st.sampled_from(["", ";x=1", "; handling=lenient"])),
             max_size=4).map(lambda items: _bytes(", ".join(a + b + c + d for a, b, c, d in items))),
    st.tuples(st.sampled_from(["wait=1", "x", "wait=", ";", ","]), _many)
    .map(lambda t: _bytes(", ".join([t[0]] * t[1]))),
)
_authorization = st.one_of(
    _any_value,
    st.tuples(st.sampled_from(["Bearer ", "bearer ", "Basic ", "Bearer", "Token ", ""]),
              st.one_of(st.just(API_TOKEN + " x"), st.text(max_size=300), st.just(API_TOKEN * 200)))
    .map(lambda t: _bytes(t[0] + t[1])),
)


@pytest.fixture(scope="module")
def stored(stack, _spies):
    """A stored video (ranges) and a stored image (ETags, and a terminal job, so ``Prefer: wait`` never waits)."""
    from conftest import API
    api, spy = API(stack.base_url), _spies[0]
    video = deliver(api, spy.route("/fuzz.mp4", body=make_mp4(seconds=1, width=64, height=64),
                                   headers={"Content-Type": "application/octet-stream"}), prompt="[pending] fuzz")
    image = deliver(api, serve_png(spy, "fuzz-image"), prompt="[pending] fuzz image")
    assert video["status"] == "stored" and image["status"] == "stored", (video, image)
    return {"base": stack.base_url, "video": video["id"], "image": image["id"]}


def _answered(response) -> None:
    """Not a server error; any error in the JSON error shape."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


@FUZZ
@given(value=_range)
@example(value="bytes=²-".encode()).via("the issue")
@example(value=b"bytes=\xb2-").via("the issue, as Latin-1")
@example(value=b"bytes=0-" + b"9" * 5000).via("the issue")
@example(value=b"bytes=" + b"9" * 5000 + b"-").via("a start past any file")
@example(value=b"bytes=-" + b"9" * 5000).via("a suffix longer than any file")
def test_any_range_on_a_stored_video(stored, value):
    for name in ("video", "draft_cache"):
        _answered(send_raw("GET", f"{stored['base']}/v1/jobs/{stored['video']}/{name}", [AUTH, ("Range", value)]))


@FUZZ
@given(value=_etags)
@example(value=b'"' + b"a" * 7000 + b'"')
@example(value=b"*, " * 2000)
def test_any_if_none_match_on_stored_files(stored, value):
    for path in (f"{stored['image']}/image", f"{stored['video']}/video", f"{stored['video']}/poster"):
        _answered(send_raw("GET", f"{stored['base']}/v1/jobs/{path}", [AUTH, ("If-None-Match", value)]))


@FUZZ
@given(value=_prefer)
@example(value=b"wait=" + b"9" * 5000)
@example(value=b"wait=1e999")
@example(value=b"wait=\xd9\xa3")
def test_any_prefer_on_a_read_and_a_submission(stored, value):
    _answered(send_raw("GET", f"{stored['base']}/v1/jobs/{stored['image']}", [AUTH, ("Prefer", value)]))
    # A body the API refuses: the header is read, and nothing is made.
    _answered(send_raw("POST", f"{stored['base']}/v1/jobs", [AUTH, ("Prefer", value),
                                                             ("Content-Type", "application/json")], b"{}"))


@FUZZ
@given(value=st.one_of(_any_value, _number.map(_bytes)))
@example(value=b"k" * 256)
@example(value="ключ".encode())
@example(value=b"\xff\xfe")
def test_any_idempotency_key_on_both_submitting_endpoints(stored, value):
    for path in ("/v1/jobs", "/v1/jobs/track"):
        _answered(send_raw("POST", f"{stored['base']}{path}", [AUTH, ("Idempotency-Key", value),
                                                              ("Content-Type", "application/json")], b"{}"))


@FUZZ
@given(value=_authorization)
@example(value=b"Bearer " + API_TOKEN.encode() + b"\xff")
@example(value=b"Bearer \xc3\xa9" * 1000)
def test_any_authorization_on_the_api_and_on_files(stored, value):
    base = stored["base"]
    for method, path in (("GET", f"/v1/jobs/{stored['image']}"), ("GET", f"/v1/jobs/{stored['video']}/video"),
                         ("GET", "/v1/usage"), ("POST", "/v1/jobs")):
        _answered(send_raw(method, base + path, [("Authorization", value), ("Content-Type", "application/json")],
                           b"{}" if method == "POST" else b""))
