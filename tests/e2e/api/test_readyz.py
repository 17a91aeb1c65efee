"""``GET /readyz`` answers with the readiness checks (fluxhook/lifecycle/readiness.py): the session stack's, and a web
app's over HTTP on a Redis database of its own, where no worker of the stack registers. The checks themselves:
tests/unit/lifecycle/test_readiness.py."""

from __future__ import annotations

import pytest
import requests
from rq import Worker
from werkzeug.serving import make_server

from conftest import serve_in_thread
from devtools.processes import free_port
from receiver import create_app

DB = 14  # a Redis database of these tests' own, where no worker of the stack registers


@pytest.fixture()
def svc(make_services, tmp_path):
    return make_services(DB, STORAGE_URL=f"file://{tmp_path / 'images'}")


def _worker(svc, name: str) -> Worker:
    worker = Worker([svc.queue], connection=svc.redis, name=name)
    worker.register_birth()
    return worker


def test_readyz_answers_with_these_checks(stack, svc):
    assert requests.get(stack.base_url + "/readyz", timeout=5).json() == {"status": "ok", "reasons": []}

    # The web app over the database without a worker, served over real HTTP.
    server = make_server("127.0.0.1", free_port(), create_app(services=svc), threaded=True)
    serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_port}/readyz"
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 503
        assert answer.json() == {"status": "unavailable", "reasons": ["no worker heartbeat in the last 60 s"]}
        _worker(svc, "readiness-web").heartbeat()
        assert requests.get(url, timeout=5).json() == {"status": "ok", "reasons": []}
    finally:
        server.shutdown()
