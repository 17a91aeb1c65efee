"""Fixtures the store's tests share."""

from __future__ import annotations

import pytest
import redis

from fluxhook.store.deliveries import Deliveries


@pytest.fixture()
def other_process(connection) -> Deliveries:
    """The notifications' store as a second worker process has it: the same Redis on a connection of its own."""
    return Deliveries(redis.Redis(connection_pool=redis.ConnectionPool(**connection.connection_pool.connection_kwargs)))
