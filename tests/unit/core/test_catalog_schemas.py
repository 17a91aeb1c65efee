"""The request schemas in the model catalog (fluxhook/core/catalog.py, catalog.toml): every model names one, an
operator's BFL_MODELS_FILE adds or replaces them, and a bad one stops the start with one line per problem; each rule
refuses what pydantic's lax mode would, in BFL's 422 words, and nothing else."""

from __future__ import annotations

import json

import pytest

from fluxhook.core import catalog
from fluxhook.core.catalog import SHIPPED_CATALOG, FieldRule, Schema, refusals
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


PRO = SHIPPED_CATALOG.get("flux-2-pro")
VIDEO = SHIPPED_CATALOG.get("flux-3-video")


def _one(schema: Schema, body: dict) -> dict:
    [error] = refusals(schema, body)
    return error


def _field(name: str, rule: FieldRule, **rest) -> Schema:
    return Schema(fields=((name, rule),), **rest)


def test_a_wrong_type_is_refused_with_pydantics_words():
    schema = _field("width", FieldRule(types=("integer",)))
    assert _one(schema, {"width": "big"}) == {
        "loc": ["body", "width"], "msg": "Input should be a valid integer, unable to parse string as an integer",
        "type": "int_parsing", "input": "big"}
    assert _one(schema, {"width": 10.5})["type"] == "int_from_float"
    assert _one(schema, {"width": [1]})["type"] == "int_type"
    assert "input" not in _one(schema, {"width": [1]})  # containers are not echoed


def test_lax_json_values_pass_as_pydantic_reads_them():
    schema = Schema(fields=(("width", FieldRule(types=("integer",))), ("raw", FieldRule(types=("boolean",))),
                            ("guidance", FieldRule(types=("number",)))))
    assert refusals(schema, {"width": "1024", "raw": "true", "guidance": "2.5"}) == []
    assert refusals(schema, {"width": 1024.0, "raw": 1, "guidance": 3}) == []
    assert [e["type"] for e in refusals(schema, {"raw": "maybe", "guidance": "lots"})] == [
        "bool_parsing", "float_parsing"]
    assert _one(schema, {"raw": [True]})["type"] == "bool_type"


def test_a_value_out_of_range_names_the_bound():
    schema = _field("safety_tolerance", FieldRule(types=("integer",), low=0, high=6))
    high = _one(schema, {"safety_tolerance": 7})
    assert (high["type"], high["msg"], high["ctx"]) == ("less_than_equal", "Input should be less than or equal to 6",
                                                        {"le": 6})
    assert _one(schema, {"safety_tolerance": "-1"})["type"] == "greater_than_equal"
    assert refusals(schema, {"safety_tolerance": 6}) == []


def test_a_value_not_allowed_lists_the_allowed_ones():
    schema = _field("output_format", FieldRule(types=("string",), choices=("jpeg", "png", "webp")))
    error = _one(schema, {"output_format": "gif"})
    assert (error["type"], error["msg"]) == ("enum", "Input should be 'jpeg', 'png' or 'webp'")
    assert refusals(schema, {"output_format": "png"}) == []


def test_a_literal_besides_the_type_is_taken_and_said_when_refused():
    schema = _field("duration", FieldRule(types=("integer",), low=5, high=20, also=("auto",)))
    assert refusals(schema, {"duration": "auto"}) == [] == refusals(schema, {"duration": 12})
    assert _one(schema, {"duration": "long"})["msg"] == "Input should be a valid integer or 'auto'"
    assert _one(schema, {"duration": 3})["type"] == "greater_than_equal"


def test_lengths_and_list_sizes():
    schema = Schema(fields=(("prompt", FieldRule(types=("string",), min_length=1)),
                            ("images", FieldRule(types=("array",), max_items=2))))
    assert _one(schema, {"prompt": ""})["type"] == "string_too_short"
    assert _one(schema, {"prompt": "p", "images": ["a", "b", "c"]})["type"] == "too_long"


def test_required_fields_always_and_when_another_field_asks():
    schema = Schema(fields=(("mode", FieldRule(types=("string",))), ("keyframes", FieldRule())),
                    required=("mode",), required_when=(("keyframes", "mode", ("i2v",)),))
    assert _one(schema, {}) == {"loc": ["body", "mode"], "msg": "Field required", "type": "missing"}
    assert _one(schema, {"mode": "i2v"})["loc"] == ["body", "keyframes"]
    assert refusals(schema, {"mode": "t2v"}) == []
    assert _one(schema, {"mode": None})["type"] == "string_type"  # null is no value for a required field


def test_null_passes_for_a_field_that_is_not_required():
    assert refusals(_field("seed", FieldRule(types=("integer",))), {"seed": None}) == []


def test_unknown_fields_pass_unless_strict_and_come_last():
    loose, strict = _field("prompt", FieldRule(types=("string",))), _field("prompt", FieldRule(), strict=True)
    assert refusals(loose, {"prompt": "p", "colour": "red"}) == []
    errors = refusals(strict, {"colour": "red", "prompt": 3})
    assert [e["loc"] for e in errors] == [["body", "colour"]]
    assert errors[0]["type"] == "extra_forbidden" and errors[0]["msg"] == "Extra inputs are not permitted"


def test_webhook_fields_are_refused_only_where_bfl_takes_none():
    strict = _field("prompt", FieldRule(), strict=True)
    assert refusals(strict, {"prompt": "p", "webhook_url": "https://a.example/h"}) == []
    refused = refusals(strict, {"prompt": "p", "webhook_url": "https://a.example/h"}, webhook=False)
    assert refused[0]["type"] == "extra_forbidden"
    assert refusals(None, {"webhook_secret": "s"}, webhook=False)[0]["loc"] == ["body", "webhook_secret"]


def test_a_body_that_is_no_object():
    assert refusals(None, ["prompt"]) == [{"loc": ["body"], "type": "model_attributes_type",
                                           "msg": "Input should be a valid dictionary or object to extract fields from"}]


def test_a_long_input_is_not_echoed():
    schema = _field("seed", FieldRule(types=("integer",)))
    assert "input" not in _one(schema, {"seed": "x" * (catalog.MAX_ECHO + 1)})


def test_the_shipped_schemas_refuse_what_bfl_refuses_and_take_the_rest():
    assert PRO.refusals({"prompt": "a fox", "width": 1024, "height": "768", "seed": 2**64 - 1, "colour": "red"}) == []
    assert [e["loc"][1] for e in PRO.refusals({"width": "big", "output_format": "gif"})] == [
        "prompt", "width", "output_format"]
    assert VIDEO.refusals({"mode": "t2v", "prompt": "p", "duration": 5}) == []
    assert VIDEO.refusals({"mode": "draft_enhance", "draft_cache": "ZHJhZnQ="}) == []
    assert [e["loc"][1] for e in VIDEO.refusals({"prompt": "p", "fps": 60})] == ["mode", "fps"]
    assert [e["loc"][1] for e in VIDEO.refusals({"mode": "v2v", "prompt": "p"})] == ["start_video"]
