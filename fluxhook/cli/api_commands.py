"""The API commands (``submit``, ``wait``, ``show``, ``list``, ``cancel``): fluxhook over HTTP through :mod:`fluxhook.client`,
like any app."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TextIO
from urllib.parse import urlsplit

from fluxhook import client as api
from fluxhook.cli.dev_run import dev_run_path, read_dev_run
from fluxhook.cli.exits import CLIError, ExitCode, going_on

DEFAULT_URL = "http://localhost:8000"
# How long ``submit --wait`` and ``wait`` wait for a job without ``--timeout``, in seconds.
WAIT_TIMEOUT = 600.0
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4"}


# --- pure helpers ------------------------------------------------------------

def exit_code_for_error(exc: api.APIError) -> ExitCode:
    """2 for a request the API refused; 3 when fluxhook could not answer; 4 for a wait that ran out."""
    if isinstance(exc, api.WaitTimeout):
        return ExitCode.TIMEOUT
    if isinstance(exc, (api.ServiceUnavailable, api.ChecksumMismatch)):
        return ExitCode.UNAVAILABLE
    return ExitCode.USAGE


def exit_code_for_job(job: Mapping[str, Any]) -> ExitCode:
    """0 for a stored job, 1 for one that ended without an image; anything else is not terminal yet."""
    if job.get("status") == "stored":
        return ExitCode.OK
    if job.get("status") in api.TERMINAL:
        return ExitCode.JOB_FAILED
    raise ValueError(f"job status {job.get('status')!r} is not terminal")


def format_table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """Rows as columns separated by two spaces, left-aligned; the last column is not padded."""
    headers = [str(h) for h in headers]
    table = [headers] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


JOB_COLUMNS = ("ID", "STATUS", "MODEL", "CREATED", "COST", "IMAGE / ERROR / WAITING")


def print_rows(headers: Iterable[str], rows: list[list[str]], none_text: str) -> None:
    """A listing as a table on stdout; with nothing in it, ``none_text`` on stderr, so a script reading stdout gets
    no line to mistake for a row."""
    if rows:
        print(format_table(headers, rows))
    else:
        tell(none_text)


def job_row(job: Mapping[str, Any]) -> list[str]:
    """One line of ``list``: id, status, model, created, credits, and the image (or video), the error, or why it
    waits."""
    media, error, waiting = job.get("video") or job.get("image"), job.get("error"), job.get("waiting")
    if media:
        kind = EXTENSIONS.get(media.get("content_type"), media.get("content_type") or "?")
        detail = f"{kind} {media.get('width')}x{media.get('height')} {human_size(media.get('size') or 0)}"
    elif error:
        detail = str(error.get("code"))
    elif waiting:
        detail = f"waiting: {waiting.get('reason')}" + (f" until {waiting['until']}" if waiting.get("until") else "")
    else:
        detail = f"BFL: {job['bfl_status']}" if job.get("bfl_status") else ""
    credits = (job.get("cost") or {}).get("credits")
    cost = f"{credits:g}" if isinstance(credits, (int, float)) else "-"
    return [job.get("id", ""), job.get("status", ""), job.get("model") or "-", job.get("created_at") or "", cost,
            detail]


def human_size(size: int) -> str:
    """1536 → '1.5 KiB'."""
    if size < 1024:
        return f"{int(size)} B"
    kib = size / 1024
    return f"{kib:.1f} KiB" if kib < 1024 else f"{kib / 1024:.1f} MiB"


def file_extension(content_type: str | None) -> str:
    """The file extension for an image or video content type (``bin`` for an unknown one)."""
    return EXTENSIONS.get((content_type or "").split(";")[0].strip().lower(), "bin")


def output_path(output: str | None, job_id: str, content_type: str | None, cwd: Path | None = None) -> Path:
    """Where to save a job's file: ``output``, or ``<job id>.<ext>`` in ``output`` when it is a directory (or cwd)."""
    name = f"{job_id}.{file_extension(content_type)}"
    base = cwd or Path.cwd()
    if not output:
        return base / name
    path = Path(output).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.is_dir() or output.endswith(("/", os.sep)):
        return path / name
    return path


