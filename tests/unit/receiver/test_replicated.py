"""Answers held for Redis's replicas (receiver/replicated.py): with ``REDIS_MIN_REPLICAS`` the views it marks are
answered only once the replicas confirm (here a Redis without replicas: refused 503), the others as ever; without it,
nothing of it is installed. On an in-process app (its Flask test client) over a Redis database of its own."""

from __future__ import annotations

from conftest import API_TOKEN
from receiver import create_app, replicated

DB = 6
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _hooks(app) -> list:
    return [hook for hooks in (*app.before_request_funcs.values(), *app.after_request_funcs.values())
            for hook in hooks]


def test_without_replicas_required_nothing_of_it_runs_for_a_request(make_services):
    app = create_app(services=make_services(DB))

    assert not [hook for hook in _hooks(app) if hook.__module__ == replicated.__name__]
    assert app.test_client().post("/v1/keys", json={"name": "plain"}, headers=AUTH).status_code == 201


def test_with_replicas_required_a_marked_view_waits_for_them_and_the_others_do_not(make_services):
    client = create_app(services=make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")).test_client()

    created = client.post("/v1/keys", json={"name": "held"}, headers=AUTH)
    assert created.status_code == 503, created.get_json()  # no replica confirms the key it wrote
    assert client.get("/v1/keys", headers=AUTH).status_code == 200  # a read waits for nothing
