"""``fluxhook batch``'s pure helpers (fluxhook/cli/batches.py): reading a JSON Lines file of items, naming a refused
item's line, the progress line and bar, the exit code, what a Ctrl-C leaves going, ``show --watch``'s arguments, and
writing an archive's files. The commands as processes are in tests/e2e/cli/test_batch_commands.py."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from fluxhook import client as fc
from fluxhook.cli import batches
from fluxhook.cli.exits import CLIError, ExitCode
from fluxhook.cli.main import build_parser


def _batch(**counts) -> dict:
    total = sum(counts.values())
    return {"id": "bat_1", "counts": {**counts, "total": total}, "cost": {"credits": 0.0}}


def test_read_items_takes_each_line_as_it_is_and_skips_blank_lines():
    lines = ['{"input": {"prompt": "a"}, "metadata": {"sku": 1}}\n', "\n", "   \n",
             '{"prompt": "b", "width": 512}\n', '{"input": {"prompt": "c"}}']

    items, numbers = batches.read_items(lines, "items.jsonl")

    # As POST /v1/batches takes the file as NDJSON: a shorthand line is sent as it is, for the API to name.
    assert items == [{"input": {"prompt": "a"}, "metadata": {"sku": 1}}, {"prompt": "b", "width": 512},
                     {"input": {"prompt": "c"}}]
    assert numbers == [1, 4, 5]


@pytest.mark.parametrize(("line", "message"), [
    ('{"prompt": "a",}', "f.jsonl, line 2 is not valid JSON (Expecting property name"),
    ("42", "f.jsonl, line 2 is a JSON int, not an object"),
])
def test_read_items_names_the_first_bad_line(line, message):
    with pytest.raises(CLIError) as refused:
        batches.read_items(['{"prompt": "fine"}', line], "f.jsonl")
    assert message in refused.value.message and refused.value.exit_code == ExitCode.USAGE


def test_read_items_refuses_no_items_and_too_many():
    with pytest.raises(CLIError, match="f.jsonl holds no items"):
        batches.read_items(["\n", ""], "f.jsonl")
    with pytest.raises(CLIError, match="more than 10,000 items.*split -l 10000"):
        batches.read_items(['{"prompt": "x"}'] * 10_001, "f.jsonl")
    assert len(batches.read_items(['{"prompt": "x"}'] * 10_000, "f.jsonl")[0]) == 10_000


def test_lines_of_maps_the_refused_items_to_their_lines():
    message = "2 of 5 items would be refused, at index 1, 4 (item 1: width: ...; item 4: ...): fix them"
    assert batches.lines_of(message, [1, 3, 4, 7, 9], "f.jsonl") == "item 1 is line 3, item 4 is line 9 of f.jsonl"
    assert batches.lines_of("a batch holds 1 to 10,000 items", [1], "f.jsonl") == ""
    assert batches.lines_of("at index 7", [1], "f.jsonl") == ""


def test_the_progress_line_and_bar():
    batch = {**_batch(queued=5, submitted=2, stored=2, failed=1), "cost": {"credits": 9.5}}
    assert batches.batch_line(batch, 12.34) == "bat_1 30% 3/10 ended, 12.3 s: 5 queued, 2 submitted, 2 stored, 1 failed; " \
                                               "9.50 credits"
    assert batches.batch_line(_batch(queued=3), 75, "fluxhook unreachable, retrying", with_id=False) == \
        "0% 0/3 ended, 1m15s, fluxhook unreachable, retrying: 3 queued"
    assert batches.bar(batch, 10) == "[###-------]" and batches.bar(_batch(stored=3), 4) == "[####]"
    assert [batches.duration(s) for s in (0, 59.94, 61, 3600 * 2 + 125)] == ["0.0 s", "59.9 s", "1m01s", "2h02m"]
    assert batches.counts_text(batch, ("stored",)) == "5 queued, 2 submitted, 1 failed"


def test_a_running_batchs_line_shows_its_items_sent_beside_those_ended():
    # What a cancel would save is what BFL was not sent yet: 5 of 10 here.
    running = {**_batch(queued=5, submitted=2, stored=2, failed=1), "status": "running", "sent": 5}
    assert batches.batch_line(running, 1.0) == "bat_1 30% 5/10 sent, 3/10 ended, 1.0 s: 5 queued, 2 submitted, " \
                                               "2 stored, 1 failed"
    assert "sent" not in batches.batch_line({**running, "status": "ended"}, 1.0)


def test_progress_on_a_terminal_redraws_one_line_cut_to_its_width():
    out = io.StringIO()
    progress = batches.BatchProgress(out, tty=True, columns=40)
    progress.update(_batch(queued=4), 1.0)
    progress.update(_batch(queued=2, stored=2), 2.0)
    progress.finish(_batch(stored=4), 3.0)

    drawn = out.getvalue().split("\r\x1b[K")
    assert drawn[1] == "[--------------------] 0% 0/4 ended, 1."  # 39 characters: never a second row
    assert drawn[2].startswith("[##########----------] 50% 2/4 ended")
    assert drawn[3] == "[####################] 100% 4/4 ended, 3.0 s: 4 stored\n"


def test_progress_without_a_terminal_is_a_line_when_it_moves_at_most_every_10_s_and_every_30_s_unchanged():
    out = io.StringIO()
    progress = batches.BatchProgress(out, tty=False)
    for elapsed, batch in ((0, _batch(queued=4)), (5, _batch(queued=3, stored=1)), (11, _batch(queued=3, stored=1)),
                           (20, _batch(queued=3, stored=1)), (41.5, _batch(queued=3, stored=1)),
                           (45, _batch(queued=3, stored=1))):
        progress.update(batch, elapsed)
    progress.finish(_batch(stored=4), 50)
    progress.clear()  # nothing to clear in a log

    assert out.getvalue().splitlines() == [
        "bat_1 0% 0/4 ended, 0.0 s: 4 queued",
        "bat_1 25% 1/4 ended, 11.0 s: 3 queued, 1 stored",  # moved at 5 s, shown once 10 s had passed
        "bat_1 25% 1/4 ended, 41.5 s: 3 queued, 1 stored",  # unchanged for 30 s: shown again
        "bat_1 100% 4/4 ended, 50.0 s: 4 stored",
    ]


def test_exit_code_and_row():
    assert batches.exit_code_for_batch(_batch(stored=3)) == ExitCode.OK
    assert batches.exit_code_for_batch(_batch(stored=2, failed=1)) == ExitCode.JOB_FAILED
    assert batches.exit_code_for_batch(_batch(aborted=3)) == ExitCode.JOB_FAILED
    row = batches.batch_row({**_batch(stored=2, failed=1), "status": "ended", "model": "flux-2-pro",
                             "created_at": "2026-11-21T10:00:00Z", "ended_at": None, "cost": {"credits": 6.0}})
    assert row == ["bat_1", "ended", "flux-2-pro", "2026-11-21T10:00:00Z", "-", "6", "3: 2 stored, 1 failed"]


def test_extract_writes_each_file_and_refuses_a_name_with_a_path(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as made:
        made.writestr("00000.png", b"\x89PNG one")
        made.writestr("00002.jpg", b"\xff\xd8 two")
        made.writestr("results.jsonl", json.dumps({"index": 0}) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "00000.png").write_bytes(b"an older one")

    assert batches.extract(archive, out) == (2, len(b"\x89PNG one") + len(b"\xff\xd8 two"))
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00002.jpg", "results.jsonl"]
    assert (out / "00000.png").read_bytes() == b"\x89PNG one"

    for name in ("../escape.png", "/etc/x", ".hidden", "sub/00001.png"):
        with zipfile.ZipFile(archive, "w") as made:
            made.writestr(name, b"x")
        with pytest.raises(CLIError) as refused:
            batches.extract(archive, out)
        assert refused.value.exit_code == ExitCode.UNAVAILABLE and "not a file name fluxhook makes" in refused.value.message
    assert not (tmp_path / "escape.png").exists()
    archive.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CLIError, match="damaged"):
        batches.extract(archive, out)


def test_progress_on_a_terminals_stderr_is_as_wide_as_that_terminal_whatever_stdout_is(monkeypatch):
    """``batch submit > out.json``: stdout is a file, the progress goes to the terminal's stderr, 150 columns wide."""
    import fcntl
    import struct
    import termios

    monkeypatch.delenv("COLUMNS", raising=False)
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 150, 0, 0))
    with os.fdopen(side, "w") as terminal:
        progress = batches.BatchProgress(terminal)
        progress.update({**_batch(queued=498, stored=2, failed=500), "cost": {"credits": 3000.0}}, 1.0)
        drawn = os.read(main, 4096).decode()
    os.close(main)
    assert drawn.endswith("3,000 credits") and len(drawn.split("\x1b[K")[1]) > 80


