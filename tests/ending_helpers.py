"""Helpers of the cancel and deadline tests (tests/e2e/jobs/): what the simulator was sent, and whether fluxhook
answered its callback of a task."""

from __future__ import annotations


def sent_prompts(sim) -> list[str]:
    """The prompts of every task the simulator was sent since its last reset (its control API's task list)."""
    return [task["prompt"] for task in sim.control("GET", "/tasks")["tasks"]]


def callback_answered(sim, bfl_id: str) -> bool:
    """Whether fluxhook has answered the simulator's callback for the task."""
    return any(a["status_code"] for a in sim.task(bfl_id)["callback_attempts"])
