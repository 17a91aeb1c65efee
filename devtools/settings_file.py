"""The dev run's settings file: written while ``make run`` runs, for the ``fluxhook`` command to find
(``fluxhook.cli.dev_run`` reads it)."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Mapping


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
