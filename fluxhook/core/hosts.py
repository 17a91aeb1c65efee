"""Which hosts fluxhook may contact: allowlist patterns and address rules (pure functions).

A pattern is a host name where ``*`` stands for one DNS label (``delivery-*.bfl.ai``,
``api.*.bfl.ai``), or an exact ``host:port``. Pattern hosts are reached over https on
port 443 and only at public addresses; an exact ``host:port`` entry is the operator
naming one endpoint on purpose, so it may use http and a loopback or private address.
This machine's loopback may be named with any port (``127.0.0.1:*``, ``localhost:*``): the receivers of a dev run.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from fluxhook.core.errors import HostNotAllowed

_PATTERN_LABEL = re.compile(r"^(?:\*|[a-z0-9*](?:[a-z0-9*-]{0,61}[a-z0-9*])?)$")
# The port of an entry that takes any port: only this machine's loopback may be named so.
ANY_PORT = 0
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class HostPattern:
    """One allowlist entry: a host glob, or an exact host with a port."""

    host: str
    port: int | None = None

    @property
    def exact(self) -> bool:
        return self.port is not None

    def __str__(self) -> str:
        if not self.exact:
            return self.host
        port = "*" if self.port == ANY_PORT else self.port
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"


def parse_host_pattern(entry: str) -> HostPattern:
    """Parse ``*.bfl.ai``, ``host:port`` or ``[::1]:8080``; raise ValueError naming the entry."""
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{entry!r}: an IPv6 entry must be [address]:port")
        port = _parse_port(entry, rest[1:], host)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{entry!r}: not an IP address in brackets") from None
        return HostPattern(host, port)
    if ":" in text:
        text, _, port_text = text.rpartition(":")
        port = _parse_port(entry, port_text, text)
        if "*" in text:
            raise ValueError(f"{entry!r}: an entry with a port must name one exact host, without *")
    labels = text.split(".")
    if not text or any(not _PATTERN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{entry!r}: not a host name pattern (letters, digits, '-', '.', '*' for one label)")
    if any("*" in label for label in labels[-2:]):
        raise ValueError(f"{entry!r}: a wildcard may not cover a top-level or registrable domain")
    return HostPattern(text, port)


def _parse_port(entry: str, text: str, host: str) -> int:
    if text == "*":
        if host not in _LOOPBACK_NAMES:
            raise ValueError(f"{entry!r}: only this machine's loopback (localhost, 127.0.0.1, [::1]) may take any "
                             "port; name one port for any other host")
        return ANY_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: port must be a number from 1 to 65535")
    return int(text)


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p).replace(r"\*", "[a-z0-9-]+") for p in pattern.split(".")]
    return re.compile("^" + r"\.".join(parts) + "$")


def host_matches(pattern: HostPattern, host: str, port: int) -> bool:
    """Whether ``host:port`` is covered by ``pattern`` (globs cover port 443 only)."""
    host = _fqdn(host)
    if pattern.exact:
        return host == pattern.host and pattern.port in (port, ANY_PORT)
    return port == 443 and _glob_to_regex(pattern.host).fullmatch(host) is not None


def _fqdn(host: str) -> str:
    """``host`` in lower case without its one root dot (``a.bfl.ai.`` is ``a.bfl.ai``; ``a.bfl.ai..`` names no host)."""
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


@dataclass(frozen=True)
class Target:
    """A URL that passed the allowlist: where to connect and whether private addresses are allowed."""

    url: str
    scheme: str
    host: str
    port: int
    exact: bool


def check_url(url: str, allowlist: tuple[HostPattern, ...]) -> Target:
    """Return the URL's target if the allowlist covers it; raise HostNotAllowed otherwise."""
    if _UNSAFE.search(url):
        # urlsplit drops tabs and newlines that the HTTP client would not: the host checked must be the host reached.
        raise HostNotAllowed("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise HostNotAllowed("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise HostNotAllowed(f"scheme {scheme or 'none'!r} is not allowed; only https")
    if "@" in parts.netloc or parts.username is not None:
        raise HostNotAllowed("URLs with user information are not allowed")
    host = _fqdn(parts.hostname or "")
    if not host or host.endswith("."):
        raise HostNotAllowed("the URL has no host name")
    port = port or (443 if scheme == "https" else 80)
    for pattern in allowlist:
        if host_matches(pattern, host, port):
            if not pattern.exact and scheme != "https":
                raise HostNotAllowed(f"{host} must be reached over https")
            return Target(url=url, scheme=scheme, host=host, port=port, exact=pattern.exact)
    raise HostNotAllowed(f"host {host}:{port} is not in the allowlist")


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (not loopback, private, link-local, reserved...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
        elif ip in _NAT64 or ip in _IPV4_COMPATIBLE:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d form
