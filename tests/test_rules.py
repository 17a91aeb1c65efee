"""Pure-function tests of fluxhook's rules: hosts, statuses, callbacks, verification,
backoff, signing, job records and image identification.

No Redis, no HTTP, no sleeps; nothing from conftest.py's fixtures is used.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import types
import zlib
from datetime import datetime, timezone

import itsdangerous.timed
import pytest
from PIL import Image
from werkzeug.datastructures import Headers

from fluxhook import signing
from fluxhook import transitions as st
from fluxhook.backoff import backoff_delay, backoff_schedule, retry_after_seconds
from fluxhook.bfl.reports import MAX_CALLBACK_BYTES, BFLReport, parse_callback
from fluxhook.errors import HostNotAllowed, InvalidRequest, NotAnImage, Unauthorized
from fluxhook.net.hosts import HostPattern, check_url, host_matches, is_public_address, parse_host_pattern
from fluxhook.net.http_client import check_resolves_public
from fluxhook.media.fetch import identify
from fluxhook.job import Job, encode_fields, is_job_id, iso, new_job_id
from fluxhook.logs import redact_urls
from fluxhook.bfl.verification import body_signature, verify_callback
from worker.pool import RESTART_DELAYS, restart_delay

KEY = "unit-test-secret-key-0123456789"
OTHER_KEY = "another-secret-key-9876543210"
CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def allowlist(*entries: str) -> tuple[HostPattern, ...]:
    return tuple(parse_host_pattern(e) for e in entries)


DEFAULT_RESULT_HOSTS = allowlist("delivery.*.bfl.ai", "delivery-*.bfl.ai", "bfldeliveryprod.blob.core.windows.net")


# --------------------------------------------------------------------------------------------
# hosts.parse_host_pattern
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [
        ("*.bfl.ai", "*.bfl.ai", None),
        ("delivery-*.bfl.ai", "delivery-*.bfl.ai", None),
        ("api.*.bfl.ai", "api.*.bfl.ai", None),
        ("delivery.*.bfl.ai", "delivery.*.bfl.ai", None),
        ("bfldeliveryprod.blob.core.windows.net", "bfldeliveryprod.blob.core.windows.net", None),
        ("127.0.0.1:8900", "127.0.0.1", 8900),
        ("[::1]:8080", "::1", 8080),
        ("localhost", "localhost", None),
        ("localhost:1", "localhost", 1),
        ("example.com:65535", "example.com", 65535),
        ("  API.BFL.AI  ", "api.bfl.ai", None),
    ],
)
def test_parse_host_pattern_accepts(entry, host, port):
    pattern = parse_host_pattern(entry)
    assert pattern.host == host
    assert pattern.port == port
    assert pattern.exact is (port is not None)


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "*.ai",
        "bfl.*",
        "*.*",
        "bfl.a*",
        "host:0",
        "host:99999",
        "host:65536",
        "host:-1",
        "host:abc",
        "host:",
        "*.x.com:443",
        "delivery-*.bfl.ai:443",
        "[::1]",
        "[::1]:",
        "[not-an-ip]:80",
        "[::1]:0",
        "",
        "   ",
        "a b",
        "a..b",
        ".bfl.ai",
        "bfl.ai.",
        "-x.bfl.ai",
        "x_y.bfl.ai",
        "https://api.bfl.ai",
        "api.bfl.ai/path",
    ],
)
def test_parse_host_pattern_refuses(entry):
    with pytest.raises(ValueError):
        parse_host_pattern(entry)


def test_parse_host_pattern_error_names_the_entry():
    with pytest.raises(ValueError, match=r"\*\.ai"):
        parse_host_pattern("*.ai")


def test_host_pattern_str_round_trips():
    for entry in ("*.bfl.ai", "127.0.0.1:8900", "localhost"):
        assert str(parse_host_pattern(entry)) == entry


# --------------------------------------------------------------------------------------------
# hosts.host_matches
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("entry", "host", "port", "expected"),
    [
        # '*' is exactly one DNS label
        ("*.bfl.ai", "delivery.bfl.ai", 443, True),
        ("*.bfl.ai", "a.b.bfl.ai", 443, False),
        ("*.bfl.ai", "bfl.ai", 443, False),
        ("*.bfl.ai", "evilbfl.ai", 443, False),
        ("*.bfl.ai", "delivery.bfl.ai.evil.com", 443, False),
        ("delivery.*.bfl.ai", "delivery.eu.bfl.ai", 443, True),
        ("delivery.*.bfl.ai", "delivery.eu-1.bfl.ai", 443, True),
        ("delivery.*.bfl.ai", "delivery.a.b.bfl.ai", 443, False),
        ("delivery.*.bfl.ai", "delivery..bfl.ai", 443, False),
        ("delivery.*.bfl.ai", "delivery.bfl.ai", 443, False),
        ("delivery-*.bfl.ai", "delivery-us1.bfl.ai", 443, True),
        ("delivery-*.bfl.ai", "delivery-.bfl.ai", 443, False),
        ("delivery-*.bfl.ai", "delivery-us1.x.bfl.ai", 443, False),
        ("delivery-*.bfl.ai", "xdelivery-us1.bfl.ai", 443, False),
        ("api.*.bfl.ai", "api.eu.bfl.ai", 443, True),
        ("api.*.bfl.ai", "api.bfl.ai", 443, False),
        # case and a trailing dot do not matter
        ("*.bfl.ai", "DELIVERY.BFL.AI", 443, True),
        ("*.bfl.ai", "delivery.bfl.ai.", 443, True),
        # glob entries cover port 443 only
        ("*.bfl.ai", "delivery.bfl.ai", 80, False),
        ("*.bfl.ai", "delivery.bfl.ai", 8443, False),
        ("localhost", "localhost", 443, True),
        ("localhost", "localhost", 8000, False),
        ("localhost", "localhost.evil.com", 443, False),
        # exact entries: exactly that host and port
        ("127.0.0.1:8900", "127.0.0.1", 8900, True),
        ("127.0.0.1:8900", "127.0.0.1", 8901, False),
        ("127.0.0.1:8900", "127.0.0.1", 443, False),
        ("127.0.0.1:8900", "127.0.0.2", 8900, False),
        ("127.0.0.1:8900", "127.0.0.10", 8900, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 8081, False),
        ("sim.local:443", "sim.local", 443, True),
        ("sim.local:443", "x.sim.local", 443, False),
    ],
)
def test_host_matches(entry, host, port, expected):
    assert host_matches(parse_host_pattern(entry), host, port) is expected


# --------------------------------------------------------------------------------------------
# hosts.check_url
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://delivery.eu.bfl.ai/x.png",
        "gopher://delivery.eu.bfl.ai/x",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "//delivery.eu.bfl.ai/x.png",
        "delivery.eu.bfl.ai/x.png",
        "",
        # user information: the real host is after the '@', or credentials would be sent
        "https://delivery.bfl.ai@evil.com/x",
        "https://delivery.eu.bfl.ai@evil.com/x",
        "https://user:pw@delivery.eu.bfl.ai/x",
        "https://user@delivery.eu.bfl.ai/x",
        "https://@delivery.eu.bfl.ai/x",
        "https://delivery.eu.bfl.ai\\@evil.com/x",
        # pattern hosts only over https
        "http://delivery.eu.bfl.ai/x.png",
        "http://delivery.eu.bfl.ai:443/x.png",
        # unlisted or look-alike hosts
        "https://evil.com/x.png",
        "https://delivery.eu.bfl.ai.evil.com/x.png",
        "https://evilbfl.ai/x.png",
        "https://bfl.ai/x.png",
        "https://delivery.bfl.ai/x.png",
        "https://a.delivery.eu.bfl.ai/x.png",
        "https://delivery.eu.bfl.ai%2eevil.com/x.png",
        "https://delivery.eu.bfl.ai:8443/x.png",
        "https://127.0.0.1/x.png",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        # unparseable
        "https://delivery.eu.bfl.ai:99999/x",
        "https://delivery.eu.bfl.ai:abc/x",
        "https:///x.png",
        "https://[::1/x",
    ],
)
def test_check_url_refuses(url):
    with pytest.raises(HostNotAllowed):
        check_url(url, DEFAULT_RESULT_HOSTS + allowlist("127.0.0.1:8900"))


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://delivery.eu.bfl.ai/x.png", "delivery.eu.bfl.ai", 443),
        ("https://delivery.eu.bfl.ai:443/x.png", "delivery.eu.bfl.ai", 443),
        ("https://delivery-us1.bfl.ai/x", "delivery-us1.bfl.ai", 443),
        ("HTTPS://DELIVERY.EU.BFL.AI/x.png", "delivery.eu.bfl.ai", 443),
        ("https://delivery.eu.bfl.ai./x.png", "delivery.eu.bfl.ai", 443),
        ("https://bfldeliveryprod.blob.core.windows.net/a/b.png?sig=x", "bfldeliveryprod.blob.core.windows.net", 443),
        ("https://delivery.eu.bfl.ai/x.png#@evil.com", "delivery.eu.bfl.ai", 443),
    ],
)
def test_check_url_accepts_pattern_hosts_over_https(url, host, port):
    target = check_url(url, DEFAULT_RESULT_HOSTS)
    assert (target.host, target.port, target.scheme, target.exact) == (host, port, "https", False)
    assert target.url == url


def test_check_url_accepts_exact_host_port_over_http():
    target = check_url("http://127.0.0.1:8900/x", allowlist("127.0.0.1:8900"))
    assert (target.scheme, target.host, target.port, target.exact) == ("http", "127.0.0.1", 8900, True)


def test_check_url_accepts_exact_ipv6_entry():
    target = check_url("http://[::1]:8080/x", allowlist("[::1]:8080"))
    assert (target.host, target.port, target.exact) == ("::1", 8080, True)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/x", "http://127.0.0.1:8901/x", "http://localhost:8900/x", "http://127.0.0.2:8900/x"],
)
def test_check_url_exact_entry_covers_only_its_host_and_port(url):
    with pytest.raises(HostNotAllowed):
        check_url(url, allowlist("127.0.0.1:8900"))


def test_check_url_empty_allowlist_refuses_everything():
    with pytest.raises(HostNotAllowed):
        check_url("https://delivery.eu.bfl.ai/x.png", ())


# --------------------------------------------------------------------------------------------
# hosts.is_public_address and http.check_resolves_public
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "100.64.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "",
        "localhost",
        "not an address",
        "999.1.1.1",
        "1.2.3",
        "2130706433",
        "0x7f.0.0.1",
    ],
)
def test_is_public_address_refuses(address):
    assert is_public_address(address) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_is_public_address_accepts(address):
    assert is_public_address(address) is True


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "::1", "10.1.2.3"])
def test_check_resolves_public_refuses_loopback_spellings(host):
    with pytest.raises(HostNotAllowed):
        check_resolves_public(host, 443)


def test_check_resolves_public_accepts_public_literal():
    check_resolves_public("8.8.8.8", 443)  # a literal: resolved locally, no network


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("terminal", ["stored", "failed", "moderated", "expired"])
def test_terminal_statuses_have_no_way_out(terminal):
    assert terminal in st.TERMINAL
    assert st.TRANSITIONS[terminal] == frozenset()
    for other in st.STATUSES:
        assert not st.can_transition(terminal, other)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("queued", "submitted"),
        ("queued", "failed"),
        ("submitted", "ready"),
        ("submitted", "failed"),
        ("submitted", "moderated"),
        ("submitted", "expired"),
        ("ready", "stored"),
        ("ready", "failed"),
        ("ready", "moderated"),
        ("ready", "expired"),
        ("ready", "submitted"),  # only when BFL refutes an unproven Ready report
    ],
)
def test_allowed_transitions(current, new):
    assert st.can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("submitted", "queued"),
        ("ready", "queued"),
        ("stored", "ready"),
        ("queued", "stored"),
        ("queued", "ready"),
        ("submitted", "stored"),
        ("queued", "queued"),
        ("submitted", "submitted"),
        ("ready", "ready"),
        ("failed", "stored"),
        ("expired", "ready"),
        ("moderated", "submitted"),
        ("stored", "failed"),
        ("nonsense", "submitted"),
        ("submitted", "nonsense"),
    ],
)
def test_refused_transitions(current, new):
    assert not st.can_transition(current, new)


def test_status_sets_match_spec():
    assert set(st.STATUSES) == {"queued", "submitted", "ready", "stored", "failed", "moderated", "expired"}
    assert st.TERMINAL == {"stored", "failed", "moderated", "expired"}
    assert set(st.ACTIVE) == {"queued", "submitted", "ready"}
    assert set(st.TRANSITIONS) == set(st.STATUSES)


def test_every_active_status_can_reach_a_terminal_one_and_stored_is_reachable_from_queued():
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in st.TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for status in st.ACTIVE:
        assert reachable(status) & st.TERMINAL
    assert {"submitted", "ready", "stored"} <= reachable("queued")
    for terminal in st.TERMINAL:
        assert reachable(terminal) == set()


@pytest.mark.parametrize(
    ("new", "sources"),
    [
        ("queued", set()),
        ("submitted", {"queued", "ready"}),
        ("ready", {"submitted"}),
        ("stored", {"ready"}),
        ("failed", {"queued", "submitted", "ready"}),
        ("moderated", {"submitted", "ready"}),
        ("expired", {"submitted", "ready"}),
    ],
)
def test_sources_for(new, sources):
    result = st.sources_for(new)
    assert set(result) == sources
    assert not set(result) & st.TERMINAL
    for source in result:
        assert st.can_transition(source, new)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Ready", "Ready"),
        ("ready", "Ready"),
        ("READY", "Ready"),
        ("SUCCESS", "Ready"),
        ("success", "Ready"),
        ("Pending", "Pending"),
        ("PENDING", "Pending"),
        ("Error", "Error"),
        ("ERROR", "Error"),
        ("failed", "Failed"),
        ("Failed", "Failed"),
        ("FAILED", "Failed"),
        ("Request Moderated", "Request Moderated"),
        ("request_moderated", "Request Moderated"),
        ("REQUEST-MODERATED", "Request Moderated"),
        ("Content Moderated", "Content Moderated"),
        ("content moderated", "Content Moderated"),
        ("CONTENT_MODERATED", "Content Moderated"),
        ("Task not found", "Task not found"),
        ("TASK NOT FOUND", "Task not found"),
        ("task_not_found", "Task not found"),
        ("  Ready  ", "Ready"),
        ("Request  Moderated", "Request Moderated"),
        ("banana", None),
        ("", None),
        ("Readyy", None),
        ("Moderated", None),
        ("not found", None),
    ],
)
def test_normalize_bfl_status(word, expected):
    assert st.normalize_bfl_status(word) == expected


@pytest.mark.parametrize(
    ("bfl_status", "status", "code"),
    [
        ("Request Moderated", "moderated", "moderated"),
        ("Content Moderated", "moderated", "moderated"),
        ("Task not found", "failed", "task_not_found"),
        ("Error", "failed", "bfl_error"),
        ("Failed", "failed", "bfl_error"),
    ],
)
def test_terminal_outcome(bfl_status, status, code):
    outcome_status, outcome_code, message = st.terminal_outcome(bfl_status)
    assert (outcome_status, outcome_code) == (status, code)
    assert outcome_status in st.TERMINAL
    assert isinstance(message, str) and message.strip()


def test_every_bfl_failure_word_has_a_terminal_outcome():
    for word in st.BFL_FAILURES:
        assert st.terminal_outcome(word)[0] in st.TERMINAL
    assert st.BFL_READY not in st.BFL_FAILURES
    assert st.BFL_PENDING not in st.BFL_FAILURES


# --------------------------------------------------------------------------------------------
# callbacks.parse_callback
# --------------------------------------------------------------------------------------------

def body(payload) -> bytes:
    return json.dumps(payload).encode()


def test_parse_callback_ready_with_sample():
    event = parse_callback(body({"id": "abc-123", "status": "Ready",
                                 "result": {"sample": "https://delivery.eu.bfl.ai/x.png", "seed": 42}}))
    assert event == BFLReport(bfl_id="abc-123", status="Ready", sample_url="https://delivery.eu.bfl.ai/x.png")


def test_parse_callback_accepts_task_id_for_id():
    event = parse_callback(body({"task_id": "t-1", "status": "SUCCESS", "result": {"sample": "https://x/y"}}))
    assert (event.bfl_id, event.status, event.sample_url) == ("t-1", "Ready", "https://x/y")


def test_parse_callback_error_with_message():
    event = parse_callback(body({"id": "abc", "status": "Error", "error": "Generation failed",
                                 "message": "the model crashed"}))
    assert (event.bfl_id, event.status, event.sample_url) == ("abc", "Error", None)
    assert event.message == "the model crashed"


def test_parse_callback_error_without_message_field_uses_error():
    event = parse_callback(body({"id": "abc", "status": "Error", "error": "Generation failed"}))
    assert event.message == "Generation failed"


def test_parse_callback_message_is_bounded():
    event = parse_callback(body({"id": "abc", "status": "Failed", "message": "x" * 10_000}))
    assert event.message is not None and len(event.message) <= 500


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("failed", "Failed"),
        ("FAILED", "Failed"),
        ("error", "Error"),
        ("Request Moderated", "Request Moderated"),
        ("request_moderated", "Request Moderated"),
        ("CONTENT MODERATED", "Content Moderated"),
        ("Content Moderated", "Content Moderated"),
        ("pending", "Pending"),
        ("Task not found", "Task not found"),
    ],
)
def test_parse_callback_status_spellings(word, expected):
    event = parse_callback(body({"id": "abc", "status": word}))
    assert event.status == expected
    assert event.sample_url is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe\x00garbage",
        b"null",
        b"42",
        b'"Ready"',
        body([{"id": "abc", "status": "Ready", "result": {"sample": "https://x/y"}}]),
        body({"status": "Error"}),
        body({"id": "", "status": "Error"}),
        body({"id": "   ", "status": "Error"}),
        body({"id": None, "status": "Error"}),
        body({"id": 123, "status": "Error"}),
        body({"id": ["abc"], "status": "Error"}),
        body({"id": "x" * 1000, "status": "Error"}),
        body({"id": "abc"}),
        body({"id": "abc", "status": None}),
        body({"id": "abc", "status": 1}),
        body({"id": "abc", "status": ["Ready"]}),
        body({"id": "abc", "status": "Banana"}),
        body({"id": "abc", "status": ""}),
        body({"id": "abc", "status": "Ready"}),
        body({"id": "abc", "status": "Ready", "result": None}),
        body({"id": "abc", "status": "Ready", "result": {}}),
        body({"id": "abc", "status": "Ready", "result": {"sample": ""}}),
        body({"id": "abc", "status": "Ready", "result": {"sample": 5}}),
        body({"id": "abc", "status": "Ready", "result": "https://x/y"}),
        body({"id": "abc", "status": "SUCCESS", "result": []}),
    ],
)
def test_parse_callback_refusals(raw):
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


@pytest.mark.parametrize("opening,closing", [("[", "]"), ('{"a":', "}")])
def test_parse_callback_deep_nesting_is_invalid_request_not_recursion_error(opening, closing):
    depth = 100_000
    raw = (opening * depth + "1" + closing * depth).encode()
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


def test_parse_callback_deep_nesting_inside_a_valid_object():
    raw = b'{"id": "abc", "status": "Error", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


def test_max_callback_bytes_is_64_kib():
    assert MAX_CALLBACK_BYTES == 64 * 1024


# --------------------------------------------------------------------------------------------
# verification.verify_callback
# --------------------------------------------------------------------------------------------

SECRET = "per-job-secret-abcdef0123456789"
ROTATED = "next-secret-zyxwvu9876543210"
BODY = b'{"id": "abc", "status": "Ready", "result": {"sample": "https://delivery.eu.bfl.ai/x.png"}}'


def hmac_hex(secret: str, payload: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def test_body_signature_format():
    assert body_signature(SECRET, BODY) == "sha256=" + hmac_hex(SECRET, BODY)


def test_secret_header_right():
    assert verify_callback({"X-Webhook-Secret": SECRET}, BODY, [SECRET], required=True) is True
    assert verify_callback({"X-Webhook-Secret": SECRET}, BODY, [SECRET], required=False) is True


@pytest.mark.parametrize("given", ["wrong", "", SECRET + "x", SECRET[:-1], SECRET.upper(), " " + SECRET + "x", "é" * 5])
def test_secret_header_wrong(given):
    with pytest.raises(Unauthorized):
        verify_callback({"X-Webhook-Secret": given}, BODY, [SECRET], required=False)


def test_signature_header_right():
    headers = {"X-BFL-Signature": "sha256=" + hmac_hex(SECRET, BODY)}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


def test_signature_header_uppercase_hex_accepted():
    headers = {"X-BFL-Signature": "sha256=" + hmac_hex(SECRET, BODY).upper()}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


@pytest.mark.parametrize(
    "value",
    [
        "sha256=" + "0" * 64,                                   # wrong hex
        hmac_hex(SECRET, BODY),                                 # missing sha256= prefix
        "sha1=" + hmac_hex(SECRET, BODY),                       # other algorithm name
        "sha256=" + hmac_hex(SECRET, BODY)[:-1],                # wrong length (short)
        "sha256=" + hmac_hex(SECRET, BODY) + "0",               # wrong length (long)
        "sha256=" + "zz" + hmac_hex(SECRET, BODY)[2:],          # not hex
        "sha256=" + hmac_hex(SECRET, BODY + b" "),              # signature of a different body
        "sha256=" + hmac_hex("other-secret", BODY),             # signed with another secret
        "sha256=",
        "",
    ],
)
def test_signature_header_wrong(value):
    with pytest.raises(Unauthorized):
        verify_callback({"X-BFL-Signature": value}, BODY, [SECRET], required=False)


def test_both_headers_right():
    headers = {"X-Webhook-Secret": SECRET, "X-BFL-Signature": body_signature(SECRET, BODY)}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Webhook-Secret": SECRET, "X-BFL-Signature": "sha256=" + "0" * 64},
        {"X-Webhook-Secret": "wrong", "X-BFL-Signature": body_signature(SECRET, BODY)},
    ],
)
def test_both_headers_one_wrong_is_refused(headers):
    with pytest.raises(Unauthorized):
        verify_callback(headers, BODY, [SECRET], required=False)


def test_no_header_not_required_returns_false():
    assert verify_callback({}, BODY, [SECRET], required=False) is False
    assert verify_callback({"Content-Type": "application/json"}, BODY, [SECRET], required=False) is False


def test_no_header_required_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_callback({}, BODY, [SECRET], required=True)


@pytest.mark.parametrize("secrets", [[], [""], [None, ""]])
@pytest.mark.parametrize("header", ["X-Webhook-Secret", "X-BFL-Signature"])
def test_no_configured_secret_but_header_given_is_unauthorized(secrets, header):
    value = "" if header == "X-Webhook-Secret" else body_signature("", BODY)
    with pytest.raises(Unauthorized):
        verify_callback({header: value}, BODY, secrets, required=False)


def test_no_configured_secret_and_no_header_required_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_callback({}, BODY, [""], required=True)


@pytest.mark.parametrize("secret", [SECRET, ROTATED])
def test_rotation_accepts_either_secret(secret):
    assert verify_callback({"X-Webhook-Secret": secret}, BODY, [SECRET, ROTATED], required=True) is True
    assert verify_callback({"X-BFL-Signature": body_signature(secret, BODY)}, BODY, [SECRET, ROTATED],
                           required=True) is True


def test_rotation_still_refuses_other_secrets():
    with pytest.raises(Unauthorized):
        verify_callback({"X-Webhook-Secret": "third"}, BODY, [SECRET, ROTATED], required=False)
    with pytest.raises(Unauthorized):
        verify_callback({"X-BFL-Signature": body_signature("third", BODY)}, BODY, [SECRET, ROTATED], required=False)


def test_secrets_may_be_any_iterable():
    assert verify_callback({"X-Webhook-Secret": ROTATED}, BODY, (s for s in [SECRET, ROTATED]), required=True)


@pytest.mark.parametrize("name", ["x-webhook-secret", "X-WEBHOOK-SECRET", "X-Webhook-Secret"])
def test_secret_header_name_case_insensitive_with_flask_headers(name):
    assert verify_callback(Headers({name: SECRET}), BODY, [SECRET], required=True) is True
    with pytest.raises(Unauthorized):
        verify_callback(Headers({name: "wrong"}), BODY, [SECRET], required=False)


@pytest.mark.parametrize("name", ["x-bfl-signature", "X-BFL-SIGNATURE", "X-Bfl-Signature"])
def test_signature_header_name_case_insensitive_with_flask_headers(name):
    assert verify_callback(Headers({name: body_signature(SECRET, BODY)}), BODY, [SECRET], required=True) is True
    with pytest.raises(Unauthorized):
        verify_callback(Headers({name: "sha256=" + "0" * 64}), BODY, [SECRET], required=False)


# --------------------------------------------------------------------------------------------
# backoff
# --------------------------------------------------------------------------------------------

def test_backoff_delays_stay_within_half_jitter_bounds():
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = backoff_delay(attempt, rng=rng)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_delays_grow_until_the_cap():
    rng = random.Random(7)
    schedule = backoff_schedule(10, base=1.0, cap=1000.0, rng=rng)
    assert len(schedule) == 10
    # with half jitter, retry n+2 is always longer than retry n (its floor is the other's ceiling)
    for earlier, later in zip(schedule, schedule[2:]):
        assert later >= earlier
    assert schedule[-1] >= 256  # 2**9 / 2


@pytest.mark.parametrize("cap", [0.5, 5.0, 60.0])
def test_backoff_respects_the_cap(cap):
    rng = random.Random(3)
    for attempt in range(1, 40):
        delay = backoff_delay(attempt, base=2.0, cap=cap, rng=rng)
        assert delay <= cap
        if 2.0 * 2 ** (attempt - 1) >= cap:
            assert delay >= cap / 2


def test_backoff_large_attempt_is_capped_and_finite():
    delay = backoff_delay(500, base=1.0, cap=60.0, rng=random.Random(0))
    assert 30.0 <= delay <= 60.0


def test_backoff_is_deterministic_with_a_seeded_rng():
    a = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(42))
    b = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(42))
    c = backoff_schedule(8, base=0.5, cap=30.0, rng=random.Random(43))
    assert a == b
    assert a != c


def test_backoff_jitter_spreads_values():
    rng = random.Random(5)
    values = {backoff_delay(6, rng=rng) for _ in range(50)}
    assert len(values) > 40


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_attempt_counts_from_one(attempt):
    with pytest.raises(ValueError):
        backoff_delay(attempt)


def test_backoff_schedule_of_zero_retries_is_empty():
    assert backoff_schedule(0) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("2.5", 2.5),
        ("300", 300.0),
        ("301", 300.0),
        ("86400", 300.0),
        ("-5", 0.0),
    ],
)
def test_retry_after_seconds_numbers(header, expected):
    assert retry_after_seconds(header, 7.0) == expected


def test_retry_after_seconds_custom_cap():
    assert retry_after_seconds("100", 7.0, cap=10.0) == 10.0
    assert retry_after_seconds(None, 50.0, cap=10.0) == 10.0


@pytest.mark.parametrize(
    "header",
    [None, "", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 2099 23:59:59 GMT", "5s", "1,000", "nan"],
)
def test_retry_after_seconds_falls_back_on_dates_and_garbage(header):
    assert retry_after_seconds(header, 7.0) == 7.0


# --------------------------------------------------------------------------------------------
# signing
# --------------------------------------------------------------------------------------------

def job_id() -> str:
    return new_job_id()


def _tamper_signature(token: str) -> str:
    """Change the first signature character (all 6 of its bits count, unlike the last one's)."""
    payload, _, sig = token.rpartition(".")
    return f"{payload}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


def test_webhook_token_round_trip():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert "/" not in token and "?" not in token and "#" not in token


def test_webhook_token_for_another_secret_key_is_none():
    token = signing.webhook_token(OTHER_KEY, job_id())
    assert signing.job_id_from_webhook_token(KEY, token) is None


def test_webhook_token_tampered_is_none():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    tampered = _tamper_signature(token)
    assert signing.job_id_from_webhook_token(KEY, tampered) is None
    # swapping the payload for another job's id keeps the old signature: refused
    other = signing.webhook_token(KEY, job_id())
    spliced = other.split(".")[0] + "." + token.split(".")[1]
    assert signing.job_id_from_webhook_token(KEY, spliced) is None


@pytest.mark.parametrize("garbage", ["", "x", ".", "abc.def", "a" * 500, "%%%", "\u00e9.\u00e9"])
def test_webhook_token_garbage_is_none(garbage):
    assert signing.job_id_from_webhook_token(KEY, garbage) is None


def test_webhook_token_and_image_token_are_not_interchangeable():
    jid = job_id()
    assert signing.job_id_from_webhook_token(KEY, signing.image_token(KEY, jid)) is None
    assert signing.image_token_valid(KEY, signing.webhook_token(KEY, jid), jid, 3600) is False


def test_job_webhook_secret_differs_between_jobs_and_keys_and_is_stable():
    a, b = job_id(), job_id()
    secret = signing.job_webhook_secret(KEY, a)
    assert secret == signing.job_webhook_secret(KEY, a)
    assert secret != signing.job_webhook_secret(KEY, b)
    assert secret != signing.job_webhook_secret(OTHER_KEY, a)
    assert isinstance(secret, str) and len(secret) >= 32
    assert a not in secret and KEY not in secret
    assert secret != signing.webhook_token(KEY, a)


def test_image_token_valid_for_its_job_only():
    a, b = job_id(), job_id()
    token = signing.image_token(KEY, a)
    assert signing.image_token_valid(KEY, token, a, 3600) is True
    assert signing.image_token_valid(KEY, token, b, 3600) is False
    assert signing.image_token_valid(OTHER_KEY, token, a, 3600) is False


def _mint_image_token_at(monkeypatch, when: float, jid: str) -> str:
    monkeypatch.setattr(itsdangerous.timed, "time", types.SimpleNamespace(time=lambda: when))
    try:
        return signing.image_token(KEY, jid)
    finally:
        monkeypatch.undo()


def test_image_token_expires_after_max_age(monkeypatch):
    import time

    jid = job_id()
    old = _mint_image_token_at(monkeypatch, time.time() - 7200, jid)
    assert signing.image_token_valid(KEY, old, jid, 3600) is False
    assert signing.image_token_valid(KEY, old, jid, 7100) is False
    assert signing.image_token_valid(KEY, old, jid, 10_000) is True


def test_image_token_from_the_future_is_refused(monkeypatch):
    import time

    jid = job_id()
    future = _mint_image_token_at(monkeypatch, time.time() + 7200, jid)
    assert signing.image_token_valid(KEY, future, jid, 3600) is False


def test_image_token_negative_max_age_refuses_fresh_token():
    jid = job_id()
    assert signing.image_token_valid(KEY, signing.image_token(KEY, jid), jid, -1) is False


def test_image_token_tampered_is_invalid():
    jid = job_id()
    token = signing.image_token(KEY, jid)
    tampered = _tamper_signature(token)
    assert signing.image_token_valid(KEY, tampered, jid, 3600) is False


@pytest.mark.parametrize("garbage", ["", "x", "...", "a.b.c", "a" * 300, "\u00e9\u00e9.x.y"])
def test_image_token_garbage_is_false(garbage):
    assert signing.image_token_valid(KEY, garbage, job_id(), 3600) is False


def test_job_webhook_url_shape():
    jid = job_id()
    url = signing.job_webhook_url("https://hooks.example.com", KEY, jid)
    prefix = "https://hooks.example.com/webhooks/bfl/"
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert token and "/" not in token
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert KEY not in url
    assert signing.job_webhook_secret(KEY, jid) not in url


def test_job_webhook_url_differs_per_job():
    a, b = job_id(), job_id()
    assert signing.job_webhook_url("http://localhost:8000", KEY, a) != signing.job_webhook_url(
        "http://localhost:8000", KEY, b)


# --------------------------------------------------------------------------------------------
# jobs (pure parts)
# --------------------------------------------------------------------------------------------

def test_new_job_id_shape():
    for _ in range(200):
        jid = new_job_id()
        assert jid.startswith("job_")
        assert len(jid) == 4 + 26
        assert set(jid[4:]) <= CROCKFORD
        assert is_job_id(jid)


def test_new_job_ids_are_unique():
    ids = {new_job_id(1_700_000_000.0) for _ in range(2000)}
    assert len(ids) == 2000


def test_new_job_ids_sort_by_time():
    times = [0.0, 0.005, 1.0, 1_000_000.0, 1_700_000_000.0, 1_700_000_000.01, 1_700_000_000.02,
             1_800_000_000.5, 4_000_000_000.0, 200_000_000_000.0]
    for _ in range(20):
        ids = [new_job_id(t) for t in times]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


def test_new_job_id_time_prefix_is_the_millisecond():
    # same millisecond: same 10-char time prefix; next millisecond: greater prefix
    a, b = new_job_id(1_700_000_000.000), new_job_id(1_700_000_000.0004)
    c = new_job_id(1_700_000_000.002)
    assert a[:14] == b[:14]
    assert c[:14] > a[:14]


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "../etc/passwd",
        "job_x",
        "job_",
        "job_../../../../etc/passwd",
        "JOB_01J00000000000000000000000",
        "job_01j00000000000000000000000",
        "job_01J0000000000000000000000",     # 25 chars
        "job_01J000000000000000000000000",   # 27 chars
        "job_01I00000000000000000000000",    # I is not Crockford
        "job_01L00000000000000000000000",
        "job_01O00000000000000000000000",
        "job_01U00000000000000000000000",
        " job_01J00000000000000000000000",
        "job_01J00000000000000000000000 ",
        "job_01J00000000000000000000000\n",
        "job_01J0000000000000000000000/",
        "01J00000000000000000000000",
    ],
)
def test_is_job_id_refuses(text):
    assert is_job_id(text) is False


