"""The ``fluxhook`` command: use a running fluxhook over HTTP, and check or nudge one as its operator.

API commands (``submit``, ``show``, ``list``) talk to the web process at ``--url`` with a bearer
token, like any client. Operator commands (``sweep``, ``doctor``) read the same environment as
the service (``Config.from_env``) and talk to its Redis, storage and BFL directly.

Exit codes (also in ``fluxhook --help``):

    0  done; for ``submit --wait``, the image is stored and saved
    1  the job ended without an image (failed, moderated, expired); ``doctor``: a check failed
    2  the command line, the configuration or the request is wrong (the API answered 4xx)
    3  fluxhook, or its Redis, cannot be reached, or the API answered 5xx
    4  ``submit --wait`` gave up after ``--timeout`` seconds; the job goes on
  130  interrupted (Ctrl-C); a submitted job goes on

Runs as ``fluxhook ...`` once installed (``pip install -e .``), or as ``python -m fluxhook.cli ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TextIO
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from fluxhook import __version__
from fluxhook import transitions as st

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    done (submit --wait: the image is stored and saved)
  1    the job ended without an image (failed, moderated, expired); doctor: a check failed
  2    bad command line, configuration or request (the API answered 4xx)
  3    fluxhook or its Redis unreachable, or the API answered 5xx
  4    submit --wait gave up after --timeout seconds (the job goes on)
  130  interrupted
"""

DEFAULT_URL = "http://localhost:8000"
HTTP_TIMEOUT = (5, 30)  # connect, read (seconds)
HEARTBEAT_MAX_AGE = 60  # the same limit as GET /readyz
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
CHUNK = 64 * 1024


class CLIError(Exception):
    """Something to tell the user on stderr, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --- pure helpers ------------------------------------------------------------

def exit_code_for_http(status: int | None) -> int:
    """The exit code for an API answer that is not a success; ``None`` when nothing answered."""
    if status is not None and 400 <= status < 500:
        return EXIT_USAGE
    return EXIT_UNAVAILABLE


def exit_code_for_job(job: Mapping[str, Any]) -> int:
    """0 for a stored job, 1 for one that ended without an image; anything else is not terminal yet."""
    if job.get("status") == st.STORED:
        return EXIT_OK
    if job.get("status") in st.TERMINAL:
        return EXIT_JOB_FAILED
    raise ValueError(f"job status {job.get('status')!r} is not terminal")


def error_text(status: int, body: bytes | str, content_type: str = "") -> str:
    """``code: message`` from the API's error body (SPEC §3), or a plain description of what came back."""
    try:
        error = json.loads(body)["error"]
        code, message = error["code"], error["message"]
        if isinstance(code, str) and isinstance(message, str):
            return f"{code}: {message}"
    except (ValueError, KeyError, TypeError):
        pass
    kind = content_type.split(";")[0].strip() or "no content type"
    return f"http_{status}: the server answered {status} ({kind}), not a fluxhook error; is --url right?"


def format_table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """Rows as columns separated by two spaces, left-aligned; the last column is not padded."""
    headers = [str(h) for h in headers]
    table = [headers] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def job_row(job: Mapping[str, Any]) -> list[str]:
    """One line of ``list``: id, status, model, created, and the image or the error."""
    image, error = job.get("image"), job.get("error")
    if image:
        kind = EXTENSIONS.get(image.get("content_type"), image.get("content_type") or "?")
        detail = f"{kind} {image.get('width')}x{image.get('height')} {human_size(image.get('size') or 0)}"
    elif error:
        detail = str(error.get("code"))
    else:
        detail = f"BFL: {job['bfl_status']}" if job.get("bfl_status") else ""
    return [job.get("id", ""), job.get("status", ""), job.get("model") or "-", job.get("created_at") or "", detail]


JOB_COLUMNS = ("ID", "STATUS", "MODEL", "CREATED", "IMAGE / ERROR")


