"""The OpenAPI document kept in the repo (receiver/openapi.json) is a valid OpenAPI document; the running API is fuzzed
against it in tests/e2e/api/test_openapi.py."""

from __future__ import annotations

import json

from devtools.processes import ROOT

DOCUMENT = ROOT / "receiver" / "openapi.json"


def test_document_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(json.loads(DOCUMENT.read_text()))
