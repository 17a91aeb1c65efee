"""The ``fluxhook`` command line: its arguments, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from fluxhook import __version__
from fluxhook import client as api
from fluxhook.cli import accounts, batches, deliveries, keys
from fluxhook.cli.api_commands import (
    DEFAULT_URL,
    WAIT_TIMEOUT,
    cmd_cancel,
    cmd_list,
    cmd_show,
    cmd_submit,
    cmd_wait,
    exit_code_for_error,
    positive_float,
    tell,
)
from fluxhook.cli.exits import EXIT_CODES_HELP, CLIError, ExitCode, interrupted_now


def _operator(name: str):
    def run(args: argparse.Namespace) -> int:
        # Imported on use: the operator's commands bring the service's own dependencies (Redis, RQ,
        # storage), which the API commands never need and a client-only install does not have.
        from fluxhook.cli import operator_commands

        return getattr(operator_commands, name)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxhook", epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Submit and inspect FLUX jobs through a running fluxhook, and check its health.",
    )
    parser.add_argument("--version", action="version", version=f"fluxhook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    url_help = f"fluxhook's base URL (default: $FLUXHOOK_URL, else the running make run's, else {DEFAULT_URL})"
    token_help = "bearer token (default: $FLUXHOOK_TOKEN, else the first of $API_TOKENS, else the running make run's)"
    # Before the command or after it: `fluxhook --url U show ID` and `fluxhook show ID --url U` alike.
    parser.add_argument("--url", help=url_help)
    parser.add_argument("--token", help=token_help)
    target = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: left out after the command, they keep the value given before it.
    target.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    target.add_argument("--token", default=argparse.SUPPRESS, help=token_help)

    def command(name: str, func, help_text: str, parents=()) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=list(parents), help=help_text, description=help_text,
                                  epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=func)
        return sub

    _add_job_commands(command, target)
    batches.add_commands(command, target)
    keys.add_commands(command, target)
    deliveries.add_commands(command, target)
    accounts.add_command(command, target)
    command("sweep", _operator("cmd_sweep"), "run one fallback sweep now (reads the service's settings)")
    command("doctor", _operator("cmd_doctor"), "check settings, Redis, worker, storage and BFL (reads the "
                                               "service's settings)")
    migrate = command("migrate", _operator("cmd_migrate"), "bring what older releases kept in Redis into today's "
                                                           "shape, once (workers do it as they start)")
    migrate.add_argument("--again", action="store_true",
                         help="run every step even though it ran (a process of an older release wrote since)")
    return parser


def _add_job_commands(command: Callable[..., argparse.ArgumentParser], target: argparse.ArgumentParser) -> None:
    submit = command("submit", cmd_submit, "submit a generation task; print the job", [target])
    submit.add_argument("--model", default="flux-2-pro", help="BFL model (default: flux-2-pro)")
    submit.add_argument("--prompt", help="the prompt (sets input.prompt)")
    submit.add_argument("--input-json", metavar="JSON", help="more BFL request fields, e.g. '{\"width\": 1024}'")
    submit.add_argument("--metadata-json", metavar="JSON", help="your own metadata to keep with the job")
    submit.add_argument("--end-user", metavar="END_USER", help="your app's own user the job is for, at most 128 "
                        "characters, never sent to BFL (the key's limits per end user apply)")
    submit.add_argument("--wait", action="store_true",
                        help="show progress until the job ends, then save its image (exit 0 stored, 1 not)")
    submit.add_argument("--timeout", type=positive_float, metavar="S", help="with --wait: give up after S seconds "
                        f"(default {WAIT_TIMEOUT:g}; exit 4)")
    submit.add_argument("--output", "-o", metavar="PATH", help="with --wait: the image file, or a directory "
                        "(default: ./<job id>.<ext>)")
    submit.add_argument("--cancel-after", metavar="DURATION", help="the job's deadline, 5s to 24h (30s, 5m, 1h30m): "
                        "not sent by then it ends aborted, sent but not stored canceled")

    wait = command("wait", cmd_wait, "show a job's progress until it ends, then save its image, as submit --wait "
                                     "does (exit 0 stored, 1 not)", [target])
    wait.add_argument("job_id", metavar="JOB_ID")
    wait.add_argument("--timeout", type=positive_float, default=WAIT_TIMEOUT, metavar="S",
                      help=f"give up after S seconds (default {WAIT_TIMEOUT:g}; exit 4; the job goes on)")
    wait.add_argument("--output", "-o", metavar="PATH", help="the image file, or a directory (default: ./<job id>.<ext>)")

    show = command("show", cmd_show, "print one job", [target])
    show.add_argument("job_id", metavar="JOB_ID")

    cancel = command("cancel", cmd_cancel, "cancel a job: queued, it is never sent; sent, BFL's charge stays; "
                                           "print it", [target])
    cancel.add_argument("job_id", metavar="JOB_ID")

    listing = command("list", cmd_list, "list jobs, newest first", [target])
    listing.add_argument("--status", choices=api.STATUSES, help="only jobs with this status")
    listing.add_argument("--model", help="only jobs of this model")
    listing.add_argument("--end-user", metavar="END_USER", help="only jobs made for this end user")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default 20)")
    listing.add_argument("--cursor", help="continue after this cursor (printed as 'more: ...')")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 here
    try:
        return _run(args)
    except KeyboardInterrupt:
        # Outside the other handlers: a Ctrl-C while an error is being said still says what goes on.
        tell(interrupted_now())
        return ExitCode.INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except CLIError as exc:
        tell(f"fluxhook {args.command}: {exc.message}")
        return exc.exit_code
    except api.APIError as exc:
        tell(f"fluxhook {args.command}: {exc}")
        return exit_code_for_error(exc)
    except BrokenPipeError:
        # `fluxhook list | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK

