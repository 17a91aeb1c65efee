"""``fluxhook migrate`` (fluxhook/cli/operator_commands.py) in-process on a real Redis: what it changed, then that nothing
was left to do; its ``--again``; an unreachable Redis. The migration itself: tests/unit/store/test_migrations.py."""

from __future__ import annotations

import argparse

import pytest

from devtools.processes import free_port
from fluxhook.cli import operator_commands
from fluxhook.cli.exits import CLIError, ExitCode
from fluxhook.cli.main import build_parser
from fluxhook.store.keys import KEYS
from fluxhook.store.migrations import SCHEMA_VERSION, Migrated

SETTINGS = {"SECRET_KEY": "s" * 32, "API_TOKENS": "t" * 16, "BFL_API_KEY": "key"}


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def test_the_summary_says_what_it_changed_or_that_nothing_was_to_do():
    assert operator_commands.migrated_summary(Migrated(), 1) == "nothing to migrate: Redis holds schema 1 already"
    assert operator_commands.migrated_summary(Migrated(ran=True, lines=2, sealed=1), 1) == (
        "migrated to schema 1: 2 jobs moved from an old line into today's, 0 slots given their account, "
        "0 slot holders given their one entry, 0 jobs given their task's account, 1 values sealed")


def test_migrate_changes_what_an_older_release_kept_once(connection, monkeypatch, capsys):
    kwargs = connection.connection_pool.connection_kwargs
    for name, value in {**SETTINGS, "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"}.items():
        monkeypatch.setenv(name, value)
    connection.zadd(KEYS.legacy_line("default"), {"job_01JZZZZZZZZZZZZZZZZZZZZZZZ": 1})  # a job gone meanwhile

    args = _parser().parse_args(["migrate"])
    assert args.func(args) == ExitCode.OK
    assert capsys.readouterr().out.startswith(f"migrated to schema {SCHEMA_VERSION}: 0 jobs moved")
    assert connection.exists(KEYS.legacy_line("default")) == 0
    assert args.func(args) == ExitCode.OK
    assert capsys.readouterr().out == f"nothing to migrate: Redis holds schema {SCHEMA_VERSION} already\n"
    again = _parser().parse_args(["migrate", "--again"])
    assert again.again and again.func(again) == ExitCode.OK
    assert capsys.readouterr().out.startswith(f"migrated to schema {SCHEMA_VERSION}: ")


def test_migrate_without_redis_is_unavailable(monkeypatch):
    for name, value in {**SETTINGS, "REDIS_URL": f"redis://:pw-secret@127.0.0.1:{free_port()}/0"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(CLIError) as refused:
        operator_commands.cmd_migrate(argparse.Namespace(again=False))
    assert refused.value.exit_code == ExitCode.UNAVAILABLE and "pw-secret" not in refused.value.message
