"""The simulator's models (simulator/models.py; pure): it knows BFL's models and refuses what their schemas refuse."""

from __future__ import annotations

from simulator import models


def test_the_simulator_knows_bfls_models_and_refuses_what_their_schemas_refuse():
    assert models.known("flux-2-pro") and models.known("flux-3-video") and models.known("flux-pro-1.1")
    assert not models.known("flux-2-pr0")
    assert models.field_errors("flux-2-pro", {"prompt": "p", "width": 1024, "seed": "7"}) == []
    [error] = models.field_errors("flux-2-pro", {"prompt": "p", "width": "big"})
    assert (error["loc"], error["type"]) == (["body", "width"], "int_parsing")
    assert models.field_errors("flux-2-pro", {"prompt": "p", "colour": "red"}) == []  # not strict
    [extra] = models.field_errors("flux-3-video", {"mode": "t2v", "prompt": "p", "colour": "red"})
    assert (extra["loc"], extra["type"], extra["msg"]) == (["body", "colour"], "extra_forbidden",
                                                           "Extra inputs are not permitted")
    [enum] = models.field_errors("flux-3-video", {"mode": "t2v", "prompt": "p", "resolution": "4k"})
    assert enum["type"] == "enum"
    # BFL's reference: every FLUX 3 video request names its mode.
    assert models.field_errors("flux-3-video", {"prompt": "p"}) == [
        {"loc": ["body", "mode"], "msg": "Field required", "type": "missing"}]
    # A model outside the catalog (the any_model setting) needs only an object.
    assert models.field_errors("flux-9-new", {"anything": 1}) == []
    assert models.field_errors("flux-9-new", ["x"])[0]["type"] == "model_attributes_type"
