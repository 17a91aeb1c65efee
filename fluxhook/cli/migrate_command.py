"""``fluxhook migrate``: bring what older releases kept in Redis into today's shape (``fluxhook.store.migrations``),
as every worker does when it starts. An operator command: it reads the service's own settings."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

from fluxhook.cli.exits import CLIError, ExitCode

if TYPE_CHECKING:
    from fluxhook.store.migrations import Migrated

MIGRATED_WORDS = (("lines", "jobs moved from an old line into today's"), ("slots", "slots given their account"),
                  ("accounts", "jobs given their task's account"), ("sealed", "values sealed"))


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``migrate``, using the main command's ``command`` helper."""
    migrate = command("migrate", cmd_migrate, "bring what older releases kept in Redis into today's shape, once "
                                              "(workers do it as they start; reads the service's settings)")
    migrate.add_argument("--again", action="store_true",
                         help="run every step even though it ran (a process of an older release wrote since)")


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate, and print what it changed."""
    # Imported on use, as the other operator commands: they need the service's own dependencies (Redis).
    from redis.exceptions import RedisError

    from fluxhook.cli.operator_commands import _config, service_settings
    from fluxhook.lifecycle.readiness import redact_url
    from fluxhook.services import connect_redis
    from fluxhook.store import migrations

    settings = service_settings()
    if settings.dev_run:
        print(f"fluxhook migrate: settings {settings.source()}", file=sys.stderr)
    config = _config(settings)
    try:
        done = migrations.migrate(connect_redis(config), config, again=args.again)
    except RedisError as exc:
        raise CLIError(f"redis unreachable at {redact_url(config.redis_url)}: {type(exc).__name__}: {exc}",
                       ExitCode.UNAVAILABLE) from None
    print(migrated_summary(done, migrations.SCHEMA_VERSION))
    return ExitCode.OK


def migrated_summary(done: Migrated, version: int) -> str:
    """``migrated to schema 1: 2 jobs moved from an old line into today's, ...``, or that nothing was to do."""
    if not done.ran:
        return f"nothing to migrate: Redis holds schema {version} already"
    return f"migrated to schema {version}: " + ", ".join(f"{getattr(done, name)} {words}" for name, words in MIGRATED_WORDS)
