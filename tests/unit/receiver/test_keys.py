"""The end user admin routes match any name a job accepts, '/' and '//' included, as that name alone."""

from __future__ import annotations

import pytest
from flask import Flask

from receiver import keys

NAMES = ("a", "a/b", "/a", "a/", "a//b", "..", "../", "x/block", "x/unblock/block", "<script>")
ROUTES = (("GET", "", "keys.end_user_show"), ("PUT", "", "keys.end_user_set"),
          ("POST", "/block", "keys.end_user_block"), ("POST", "/unblock", "keys.end_user_unblock"))


@pytest.fixture(scope="module")
def urls():
    app = Flask(__name__)
    app.register_blueprint(keys.bp)
    return app.url_map.bind("fluxhook.test")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("method", "tail", "endpoint"), ROUTES)
def test_each_route_names_the_whole_end_user(urls, name, method, tail, endpoint):
    matched = urls.match(f"/v1/keys/key_1/end_users/{name}{tail}", method=method)
    assert matched == (endpoint, {"key_id": "key_1", "end_user": name})


def test_the_keys_own_routes_are_no_end_user(urls):
    assert urls.match("/v1/keys/key_1/end_users", method="GET") == ("keys.end_users_top", {"key_id": "key_1"})
    assert urls.match("/v1/keys/key_1", method="GET") == ("keys.show", {"key_id": "key_1"})