def test_is_job_id_refuses_lowercase_of_a_real_id():
    jid = new_job_id()
    assert is_job_id(jid)
    assert not is_job_id(jid.lower())
    assert not is_job_id("job_" + jid[4:].lower())


def test_iso():
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00Z"
    ts = datetime(2026, 11, 21, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    assert iso(ts) == "2026-11-21T10:00:00Z"
    assert iso(ts + 0.999) == "2026-11-21T10:00:00Z"
    assert iso(ts + 61.5) == "2026-11-21T10:01:01Z"


SPEC_JOB_FIELDS = {"id", "bfl_id", "model", "status", "bfl_status", "source", "created_at", "updated_at",
                   "completed_at", "image", "error", "metadata", "attempts"}


def _stored_hash(job: Job) -> dict[str, str]:
    """What JobStore.create writes to Redis for ``job`` (None fields are left out)."""
    flat = encode_fields({k: v for k, v in job.__dict__.items() if v is not None})
    return dict(zip(flat[::2], flat[1::2]))


def test_job_round_trip_of_every_spec_field():
    created = datetime(2026, 11, 21, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    job = Job(
        id=new_job_id(created),
        status="stored",
        model="flux-2-pro",
        bfl_id="abc-123",
        bfl_status="Ready",
        source="webhook",
        created_at=created,
        updated_at=created + 5.25,
        completed_at=created + 9.5,
        image={"content_type": "image/png", "size": 1234, "sha256": "ab" * 32, "width": 64, "height": 48},
        error=None,
        metadata={"user": "u1", "tags": ["a", "b"], "n": 3, "nested": {"ü": True}},
        webhooks=2,
        polls=1,
        downloads=3,
    )
    data = _stored_hash(job)
    assert all(isinstance(v, str) for v in data.values())
    again = Job.from_hash(data)
    assert again.to_api("https://x/img") == job.to_api("https://x/img")
    api = again.to_api("https://x/img")
    assert set(api) == SPEC_JOB_FIELDS
    assert api == {
        "id": job.id,
        "bfl_id": "abc-123",
        "model": "flux-2-pro",
        "status": "stored",
        "bfl_status": "Ready",
        "source": "webhook",
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:00:05Z",
        "completed_at": "2026-11-21T10:00:09Z",
        "image": {"url": "https://x/img", "content_type": "image/png", "size": 1234, "sha256": "ab" * 32,
                  "width": 64, "height": 48},
        "error": None,
        "metadata": {"user": "u1", "tags": ["a", "b"], "n": 3, "nested": {"ü": True}},
        "attempts": {"webhooks": 2, "polls": 1, "downloads": 3},
    }
    json.dumps(api)  # serialisable as the API answer


def test_job_round_trip_of_a_failed_job():
    job = Job(id=new_job_id(), status="failed", model="flux-kontext-max", bfl_id="t-9", bfl_status="Error",
              source="poll", created_at=100.0, updated_at=200.0, completed_at=200.0,
              error={"code": "bfl_error", "message": "BFL reported that the generation failed"}, polls=4)
    api = Job.from_hash(_stored_hash(job)).to_api()
    assert api["error"] == {"code": "bfl_error", "message": "BFL reported that the generation failed"}
    assert api["image"] is None
    assert api["source"] == "poll"
    assert api["bfl_status"] == "Error"
    assert api["completed_at"] == "1970-01-01T00:03:20Z"
    assert api["attempts"] == {"webhooks": 0, "polls": 4, "downloads": 0}


def test_job_round_trip_of_a_fresh_job_has_nulls_and_empty_metadata():
    job = Job(id=new_job_id(), status="submitted", created_at=1.0, updated_at=1.0)
    api = Job.from_hash(_stored_hash(job)).to_api()
    assert set(api) == SPEC_JOB_FIELDS
    for name in ("bfl_id", "model", "bfl_status", "source", "completed_at", "image", "error"):
        assert api[name] is None, name
    assert api["metadata"] == {}
    assert api["attempts"] == {"webhooks": 0, "polls": 0, "downloads": 0}
    assert api["status"] == "submitted"


def test_job_from_hash_reads_empty_strings_as_null():
    data = {"id": new_job_id(), "status": "ready", "bfl_id": "", "bfl_status": "", "source": "",
            "created_at": "5", "updated_at": "6", "completed_at": "", "image": "", "error": "",
            "metadata": "", "webhooks": "1", "polls": "0", "downloads": "0"}
    job = Job.from_hash(data)
    assert (job.bfl_id, job.bfl_status, job.source, job.completed_at, job.image, job.error) == (None,) * 6
    assert job.metadata == {}
    assert job.webhooks == 1
    assert not job.terminal


@pytest.mark.parametrize("status_name", ["stored", "failed", "moderated", "expired"])
def test_job_terminal_property(status_name):
    assert Job(id=new_job_id(), status=status_name).terminal


# --------------------------------------------------------------------------------------------
# images.identify
# --------------------------------------------------------------------------------------------

def image_bytes(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 60) if mode == "RGB" else 1).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "size", "content_type", "extension"),
    [
        ("PNG", (7, 5), "image/png", "png"),
        ("JPEG", (13, 11), "image/jpeg", "jpg"),
        ("WEBP", (21, 3), "image/webp", "webp"),
        ("PNG", (1, 1), "image/png", "png"),
        ("JPEG", (640, 480), "image/jpeg", "jpg"),
    ],
)
def test_identify_accepted_formats(fmt, size, content_type, extension):
    file = io.BytesIO(image_bytes(fmt, size))
    assert identify(file) == (content_type, extension, size[0], size[1])
    assert file.tell() == 0  # left rewound for storing


