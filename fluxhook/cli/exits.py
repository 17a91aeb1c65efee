"""The ``fluxhook`` command's exit codes, one table for every command, the error that carries one, and what a Ctrl-C
says."""

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
    ExitCode.OK: "done (submit --wait, wait: the image is stored and saved; batch submit, batch show --watch: every "
                 "item is stored)",
    ExitCode.JOB_FAILED: "the job ended without an image (failed, moderated, expired, canceled, aborted); batch "
                         "submit, batch show --watch: an item did, or the batch was canceled; doctor: a check failed",
    ExitCode.USAGE: "bad command line, configuration or request (the API answered 4xx)",
    ExitCode.UNAVAILABLE: "fluxhook or its Redis unreachable, or the API answered 5xx",
    ExitCode.TIMEOUT: "submit --wait, wait, batch submit or batch show --watch gave up after --timeout seconds (the "
                      "job or batch goes on)",
    ExitCode.INTERRUPTED: "interrupted (a job or batch the command named goes on)",
}
EXIT_CODES_HELP = "exit codes:\n" + "".join(f"  {code.value:<4} {text}\n" for code, text in EXIT_MEANINGS.items())


class CLIError(Exception):
    """Something to tell the user on stderr, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# What a Ctrl-C leaves running and how to follow or stop it, once the command has named a job or a batch; main's one
# KeyboardInterrupt handler says it, so no window is left between a command naming the id and handling the interrupt.
_going_on: str | None = None


def going_on(what: str | None) -> None:
    """From now on a Ctrl-C says ``what`` (``None`` once nothing goes on). Set before the line naming the id is
    written: an interrupt while that line is written still says it."""
    global _going_on
    _going_on = what


def interrupted(what: str | None) -> str:
    """The line a Ctrl-C prints: ``interrupted``, and what goes on and how to follow or stop it when a job or batch
    does."""
    return f"interrupted; {what}" if what else "interrupted"


def interrupted_now() -> str:
    """What a Ctrl-C says at this moment of the command."""
    return interrupted(_going_on)