def json_object(text: str, option: str) -> dict:
    """Parse an option's JSON text; it must be an object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CLIError(f"{option} must be a JSON object, like '{{\"width\": 1024}}'")
    return value


def positive_float(text: str) -> float:
    """An option's number of seconds, more than 0 (argparse's ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def default_token(environ: Mapping[str, str]) -> str | None:
    """``FLUXHOOK_TOKEN``, else the first of ``API_TOKENS``."""
    token = (environ.get("FLUXHOOK_TOKEN") or "").strip()
    if token:
        return token
    tokens = [t.strip() for t in (environ.get("API_TOKENS") or "").split(",") if t.strip()]
    return tokens[0] if tokens else None


def api_target(url: str | None, token: str | None, environ: Mapping[str, str],
               dev_run: Mapping[str, str] | None) -> tuple[str, str | None]:
    """The URL and token to use: the options, else the environment, else the running ``make run``'s (whose token goes
    only to its own URL)."""
    url = (url or environ.get("FLUXHOOK_URL") or "").strip()
    token = token or default_token(environ)
    dev_settings = dev_run or {}
    dev_url = dev_settings.get("FLUXHOOK_URL")
    if not url:
        url = dev_url or DEFAULT_URL
    if not token and dev_url and url.rstrip("/") == dev_url.rstrip("/"):
        token = default_token({"API_TOKENS": dev_settings.get("API_TOKENS", "")})
    return url, token


def job_goes_on(job_id: str) -> str:
    """What a Ctrl-C leaves of a submitted job, and how to follow or stop it."""
    return f"the job goes on: fluxhook show {job_id} (fluxhook cancel {job_id} stops it)"


def status_line(job: Mapping[str, Any], elapsed: float, note: str = "") -> str:
    """``job_… submitted (BFL: Pending) 3.2 s``: what the progress indicator shows."""
    text = f"{job.get('id')} {job.get('status')}"
    if job.get("bfl_status"):
        text += f" (BFL: {job['bfl_status']})"
    text += f" {elapsed:.1f} s"
    return f"{text}, {note}" if note else text


class Progress:
    """A status line on stderr: redrawn in place with a spinner on a terminal, a plain line per change otherwise."""

    FRAMES = "|/-\\"
    PLAIN_EVERY = 30.0  # without a terminal, repeat an unchanged status this often, so logs show it is alive

    def __init__(self, stream: TextIO, tty: bool | None = None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.frame = 0
        self.last: tuple | None = None
        self.last_at = 0.0
        self.drawn = False

    def update(self, job: Mapping[str, Any], elapsed: float, note: str = "") -> None:
        line = status_line(job, elapsed, note)
        if self.tty:
            self.frame = (self.frame + 1) % len(self.FRAMES)
            self.stream.write(f"\r\x1b[K{self.FRAMES[self.frame]} {line}")
            self.drawn = True
        else:
            key = (job.get("status"), job.get("bfl_status"), note)
            if key == self.last and elapsed - self.last_at < self.PLAIN_EVERY:
                return
            self.last, self.last_at = key, elapsed
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, job: Mapping[str, Any], elapsed: float) -> None:
        redraw = "\r\x1b[K" if self.tty else ""
        self.stream.write(f"{redraw}{status_line(job, elapsed)}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def tell(text: str) -> None:
    """``text`` as a line on stderr, written in one piece: a Ctrl-C while it is written leaves the line whole, so what
    the interrupt says starts a line of its own (``print`` writes the newline apart, and an interrupt can drop it)."""
    sys.stderr.write(text + "\n")


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def listed(text: str) -> list[str]:
    """An option's names, separated by commas or spaces (``a,b c``)."""
    return [name for name in text.replace(",", " ").split() if name]


# --- API commands ------------------------------------------------------------------

def action_adder(group: argparse.ArgumentParser, dest: str, target: argparse.ArgumentParser
                 ) -> Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]:
    """The ACTIONs of a command that has them (``keys create``, ``deliveries list``): a function adding one, with
    the ``target`` options, that runs ``run``."""
    actions = group.add_subparsers(dest=dest, metavar="ACTION", required=True)

    def action(name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, parents=[target], help=help_text, description=help_text)
        sub.set_defaults(func=run)
        return sub

    return action


