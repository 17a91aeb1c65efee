"""What a new job passes before anything exists (``creating``, ``batching``): its model is one the catalog knows and
the caller may use, and its input is one BFL's schema takes."""

from __future__ import annotations

import difflib

from fluxhook.bfl.reports import words
from fluxhook.core.catalog import Catalog, Model, known_fields
from fluxhook.core.errors import InputRefused, ModelNotAllowed, UnknownField, UnknownModel
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.services import Services


def check_input(model: Model, task_input: dict) -> None:
    """Refuse, before anything is created or counted, an input BFL's schema for ``model`` refuses: BFL's
    own 422 ``detail`` goes with it, for the BFL-compatible route to answer as BFL would."""
    refused = model.refusals(task_input)
    if refused:
        raise InputRefused(f"BFL's schema for {model.name} refuses the input (422): {words(refused)}: fix these "
                           "fields of 'input' (nothing was created or sent)", detail=refused)


# How a request asks for strict input: RFC 7240's preference for strict handling of what it sends.
STRICT_PREFERENCE = "handling=strict"
_STRICT_WAYS = f"the request's 'Prefer: {STRICT_PREFERENCE}', or the app key's strict_input"


def strict_input(caller: Caller, asked: bool) -> bool:
    """Whether a field of ``input`` the model's schema does not know is refused rather than warned of: the request
    asked (``asked``: ``Prefer: handling=strict``), or the caller's key always does (``strict_input``)."""
    return asked or bool(caller.key is not None and caller.key.strict_input)


def unknown_input(model: Model, task_input: dict) -> list[tuple[str, str]]:
    """Each field of ``task_input`` that the catalog's schema for ``model`` does not know (and does not refuse: a
    strict schema's are BFL's 422), as (the field under ``input``, what to know of it), the nearest field the schema
    knows named when there is one: a misspelt ``colour`` would be sent to BFL, which may ignore it, unseen."""
    known = known_fields(model.schema)
    found = []
    for name in model.unknown_fields(task_input):
        shown = str(name)[:60]
        near = difflib.get_close_matches(shown, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        found.append((f"input.{shown}", f"{model.name}'s request, as fluxhook's catalog knows it, has no field "
                                        f"{shown!r}{hint}: BFL may ignore it"))
    return found


def unknown_input_warnings(model: Model, task_input: dict, *, strict: bool) -> list[str]:
    """What a job's answer says of the fields of its input the model's schema does not know (each sent as given);
    with ``strict``, ``UnknownField`` (400) naming the first instead, before anything is created or counted."""
    found = unknown_input(model, task_input)
    if found and strict:
        where, said = found[0]
        others = f" ({len(found) - 1} more such field{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        raise UnknownField(f"{where}: {said}{others}; strict input ({_STRICT_WAYS}) refuses such a field: remove or "
                           "correct it (nothing was created or sent)", field=where)
    return [f"{where}: {said}; it was sent as given (with {_STRICT_WAYS} it is refused)" for where, said in found]


def strict_refusal(said: str) -> str:
    """An item's unknown field as strict input refuses it."""
    return f"{said}; strict input ({_STRICT_WAYS}) refuses such a field: remove or correct it"


def usable_model(svc: Services, caller: Caller, name: str) -> Model:
    """The catalog's model ``name`` if the caller may use it; ``UnknownModel`` for a name the catalog does not know,
    ``ModelNotAllowed`` for one the caller's key may not use. First of a submission's checks: what else is wrong
    with a request for no model at all does not matter."""
    model = svc.config.catalog.get(name)
    if model is None:
        raise UnknownModel(unknown_model_message(svc.config.catalog, name), model=name)
    if not caller.may_use(model.name):
        assert caller.key is not None and caller.key.models is not None  # may_use holds for an admin and any model
        raise ModelNotAllowed(f"this app key may use only {', '.join(caller.key.models)}; ask an admin to add {model.name!r}")
    return model


def unknown_model_message(catalog: Catalog, name: str) -> str:
    """What to do about a model the catalog does not know: the closest names, and where the list is."""
    near = catalog.closest(name)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return (f"{name[:64]!r} is not a model fluxhook knows: {hint}GET /v1/models lists the models you may use "
            "(an operator adds one with BFL_MODELS_FILE)")


def item_model_message(catalog: Catalog, given: object) -> str:
    """What to do about a ``model`` in one item of a batch: a batch has one model, given once beside its items, never
    in an item (the item is refused, not made of another model); when the name is not the catalog's, the closest
    names too, since a misspelt name in an item is most often what its author meant as the batch's."""
    said = ("a batch has one model, given once: the body's top-level 'model' (with NDJSON, the query's ?model=; "
            "`fluxhook batch submit` takes --model); remove 'model' from the item")
    if not isinstance(given, str) or not given.strip() or given in catalog:
        return said
    near = catalog.closest(given)
    known = f"did you mean {' or '.join(near)}?" if near else "GET /v1/models lists the models you may use"
    return f"{said} ({given[:64]!r} is not a model fluxhook knows: {known})"
