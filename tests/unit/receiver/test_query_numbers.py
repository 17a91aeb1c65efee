"""Every whole number a query carries is read one way (fluxhook/core/json_body.py), on an in-process app over a Redis
database of its own: ``limit`` on GET /v1/jobs, /v1/batches and /v1/deliveries answers 400 naming the value for
any other spelling (a sign, a space, an underscore, another script's digits) and for more digits than int() reads,
never a 500 and never a number read from a spelling the docs do not give. Variants' ``w`` and ``q``:
test_variant_answers.py."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from conftest import API_TOKEN
from receiver import create_app

DB = 6  # the unit tests' in-process apps' database (flushed before and after each test)
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture()
def client(make_services):
    return create_app(services=make_services(DB)).test_client()


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches", "/v1/deliveries"])
@pytest.mark.parametrize("value", ["+5", " 5", "05", "1_0", "²", "٥", "9" * 5000])
def test_a_limit_in_any_other_spelling_is_refused_naming_it(client, path, value):
    answer = client.get(f"{path}?limit={quote(value)}", headers=ADMIN)

    assert answer.status_code == 400, answer.text
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_request" and "'limit'" in error["message"]
    assert repr(value[:40]) in error["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches", "/v1/deliveries"])
def test_a_plain_limit_is_read(client, path):
    assert client.get(f"{path}?limit=5", headers=ADMIN).status_code == 200