def client_for(args: argparse.Namespace) -> api.Client:
    url, token = api_target(args.url, args.token, os.environ, read_dev_run(dev_run_path(os.environ)))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CLIError(f"--url must be an http(s) URL such as {DEFAULT_URL}, got {url!r}")
    if not token:
        raise CLIError("no API token: pass --token, or set FLUXHOOK_TOKEN (or API_TOKENS); "
                       "make run prints the dev token")
    return api.Client(url, token)


def cmd_submit(args: argparse.Namespace) -> int:
    if not args.wait and (args.output is not None or args.timeout is not None):
        raise CLIError("--output and --timeout go with --wait")
    task_input = json_object(args.input_json, "--input-json") if args.input_json else {}
    if args.prompt is not None:
        task_input["prompt"] = args.prompt
    if not task_input:
        raise CLIError("give the task a --prompt (or its BFL request fields with --input-json)")
    metadata = json_object(args.metadata_json, "--metadata-json") if args.metadata_json else None
    with client_for(args) as client:
        job = client.submit(args.model, task_input, metadata=metadata, cancel_after=args.cancel_after,
                            end_user=args.end_user)
        going_on(job_goes_on(job.id))
        if not args.wait:
            print_json(job)
            return ExitCode.OK
        return _wait_and_save(client, job, args.timeout if args.timeout is not None else WAIT_TIMEOUT, args.output)


def cmd_wait(args: argparse.Namespace) -> int:
    """Wait for a job made before to end, as ``submit --wait`` waits for the job it makes, and save its image."""
    with client_for(args) as client:
        job = client.get(args.job_id)  # an unknown job, or another key's, is refused before any wait
        going_on(None if job.terminal else job_goes_on(job.id))
        return _wait_and_save(client, job, args.timeout, args.output)


def _wait_and_save(client: api.Client, job: api.Job, timeout: float, output: str | None) -> int:
    progress = Progress(sys.stderr)
    start = time.monotonic()

    def show(latest: api.Job | None, error: api.APIError | None) -> None:
        # A restart or a Redis blip: the job goes on, and so does the wait.
        progress.update(latest or job, time.monotonic() - start, "fluxhook unreachable, retrying" if error else "")

    try:
        job = client.wait(job.id, timeout, on_update=show)
    except KeyboardInterrupt:
        progress.clear()  # main says what goes on, on a line of its own
        raise
    except api.WaitTimeout as exc:
        progress.clear()
        seen = exc.job or job
        print_json(seen)
        raise CLIError(f"job {job.id} is still {seen.status} after {timeout:g} s; it goes on: "
                       f"fluxhook show {job.id}", ExitCode.TIMEOUT) from None
    except api.APIError:
        progress.clear()
        raise
    going_on(None)
    progress.finish(job, time.monotonic() - start)
    code = exit_code_for_job(job)
    if code != ExitCode.OK:
        print_json(job)
        error = job.error or {}
        raise CLIError(f"job {job.id} ended {job.status}: {error.get('code')}: {error.get('message')}", code)
    media = job.video or job.image
    path = output_path(output, job.id, media.get("content_type"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download(job, path)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    print_json(job)
    tell(f"saved {path} ({media.get('content_type')}, {media.get('width')}x{media.get('height')}, "
         f"{human_size(media.get('size') or 0)})")
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        print_json(client.get(args.job_id))
    return ExitCode.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a job and print it as canceled; a job that had ended is a refused request (exit 2), left as it was."""
    with client_for(args) as client:
        print_json(client.cancel(args.job_id))
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        filters: api.ListFilters = {}
        if args.status:
            filters["status"] = args.status
        if args.model:
            filters["model"] = args.model
        if args.end_user:
            filters["end_user"] = args.end_user
        page = next(client.pages(page_size=args.limit, cursor=args.cursor, **filters))
    if args.json:
        print_json({"jobs": page.jobs, "next_cursor": page.next_cursor})
        return ExitCode.OK
    print_rows(JOB_COLUMNS, [job_row(job) for job in page.jobs], "no jobs")
    if page.next_cursor:
        tell(f"more: fluxhook list --cursor {page.next_cursor}"
             + (f" --status {args.status}" if args.status else "")
             + (f" --model {args.model}" if args.model else "")
             + (f" --end-user {shlex.quote(args.end_user)}" if args.end_user else ""))
    return ExitCode.OK
