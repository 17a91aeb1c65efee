"""The BFL-shaped endpoints: submit, get_result, credits."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, request
from flask.typing import ResponseReturnValue

from fluxhook.core.models import MODEL

from . import models
from .errors import Rejected
from .state import current_simulator

bp = Blueprint("bfl_api", __name__)


def _authenticate() -> None:
    current_simulator().check_key(request.headers.get("x-key"))


@bp.post("/v1/<path:model>", merge_slashes=False)
def submit(model: str) -> ResponseReturnValue:
    """Accept a generation task for a model BFL has (any name with the any_model setting)."""
    sim = current_simulator()
    # Like BFL, whose router answers before the key is looked at: a model it has no endpoint for is a 404.
    if not MODEL.fullmatch(model) or not (models.known(model) or sim.current("any_model")):
        raise Rejected(404, {"detail": "Not Found"})
    _authenticate()
    # force=True: BFL accepts JSON bodies even without a JSON content type. Read whole before BFL's delay: a task whose
    # client went away during it is kept, as BFL keeps one.
    body = request.get_json(force=True, silent=True)
    sim.received()
    time.sleep(sim.current("submit_delay"))
    task = sim.submit(model, body)
    time.sleep(sim.current("answer_delay"))
    return {"id": task.id, "polling_url": sim.polling_url(task), **task.answer_cost}


@bp.get("/v1/get_result")
def get_result() -> ResponseReturnValue:
    """Poll a task; Ready answers carry a freshly signed sample URL."""
    _authenticate()
    sim = current_simulator()
    if sim.current("redirect_polls"):
        # BFL may send a poll on to a regional host: here, another path of this one.
        return redirect(f"{sim.public_base()}/v1/regional/get_result?{request.query_string.decode()}", code=307)
    return _result()


@bp.get("/v1/regional/get_result")
def regional_get_result() -> ResponseReturnValue:
    """Where redirected polls land."""
    _authenticate()
    return _result()


def _result() -> ResponseReturnValue:
    task_id = request.args.get("id")
    if not task_id:
        detail = [{"loc": ["query", "id"], "msg": "Field required", "type": "missing"}]
        raise Rejected(422, {"detail": detail})
    sim = current_simulator()
    # BFL's time to answer, once a poll (here, not in get_result: a redirected poll waits once, where it lands); the
    # task's state is read after it, as BFL answers with what it knows then.
    time.sleep(sim.current("poll_delay"))
    body = sim.poll(task_id, request.host)
    if body is None:
        return {"id": task_id, "status": "Task not found"}, 404
    return body


@bp.get("/v1/credits")
def credits() -> ResponseReturnValue:
    """Remaining credits."""
    _authenticate()
    return {"credits": current_simulator().credits()}
