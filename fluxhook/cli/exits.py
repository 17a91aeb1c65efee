"""The ``fluxhook`` command's exit codes, one table for every command, and the error that carries one."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the ``fluxhook`` command's exit status means, for every subcommand."""

    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    TIMEOUT = 4
    INTERRUPTED = 130


EXIT_MEANINGS = {
    ExitCode.OK: "done (submit --wait: the image is stored and saved; batch submit: every item is stored)",
    ExitCode.JOB_FAILED: "the job ended without an image (failed, moderated, expired, canceled, aborted); batch "
                         "submit: an item did, or the batch was canceled; doctor: a check failed",
    ExitCode.USAGE: "bad command line, configuration or request (the API answered 4xx)",
    ExitCode.UNAVAILABLE: "fluxhook or its Redis unreachable, or the API answered 5xx",
    ExitCode.TIMEOUT: "submit --wait or batch submit gave up after --timeout seconds (the job or batch goes on)",
    ExitCode.INTERRUPTED: "interrupted (a submitted job or batch goes on)",
}
EXIT_CODES_HELP = "exit codes:\n" + "".join(f"  {code.value:<4} {text}\n" for code, text in EXIT_MEANINGS.items())


class CLIError(Exception):
    """Something to tell the user on stderr, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