@pytest.mark.parametrize(("fmt", "mode"), [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("ICO", "RGB")])
def test_identify_refuses_other_formats(fmt, mode):
    file = io.BytesIO(image_bytes(fmt, (16, 16), mode))
    with pytest.raises(NotAnImage):
        identify(file)
    assert file.tell() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        os.urandom(4096),
        b"hello, this is text, not an image\n" * 20,
        b"<html><body>Access denied</body></html>",
        b'{"error": "expired"}',
        image_bytes("PNG", (8, 8))[:12],
        image_bytes("PNG", (8, 8))[:20],
        image_bytes("JPEG", (8, 8))[:4],
        image_bytes("WEBP", (8, 8))[:14],
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"\xff\xd8\xff",
    ],
)
def test_identify_refuses_non_images_and_truncated_headers(raw):
    with pytest.raises(NotAnImage):
        identify(io.BytesIO(raw))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_identify_refuses_decompression_bomb_dimensions():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"")) + \
        _png_chunk(b"IEND", b"")
    with pytest.raises(NotAnImage):
        identify(io.BytesIO(raw))


def test_rq_routine_job_lines_are_dropped_but_lifecycle_and_problems_kept():
    import logging

    from fluxhook.logs import QuietRoutineJobs

    def record(name: str, level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, None)

    quiet = QuietRoutineJobs()
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: fluxhook: worker.sweep.sweep() (x)"))
    assert not quiet.filter(record("rq.worker", logging.INFO, "Worker abc: fluxhook: Job OK (x)"))
    assert not quiet.filter(record("rq.cron", logging.INFO, "Enqueued job sweep to queue fluxhook"))
    assert quiet.filter(record("rq.worker", logging.INFO, "Worker abc: warm shut down requested"))
    assert quiet.filter(record("rq.worker", logging.ERROR, "Worker abc: fluxhook: Job OK (x)"))
    assert quiet.filter(record("fluxhook.results", logging.INFO, "image stored: Job OK"))


