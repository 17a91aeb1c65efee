"""The request schemas in the model catalog (fluxhook/core/catalog.py, catalog.toml): every model names one, an
operator's BFL_MODELS_FILE adds or replaces them, and a bad one stops the start with one line per problem."""

from __future__ import annotations

import json

import pytest

from fluxhook.core.catalog import SHIPPED_CATALOG
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError

ENV = {"REDIS_URL": "redis://localhost/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-0123456789"}


def _config(tmp_path, text: str, name: str = "models.toml") -> Config:
    path = tmp_path / name
    path.write_text(text)
    return Config.from_env({**ENV, "BFL_MODELS_FILE": str(path)})


def test_every_shipped_model_has_bfls_schema():
    assert all(m.schema is not None for m in SHIPPED_CATALOG.models.values())
    assert SHIPPED_CATALOG.get("flux-3-video").schema.strict
    assert not SHIPPED_CATALOG.get("flux-2-pro").schema.strict  # unknown fields pass through to BFL


def test_an_operators_file_replaces_a_schema_by_name_for_every_model_naming_it(tmp_path):
    config = _config(tmp_path, '[schemas."flux-2"]\nrequired = ["prompt"]\n'
                               '[schemas."flux-2".fields]\nprompt = { type = "string" }\n'
                               'width = { type = "integer", max = 1024 }\n')
    for name in ("flux-2-pro", "flux-2-max"):
        [error] = config.catalog.get(name).refusals({"prompt": "p", "width": 2048})
        assert error["type"] == "less_than_equal"
    assert config.catalog.get("flux-kontext-pro").schema == SHIPPED_CATALOG.get("flux-kontext-pro").schema


def test_a_model_of_the_file_names_a_schema_or_holds_its_own(tmp_path):
    config = _config(tmp_path, json.dumps({"models": {
        "flux-new": {"kind": "image", "schema": "flux-2"},
        "flux-own": {"kind": "image", "schema": {"strict": True, "fields": {"prompt": {"type": "string"}}}},
        "flux-free": {"kind": "image"}}}), "models.json")
    assert config.catalog.get("flux-new").schema == SHIPPED_CATALOG.get("flux-2-pro").schema
    assert config.catalog.get("flux-own").refusals({"prompt": "p", "seed": 1})[0]["type"] == "extra_forbidden"
    assert config.catalog.get("flux-free").refusals({"anything": ["at", "all"]}) == []  # no schema: nothing checked


@pytest.mark.parametrize("text, problem", [
    ('[models."flux-x"]\nkind = "image"\nschema = "nowhere"\n', "'schema' names no schema ('nowhere')"),
    ('[models."flux-x"]\nkind = "image"\nschema = 3\n', "'schema' must name one of the catalog's [schemas]"),
    ('[schemas.s]\nfields = { w = { type = "int" } }\n', "'type' must be one of string, integer"),
    ('[schemas.s]\nfields = { w = { type = "integer", min = "low" } }\n', "'min' must be a number"),
    ('[schemas.s]\nfields = { w = { choices = "jpeg" } }\n', "'choices' must be a list of values"),
    ('[schemas.s]\nfields = { w = { colour = 1 } }\n', "unknown rule(s) colour"),
    ('[schemas.s]\nrequired = "prompt"\n', "'required' must be a list of field names"),
    ('[schemas.s]\nstrict = true\nrequired = ["prompt"]\n', "required field 'prompt' is not among its 'fields'"),
    ('[schemas.s]\nrequired_when = { prompt = "t2v" }\n', "'required_when' of 'prompt' must name one other field"),
    ('[schemas.s]\nfields = 3\n', "'fields' must be a table of request fields"),
    ('schemas = 3\n', "'schemas' must be a table of request schemas"),
])
def test_a_bad_schema_stops_the_start_with_one_line_per_problem(tmp_path, text, problem):
    with pytest.raises(ConfigError) as stopped:
        _config(tmp_path, text)
    [line] = stopped.value.problems
    assert line.startswith("BFL_MODELS_FILE") and problem in line, line
