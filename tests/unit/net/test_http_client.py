"""The HTTP client's check on the address it connects to: public addresses only
(fluxhook/net/http_client.py).

No network: the names and literals refused here resolve locally.
"""

from __future__ import annotations

import pytest

from fluxhook.core.errors import HostNotAllowed
from fluxhook.net.http_client import check_resolves_public


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "::1", "10.1.2.3"])
def test_check_resolves_public_refuses_loopback_spellings(host):
    with pytest.raises(HostNotAllowed):
        check_resolves_public(host, 443)


def test_check_resolves_public_accepts_public_literal():
    check_resolves_public("8.8.8.8", 443)  # a literal: resolved locally, no network
