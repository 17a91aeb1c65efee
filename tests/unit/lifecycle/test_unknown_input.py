"""A field of a job's ``input`` that the catalog's schema for its model does not know (a misspelt ``"colour"``) is
never passed on unmentioned: named in the answer's warnings (a batch's: per item, by index), refused 400 where the
request (``Prefer: handling=strict``) or its key (``strict_input``) asks for strict input; BFL's own routes answer as
BFL does. A batch item's ``model`` is told that a batch has one model, with the catalog's names nearest a misspelt
one. In-process on a real Redis and the simulator; over HTTP: tests/e2e/api/test_strict_input.py."""

from __future__ import annotations

import pytest

from fluxhook.core.catalog import SHIPPED_CATALOG, Schema, parse_schema, unknown_fields
from fluxhook.core.errors import InvalidItems, UnknownField
from fluxhook.lifecycle.batching import BatchRequest, create_batch, items
from fluxhook.lifecycle.creating import JobRequest, create_job
from fluxhook.lifecycle.steps.admission import item_model_message, strict_input, unknown_input_warnings
from fluxhook.lifecycle.steps.callers import ADMIN
from fluxhook.store.keys import KEYS
from receiver.batches import item_problems
from unit.lifecycle.batch_helpers import PRO, app_caller, spooled

DB = 15


@pytest.fixture()
def svc(make_services, sim):
    return make_services(DB)


def _schema(**entry) -> Schema:
    problems: list[str] = []
    schema = parse_schema({"fields": {"prompt": {"type": "string"}, "seed": {"type": "integer"}}, **entry}, "test", problems)
    assert schema is not None and problems == []
    return schema


def test_the_fields_a_schema_does_not_know_are_those_it_neither_names_nor_refuses():
    body = {"prompt": "a fox", "colour": "natural", "webhook_url": "https://x", "sed": 1}
    assert unknown_fields(_schema(), body) == ["colour", "sed"]  # the webhook fields are fluxhook's own
    assert unknown_fields(_schema(strict=True), body) == []  # a strict schema refuses them: BFL's 422, not a warning
    assert unknown_fields(Schema(), body) == [] and unknown_fields(None, body) == []  # a schema naming none knows none
    assert unknown_fields(_schema(required=["mode"]), {"prompt": "x", "mode": "t2v"}) == []


def test_an_unknown_field_is_a_warning_naming_the_nearest_known_one_or_under_strict_input_a_400():
    model = SHIPPED_CATALOG.get(PRO)
    assert unknown_input_warnings(model, {"prompt": "a fox", "seed": 1}, strict=False) == []
    colour, sed = unknown_input_warnings(model, {"prompt": "a fox", "colour": "natural", "sed": 1}, strict=False)
    assert colour.startswith("input.colour: flux-2-pro's request, as fluxhook's catalog knows it, has no field "
                             "'colour': BFL may ignore it; it was sent as given") and "Prefer: handling=strict" in colour
    assert sed.startswith("input.sed: ") and "(did you mean 'seed'?)" in sed
    with pytest.raises(UnknownField) as refused:
        unknown_input_warnings(model, {"prompt": "a fox", "colour": "natural"}, strict=True)
    assert refused.value.field == "input.colour" and refused.value.status == 400
    assert "nothing was created" in refused.value.message
    # A strict schema's unknown field is BFL's 422 (check_input), never a warning here.
    assert unknown_input_warnings(SHIPPED_CATALOG.get("flux-3-image"), {"prompt": "x", "colour": 1}, strict=True) == []


def test_strict_input_is_the_requests_ask_or_the_keys_setting(svc):
    strict, lenient = app_caller(svc, strict_input=True), app_caller(svc)
    assert strict.key.strict_input and not lenient.key.strict_input
    assert strict_input(strict, False) and strict_input(lenient, True) and strict_input(ADMIN, True)
    assert not strict_input(lenient, False) and not strict_input(ADMIN, False)


