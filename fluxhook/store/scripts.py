"""Running on Redis: the Lua scripts in ``lua/``, loaded from the package and run by SHA (redis-py loads them on a
miss), and what Redis answers read as Python values (the store's connections answer bytes), with times written as the
scores they are compared by."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, Sequence

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import ReadOnlyError, ResponseError

from fluxhook.store.keys import slot_layout_lua

# A script's first line naming the scripts that must come before it (a shared routine it calls).
NEEDS = "-- needs: "
# Scripts written from Python where both sides must agree (a layout of KEYS), needed by name like the files.
WRITTEN = {"slot_layout": slot_layout_lua}


@cache
def source(*names: str) -> str:
    """The text of ``lua/<name>.lua`` for each name, each after the scripts it names on a first line
    ``-- needs: a, b`` (and theirs), each script once."""
    order: list[str] = []
    for name in names:
        _after_needs(name, order)
    return "\n".join(_text(name) for name in order)


def _after_needs(name: str, order: list[str]) -> None:
    if name in order:
        return
    first = _text(name).partition("\n")[0]
    if first.startswith(NEEDS):
        for needed in first[len(NEEDS):].split(","):
            _after_needs(needed.strip(), order)
    order.append(name)


@cache
def _text(name: str) -> str:
    if name in WRITTEN:
        return WRITTEN[name]()
    return (files("fluxhook.store") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class LuaScript:
    """One script on one connection; each caller passes its KEYS explicitly, so it would run on Redis Cluster."""

    def __init__(self, connection: Redis, *names: str):
        self._connection = connection
        self._script: Script = connection.register_script(source(*names))

    def __call__(self, keys: Sequence[str], args: Sequence[Any] = (), client: Any = None) -> Any:
        try:
            return self._script(keys=list(keys), args=list(args), client=client)
        except ResponseError as error:
            if not refused_by_replica(error):
                raise
        # The primary we were connected to is a replica now (a failover, or a managed Redis whose address moved):
        # reconnect, which asks the sentinels or the address again, and run it there (safe: a replica refuses a script's
        # first write, so nothing of this run was kept). Only the idle connections (ours among them, back in the pool):
        # closing one another thread is reading from leaves that thread waiting for a reply until its socket times out.
        self._connection.connection_pool.disconnect(inuse_connections=False)
        return self._script(keys=list(keys), args=list(args), client=client)


def refused_by_replica(error: ResponseError) -> bool:
    """Whether a script failed at a write because it ran on a replica: Redis 7 and later answer a plain
    ``READONLY`` (redis-py's ``ReadOnlyError``), Redis 6 wraps it in the script's error."""
    return isinstance(error, ReadOnlyError) or "-READONLY " in str(error)


def text(value: Any) -> str:
    """An answer's bytes as text (a str given stays as it is)."""
    return value.decode() if isinstance(value, bytes) else value


def decode_hash(data: dict) -> dict[str, str]:
    """A hash's fields and values as text."""
    return {text(k): text(v) for k, v in data.items()}


def time_score(when: float | None) -> str:
    """A time as a sorted-set score argument; '' for none. Millisecond precision, so claims compare exactly."""
    return "" if when is None else f"{when:.3f}"
