"""Helpers of the app-key tests (test_app_keys, test_key_scope, test_key_limits): making keys over the API,
and a second web process beside the stack's, in this test process, on the same Redis."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

from werkzeug.serving import make_server

from conftest import API, serve_in_thread
from devtools.processes import free_port


def make_key(admin: API, **fields) -> tuple[dict, API]:
    """A new app key (a unique name unless given) and a client that uses it."""
    fields.setdefault("name", f"app-{uuid.uuid4().hex[:8]}")
    response = admin.post("/v1/keys", json=fields)
    assert response.status_code == 201, response.text
    created = response.json()
    return created, API(admin.base_url, token=created["key"])


def as_key(api: API, secret: str) -> API:
    """The same web process, seen with another token."""
    return API(api.base_url, token=secret)


@contextmanager
def second_web(env: dict[str, str]) -> Iterator[API]:
    """Another web app on ``env``'s Redis (threaded werkzeug), with its own caches, as another process would be."""
    from fluxhook.core.config import Config
    from receiver import create_app

    port = free_port()
    server = make_server("127.0.0.1", port, create_app(Config.from_env(dict(env, PORT=str(port)))), threaded=True)
    thread = serve_in_thread(server)
    try:
        yield API(f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
        thread.join(timeout=5)
