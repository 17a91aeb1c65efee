"""A large task input kept in storage while its job waits (fluxhook/lifecycle/steps/task_inputs.py): written in pieces that
make its JSON."""

from __future__ import annotations

import json

import pytest

from fluxhook.lifecycle.steps import task_inputs


@pytest.mark.parametrize("chunk", [1, 5, task_inputs.CHUNK])
def test_a_stored_input_is_written_in_pieces_that_make_its_json(chunk):
    value = {"prompt": "fox \u00e9\U0001F98A \"q\"\n", "n": [1, 2.5, None, True, {}, []], "image": "QUJD" * 9}
    pieces = list(task_inputs.json_chunks(value, chunk))
    assert "".join(pieces) == json.dumps(value, separators=(",", ":"))
    assert max(len(p) for p in pieces) <= max(6 * chunk, 16)  # no piece is a whole long string
