"""Unauthenticated control API under /_sim for tests and benchmarks."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from .state import current_simulator

bp = Blueprint("control", __name__, url_prefix="/_sim")


@bp.get("/settings")
def get_settings() -> ResponseReturnValue:
    """Current runtime settings."""
    return current_simulator().settings_view()


@bp.post("/settings")
def update_settings() -> ResponseReturnValue:
    """Merge known keys into the runtime settings; 400 on unknown keys or bad values."""
    try:
        return current_simulator().update_settings(request.get_json(force=True, silent=True))
    except ValueError as exc:
        return {"detail": str(exc)}, 400


@bp.post("/reset")
def reset() -> ResponseReturnValue:
    """Forget tasks and stats, restore start-up settings."""
    current_simulator().reset()
    return {"status": "reset"}


@bp.get("/stats")
def stats() -> ResponseReturnValue:
    """Counters since start-up or the last reset."""
    return current_simulator().stats_view()


@bp.get("/tasks")
def task_list() -> ResponseReturnValue:
    """Every task it was sent since start-up or the last reset, oldest first (without their webhook secrets)."""
    simulator = current_simulator()
    with simulator.lock:
        ids = list(simulator.tasks)
    return {"tasks": [view for view in map(simulator.task_view, ids) if view is not None]}


@bp.get("/tasks/<task_id>")
def task_state(task_id: str) -> ResponseReturnValue:
    """One task's state (without its webhook secret)."""
    view = current_simulator().task_view(task_id)
    if view is None:
        return {"detail": "Task not found"}, 404
    return view


@bp.post("/tasks/<task_id>/complete")
def complete(task_id: str) -> ResponseReturnValue:
    """Complete a Pending task now, optionally with a given outcome."""
    body = request.get_json(force=True, silent=True) or {}
    outcome = body.get("outcome") if isinstance(body, dict) else None
    task = current_simulator().complete(task_id, outcome)
    return current_simulator().task_view(task.id) or {"id": task.id}


@bp.post("/tasks/<task_id>/callback")
def replay_callback(task_id: str) -> ResponseReturnValue:
    """Send the task's webhook once now, synchronously, and report the receiver's status."""
    return {"status_code": current_simulator().replay_callback(task_id)}
