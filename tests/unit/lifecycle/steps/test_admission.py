"""What a new job passes before anything exists (fluxhook/lifecycle/steps/admission.py): a model the catalog knows and
the caller may use, an input BFL's schema takes; each refusal says what to do. Over HTTP: tests/e2e/api/ and
tests/e2e/batches/."""

from __future__ import annotations

import pytest

from fluxhook.core.errors import InputRefused, ModelNotAllowed, UnknownModel
from fluxhook.lifecycle.steps.admission import check_input, unknown_model_message, usable_model
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.store.app_keys import AppKey


@pytest.fixture()
def svc(make_services):
    return make_services(15)


def test_a_known_model_the_caller_may_use_is_the_catalogs(svc):
    assert usable_model(svc, ADMIN, "flux-2-pro").name == "flux-2-pro"


def test_an_unknown_model_names_the_nearest_and_a_forbidden_one_is_refused(svc):
    with pytest.raises(UnknownModel) as unknown:
        usable_model(svc, ADMIN, "flux-2-porr")
    assert "flux-2-pro" in unknown.value.message and "GET /v1/models" in unknown.value.message
    assert unknown_model_message(svc.config.catalog, "flux-2-porr") == unknown.value.message
    limited = Caller(AppKey(id="key_a", name="a", prefix="fhk_a", secret_sha256="0" * 64, models=["flux-dev"]))
    with pytest.raises(ModelNotAllowed):
        usable_model(svc, limited, "flux-2-pro")


def test_an_input_bfls_schema_refuses_carries_bfls_own_422(svc):
    model = usable_model(svc, ADMIN, "flux-2-pro")
    check_input(model, {"prompt": "fine"})
    with pytest.raises(InputRefused) as refused:
        check_input(model, {"prompt": "x", "width": "wide"})
    assert "width" in refused.value.message and refused.value.detail
