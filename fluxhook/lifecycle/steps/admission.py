"""What a new job passes before anything exists (``creating``, ``batching``): its model is one the catalog knows and
the caller may use, and its input is one BFL's schema takes."""

from __future__ import annotations

from fluxhook.bfl.words import words
from fluxhook.core.catalog import Catalog, Model
from fluxhook.core.errors import InputRefused, UnknownModel
from fluxhook.lifecycle.steps import callers
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.services import Services


def check_input(model: Model, task_input: dict) -> None:
    """Refuse, before anything is created or counted, an input BFL's schema for ``model`` refuses (SPEC §9): BFL's
    own 422 ``detail`` goes with it, for the BFL-compatible route to answer as BFL would."""
    refused = model.refusals(task_input)
    if refused:
        raise InputRefused(f"BFL's schema for {model.name} refuses the input (422): {words(refused)}: fix these "
                           "fields of 'input' (nothing was created or sent)", detail=refused)


def usable_model(svc: Services, caller: Caller, name: str) -> Model:
    """The catalog's model ``name`` if the caller may use it; ``UnknownModel`` for a name the catalog does not know,
    ``ModelNotAllowed`` for one the caller's key may not use. First of a submission's checks: what else is wrong
    with a request for no model at all does not matter."""
    model = svc.config.catalog.get(name)
    if model is None:
        raise UnknownModel(unknown_model_message(svc.config.catalog, name), model=name)
    callers.check_model(caller, model.name)
    return model


def unknown_model_message(catalog: Catalog, name: str) -> str:
    """What to do about a model the catalog does not know: the closest names, and where the list is."""
    near = catalog.closest(name)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return (f"{name[:64]!r} is not a model fluxhook knows: {hint}GET /v1/models lists the models you may use "
            "(an operator adds one with BFL_MODELS_FILE)")
