"""The notification tests' stack: the Procfile's processes on Redis database 10, whose NOTIFY_URL is a real HTTP
receiver on 127.0.0.1 and whose NOTIFY_HOST_ALLOWLIST lists every receiver of the package by exact host:port."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import API
from helpers import stack_on_db
from notify_helpers import SECRET, Receiver, fresh, receiving

RECEIVERS = 4


@pytest.fixture(scope="package")
def receivers():
    """The default NOTIFY_URL's receiver, then others a job or a key may name."""
    with receiving(RECEIVERS) as made:
        yield made


@pytest.fixture()
def hooks(receivers) -> Receiver:
    return fresh(receivers[0])


@pytest.fixture()
def other_hooks(receivers) -> Receiver:
    return fresh(receivers[1])


@pytest.fixture()
def third_hooks(receivers) -> Receiver:
    return fresh(receivers[2])


@pytest.fixture()
def fourth_hooks(receivers) -> Receiver:
    return fresh(receivers[3])


@pytest.fixture(scope="package")
def notify_stack(redis_server, simulator, _spies, receivers, tmp_path_factory):
    allowed = ",".join(f"127.0.0.1:{r.port}" for r in receivers)
    with stack_on_db(redis_server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("notify-stack")), 10,
                     NOTIFY_URL=receivers[0].url(), NOTIFY_SECRET=SECRET, NOTIFY_HOST_ALLOWLIST=allowed) as running:
        yield running


@pytest.fixture()
def napi(notify_stack) -> API:
    return API(notify_stack.base_url)