def test_a_job_with_an_unknown_field_is_made_as_given_and_its_answer_names_it(svc, sim):
    created = create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] fox", "colour": "natural"}),
                         submit_here=False)
    assert [w.split(":")[0] for w in created.warnings] == ["input.colour"]
    assert svc.jobs.get(created.job.id).input == {"prompt": "[pending] fox", "colour": "natural"}
    assert create_job(svc, ADMIN, JobRequest(PRO, {"prompt": "[pending] fox"}), submit_here=False).warnings == ()


def test_strict_input_asked_or_the_keys_refuses_it_and_nothing_is_made_but_bfls_route_answers_as_bfl(svc, sim):
    strict = app_caller(svc, strict_input=True)
    asked = JobRequest(PRO, {"prompt": "[pending] fox", "colour": "natural"}, strict_input=True)
    for caller, request in ((ADMIN, asked), (strict, JobRequest(PRO, asked.input))):
        with pytest.raises(UnknownField) as refused:
            create_job(svc, caller, request, submit_here=False)
        assert refused.value.field == "input.colour"
    assert svc.jobs.list(limit=5)[0] == []
    # BFL's drop-in route: the key's strict input is not BFL's, and BFL's answer carries no warnings.
    made = create_job(svc, strict, JobRequest(PRO, asked.input, as_bfl=True), submit_here=False)
    assert made.warnings == () and svc.jobs.get(made.job.id).input == asked.input


def test_a_batchs_answer_names_each_items_unknown_fields_by_index_and_strict_input_refuses_those_items(svc, sim):
    inputs = [{"prompt": "[pending] 0"}, {"prompt": "[pending] 1", "colour": "natural"}, {"prompt": "[pending] 2"},
              {"prompt": "[pending] 3", "sed": 4, "colour": "warm"}]
    batch = create_batch(svc, ADMIN, BatchRequest(PRO, spooled(*inputs)))

    assert [(w["index"], w["field"]) for w in batch.warnings] == [(1, "input.colour"), (3, "input.sed"),
                                                                (3, "input.colour")]
    assert "did you mean 'seed'?" in batch.warnings[1]["message"]
    assert batch.to_api()["warnings"] == batch.warnings and "warnings" not in svc.store.batches.get(batch.id).to_api()
    assert [job.input for job in items(svc, batch)] == inputs  # made as given

    with pytest.raises(InvalidItems) as refused:
        create_batch(svc, app_caller(svc, strict_input=True),
                     BatchRequest(PRO, spooled(*inputs[:2], {"prompt": "x", "width": "wide"})))
    assert [(p["index"], p["field"]) for p in refused.value.items] == [(1, "input.colour"), (2, "input.width")]
    assert "strict input" in refused.value.items[0]["message"]
    with pytest.raises(InvalidItems):
        create_batch(svc, ADMIN, BatchRequest(PRO, spooled(*inputs), strict_input=True))
    assert svc.redis.zcard(KEYS.all_batches) == 1  # only the first


def test_a_batchs_warnings_are_bounded_as_its_refusals_are(svc, sim):
    batch = create_batch(svc, ADMIN, BatchRequest(PRO, spooled(
        *({"prompt": f"[pending] {i}", "colour": i} for i in range(130)))))
    assert len(batch.warnings) == 100 and batch.warnings[-1]["index"] == 99


@pytest.mark.parametrize(("value", "near"), [("flux-2-prp", "did you mean flux-2-pro"), (PRO, None), (7, None)])
def test_an_items_model_is_told_a_batch_has_one_and_a_misspelt_one_the_nearest_names(value, near):
    (field, said), = item_problems({"input": {"prompt": "a fox"}, "model": value}, catalog=SHIPPED_CATALOG)
    assert field == "model" and said == item_model_message(SHIPPED_CATALOG, value)
    assert said.startswith("a batch has one model, given once: the body's top-level 'model' (with NDJSON, the "
                           "query's ?model=; `fluxhook batch submit` takes --model)")
    assert (near in said) if near else "did you mean" not in said
    # Beside the shorthand's fields (no 'input'): the model is still the batch's, the prompt goes under input.
    assert [f for f, _ in item_problems({"model": value, "prompt": "x"}, catalog=SHIPPED_CATALOG)] == ["model",
                                                                                                       "prompt"]
