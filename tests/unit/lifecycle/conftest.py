"""What the notification tests of the lifecycle share: a real HTTP receiver on 127.0.0.1 recording every POST, and
services on database 11 that notify it."""

from __future__ import annotations

import pytest

from notify_helpers import SECRET, Receiver, fresh, receiving


@pytest.fixture(scope="module")
def receivers():
    """The default NOTIFY_URL's receiver."""
    with receiving(1) as made:
        yield made


@pytest.fixture()
def hooks(receivers) -> Receiver:
    return fresh(receivers[0])


@pytest.fixture()
def notifying(make_services, receivers):
    """Services on database 11 that notify ``receivers``' first, with ``overrides`` of their settings."""
    def build(**overrides):
        notifications = {"NOTIFY_URL": receivers[0].url(), "NOTIFY_SECRET": SECRET,
                         "NOTIFY_HOST_ALLOWLIST": f"127.0.0.1:{receivers[0].port}"}
        return make_services(11, **{**notifications, **overrides})

    return build
