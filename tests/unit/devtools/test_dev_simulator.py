"""The dev run's simulator (devtools/stack.py), as `make run` starts it: a `[pending]` task there ends after
``DEV_PENDING_LIMIT`` all the same, as BFL ends every task, so a job a newcomer canceled meanwhile gets back the slot
BFL's task kept (within the dev run's minutes, not the task's hour). The tests' simulators keep it until told."""

from __future__ import annotations

import requests

from devtools.processes import stop_process
from devtools.stack import DEV_PENDING_LIMIT, Stack


def test_the_dev_runs_simulator_ends_a_pending_task_after_two_minutes(tmp_path):
    stack = Stack(env={}, var_dir=tmp_path)
    stack._start_simulator()
    try:
        settings = requests.get(f"{stack.env['BFL_API_BASE']}/_sim/settings", timeout=10).json()
    finally:
        stop_process(stack.processes["simulator"])
    assert settings["pending_limit"] == DEV_PENDING_LIMIT == 120
    assert settings["scene_images"] is True and settings["image_format"] == "jpeg"  # its other dev flags, kept