def human_size(size: int) -> str:
    """1536 → '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover (the loop always returns)


def image_extension(content_type: str | None) -> str:
    """The file extension for an image content type (``bin`` for an unknown one)."""
    return EXTENSIONS.get((content_type or "").split(";")[0].strip().lower(), "bin")


def output_path(output: str | None, job_id: str, content_type: str | None, cwd: Path | None = None) -> Path:
    """Where to save a job's image: ``output``, or ``<job id>.<ext>`` in ``output`` when it is a directory (or cwd)."""
    name = f"{job_id}.{image_extension(content_type)}"
    base = cwd or Path.cwd()
    if not output:
        return base / name
    path = Path(output).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.is_dir() or output.endswith(("/", os.sep)):
        return path / name
    return path


def redact_url(url: str) -> str:
    """The URL without its password (a Redis URL may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def json_object(text: str, option: str) -> dict:
    """Parse an option's JSON text; it must be an object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CLIError(f"{option} must be a JSON object, like '{{\"width\": 1024}}'")
    return value


def default_token(environ: Mapping[str, str]) -> str | None:
    """``FLUXHOOK_TOKEN``, else the first of ``API_TOKENS``."""
    token = (environ.get("FLUXHOOK_TOKEN") or "").strip()
    if token:
        return token
    tokens = [t.strip() for t in (environ.get("API_TOKENS") or "").split(",") if t.strip()]
    return tokens[0] if tokens else None


def status_line(job: Mapping[str, Any], elapsed: float, note: str = "") -> str:
    """``job_… submitted (BFL: Pending) 3.2 s``: what the progress indicator shows."""
    text = f"{job.get('id')} {job.get('status')}"
    if job.get("bfl_status"):
        text += f" (BFL: {job['bfl_status']})"
    text += f" {elapsed:.1f} s"
    return f"{text}, {note}" if note else text


class Progress:
    """A status line on stderr: a spinner redrawn in place on a terminal, a plain line per change otherwise."""

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
        line = status_line(job, elapsed)
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# --- the HTTP API --------------------------------------------------------------

class _Bearer(AuthBase):
    """The bearer token; as the session's auth it also keeps ~/.netrc from replacing it."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class APIClient:
    """The ``/v1`` API of one fluxhook web process."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = _Bearer(token)
        self.session.headers["User-Agent"] = f"fluxhook-cli/{__version__}"
        self.anonymous = requests.Session()  # for signed image URLs: they need no token, so none is sent
        self.anonymous.headers["User-Agent"] = self.session.headers["User-Agent"]

    def call(self, method: str, path: str, **kwargs) -> Any:
        """The JSON answer, or CLIError with the API's ``code: message`` and the matching exit code."""
        response = self._send(self.session, method, self.base_url + path, **kwargs)
        with response:
            if not 200 <= response.status_code < 300:
                raise self._error(response)
            try:
                return response.json()
            except ValueError:
                raise CLIError(f"{self.base_url} answered {response.status_code} without JSON; is --url a fluxhook?",
                               EXIT_UNAVAILABLE) from None

    def job(self, job_id: str) -> dict:
        return self.call("GET", f"/v1/jobs/{_path_part(job_id)}")

    def save_image(self, job: Mapping[str, Any], path: Path) -> None:
        """Download the job's image (its signed ``image.url``, else the API with the token) into ``path``."""
        image = job["image"]
        response = None
        if image.get("url"):
            try:
                response = self.anonymous.get(image["url"], stream=True, timeout=HTTP_TIMEOUT)
            except requests.RequestException:
                response = None  # PUBLIC_BASE_URL may not be reachable from here: ask --url instead
            if response is not None and response.status_code != 200:
                response.close()
                response = None
        if response is None:
            response = self._send(self.session, "GET", f"{self.base_url}/v1/jobs/{_path_part(job['id'])}/image",
                                  stream=True)
            if response.status_code != 200:
                with response:
                    raise self._error(response)
        with response:
            _write_verified(response, path, image.get("sha256"))

    def _send(self, session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        try:
            return session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise CLIError(f"cannot reach fluxhook at {self.base_url}: {_reason(exc)}", EXIT_UNAVAILABLE) from None

    @staticmethod
    def _error(response: requests.Response) -> CLIError:
        text = error_text(response.status_code, response.content[:65536], response.headers.get("Content-Type", ""))
        return CLIError(f"{text} (HTTP {response.status_code})", exit_code_for_http(response.status_code))


def _path_part(value: str) -> str:
    return quote(value, safe="")


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (is it running, and is --url right?)"
    return type(exc).__name__


def _write_verified(response: requests.Response, path: Path, sha256: str | None) -> None:
    """Stream the body into ``path`` atomically (a temp file renamed into place) after checking its sha256."""
    digest = hashlib.sha256()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            try:
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
            except requests.RequestException as exc:
                raise CLIError(f"the image download broke off: {_reason(exc)}", EXIT_UNAVAILABLE) from None
        if sha256 and digest.hexdigest() != sha256:
            raise CLIError("the downloaded image does not match the job's sha256; try again", EXIT_UNAVAILABLE)
        os.chmod(handle.name, 0o666 & ~_umask())
        os.replace(handle.name, path)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), file=stream or sys.stdout)


