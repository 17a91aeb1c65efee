"""``fluxhook batch submit|show|list|cancel|download``: batches over the API, through
:mod:`fluxhook.client` like any app.

``submit`` reads a JSON Lines file, one item a line: ``{"input": {BFL's request fields}, "metadata"?: {...}}``, or a
task's input alone (``{"prompt": "..."}``, any object without an ``"input"`` key), which becomes that item's input.
Blank lines are skipped; items are numbered from 0 in the file's order. It sends them as one request (one JSON body), then
follows the batch's event stream with a progress bar on stderr until every item has ended; ``show --watch`` follows a
batch made before in the same way.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, TextIO

from fluxhook import client as api
from fluxhook.cli.api_commands import (
    Progress,
    action_adder,
    client_for,
    human_size,
    json_object,
    listed,
    positive_float,
    print_json,
    print_rows,
    tell,
)
from fluxhook.cli.exits import EXIT_CODES_HELP, CLIError, ExitCode, going_on
from fluxhook.credits.figures import format_credits
from fluxhook.media.archives import file_names

# The most items one batch may hold (the API's limit).
MAX_ITEMS = 10_000
EXAMPLE = '{"input": {"prompt": "a red fox in snow"}, "metadata": {"sku": 1}}'
BATCH_COLUMNS = ("ID", "STATUS", "MODEL", "CREATED", "ENDED", "COST", "ITEMS")
# A file name of a batch's archive: its item's index and extension, or results.jsonl; nothing with a path in it.
_ARCHIVE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]*(\.[0-9A-Za-z]+)?")


def add_commands(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    batch = command("batch", None, "batches: many tasks of one model in one request, run beside your single jobs")
    action = action_adder(batch, "batch_command", target)

    submit = action("submit", _submit, "send a JSON Lines file of items as one batch, then show its progress until "
                                       "it ends (exit 0: every item stored; 1: some item was not)")
    submit.epilog, submit.formatter_class = EXIT_CODES_HELP, argparse.RawDescriptionHelpFormatter
    submit.add_argument("file", metavar="FILE", help="one item a line: " + EXAMPLE.replace("%", "%%")
                        + " (a line without \"input\" is the task's input); - reads stdin")
    submit.add_argument("--model", required=True, help="the BFL model of every item, e.g. flux-2-pro")
    submit.add_argument("--metadata-json", metavar="JSON", help="your own metadata to keep with the batch")
    submit.add_argument("--notify-url", metavar="URL", help="where batch.ended (the batch) is sent when its last item "
                                                            "ends (default: the key's, else NOTIFY_URL)")
    submit.add_argument("--notify-events", metavar="EVENTS", type=listed,
                        help="its items' notifications too, comma-separated: job.submitted, job.progress, job.ended")
    submit.add_argument("--cancel-after", metavar="DURATION", help="each item's deadline, 5s to 24h (30s, 5m, 1h30m): "
                        "not sent by then it ends aborted, sent but not stored canceled")
    submit.add_argument("--end-user", metavar="END_USER", help="your app's own user every item is for, unless its "
                        "line names its own end_user (the key's limits per end user apply)")
    submit.add_argument("--idempotency-key", metavar="KEY", help="sent again with the same key and file, the batch "
                        "is not made twice (within 24 h)")
    submit.add_argument("--no-wait", action="store_true", help="print the batch's id at once and return")
    submit.add_argument("--timeout", type=positive_float, metavar="S", help="stop watching after S seconds (exit 4; "
                        "the batch goes on; default: until it ends)")

    show = action("show", _show, "print one batch: its status, counts by job status, progress and cost; with --watch "
                                 "once it has ended, showing its progress until then (exit 0: every item stored; 1: "
                                 "some item was not)")
    show.epilog, show.formatter_class = EXIT_CODES_HELP, argparse.RawDescriptionHelpFormatter
    show.add_argument("batch_id", metavar="BATCH_ID")
    show.add_argument("--watch", action="store_true", help="show its progress until it ends, as batch submit does")
    show.add_argument("--timeout", type=positive_float, metavar="S", help="with --watch: stop watching after S seconds "
                      "(exit 4; the batch goes on; default: until it ends)")

    listing = action("list", _list, "list batches, newest first")
    listing.add_argument("--limit", type=int, default=20, help="at most this many, 1-100 (default 20)")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    cancel = action("cancel", _cancel, "cancel a batch: items not yet sent end aborted (nothing charged), sent ones "
                                       "go on and are stored (BFL charged them); print it, its counts as they stand, "
                                       "or with --wait once it has ended")
    cancel.add_argument("batch_id", metavar="BATCH_ID")
    cancel.add_argument("--wait", action="store_true", help="wait until the items BFL has have ended too (the batch "
                                                            "has ended), showing its progress, then print its final "
                                                            "counts")
    cancel.add_argument("--timeout", type=positive_float, metavar="S", help="with --wait: stop waiting after S seconds "
                        "(exit 4; the batch's items at BFL go on; default: until it ends)")

    download = action("download", _download, "write every stored file of a batch into DIR (00000.png, ...: named by "
                                             "item index) with results.jsonl (one line per item)")
    download.add_argument("batch_id", metavar="BATCH_ID")
    download.add_argument("directory", metavar="DIR", help="made if missing; files of the same names are replaced")
    download.add_argument("--name-from", metavar="FIELD", help="name each file from its item's metadata FIELD (sku: "
                          "sku-123.png) instead of its index; characters a file name cannot hold become _, a name two "
                          "items give gets its index added, an item without the field keeps its index name")


# --- pure helpers ------------------------------------------------------------

def read_items(lines: Iterable[str], name: str) -> tuple[list[dict], list[int]]:
    """The items of a JSON Lines file, each line's JSON object as it is (the file ``POST /v1/batches`` takes as
    NDJSON, line for line: ``{"input": {...}, "metadata"?: {...}}``; the API checks every item and names each bad
    one), and for each its line number (from 1); blank lines are skipped. ``CLIError`` names the first line that is
    not a JSON object."""
    items: list[dict] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}, line {number}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise CLIError(f"{where} is not valid JSON ({exc}): write one item a line, such as {EXAMPLE}") from None
        if not isinstance(value, dict):
            raise CLIError(f"{where} is a JSON {type(value).__name__}, not an object: write one item a line, such as "
                           f"{EXAMPLE}")
        items.append(value)
        numbers.append(number)
        if len(items) > MAX_ITEMS:
            raise CLIError(f"{name} holds more than {MAX_ITEMS:,} items, a batch's most: split it into files of "
                           f"{MAX_ITEMS:,} lines at most (split -l {MAX_ITEMS} FILE) and send each")
    if not items:
        raise CLIError(f"{name} holds no items: write one JSON object a line, such as {EXAMPLE}")
    return items, numbers


def bad_lines(refused: list[dict], numbers: list[int], name: str, most: int = 20) -> str:
    """Each bad item an ``invalid_items`` answer names, on a line of its own with its line in the file:
    ``  line 4 (item 2) input.width: ...``; the first ``most`` of them."""
    said = []
    for problem in refused[:most]:
        index = problem.get("index")
        line = numbers[index] if isinstance(index, int) and 0 <= index < len(numbers) else None
        where = f"{name}, line {line} (item {index})" if line else f"item {index}"
        said.append(f"  {where} {problem.get('field') or ''}: {problem.get('message') or ''}")
    if len(refused) > most:
        said.append(f"  ... and {len(refused) - most} more")
    return "\n".join(said)


def lines_of(message: str, numbers: list[int], name: str) -> str:
    """What an ``invalid_items`` answer's item indexes are in the file: ``item 2 is line 4 of items.jsonl, ...``
    (empty when it names none)."""
    found = re.search(r"at index ([\d, ]+)", message)
    indexes = [int(i) for i in found.group(1).replace(",", " ").split()] if found else []
    named = [f"item {i} is line {numbers[i]}" for i in indexes[:10] if 0 <= i < len(numbers)]
    return f"{', '.join(named)} of {name}" if named else ""


def ended_items(batch: Mapping[str, Any]) -> int:
    counts = batch.get("counts") or {}
    return sum(n for status, n in counts.items() if status in api.TERMINAL and isinstance(n, int))


def counts_text(batch: Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> str:
    """``3 queued, 2 submitted, 5 stored``: each status that has items (but those left out), in the order a job goes
    through them."""
    counts = batch.get("counts") or {}
    return ", ".join(f"{counts[status]} {status}" for status in api.STATUSES
                     if counts.get(status) and status not in leave_out)


def duration(seconds: float) -> str:
    """``12.3 s``, ``4m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def batch_line(batch: Mapping[str, Any], elapsed: float, note: str = "", *, with_id: bool = True) -> str:
    """``bat_… 40% 7/10 sent, 4/10 ended, 12.3 s: 6 submitted, 3 stored, 1 failed; 9 credits``: what the progress
    shows, what matters most first (a terminal's line is cut at its width). Sent only while it runs: what a cancel
    would save is what BFL was not sent yet."""
    total = (batch.get("counts") or {}).get("total") or 0
    ended = ended_items(batch)
    percent = 100 * ended // total if total else 100
    text = f"{batch.get('id')} " if with_id else ""
    sent = batch.get("sent")
    text += f"{percent}% " + (f"{sent}/{total} sent, " if sent is not None and batch.get("status") == "running" else "")
    text += f"{ended}/{total} ended, {duration(elapsed)}"
    if note:
        text += f", {note}"
    shown = counts_text(batch)
    if shown:
        text += f": {shown}"
    credits = (batch.get("cost") or {}).get("credits")
    return f"{text}; {format_credits(credits)} credits" if credits else text


