"""The dashboard's batches: the Batches page (``/batches``: every batch, newest first, ``PAGE_SIZE`` a page;
``?key_id=`` one app key's), and a batch's page (``/batches/{id}``: its counts, progress, cost, times and metadata; a
contact sheet of its items' thumbnails in index order, ``SHEET_SIZE`` a page; and **Cancel batch**, a CSRF-protected
form like a job's Cancel, whose outcome the page then says).

Both follow their batches live, as the job pages do (``static/dashboard.js``): the batch's page holds its batch's
stream (``/live/batches/{id}/events``, one event a second at most while its counts change) and reads its JSON at each
event; the list follows every job's events as the job list does. The dashboard is an admin's: it sees every key's
batches, each shown with the key that made it.

Its routes belong to the dashboard's blueprint, so its session check and headers apply to them."""

from __future__ import annotations

import json
import logging
import math

from flask import Response, redirect, render_template, request, stream_with_context, url_for

from fluxhook.core import job as st
from fluxhook.core.batch import Batch, BatchStatus, is_batch_id
from fluxhook.core.config import Config
from fluxhook.core.errors import AlreadyEnded, BatchNotFound, InvalidRequest
from fluxhook.core.job import Job
from fluxhook.core.json_body import decimal
from fluxhook.core.wait_reasons import describe
from fluxhook.lifecycle import batching
from fluxhook.lifecycle.steps.callers import ADMIN, Caller, is_key_id

from . import answers, scopes
from . import dashboard_session as auth
from .bulkheads import bfl_calls
from .context import services
from .dashboard import bp
from .dashboard_view import SHEET, batch_done, clock, credits, excerpt, picture
from .errors import error_response
from .replicated import replicated

log = logging.getLogger("fluxhook.dashboard")

# Batches a page of the list shows; items a page of a batch's contact sheet shows.
PAGE_SIZE = 25
SHEET_SIZE = 200
# The highest ``?page=`` read as asked (one past the last page shows the last): more than a batch's items ever fill.
MAX_PAGE = 1_000_000
# Characters of an item's prompt its tile's tooltip shows.
PROMPT_IN_TILE = 120
# Characters of an item's metadata value its tile shows (its tooltip and its job's page show it whole).
FIELD_IN_TILE = 40
_ADMIN_WORDS = "an admin token"


# --- how a batch reads ------------------------------------------------------------------------------------------

def batch_row(batch: Batch, key_name: str | None) -> dict:
    """One batch as a line of the list (and the head of its page): display strings, the same in the page and its JSON.
    ``key_name``: the name of the key that made it (None: an admin token's)."""
    # Down, so a running batch never reads 100 %. A canceled one's bar is what it stored, not its ended items (every
    # one of which ended, most of them aborted): a full bar would read as a batch that made everything.
    if batch.status == BatchStatus.CANCELED:
        percent = math.floor(batch.counts.get(st.STORED, 0) * 100 / batch.total) if batch.total else 0
        progress = f"canceled · {percent} % stored"
    else:
        percent = math.floor(batch.progress * 100)
        progress = f"{percent} %"
    return {
        "id": batch.id,
        "href": f"/batches/{batch.id}",
        "status": str(batch.status),
        "running": batch.status == BatchStatus.RUNNING,
        "model": batch.model,
        "key": key_name or batch.key_id or _ADMIN_WORDS,
        "key_href": f"/batches?key_id={batch.key_id}" if batch.key_id else "",
        "percent": percent,
        "progress": progress,
        "done": batch_done(batch),
        "counts": " · ".join(f"{n:,} {name}" for name in st.STATUSES if (n := batch.counts.get(name, 0))),
        "cost": credits(round(batch.cost_credits, 4)),
        "created": clock(batch.created_at),
    }


def batch_detail(batch: Batch, key_name: str | None) -> dict:
    """Everything a batch's page shows of the batch (its items' tiles aside)."""
    return {
        **batch_row(batch, key_name),
        "key_id": batch.key_id or "",
        "by_status": {name: batch.counts.get(name, 0) for name in st.STATUSES},
        "total": f"{batch.total:,}",
        "ended": clock(batch.ended_at),
        "canceled": clock(batch.canceled_at),
        "ended_flag": batch.ended_at is not None,
        "error": (batch.error or {}).get("message", ""),
        "metadata": json.dumps(batch.metadata, indent=2, ensure_ascii=False) if batch.metadata else "",
        "waiting": f"its queued items wait: {describe(batch.waiting.reason)}" if batch.waiting else "",
    }


def _plain(value) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) != ""


def sheet_field(metadata: list[dict]) -> str | None:
    """The one field of the items' metadata (each item's, in the sheet's order) their tiles show under their index: a
    catalog's pictures look alike, and on a phone a tile has room for its index and one short value (a sku) only.
    The first field, in the order the items give them, whose values are plain (text or a number) and tell apart the
    items that have one; else the first plain one; None when no item has one."""
    names: dict[str, list] = {}
    for fields in metadata:
        for name, value in (fields or {}).items():
            if _plain(value):
                names.setdefault(name, []).append(value)
    apart = [name for name, values in names.items() if len(set(map(str, values))) == len(values)]
    chosen = apart or list(names)
    return chosen[0] if chosen else None


def tile(job: Job, config: Config | None = None, field: str | None = None) -> dict:
    """One item on the contact sheet: its thumbnail (the job list's, never the image itself) or its status, its index
    and its metadata's ``field`` (``sheet_field``); with ``config``, its picture's ``srcset`` at the sheet's size (a
    tile takes the variant its screen needs)."""
    index = job.batch_index if job.batch_index is not None else 0
    value = (job.metadata or {}).get(field) if field else None
    meta = str(value)[:FIELD_IN_TILE] if _plain(value) else ""
    return {
        "id": job.id,
        "href": f"/jobs/{job.id}",
        "index": index,
        "label": f"#{index:,}",
        "meta": meta,
        "status": job.status,
        "thumbnail": f"/jobs/{job.id}/thumbnail" if job.thumbnail_key else None,
        **(picture(config, job, SHEET) if config is not None else {"srcset": "", "sizes": ""}),
        "kind": "video" if job.video else "image" if job.image else "",
        "title": " · ".join(part for part in (f"#{index:,}", f"{field} {meta}" if meta else "", job.status,
                                              (job.error or {}).get("code", ""),
                                              excerpt(job.prompt or "", PROMPT_IN_TILE)) if part),
    }


def settled(batch: Batch, tiles: list[dict]) -> bool:
    """Whether the page will not change again: the batch has ended and each stored item shown has its thumbnail
    (made just after its image is stored)."""
    return batch.ended_at is not None and all(t["thumbnail"] for t in tiles if t["status"] == st.STORED)


# --- reading ----------------------------------------------------------------------------------------------------

def _key_names() -> dict[str, str]:
    return {key.id: key.name for key in services().store.app_keys.all()}


def _listing() -> tuple[list[Batch], str | None, str | None]:
    """The page of batches the URL asks for (``key_id``, ``cursor``), its next cursor and the key id it is limited to;
    ``InvalidRequest`` for a cursor or key that cannot be."""
    key_id, cursor = request.args.get("key_id") or None, request.args.get("cursor") or None
    if cursor is not None and not is_batch_id(cursor):
        raise InvalidRequest("cursor is not one this service issued")
    caller = ADMIN
    if key_id is not None:
        key = services().store.app_keys.get(key_id) if is_key_id(key_id) else None
        if key is None:
            raise InvalidRequest("no such app key")
        caller = Caller(key=key)  # that key's batches, as it would list them itself
    found, next_cursor = batching.list_batches(services(), caller, limit=PAGE_SIZE, cursor=cursor)
    return found, next_cursor, key_id


def _rows(found: list[Batch]) -> list[dict]:
    names = _key_names() if any(batch.key_id for batch in found) else {}
    return [batch_row(batch, names.get(batch.key_id or "")) for batch in found]


def _batch(batch_id: str) -> Batch | None:
    try:
        return batching.get_batch(services(), ADMIN, batch_id)
    except BatchNotFound:
        return None


def _missing(batch_id: str):
    return render_template("dashboard/batch_missing.html", batch_id=batch_id if is_batch_id(batch_id) else None), 404


def _key_name(batch: Batch) -> str | None:
    key = services().store.app_keys.get(batch.key_id) if batch.key_id else None
    return key.name if key else None


def _sheet_page(batch: Batch) -> tuple[int, int]:
    """The contact sheet's page the URL asks for (``?page=``, from 1, held to the pages there are), and how many."""
    pages = max(1, math.ceil(batch.total / SHEET_SIZE))
    asked = decimal(request.args.get("page", "1"), MAX_PAGE) or 1
    return min(asked, pages), pages


def _tiles(batch: Batch, page: int) -> tuple[list[dict], str | None]:
    """The tiles of the sheet's ``page``, and the metadata field they show."""
    svc = services()
    jobs = batching.item_page(svc, batch, (page - 1) * SHEET_SIZE, SHEET_SIZE)
    field = sheet_field([job.metadata for job in jobs])
    return [tile(job, svc.config, field) for job in jobs], field


# --- pages ------------------------------------------------------------------------------------------------------