# -- a pool of workers: when to start a failed member again -------------------------------------

def test_a_failing_pool_member_waits_longer_each_time_up_to_a_cap():
    delays = [restart_delay(n) for n in range(1, 9)]
    assert delays[0] == 1.0
    assert delays == sorted(delays)
    assert delays[-1] == delays[-2] == RESTART_DELAYS[-1] == 30.0


# -- log scrubbing -----------------------------------------------------------------------------


def test_redact_urls_scrubs_the_credentials_urls_carry_and_keeps_the_rest():
    line = ("Invalid HTTP request line: 'POST /webhooks/bfl/ImpvYl8.zQGv-Ld_W45 HTTP/1.1' "
            "GET /v1/jobs/job_1/image?token=eyJ.x-y_z&w=1 https://d.example/s.png?se=2026-11-21&Sig=Zm9v%3D "
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc123")
    assert redact_urls(line) == (
        "Invalid HTTP request line: 'POST /webhooks/bfl/[redacted] HTTP/1.1' "
        "GET /v1/jobs/job_1/image?token=[redacted]&w=1 https://d.example/s.png?se=2026-11-21&Sig=[redacted] "
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]")


@pytest.mark.parametrize("text", ["POST /webhooks/bfl 200", "callback refused reason=bad_token job_id=job_1",
                                  "/v1/jobs?status=stored&cursor=abc", "tokens=3 signature_checked=true"])
def test_redact_urls_leaves_text_without_url_credentials_alone(text):
    assert redact_urls(text) == text
