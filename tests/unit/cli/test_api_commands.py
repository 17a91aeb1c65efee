"""The API commands' pure helpers (fluxhook/cli/api_commands.py): where the URL and token come from, tables and rows,
output paths, sizes, the progress line of ``--wait``, and ``wait``'s arguments. The commands as processes are in
tests/e2e/cli/test_api_commands.py."""

from __future__ import annotations

import io

import pytest

from fluxhook.cli import api_commands, exits
from fluxhook.cli.main import build_parser


def test_api_target():
    dev = {"FLUXHOOK_URL": "http://localhost:8123", "API_TOKENS": "dev-token-1,dev-token-2"}
    assert api_commands.api_target(None, None, {}, dev) == ("http://localhost:8123", "dev-token-1")
    assert api_commands.api_target(None, None, {}, None) == ("http://localhost:8000", None)
    assert api_commands.api_target("http://localhost:8123/", None, {}, dev) == ("http://localhost:8123/", "dev-token-1")
    # What the caller says, then the environment, wins over the dev run.
    assert api_commands.api_target(None, None, {"FLUXHOOK_URL": "https://fh.example", "FLUXHOOK_TOKEN": "t-1"}, dev) == (
        "https://fh.example", "t-1")
    assert api_commands.api_target(None, "mine-123", {}, dev) == ("http://localhost:8123", "mine-123")
    assert api_commands.api_target("https://fh.example", None, {}, dev) == ("https://fh.example", None)
    assert api_commands.api_target(None, None, {"API_TOKENS": "env-token"}, dev) == ("http://localhost:8123", "env-token")


def test_format_table():
    table = api_commands.format_table(("ID", "STATUS", "NOTE"), [("job_1", "stored", "png"), ("job_22", None, "")])
    assert table.splitlines() == [
        "ID      STATUS  NOTE",
        "job_1   stored  png",
        "job_22",
    ]
    assert api_commands.format_table(("A", "B"), []) == "A  B"


def test_job_rows():
    stored = {"id": "job_1", "status": "stored", "model": "flux-2-pro", "created_at": "2026-01-01T00:00:00Z",
              "image": {"content_type": "image/png", "width": 64, "height": 48, "size": 1536},
              "cost": {"credits": 6.0, "input_mp": 0.0, "output_mp": 0.75}}
    assert api_commands.job_row(stored) == ["job_1", "stored", "flux-2-pro", "2026-01-01T00:00:00Z", "6",
                                   "png 64x48 1.5 KiB"]
    failed = dict(stored, status="failed", image=None, error={"code": "bfl_error", "message": "x"}, model=None,
                  cost=None)
    assert api_commands.job_row(failed)[1:] == ["failed", "-", "2026-01-01T00:00:00Z", "-", "bfl_error"]
    pending = dict(stored, status="submitted", image=None, error=None, bfl_status="Pending")
    assert api_commands.job_row(pending)[-1] == "BFL: Pending"
    video = dict(stored, image=None, video={"content_type": "video/mp4", "width": 1280, "height": 720,
                                            "size": 3 * 1024 * 1024})
    assert api_commands.job_row(video)[-1] == "mp4 1280x720 3.0 MiB"
    waiting = dict(stored, status="queued", image=None, cost=None, waiting={"reason": "model_limit"})
    assert api_commands.job_row(waiting)[-1] == "waiting: model_limit"
    paused = dict(waiting, waiting={"reason": "bfl_capacity", "until": "2026-01-01T00:00:30Z"})
    assert api_commands.job_row(paused)[-1] == "waiting: bfl_capacity until 2026-01-01T00:00:30Z"


def test_output_path(tmp_path):
    assert api_commands.output_path(None, "job_1", "image/jpeg", cwd=tmp_path) == tmp_path / "job_1.jpg"
    assert api_commands.output_path(str(tmp_path), "job_1", "image/webp") == tmp_path / "job_1.webp"
    assert api_commands.output_path("new-dir/", "job_1", "image/png", cwd=tmp_path) == tmp_path / "new-dir" / "job_1.png"
    assert api_commands.output_path("out.png", "job_1", "image/png", cwd=tmp_path) == tmp_path / "out.png"
    assert api_commands.output_path(None, "job_1", "video/mp4", cwd=tmp_path) == tmp_path / "job_1.mp4"
    assert api_commands.file_extension("image/png; charset=binary") == "png"
    assert api_commands.file_extension("application/octet-stream") == "bin"


def test_small_helpers():
    assert api_commands.default_token({"FLUXHOOK_TOKEN": " tok-1 ", "API_TOKENS": "a,b"}) == "tok-1"
    assert api_commands.default_token({"API_TOKENS": " , first-token, second"}) == "first-token"
    assert api_commands.default_token({}) is None
    assert api_commands.human_size(157) == "157 B" and api_commands.human_size(3 * 1024 * 1024) == "3.0 MiB"
    with pytest.raises(exits.CLIError) as bad:
        api_commands.json_object('"text"', "--input-json")
    assert bad.value.exit_code == 2


def test_progress_redraws_on_a_terminal_and_prints_changes_otherwise():
    job = {"id": "job_1", "status": "submitted", "bfl_status": "Pending"}
    plain = io.StringIO()
    progress = api_commands.Progress(plain, tty=False)
    progress.update(job, 0.3)
    progress.update(job, 0.6)  # unchanged: nothing new
    progress.update(dict(job, status="ready", bfl_status="Ready"), 1.2)
    progress.update(dict(job, status="ready", bfl_status="Ready"), 40.0)  # unchanged, but a while later
    progress.finish(dict(job, status="stored", bfl_status="Ready"), 1.5)
    assert plain.getvalue().splitlines() == [
        "job_1 submitted (BFL: Pending) 0.3 s",
        "job_1 ready (BFL: Ready) 1.2 s",
        "job_1 ready (BFL: Ready) 40.0 s",
        "job_1 stored (BFL: Ready) 1.5 s",
    ]
    terminal = io.StringIO()
    progress = api_commands.Progress(terminal, tty=True)
    progress.update(job, 0.3)
    progress.update(job, 0.4, "fluxhook unreachable, retrying")
    progress.finish(dict(job, status="stored"), 0.5)
    assert terminal.getvalue() == ("\r\x1b[K/ job_1 submitted (BFL: Pending) 0.3 s"
                                   "\r\x1b[K- job_1 submitted (BFL: Pending) 0.4 s, fluxhook unreachable, retrying"
                                   "\r\x1b[Kjob_1 stored (BFL: Pending) 0.5 s\n")


def test_wait_takes_a_job_id_and_submit_waits_timeout_and_output(capsys):
    parser = build_parser()

    plain = parser.parse_args(["wait", "job_1"])
    given = parser.parse_args(["wait", "job_1", "--timeout", "2.5", "-o", "fox.png"])

    assert (plain.func, plain.job_id, plain.timeout, plain.output) == (api_commands.cmd_wait, "job_1", 600.0, None)
    assert (given.timeout, given.output) == (2.5, "fox.png")
    assert parser.parse_args(["submit", "--prompt", "x", "--wait"]).timeout is None  # submit's 600 too, as it waits
    for argv in (["wait"], ["wait", "job_1", "--timeout", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "must be more than 0" in capsys.readouterr().err
