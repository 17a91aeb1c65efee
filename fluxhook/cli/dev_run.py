"""The settings of the ``make run`` now running, which the commands use when told nothing else.

``devtools/run.py`` writes them (``devtools.settings_file``) while it runs, readable by its owner only.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_RUN_FILE = "dev-run.env"
# Settings the service's processes read from their environment through a library, not its configuration:
# boto3's (credentials, profile, region, endpoint, checksums) for S3 storage.
LIBRARY_PREFIXES = ("AWS_",)


def library_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """The settings of ``settings`` that a library reads (``LIBRARY_PREFIXES``), not fluxhook's configuration."""
    return {name: value for name, value in settings.items() if name.startswith(LIBRARY_PREFIXES)}


def dev_run_path(environ: Mapping[str, str]) -> Path:
    """Where ``make run`` keeps its settings while it runs: ``$FLUXHOOK_VAR``, else the project's ``var/``."""
    return Path(environ.get("FLUXHOOK_VAR") or PROJECT_ROOT / "var") / DEV_RUN_FILE


def read_dev_run(path: Path) -> dict[str, str] | None:
    """The settings ``write_dev_run`` wrote at ``path``; ``None`` when there is no such file (or it is not ours)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    settings = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            try:
                words = shlex.split(value)
            except ValueError:
                continue  # not written by write_dev_run: better no value than a wrong one
            settings[name.strip()] = words[0] if words else ""
    return settings
