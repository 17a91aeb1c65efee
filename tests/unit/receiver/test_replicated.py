"""Answers held for Redis's replicas (receiver/replicated.py): with ``REDIS_MIN_REPLICAS`` the views it marks are
answered only once the replicas confirm (here a Redis without replicas: refused 503), the others as ever, and a
request refused before its view (no key) costs Redis nothing; without it, no hook of it is installed. On an in-process
app (its Flask test client) over a Redis database of its own."""

from __future__ import annotations

from conftest import API_TOKEN
from receiver import create_app, replicated

DB = 6
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _hooks(app) -> list:
    return [hook for hooks in (*app.before_request_funcs.values(), *app.after_request_funcs.values())
            for hook in hooks]


def test_without_replicas_required_no_hook_of_it_is_installed(make_services):
    app = create_app(services=make_services(DB))

    assert not [hook for hook in _hooks(app) if hook.__module__ == replicated.__name__]
    assert app.test_client().post("/v1/keys", json={"name": "plain"}, headers=AUTH).status_code == 201


def test_with_replicas_required_a_marked_view_waits_for_them_and_the_others_do_not(make_services):
    client = create_app(services=make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")).test_client()

    created = client.post("/v1/keys", json={"name": "held"}, headers=AUTH)
    assert created.status_code == 503, created.get_json()  # no replica confirms the key it wrote
    assert client.get("/v1/keys", headers=AUTH).status_code == 200  # a read waits for nothing


def _info_calls(svc) -> int:
    return int(svc.redis.info("commandstats").get("cmdstat_info", {}).get("calls", 0))


def test_with_replicas_required_a_request_refused_before_its_view_asks_redis_nothing(make_services):
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    client = create_app(services=svc).test_client()
    assert client.post("/v1/keys", json={"name": "held"}, headers=AUTH).status_code == 503  # the primary known

    before = _info_calls(svc)
    refused = client.post("/v1/keys", json={"name": "stranger"})  # a stranger: no key

    assert refused.status_code == 401, refused.get_json()
    # The INFO of the count above is the only one: the refusal read no primary to check the answer against.
    assert _info_calls(svc) - before == 1
    # The other side: a marked view's answer still waits for the replicas.
    assert client.post("/v1/keys", json={"name": "held too"}, headers=AUTH).status_code == 503
