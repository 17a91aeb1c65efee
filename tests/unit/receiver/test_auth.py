"""A request for the API refused from its head alone, before its body is received, when it carries no token that could
be valid (receiver/auth.py, ``refused_before_body``; pure)."""

from __future__ import annotations

import pytest

from conftest import API_TOKEN
from helpers import SECOND_TOKEN

KEY_SHAPED = "fhk_0123456789abcdef_" + "A" * 43


@pytest.mark.parametrize("method, target, headers, refused", [
    pytest.param("POST", "/v1/jobs", {}, True, id="no-token"),
    pytest.param("POST", "/v1/jobs", {"Authorization": "Bearer nope"}, True, id="unknown-token"),
    pytest.param("POST", "/v1/jobs", {"Authorization": "Basic " + API_TOKEN}, True, id="not-bearer"),
    pytest.param("POST", "/v1/flux-2-pro", {"x-key": "", "Authorization": f"Bearer {API_TOKEN}"}, True,
                 id="empty-x-key-judged-first"),
    pytest.param("PATCH", "/v1/keys/key_0123456789abcdef", {"x-key": "fhk_short"}, True, id="malformed-key"),
    pytest.param("POST", "/v1/jobs", {"Authorization": f"Bearer {API_TOKEN}"}, False, id="admin-token"),
    pytest.param("POST", "/v1/flux-2-pro?x=1", {"x-key": API_TOKEN}, False, id="admin-x-key"),
    pytest.param("POST", "/v1/jobs", {"Authorization": f"bearer {KEY_SHAPED}"}, False, id="key-shaped"),
    pytest.param("GET", "/v1/jobs", {}, False, id="no-body-method"),
    pytest.param("POST", "/webhooks/bfl", {}, False, id="not-the-api"),
    pytest.param("POST", "/signin", {}, False, id="the-sign-in-form"),
    pytest.param("POST", "/v1%2Fjobs", {}, True, id="percent-encoded-as-the-app-decodes-it"),
])
def test_a_body_for_the_api_is_refused_from_the_head_alone_without_a_token_that_could_be_valid(
        method, target, headers, refused):
    from receiver.auth import refused_before_body

    lowered = {name.lower(): value for name, value in headers.items()}
    assert refused_before_body((API_TOKEN, SECOND_TOKEN), method, target, lambda name: lowered.get(name.lower())) is refused
