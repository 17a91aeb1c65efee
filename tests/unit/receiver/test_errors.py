"""receiver/errors.py: the one rule for a 429's ``Retry-After``, used by fluxhook's API and the BFL-compatible one."""

from __future__ import annotations

import pytest
from flask import Flask

from fluxhook.core.errors import RateLimited
from receiver import bfl_compat, errors
from receiver.errors import retry_after_header


@pytest.mark.parametrize("seconds, header", [
    (None, "1"), (0, "1"), (0.001, "1"), (0.4, "1"), (1, "1"), (1.0, "1"),
    (1.01, "2"), (1.5, "2"), (2.49, "3"), (59.2, "60"), (3600, "3600"),
])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(seconds, header):
    assert retry_after_header(seconds) == header


@pytest.mark.parametrize("seconds", [0.2, 1.4, 7.01, 30])
def test_both_apis_answer_the_same_retry_after(seconds):
    app = Flask(__name__)
    errors.init_app(app)

    @app.get("/limited")
    def limited():
        raise RateLimited("slow down", retry_after=seconds)

    own = app.test_client().get("/limited")
    with app.test_request_context():
        bfl = bfl_compat.fluxhook_error(RateLimited("slow down", retry_after=seconds))
    assert own.status_code == bfl.status_code == 429
    assert own.headers["Retry-After"] == bfl.headers["Retry-After"] == retry_after_header(seconds)