def test_bad_lines_name_each_refused_item_with_its_line_and_field():
    refused = [{"index": 1, "field": "input.width", "message": "fix it"}, {"index": 2, "field": "prompt",
                                                                        "message": "put 'prompt' under 'input'"}]

    said = batches.bad_lines(refused, [1, 3, 4], "f.jsonl", most=1)

    assert said.splitlines() == ["  f.jsonl, line 3 (item 1) input.width: fix it", "  ... and 1 more"]


def test_a_ctrl_c_leaves_a_watched_batch_going_or_a_canceled_ones_items_at_bfl_and_nothing_once_it_has_ended():
    running = fc.Batch(id="bat_1", status="running", ended_at=None)
    canceled = fc.Batch(id="bat_1", status="canceled", ended_at=None)

    assert batches.watched_batch_goes_on(running) == batches.batch_goes_on("bat_1")
    assert batches.watched_batch_goes_on(canceled) == batches.canceled_batch_goes_on("bat_1")
    for ended in ("ended", "canceled"):
        assert batches.watched_batch_goes_on(fc.Batch(id="bat_1", status=ended, ended_at="2026-11-21T10:00:00Z")) is None


def test_batch_show_watch_takes_a_timeout_only_with_watch(capsys):
    parser = build_parser()

    shown = parser.parse_args(["batch", "show", "bat_1"])
    watched = parser.parse_args(["batch", "show", "bat_1", "--watch", "--timeout", "30"])

    assert (shown.watch, shown.timeout) == (False, None)
    assert (watched.func, watched.batch_id, watched.watch, watched.timeout) == (batches._show, "bat_1", True, 30.0)
    with pytest.raises(CLIError, match="--timeout goes with --watch"):
        batches._show(parser.parse_args(["batch", "show", "bat_1", "--timeout", "30"]))  # before any request
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "show", "bat_1", "--watch", "--timeout", "-1"])
    assert "must be more than 0" in capsys.readouterr().err
