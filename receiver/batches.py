"""The ``/v1/batches`` API: create, read, list, results (JSON lines or a ZIP), cancel. Its event stream is
in ``events.py`` with the other streams."""

from __future__ import annotations

import json
from functools import partial, wraps

from flask import Blueprint, Response, g, request, stream_with_context

from fluxhook.core.batch import is_batch_id
from fluxhook.core.catalog import Catalog
from fluxhook.core.end_users import parse_end_user
from fluxhook.core.errors import BatchNotFound, InvalidRequest
from fluxhook.core.job_filters import parse_limit
from fluxhook.core.json_body import refuse_unknown
from fluxhook.core.notify_rules import parse_batch_events
from fluxhook.lifecycle import batching
from fluxhook.lifecycle.batching import BatchRequest
from fluxhook.lifecycle.notifications import requested_url
from fluxhook.lifecycle.steps.admission import item_model_message

from . import answers, batch_body
from .auth import require_bearer
from .batch_room import batch_room, key_busy
from .bulkheads import bfl_calls
from .context import services
from .idempotency import idempotent_on
from .jobs import metadata_of
from .replicated import replicated
from .request_input import requested_cancel_after, requested_end_user, requested_strict

bp = Blueprint("batches", __name__, url_prefix="/v1")

# The longest metadata field a results archive's files are named from.
MAX_NAME_FROM = 100
_ITEM_FIELDS = ("input", "metadata", "end_user")
_EXAMPLE = '{"model": "flux-2-pro", "items": [{"input": {"prompt": "a red fox in snow"}}]}'


@bp.before_request
def authenticate():
    require_bearer()