def bar(batch: Mapping[str, Any], width: int) -> str:
    """``[######--------------]``: the share of the items that have ended, ``width`` characters inside."""
    total = (batch.get("counts") or {}).get("total") or 0
    done = width * ended_items(batch) // total if total else width
    return "[" + "#" * done + "-" * (width - done) + "]"


class BatchProgress(Progress):
    """A batch's progress on stderr: a bar redrawn in place on a terminal; without one, a line when it moves (at most
    one every ``PLAIN_SECONDS``) and again after ``PLAIN_EVERY`` unchanged, so a log shows it alive."""

    BAR = 20
    PLAIN_SECONDS = 10.0

    def __init__(self, stream: TextIO, tty: bool | None = None, columns: int | None = None):
        super().__init__(stream, tty)
        self.columns = columns

    def update(self, batch: Mapping[str, Any], elapsed: float, note: str = "") -> None:
        if self.tty:
            columns = self.columns or _columns(self.stream)
            line = f"{bar(batch, self.BAR)} {batch_line(batch, elapsed, note, with_id=False)}"
            self.stream.write("\r\x1b[K" + line[:max(columns - 1, 10)])  # one row: \r redraws only that
            self.drawn = True
        else:
            key = (tuple(sorted((batch.get("counts") or {}).items())), note)
            since = elapsed - self.last_at
            if self.last is not None and not (key != self.last and since >= self.PLAIN_SECONDS
                                               or since >= self.PLAIN_EVERY):
                return
            self.last, self.last_at = key, elapsed
            self.stream.write(batch_line(batch, elapsed, note) + "\n")
        self.stream.flush()

    def finish(self, batch: Mapping[str, Any], elapsed: float) -> None:
        if self.tty:
            self.stream.write(f"\r\x1b[K{bar(batch, self.BAR)} {batch_line(batch, elapsed, with_id=False)}\n")
        else:
            self.stream.write(batch_line(batch, elapsed) + "\n")
        self.stream.flush()


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` draws on: asked of the stream itself, since ``shutil.get_terminal_size``
    asks stdout's, which is a file or pipe when the progress goes to a terminal's stderr (``> log``) and then says
    80."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((80, 24)).columns


def batch_row(batch: Mapping[str, Any]) -> list[str]:
    """One line of ``batch list``: id, status, model, created, ended, credits, and its items by status."""
    credits = (batch.get("cost") or {}).get("credits")
    total = (batch.get("counts") or {}).get("total") or 0
    return [batch.get("id", ""), batch.get("status", ""), batch.get("model") or "-", batch.get("created_at") or "",
            batch.get("ended_at") or "-", f"{credits:g}" if isinstance(credits, (int, float)) else "-",
            f"{total}: {counts_text(batch)}"]


def batch_goes_on(batch_id: str) -> str:
    """What a Ctrl-C leaves of a submitted batch, and how to follow or stop it."""
    return f"the batch goes on: fluxhook batch show {batch_id} (fluxhook batch cancel {batch_id} stops it)"


def canceled_batch_goes_on(batch_id: str) -> str:
    """What a Ctrl-C leaves of a canceled batch that has not ended: its items at BFL (which has no cancel)."""
    return f"batch {batch_id} stays canceled and its items at BFL go on: fluxhook batch show {batch_id}"


def watched_batch_goes_on(batch: api.Batch) -> str | None:
    """What a Ctrl-C leaves of a batch a command watches: nothing once it has ended; a canceled one's items at BFL;
    else the batch."""
    if batch.ended:
        return None
    return canceled_batch_goes_on(batch.id) if batch.status == "canceled" else batch_goes_on(batch.id)


def exit_code_for_batch(batch: Mapping[str, Any]) -> ExitCode:
    """0 when every item is stored; 1 when the batch ended with some item that is not."""
    counts = batch.get("counts") or {}
    return ExitCode.OK if counts.get("stored", 0) == counts.get("total") else ExitCode.JOB_FAILED


# --- the commands ------------------------------------------------------------------

def _submit(args: argparse.Namespace) -> int:
    if args.no_wait and args.timeout is not None:
        raise CLIError("--timeout goes with watching the batch: drop --no-wait or --timeout")
    metadata = json_object(args.metadata_json, "--metadata-json") if args.metadata_json else None
    name = "stdin" if args.file == "-" else args.file
    try:
        if args.file == "-":
            items, numbers = read_items(sys.stdin, name)
        else:
            with open(args.file, encoding="utf-8-sig") as source:
                items, numbers = read_items(source, name)
    except OSError as exc:
        raise CLIError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CLIError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8") from None
    with client_for(args) as fluxhook:
        try:
            batch = fluxhook.batches.create(args.model, items, metadata=metadata, notify_url=args.notify_url,
                                            notify_events=args.notify_events, cancel_after=args.cancel_after,
                                            idempotency_key=args.idempotency_key, end_user=args.end_user)
        except api.InvalidRequest as exc:
            if exc.code == "invalid_items" and exc.items:  # each bad item on a line of its own, with its line
                raise CLIError(f"{exc}:\n{bad_lines(exc.items, numbers, name)}") from None
            where = lines_of(exc.message, numbers, name) if exc.code == "invalid_items" else ""
            if not where:
                raise
            raise CLIError(f"{exc} ({where})") from None
        going_on(batch_goes_on(batch.id))
        if args.no_wait:
            print(batch.id)
            tell(f"batch {batch.id}: {batch.counts['total']} items of {batch.model}; follow it with "
                 f"`fluxhook batch show {batch.id}`")
            return ExitCode.OK
        return _watch(fluxhook, batch, args.timeout)


def _watch(fluxhook: api.Client, batch: api.Batch, timeout: float | None) -> int:
    hint = "" if batch.ended else " (Ctrl-C stops watching; the batch goes on)"
    tell(f"batch {batch.id}: {batch.counts['total']} items of {batch.model}{hint}")
    try:
        # An ended batch's bar is drawn once, full, by the end of the follow.
        batch = _follow(fluxhook, batch, timeout, BatchProgress(sys.stderr), drawn_at_once=not batch.ended)
    except api.WaitTimeout as exc:
        seen = exc.batch if exc.batch and exc.batch.counts else batch  # no event within the time: as made
        print_json(seen)
        raise CLIError(f"batch {batch.id} is still {seen.status} after {timeout:g} s ({ended_items(seen)} of "
                       f"{seen.counts['total']} items ended); it goes on: fluxhook batch show {batch.id}",
                       ExitCode.TIMEOUT) from None
    going_on(None)
    print_json(batch)
    download = f"fluxhook batch download {batch.id} DIR"
    code = exit_code_for_batch(batch)
    if code != ExitCode.OK:
        how = "was canceled" if batch.status == "canceled" else "ended"
        others = counts_text(batch, ("stored",))
        raise CLIError(f"batch {batch.id} {how}: {batch.counts.get('stored', 0)} of {batch.counts['total']} items "
                       f"stored ({others}); `{download}` writes the stored files and results.jsonl, which says why "
                       "each other item ended", code)
    tell(f"every item stored; `{download}` writes the files")
    return ExitCode.OK


def _show(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.watch:
        raise CLIError("--timeout goes with --watch: add --watch, or drop --timeout")
    with client_for(args) as fluxhook:
        batch = fluxhook.batches.get(args.batch_id)
        if not args.watch:
            print_json(batch)
            return ExitCode.OK
        going_on(watched_batch_goes_on(batch))
        return _watch(fluxhook, batch, args.timeout)


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        raise CLIError("--limit must be from 1 to 100")
    with client_for(args) as fluxhook:
        batches = list(itertools.islice(fluxhook.batches.list(page_size=args.limit), args.limit))
    if args.json:
        print_json({"batches": batches})
    else:
        print_rows(BATCH_COLUMNS, [batch_row(batch) for batch in batches], "no batches")
    return ExitCode.OK


def _cancel(args: argparse.Namespace) -> int:
    """Cancel a batch and print it as canceled, or with ``--wait`` once it has ended; one that had ended is a refused
    request (exit 2), left as it was."""
    if args.timeout is not None and not args.wait:
        raise CLIError("--timeout goes with --wait: add --wait, or drop --timeout")
    with client_for(args) as fluxhook:
        batch = fluxhook.batches.cancel(args.batch_id)
        going_on(watched_batch_goes_on(batch))
        if not args.wait or batch.ended:
            print_json(batch)
            if batch.ended:
                tell(f"batch {batch.id} canceled and ended: {counts_text(batch)}")
            else:
                # Its items at BFL go on (BFL has no cancel), so these counts move until they end.
                tell(f"batch {batch.id} canceled: {counts_text(batch)} (so far: the items BFL has go on until they "
                     f"end; `fluxhook batch cancel {batch.id} --wait` or `fluxhook batch show {batch.id}` gives the "
                     "final counts)")
            return ExitCode.OK
        tell(f"batch {batch.id} canceled: {counts_text(batch)}; waiting for the items BFL has to end (Ctrl-C stops "
             "waiting)")
        batch = _until_ended(fluxhook, batch, args.timeout)
    going_on(None)
    print_json(batch)
    tell(f"batch {batch.id} canceled and ended: {counts_text(batch)}")
    return ExitCode.OK


def _until_ended(fluxhook: api.Client, batch: api.Batch, timeout: float | None) -> api.Batch:
    """The batch once it has ended (``_follow``); ``CLIError`` (exit 4) when ``timeout`` passes first."""
    try:
        return _follow(fluxhook, batch, timeout, BatchProgress(sys.stderr))
    except api.WaitTimeout as exc:
        seen = exc.batch if exc.batch and exc.batch.counts else batch
        print_json(seen)
        raise CLIError(f"batch {batch.id} has not ended after {timeout:g} s ({counts_text(seen)}); its items at BFL "
                       f"go on: fluxhook batch show {batch.id}", ExitCode.TIMEOUT) from None


def _follow(fluxhook: api.Client, batch: api.Batch, timeout: float | None, progress: BatchProgress, *,
            drawn_at_once: bool = False) -> api.Batch:
    """The batch once it has ended, followed on its event stream with its ``progress`` (``drawn_at_once``: from the
    batch as given, before the first event), which an error or Ctrl-C clears."""
    start = time.monotonic()

    def show(latest: api.Batch | None, error: api.APIError | None) -> None:
        if latest is not None and latest.ended:
            return  # drawn once, by finish
        # A restart or a Redis blip: the batch goes on, and so does the wait.
        progress.update(latest or batch, time.monotonic() - start, "fluxhook unreachable, retrying" if error else "")

    try:
        if drawn_at_once:
            progress.update(batch, 0.0)
        ended = fluxhook.batches.wait(batch.id, timeout, on_update=show)
    except BaseException:
        progress.clear()
        raise
    progress.finish(ended, time.monotonic() - start)
    return ended


def _download(args: argparse.Namespace) -> int:
    directory = Path(args.directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise CLIError(f"{directory} is a file: give a directory (it is made if missing)")
    with client_for(args) as fluxhook:
        batch = fluxhook.batches.get(args.batch_id)  # an unknown batch is refused before anything is written
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot make {directory}: {exc.strerror or exc}") from None
        # The archive waits beside its files, hidden, until they are out of it.
        archive = directory / f".{batch.id}.{uuid.uuid4().hex[:8]}.zip"
        try:
            fluxhook.batches.download(batch.id, archive)
            files, size = extract(archive, directory, name_from=args.name_from)
        except OSError as exc:
            raise CLIError(f"cannot write in {directory}: {exc.strerror or exc}") from None
        finally:
            archive.unlink(missing_ok=True)
    total = batch.counts["total"]
    note = ""
    if not batch.ended:
        note = (f"; the batch is still running ({ended_items(batch)} of {total} items ended): run this again once it "
                "ends for the rest")
    elif files < total:
        note = f"; {total - files} of {total} items have no file: results.jsonl says why"
    tell(f"wrote {files} files ({human_size(size)}) and results.jsonl to {directory}{note}")
    return ExitCode.OK


def extract(archive: Path, directory: Path, *, name_from: str | None = None) -> tuple[int, int]:
    """Write each file of a batch's archive into ``directory``, a piece at a time (each appears whole, replacing one
    of its name), named by its index, or with ``name_from`` by that field of its item's metadata (``file_names``);
    how many files beside results.jsonl, and their bytes."""
    files = size = 0
    try:
        with zipfile.ZipFile(archive) as opened:
            infos = opened.infolist()
            for info in infos:
                if not _ARCHIVE_NAME.fullmatch(info.filename):
                    raise CLIError(f"the archive holds {info.filename[:80]!r}, not a file name fluxhook makes; is the "
                                   "URL fluxhook's?", ExitCode.UNAVAILABLE)
            names = {info.filename: info.filename for info in infos}
            if name_from is not None and "results.jsonl" in names:
                with opened.open("results.jsonl") as lines:
                    names = file_names([info.filename for info in infos], _metadata_of(lines), name_from)
            for info in infos:
                with opened.open(info) as source:
                    _write(source, directory / names[info.filename])
                if info.filename != "results.jsonl":
                    files, size = files + 1, size + info.file_size
    except zipfile.BadZipFile as exc:
        raise CLIError(f"the batch's archive is damaged ({exc}); download it again", ExitCode.UNAVAILABLE) from None
    return files, size


def _metadata_of(lines: IO[bytes]) -> dict[int, Any]:
    """Each item's metadata by its index, from a batch's results.jsonl (a line that is not fluxhook's is skipped)."""
    found: dict[int, Any] = {}
    for raw in lines:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("index"), int):
            found[line["index"]] = line.get("metadata")
    return found


def _write(source: IO[bytes], path: Path) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(partial, "wb") as out:
            shutil.copyfileobj(source, out, 256 * 1024)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
