"""The dev run's settings file: written while ``make run`` runs, for the ``fluxhook`` command to find
(``fluxhook.cli.dev_run`` reads it)."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from fluxhook.cli.dev_run import library_settings


def run_settings(env: Mapping[str, str], read: Iterable[str]) -> dict[str, str]:
    """What the run's web and worker read of ``env``: the settings its configuration ``read`` (names), and with S3
    storage those boto3 reads (AWS_*), so that the fluxhook command works with them as the service does."""
    own = {name: env[name] for name in read if env.get(name)}
    # A shell's AWS_* mean nothing to a run that stores files on disk: no copy of its credentials is written then.
    return {**library_settings(env), **own} if own.get("STORAGE_URL", "").startswith("s3:") else own


def write_dev_run(path: Path, settings: Mapping[str, str]) -> None:
    """Replace ``path`` with ``settings`` as shell assignments, readable by its owner only (they hold secrets)."""
    lines = ["# The settings of the make run now running; it removes this file when it stops.",
             *(f"{name}={shlex.quote(value)}" for name, value in sorted(settings.items()))]
    # mkstemp creates the file 0600, so the secrets are never readable by others, not even for a moment.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