def _read_body(view):
    """Read the body (JSON, or NDJSON with the rest as query parameters: ``batch_body``) before anything else reads it,
    so an ``Idempotency-Key`` is checked against the batch as a whole; a key whose batches fill its places in this
    process's room is answered 503 first, its body unparsed (a flood's batch that would be refused costs no parse)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not batch_room().has_place(require_bearer().key_id or ""):
            batch_body.discard()  # read, not parsed: the connection stays usable
            raise key_busy()
        config = services().config
        batch_body.read(config.max_batch_bytes, partial(item_problems, catalog=config.catalog))
        return view(*args, **kwargs)

    return wrapper


@bp.teardown_request
def _give_back_memory(_error) -> None:
    """A batch's spooled items are deleted with its request, and a large one's memory given back."""
    batch_body.give_back_memory()


@bp.post("/batches")
@replicated
@_read_body
@idempotent_on(batch_body.fingerprinted)
def create():
    """Check every item, then record the batch and its items; answers the batch (202)."""
    body = batch_body.current()
    data = body.fields
    refuse_unknown(data, batch_body.BATCH_FIELDS, where="POST /v1/batches")
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(f"'model' must be a BFL model name such as 'flux-2-pro', as in {_EXAMPLE}")
    if not body.listed:
        raise InvalidRequest(f"'items' must be a list of items, each {{\"input\": {{...}}}}, as in {_EXAMPLE}")
    svc = services()
    caller = require_bearer()
    notify_url = requested_url(data.get("notify_url"), svc.config, caller.key)
    batch = batching.create_batch(svc, caller, BatchRequest(
        model, body.items, metadata=metadata_of(data), notify_url=notify_url,
        job_events=parse_batch_events(data.get("notify_events")), cancel_after=requested_cancel_after(),
        strict_input=requested_strict(request.headers.get("Prefer")),
        end_user=requested_end_user(data.get("end_user"))),
        waiting_room=partial(batch_room().enter, caller.key_id or ""))
    g.batch_id = batch.id
    return batch.to_api(), 202


def item_problems(item: object, catalog: Catalog | None = None) -> list[tuple[str, str]]:
    """What is wrong with the shape of one item, each as (its field, what to do); empty for a good one (its
    ``end_user``, if it names one, its own in place of the batch's). A field of
    BFL's request where ``input`` belongs (``{"prompt": ...}``, a line of the shorthand) is told to go under it; a
    ``model`` that a batch has once, beside its items (with the catalog's closest names to a misspelt one)."""
    if not isinstance(item, dict):
        return [("item", 'an item is a JSON object such as {"input": {"prompt": "..."}, "metadata": {"sku": "..."}}')]
    problems = []
    for name in item:
        if name in _ITEM_FIELDS:
            continue
        if name == "model":
            problems.append(("model", item_model_message(catalog or Catalog({}), item[name])))
            continue
        shown = str(name)[:40]
        if "input" in item:
            problems.append((shown, f"an item holds 'input', 'metadata' and 'end_user' only, not {shown!r}: put {shown!r} under "
                                    "'input' if it is one of BFL's request fields, or in 'metadata' if it is yours"))
        else:
            problems.append((shown, f"put {shown!r} under 'input': an item is {{\"input\": {{BFL's request fields}}, "
                                    f"\"metadata\"?: {{...}}}}, as in {{\"input\": {{{json.dumps(shown)}: ...}}}}"))
    task_input = item.get("input")
    if "input" not in item:
        if not problems:
            problems.append(("input", "give 'input', a non-empty JSON object of BFL's request fields, as in "
                                      '{"input": {"prompt": "..."}}'))
    elif not isinstance(task_input, dict) or not task_input:
        problems.append(("input", "'input' must be a non-empty JSON object of BFL's request fields, as in "
                                  '{"input": {"prompt": "..."}}'))
    else:
        problems += [(f"input.{name}", f"remove 'input.{name}': fluxhook sets its own")
                     for name in ("webhook_url", "webhook_secret") if name in task_input]
    try:
        metadata_of(item)
    except InvalidRequest as exc:
        problems.append(("metadata", exc.message))
    try:
        parse_end_user(item.get("end_user"))
    except InvalidRequest as exc:
        problems.append(("end_user", exc.message))
    return problems


@bp.get("/batches")
def index():
    """The caller's batches newest first, ``limit`` at a time, continued with ``cursor``."""
    refuse_unknown(list(request.args), ("limit", "cursor"), where="GET /v1/batches", kind="query parameter")
    cursor = request.args.get("cursor") or None
    if cursor is not None and not is_batch_id(cursor):
        raise InvalidRequest("cursor is not one this service issued")
    svc, caller, limit = services(), require_bearer(), parse_limit(request.args.get("limit"))
    batches, next_cursor = batching.list_batches(svc, caller, limit=limit, cursor=cursor)
    return {"batches": [batch.to_api() for batch in batches], "next_cursor": next_cursor}


@bp.get("/batches/<batch_id>")
def show(batch_id: str):
    return batching.get_batch(services(), require_bearer(), batch_id).to_api()


@bp.get("/batches/<batch_id>/results")
def results(batch_id: str):
    """One JSON line per item in the items' order, or with ``format=zip`` every stored file and those lines in a ZIP,
    streamed as they are read; with ``name_from``, the ZIP's files named from that field of their items' metadata."""
    refuse_unknown(list(request.args), ("format", "name_from"), where=f"GET /v1/batches/{batch_id[:40]}/results",
                   kind="query parameter")
    form = request.args.get("format", "jsonl")
    if form not in ("jsonl", "zip"):
        raise InvalidRequest("'format' must be jsonl (the default) or zip")
    name_from = request.args.get("name_from")
    if name_from is not None and (form != "zip" or not name_from.strip() or len(name_from) > MAX_NAME_FROM):
        raise InvalidRequest("'name_from' names the ZIP's files from a field of each item's metadata, as in "
                             f"?format=zip&name_from=sku: give it with format=zip, a field name of 1 to {MAX_NAME_FROM} "
                             "characters")
    svc, caller = services(), require_bearer()
    # Counted as the largest page of a job list, whatever the batch's size (``bulkheads.read_cost``).
    batch = batching.get_batch(svc, caller, batch_id)
    if form == "zip":
        response = Response(stream_with_context(batching.archive(svc, batch, name_from=name_from)),
                            mimetype="application/zip")
        response.headers["Content-Disposition"] = f'attachment; filename="{batch.id}.zip"'
        return answers.paced(response, answers.scope_of(batch.key_id))
    return answers.paced(Response(stream_with_context(batching.results(svc, batch)), mimetype="application/jsonl"),
                         answers.scope_of(batch.key_id))


@bp.post("/batches/<batch_id>/cancel")
@replicated
def cancel(batch_id: str):
    """Cancel the batch; answers it as it is then. Sends under way are waited for in the room of requests waiting on
    BFL (a hanging BFL holds back no read): with the room full, they are not."""
    if not is_batch_id(batch_id):
        raise BatchNotFound(f"no batch {batch_id[:40]!r}")
    with bfl_calls().enter() as room:
        batch = batching.cancel_batch(services(), require_bearer(), batch_id,
                                      send_wait=batching.CANCEL_SEND_WAIT if room else 0)
    return batch.to_api()