def _client(args: argparse.Namespace) -> APIClient:
    url = (args.url or os.environ.get("FLUXHOOK_URL") or DEFAULT_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CLIError(f"--url must be an http(s) URL such as {DEFAULT_URL}, got {url!r}")
    token = args.token or default_token(os.environ)
    if not token:
        raise CLIError("no API token: pass --token, or set FLUXHOOK_TOKEN (or API_TOKENS); "
                       "make run prints the dev token")
    return APIClient(url, token)


# --- API commands ------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    if not args.wait and (args.output is not None or args.timeout is not None):
        raise CLIError("--output and --timeout go with --wait")
    task_input = json_object(args.input_json, "--input-json") if args.input_json else {}
    if args.prompt is not None:
        task_input["prompt"] = args.prompt
    if not task_input:
        raise CLIError("give the task a --prompt (or its BFL request fields with --input-json)")
    body: dict[str, Any] = {"model": args.model, "input": task_input}
    if args.metadata_json:
        body["metadata"] = json_object(args.metadata_json, "--metadata-json")
    client = _client(args)
    job = client.call("POST", "/v1/jobs", json=body)
    if not args.wait:
        _print_json(job)
        return EXIT_OK
    return _wait_and_save(client, job, args.timeout if args.timeout is not None else 600.0, args.output)


def _wait_and_save(client: APIClient, job: dict, timeout: float, output: str | None,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    progress = Progress(sys.stderr)
    start = clock()
    next_poll, interval, note = start + 0.25, 0.25, ""
    try:
        while job.get("status") not in st.TERMINAL:
            now = clock()
            if now - start >= timeout:
                progress.clear()
                _print_json(job)
                raise CLIError(f"job {job['id']} is still {job['status']} after {timeout:g} s; it goes on: "
                               f"fluxhook show {job['id']}", EXIT_TIMEOUT)
            if now >= next_poll:
                try:
                    job, note = client.job(job["id"]), ""
                except CLIError as exc:
                    if exc.exit_code != EXIT_UNAVAILABLE:
                        raise
                    note = "fluxhook unreachable, retrying"  # a restart or a Redis blip: keep waiting
                interval = min(interval * 1.5, 2.0)
                next_poll = clock() + interval
                continue
            progress.update(job, now - start, note)
            sleep(min(0.1 if progress.tty else interval, max(next_poll - now, 0.01)))
    except KeyboardInterrupt:
        progress.clear()
        print(f"interrupted; the job goes on: fluxhook show {job['id']}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CLIError:
        progress.clear()
        raise
    progress.finish(job, clock() - start)
    code = exit_code_for_job(job)
    if code != EXIT_OK:
        _print_json(job)
        error = job.get("error") or {}
        raise CLIError(f"job {job['id']} ended {job['status']}: {error.get('code')}: {error.get('message')}",
                       code)
    path = output_path(output, job["id"], job["image"].get("content_type"))
    client.save_image(job, path)
    _print_json(job)
    image = job["image"]
    print(f"saved {path} ({image.get('content_type')}, {image.get('width')}x{image.get('height')}, "
          f"{human_size(image.get('size') or 0)})", file=sys.stderr)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    _print_json(_client(args).job(args.job_id))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    params = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    if args.cursor:
        params["cursor"] = args.cursor
    page = _client(args).call("GET", "/v1/jobs", params=params)
    if args.json:
        _print_json(page)
        return EXIT_OK
    jobs = page.get("jobs") or []
    if jobs:
        print(format_table(JOB_COLUMNS, (job_row(job) for job in jobs)))
    else:
        print("no jobs", file=sys.stderr)
    if page.get("next_cursor"):
        print(f"more: fluxhook list --cursor {page['next_cursor']}"
              + (f" --status {args.status}" if args.status else ""), file=sys.stderr)
    return EXIT_OK


# --- operator commands --------------------------------------------------------------

def _config():
    from fluxhook.config import Config
    from fluxhook.errors import ConfigError

    try:
        return Config.from_env()
    except ConfigError as exc:
        raise CLIError("the configuration is not valid:\n  " + "\n  ".join(exc.problems)) from None


def cmd_sweep(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from fluxhook.services import build_services
    from fluxhook.recovery.sweep import sweep

    config = _config()
    try:
        report = sweep(build_services(config))
    except RedisError as exc:
        raise CLIError(f"redis unreachable at {redact_url(config.redis_url)}: {type(exc).__name__}: {exc}",
                       EXIT_UNAVAILABLE) from None
    print(sweep_summary(dataclasses.asdict(report)))
    return EXIT_OK


SWEEP_WORDS = {"due": "a check queued for each", "dispatched": "queued jobs given a free BFL slot"}


def sweep_summary(report: Mapping[str, Any]) -> str:
    """``swept: 2 due (...), 0 dispatched (...)``, and any other count the sweep reports."""
    parts = [f"{value} {name}" + (f" ({SWEEP_WORDS[name]})" if name in SWEEP_WORDS else "")
             for name, value in report.items()]
    return "swept: " + ", ".join(parts)


@dataclass
class Check:
    name: str
    state: str  # ok, FAIL, warn, skip
    detail: str

    def line(self) -> str:
        return f"{self.state:<4}  {self.name:<8}  {self.detail}"


def run_checks(environ: Mapping[str, str] | None = None) -> Iterable[Check]:
    """The doctor's checks, one at a time (each is printed as soon as it is known)."""
    from fluxhook.config import Config
    from fluxhook.errors import ConfigError

    try:
        config = Config.from_env(environ)
    except ConfigError as exc:
        for problem in exc.problems:
            yield Check("config", "FAIL", problem)
        for name in ("redis", "storage", "worker", "bfl"):
            yield Check(name, "skip", "needs a valid configuration")
        return
    yield from config_checks(config)

    from fluxhook.services import build_services

    try:
        svc = build_services(config)
    except Exception as exc:  # noqa: BLE001 (a doctor reports, it does not crash)
        yield Check("services", "FAIL", f"cannot set up: {type(exc).__name__}: {exc}")
        return
    redis_ok = yield from _check_redis(svc)
    yield _check_storage(svc)
    if redis_ok:
        yield _check_worker(svc)
    else:
        yield Check("worker", "skip", "needs Redis")
    yield _check_bfl(svc)


def config_checks(config) -> list[Check]:
    """A valid configuration, and what it warns about (a PUBLIC_BASE_URL that BFL cannot reach)."""
    checks = [Check("config", "ok", f"valid (BFL_API_BASE={config.bfl_api_base}, STORAGE_URL={config.storage_url}, "
                                    f"PUBLIC_BASE_URL={config.public_base_url})")]
    checks += [Check("config", "warn", warning) for warning in config.warnings()]
    return checks


def _check_redis(svc):
    from redis.exceptions import RedisError

    where = redact_url(svc.config.redis_url)
    try:
        svc.redis.ping()  # connects
        start = time.perf_counter()
        svc.redis.ping()
        latency = (time.perf_counter() - start) * 1000
    except RedisError as exc:
        yield Check("redis", "FAIL", f"{where}: {type(exc).__name__}: {exc}")
        return False
    yield Check("redis", "ok", f"{where}: PING {latency:.1f} ms")
    return True


def _check_storage(svc) -> Check:
    try:
        writable = svc.storage.writable()
    except Exception as exc:  # noqa: BLE001
        return Check("storage", "FAIL", f"{svc.config.storage_url}: {type(exc).__name__}: {exc}")
    if writable:
        return Check("storage", "ok", f"{svc.config.storage_url} is writable")
    return Check("storage", "FAIL", f"{svc.config.storage_url} is not writable")


def _check_worker(svc) -> Check:
    from redis.exceptions import RedisError
    from rq import Worker

    try:
        workers = Worker.all(queue=svc.queue)
    except RedisError as exc:
        return Check("worker", "FAIL", f"cannot read the workers: {type(exc).__name__}: {exc}")
    now = time.time()
    ages = sorted(now - w.last_heartbeat.timestamp() for w in workers if w.last_heartbeat)
    fresh = [age for age in ages if age < HEARTBEAT_MAX_AGE]
    if fresh:
        return Check("worker", "ok", f"{len(fresh)} worker(s) alive, latest heartbeat {max(fresh[0], 0):.0f} s ago")
    seen = f"; the latest, {ages[0]:.0f} s ago" if ages else ""
    return Check("worker", "FAIL", f"no worker heartbeat in the last {HEARTBEAT_MAX_AGE} s "
                                   f"({len(workers)} registered{seen}): start one with `python -m worker`")


def _check_bfl(svc) -> Check:
    from fluxhook.bfl.client import BFLClient
    from fluxhook.errors import BFLError

    base = svc.config.bfl_api_base
    try:
        credits = BFLClient(svc.config, svc.http, attempts=1).credits()
    except BFLError as exc:
        return Check("bfl", "FAIL", f"{base}: {exc.message}")
    except Exception as exc:  # noqa: BLE001
        return Check("bfl", "FAIL", f"{base}: {type(exc).__name__}: {exc}")
    if credits <= 0:
        return Check("bfl", "FAIL", f"{base} answers, but no credits are left ({format_credits(credits)}): "
                                    "submissions fail with insufficient_credits")
    return Check("bfl", "ok", f"{base} answers; credits: {format_credits(credits)}")


def format_credits(credits: float) -> str:
    """1000000.0 → '1,000,000'; 12.5 → '12.50'."""
    return f"{int(credits):,}" if credits == int(credits) else f"{credits:,.2f}"


def cmd_doctor(args: argparse.Namespace) -> int:
    failed = False
    for check in run_checks():
        print(check.line(), flush=True)
        failed = failed or check.state == "FAIL"
    if failed:
        print("doctor: some checks failed", file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


# --- the command line ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxhook", epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Submit and inspect FLUX jobs through a running fluxhook, and check its health.",
    )
    parser.add_argument("--version", action="version", version=f"fluxhook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--url", help=f"fluxhook's base URL (default: $FLUXHOOK_URL, else {DEFAULT_URL})")
    api.add_argument("--token", help="bearer token (default: $FLUXHOOK_TOKEN, else the first of $API_TOKENS)")

    def command(name: str, func, help_text: str, parents=()) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=list(parents), help=help_text, description=help_text,
                                  epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=func)
        return sub

    submit = command("submit", cmd_submit, "submit a generation task; print the job", [api])
    submit.add_argument("--model", default="flux-2-pro", help="BFL model (default: flux-2-pro)")
    submit.add_argument("--prompt", help="the prompt (sets input.prompt)")
    submit.add_argument("--input-json", metavar="JSON", help="more BFL request fields, e.g. '{\"width\": 1024}'")
    submit.add_argument("--metadata-json", metavar="JSON", help="your own metadata to keep with the job")
    submit.add_argument("--wait", action="store_true",
                        help="show progress until the job ends, then save its image (exit 0 stored, 1 not)")
    submit.add_argument("--timeout", type=_positive_float, metavar="S", help="with --wait: give up after S seconds "
                        "(default 600; exit 4)")
    submit.add_argument("--output", "-o", metavar="PATH", help="with --wait: the image file, or a directory "
                        "(default: ./<job id>.<ext>)")

    show = command("show", cmd_show, "print one job", [api])
    show.add_argument("job_id", metavar="JOB_ID")

    listing = command("list", cmd_list, "list jobs, newest first", [api])
    listing.add_argument("--status", choices=st.STATUSES, help="only jobs with this status")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default 20)")
    listing.add_argument("--cursor", help="continue after this cursor (printed as 'more: ...')")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    command("sweep", cmd_sweep, "run one fallback sweep now (reads the service's environment)")
    command("doctor", cmd_doctor, "check configuration, Redis, storage, workers and BFL (reads the service's "
                                  "environment)")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 here
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fluxhook {args.command}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `fluxhook list | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
