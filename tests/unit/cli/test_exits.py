"""The command's exit codes (fluxhook/cli/exits.py), the one each API refusal, failure and job end exits with, and what
a Ctrl-C says."""

from __future__ import annotations

import pytest

from fluxhook import client as fc
from fluxhook.cli import api_commands, exits


def test_exit_codes():
    assert [int(code) for code in exits.ExitCode] == [0, 1, 2, 3, 4, 130]
    assert set(exits.EXIT_MEANINGS) == set(exits.ExitCode)
    assert all(f"  {code.value:<4} " in exits.EXIT_CODES_HELP for code in exits.ExitCode)
    refusals = [fc.InvalidRequest("x", status=400), fc.AuthenticationError("x", status=401),
                fc.InsufficientCredits("x", status=402), fc.NotFound("x", status=404), fc.Gone("x", status=410),
                fc.Conflict("x", status=409)]
    assert [api_commands.exit_code_for_error(e) for e in refusals] == [2] * 6
    failures = [fc.ServiceUnavailable("x", status=503), fc.ServiceUnavailable("x"), fc.RateLimited("x", status=429),
                fc.ChecksumMismatch("x")]
    assert [api_commands.exit_code_for_error(e) for e in failures] == [3] * 4
    assert api_commands.exit_code_for_error(fc.WaitTimeout("x", job=fc.Job())) == 4
    assert api_commands.exit_code_for_job({"status": "stored"}) == 0
    assert [api_commands.exit_code_for_job({"status": s}) for s in ("failed", "moderated", "expired")] == [1, 1, 1]
    with pytest.raises(ValueError):
        api_commands.exit_code_for_job({"status": "submitted"})


def test_a_ctrl_c_says_what_goes_on_from_the_moment_a_command_names_it_until_it_ends():
    assert exits.interrupted(None) == "interrupted"
    assert exits.interrupted("the job goes on: fluxhook show job_1") == (
        "interrupted; the job goes on: fluxhook show job_1")
    try:
        assert exits.interrupted_now() == "interrupted"  # nothing named yet
        exits.going_on("the batch goes on: fluxhook batch show bat_1")
        assert exits.interrupted_now() == "interrupted; the batch goes on: fluxhook batch show bat_1"
        exits.going_on(None)  # it ended: nothing goes on
        assert exits.interrupted_now() == "interrupted"
    finally:
        exits.going_on(None)
