"""What the worker's end-to-end tests share."""

from __future__ import annotations

import pytest

from devtools.processes import RedisServer


@pytest.fixture(scope="module")
def own_redis():
    """A Redis server of the module's own: what a stack on it costs Redis is the module's alone to count."""
    server = RedisServer().start()
    yield server
    server.stop()
