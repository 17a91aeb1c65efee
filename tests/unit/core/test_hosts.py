"""Allowlist entries and URL checks: which hosts fluxhook may send a request to (fluxhook/core/hosts.py).

Pure functions: no Redis, no HTTP, no sleeps.
"""

from __future__ import annotations

import pytest

from fluxhook.core.config import DEFAULT_API_HOSTS
from fluxhook.core.errors import HostNotAllowed
from fluxhook.core.hosts import HostPattern, check_url, host_matches, is_public_address, parse_host_pattern


def allowlist(*entries: str) -> tuple[HostPattern, ...]:
    return tuple(parse_host_pattern(e) for e in entries)


DEFAULT_RESULT_HOSTS = allowlist("delivery.*.bfl.ai", "delivery-*.bfl.ai", "bfldeliveryprod.blob.core.windows.net")
API_HOSTS = allowlist(*DEFAULT_API_HOSTS.split(","))  # where BFL's key (x-key) may go unless the operator says else


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


@pytest.mark.parametrize("entry", ["127.0.0.1:*", "localhost:*", "[::1]:*"])
def test_this_machines_loopback_may_take_any_port_and_reach_it_over_http(entry):
    pattern = parse_host_pattern(entry)
    assert str(pattern) == entry and parse_host_pattern(str(pattern)) == pattern
    host = pattern.host
    assert host_matches(pattern, host, 5001) and host_matches(pattern, host, 65000)
    url = f"http://{'[::1]' if host == '::1' else host}:5001/hook"
    assert check_url(url, (pattern,)).exact  # http and a loopback address, as an exact entry allows


@pytest.mark.parametrize("entry", ["example.com:*", "10.0.0.5:*", "*.example.com:*", "[fe80::1]:*"])
def test_any_other_host_must_name_its_port(entry):
    with pytest.raises(ValueError, match="only this machine's loopback"):
        parse_host_pattern(entry)


# --------------------------------------------------------------------------------------------
# the default API_HOST_ALLOWLIST: every https host of bfl.ai one or two labels deep, never another domain
# --------------------------------------------------------------------------------------------

ON_BFL_AI = (
    "https://gateway.bfl.ai/v1/get_result?id=abc",
    "https://api.bfl.ai/v1/get_result?id=abc",
    "https://api.eu.bfl.ai/v1/get_result?id=abc",
    "https://api.us1.bfl.ai/v1/get_result?id=abc",
    "https://gateway.bfl.ai:443/v1/get_result?id=abc",
    "https://xn--gatway-9ua.bfl.ai/v1/get_result?id=abc",  # an IDN label is still a host of bfl.ai
    # the same host as DNS names it: case, the root dot
    "HTTPS://GATEWAY.BFL.AI/v1/get_result?id=abc",
    "https://gateway.bfl.ai./v1/get_result?id=abc",
)


def test_the_default_api_hosts_take_every_host_of_bfl_ai_one_or_two_labels_deep():
    for url in ON_BFL_AI:
        target = check_url(url, API_HOSTS)
        assert target.host.endswith(".bfl.ai") and (target.scheme, target.port, target.exact) == ("https", 443, False)


@pytest.mark.parametrize(
    "url",
    [
        # another domain, whatever it looks like
        "https://bfl.ai.evil.com/v1/get_result?id=abc",
        "https://gateway.bfl.ai.evil.com/v1/get_result?id=abc",
        "https://evilbfl.ai/v1/get_result?id=abc",
        "https://gateway.evilbfl.ai/v1/get_result?id=abc",
        "https://gateway-bfl.ai/v1/get_result?id=abc",
        "https://bfl.ai/v1/get_result?id=abc",  # the registrable domain itself: no label deep
        "https://a.b.c.bfl.ai/v1/get_result?id=abc",  # three labels deep
        "https://gateway.bfl.ai%2eevil.com/v1/get_result?id=abc",
        "https://gateway.bfl.ai\\.evil.com/v1/get_result?id=abc",
        "https://evil.com/gateway.bfl.ai/v1/get_result?id=abc",
        "https://evil.com?.bfl.ai",
        "https://evil.com#.bfl.ai",
        # not https, or not on 443
        "http://gateway.bfl.ai/v1/get_result?id=abc",
        "http://gateway.bfl.ai:443/v1/get_result?id=abc",
        "https://gateway.bfl.ai:8443/v1/get_result?id=abc",
        "https://gateway.bfl.ai:80/v1/get_result?id=abc",
        "ws://gateway.bfl.ai/v1/get_result?id=abc",
        "//gateway.bfl.ai/v1/get_result?id=abc",
        # user information: the host reached is after the '@'
        "https://api.bfl.ai@evil.com/",
        "https://api.bfl.ai:443@evil.com/",
        "https://api.bfl.ai%40evil.com@evil.com/",
        "https://x-key:k@gateway.bfl.ai/v1/get_result?id=abc",
        "https://api.bfl.ai\\@evil.com/",
        # IP literals, even in BFL's name's shape
        "https://104.18.0.1/v1/get_result?id=abc",
        "https://[2606:4700::1]/v1/get_result?id=abc",
        "https://2130706433/v1/get_result?id=abc",
        "https://0x7f000001/v1/get_result?id=abc",
        # spellings that are no DNS name of bfl.ai
        "https://GATEWAY.BFL.AI.EVIL.COM/v1/get_result?id=abc",
        "https://gateway.bfl.ai../v1/get_result?id=abc",
        "https://gateway..bfl.ai/v1/get_result?id=abc",
        "https://.bfl.ai/v1/get_result?id=abc",
        # lookalikes: Cyrillic letters, fullwidth letters, ideographic dots that IDNA maps to '.'
        "https://gat\u0435way.bfl.ai/v1/get_result?id=abc",
        "https://gateway.bf\u04cf.ai/v1/get_result?id=abc",
        "https://\uff47ateway.bfl.ai/v1/get_result?id=abc",
        "https://gateway.bfl\uff0eai/v1/get_result?id=abc",
        "https://gateway.bfl.ai\u3002evil.com/v1/get_result?id=abc",
        "https://evil.com\u3002gateway.bfl.ai/v1/get_result?id=abc",
        # characters urlsplit drops and the HTTP client would not
        "https://evil.com\t.bfl.ai/v1/get_result?id=abc",
        "https://evil\n.gateway.bfl.ai/v1/get_result?id=abc",
        "https://gateway.bfl.ai\r/v1/get_result?id=abc",
        "https://gateway.bfl.ai\x00.evil.com/v1/get_result?id=abc",
        "https://gateway.bfl.ai /v1/get_result?id=abc",
    ],
)
def test_the_default_api_hosts_never_take_another_domain_or_a_trick(url):
    with pytest.raises(HostNotAllowed):
        check_url(url, API_HOSTS)