@bp.get("/batches")
def batches():
    """Every batch, newest first, a page at a time; with ``key_id``, that key's."""
    try:
        found, next_cursor, key_id = _listing()
    except InvalidRequest:
        return redirect(url_for("dashboard.batches"))  # a made-up key or a stale cursor: the whole list
    names = _key_names()
    return render_template("dashboard/batches.html", batches=_rows(found), next_cursor=next_cursor,
                           cursor=request.args.get("cursor") or None, key_id=key_id,
                           key_name=names.get(key_id, key_id) if key_id else None)


@bp.get("/live/batches")
def live_batches():
    """The Batches page's rows as JSON, for its live refresh."""
    found, next_cursor, _ = _listing()
    return {"batches": _rows(found), "next_cursor": next_cursor}


@bp.get("/batches/<batch_id>")
def batch_page(batch_id: str):
    """One batch: its counts, progress, cost and times, its items' contact sheet, its results and its cancel."""
    batch = _batch(batch_id)
    if batch is None:
        return _missing(batch_id)
    page, pages = _sheet_page(batch)
    tiles, field = _tiles(batch, page)
    return render_template("dashboard/batch.html", batch=batch_detail(batch, _key_name(batch)), tiles=tiles,
                           field=field, page=page, pages=pages, first=(page - 1) * SHEET_SIZE, sheet_size=SHEET_SIZE,
                           settled=settled(batch, tiles), outcome=_outcome(batch))


def _outcome(batch: Batch) -> str | None:
    """What the page says after its Cancel (``?cancel=``), when the batch bears it out (a made-up link says
    nothing)."""
    said = request.args.get("cancel")
    if said == "canceled" and batch.status == BatchStatus.CANCELED:
        aborted = batch.counts.get(st.ABORTED, 0)
        at_bfl = batch.counts.get(st.SUBMITTED, 0) + batch.counts.get(st.READY, 0)
        return (f"Batch canceled: {aborted:,} item{'' if aborted == 1 else 's'} not yet sent ended aborted (never sent, "
                f"nothing charged); {at_bfl:,} already at BFL go{'es' if at_bfl == 1 else ''} on and "
                f"{'is' if at_bfl == 1 else 'are'} stored as {'it ends' if at_bfl == 1 else 'they end'} (BFL charged "
                f"{'it' if at_bfl == 1 else 'them'}).")
    if said == "ended" and batch.status != BatchStatus.RUNNING:
        return f"Nothing to cancel: this batch had already {'been canceled' if batch.canceled_at else 'ended'}."
    return None


@bp.get("/live/batches/<batch_id>")
def live_batch(batch_id: str):
    """The batch page's contents as JSON (its batch and the tiles of its sheet's ``?page=``), for its live refresh."""
    batch = _batch(batch_id)
    if batch is None:
        return error_response(404, "not_found", "no such batch (it may have been removed)")
    page, _ = _sheet_page(batch)
    tiles, _ = _tiles(batch, page)
    return {"batch": batch_detail(batch, _key_name(batch)), "tiles": tiles, "settled": settled(batch, tiles)}


@bp.post("/batches/<batch_id>/cancel")
@replicated
@auth.csrf_checked("the cancel form did not carry this session's CSRF token: reload the batch's page and try again")
def cancel_batch_form(batch_id: str):
    """Cancel the batch as ``POST /v1/batches/{id}/cancel`` does (the dashboard is an admin's: any batch), then show
    its page, which says what became of it; one that had ended stays as it is, and its page says so."""
    try:
        # Sends under way are waited for in the room of requests waiting on BFL, as the API's cancel waits.
        with bfl_calls().enter() as room:
            batching.cancel_batch(services(), ADMIN, batch_id, send_wait=batching.CANCEL_SEND_WAIT if room else 0)
        outcome = "canceled"
        log.info("batch canceled from the dashboard", extra={"batch_id": batch_id})
    except BatchNotFound:
        return _missing(batch_id)
    except AlreadyEnded:
        outcome = "ended"
    return redirect(url_for("dashboard.batch_page", batch_id=batch_id, cancel=outcome), 303)


@bp.get("/batches/<batch_id>/results.jsonl", defaults={"form": "jsonl"})
@bp.get("/batches/<batch_id>/results.zip", defaults={"form": "zip"})
def batch_results(batch_id: str, form: str):
    """The batch's results as ``GET /v1/batches/{id}/results`` gives them, streamed: a JSON line per item, or in a ZIP
    (``format=zip``) with every stored file of the batch."""
    batch = _batch(batch_id)
    if batch is None:
        return _missing(batch_id)
    svc = services()
    if form == "zip":
        response = Response(stream_with_context(batching.archive(svc, batch)), mimetype="application/zip")
    else:
        response = Response(stream_with_context(batching.results(svc, batch)), mimetype="application/jsonl")
    response.headers["Content-Disposition"] = f'attachment; filename="{batch.id}.{form}"'
    return answers.paced(response, scopes.of_session())
