"""The one HTTP client: ``requests`` sessions that refuse non-public peers at connect time.

Allowlists are checked on the URL before any request (``hosts.check_url``); this module
adds the check on the address actually connected to, so a DNS answer that changes between
the check and the connection (rebinding) still cannot reach a private address. Every connection also puts its
socket under the deadline of the exchange under way (``deadlines.within``), whether it connects for it or is reused.
"""

from __future__ import annotations

import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from fluxhook.core.errors import HostNotAllowed
from fluxhook.core.hosts import Target, is_public_address
from fluxhook.net import deadlines

USER_AGENT = "fluxhook/0.1 (+https://github.com/fluxhook)"


class _DeadlineMixin:
    # connect() and request() are urllib3's public methods; ``sock`` is http.client's public attribute.
    def connect(self):
        super().connect()  # type: ignore[misc]
        deadlines.watch(self.sock)  # type: ignore[attr-defined]

    def request(self, *args, **kwargs):
        deadlines.watch(self.sock)  # type: ignore[attr-defined]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _PublicPeerMixin:
    # Mixed into urllib3's connection classes, whose _new_conn and host the ignores below stand for: mypy sees object.
    def _new_conn(self):
        sock = super()._new_conn()  # type: ignore[misc]
        peer = sock.getpeername()[0]
        if not is_public_address(peer):
            sock.close()
            raise HostNotAllowed(f"{self.host} resolves to a non-public address")  # type: ignore[attr-defined]
        return sock


class _HTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _PublicHTTPConnection(_DeadlineMixin, _PublicPeerMixin, HTTPConnection):
    pass


class _PublicHTTPSConnection(_DeadlineMixin, _PublicPeerMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _Adapter(HTTPAdapter):
    pools = {"http": _HTTPPool, "https": _HTTPSPool}

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self.pools


class _PublicOnlyAdapter(_Adapter):
    pools = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def _session(adapter: HTTPAdapter) -> requests.Session:
    session = requests.Session()
    # Proxies and .netrc from the environment must not redirect or decorate our requests.
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HTTPClient:
    """Two pooled sessions: one for exactly allowlisted endpoints, one that only reaches public addresses."""

    def __init__(self, pool_size: int = 32):
        self._exact = _session(_Adapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0))
        self._public = _session(_PublicOnlyAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0))

    def session_for(self, target: Target) -> requests.Session:
        """The session to reach ``target`` with; resolves pattern hosts first so a private one is refused unsent."""
        if target.exact:
            return self._exact
        check_resolves_public(target.host, target.port)
        return self._public


def check_resolves_public(host: str, port: int) -> None:
    """Raise HostNotAllowed unless every address ``host`` resolves to is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        # Unresolvable now: let the connection attempt fail as a transient network error.
        return
    for info in infos:
        if not is_public_address(str(info[4][0])):
            raise HostNotAllowed(f"{host} resolves to a non-public address")
