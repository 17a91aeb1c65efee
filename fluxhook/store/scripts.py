"""The Lua scripts in ``lua/``, loaded from the package and run by SHA (redis-py loads them on a miss)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, Sequence

from redis import Redis
from redis.commands.core import Script


@cache
def source(*names: str) -> str:
    """The text of ``lua/<name>.lua`` for each name, joined (a shared prelude first)."""
    folder = files("fluxhook.store") / "lua"
    return "\n".join((folder / f"{name}.lua").read_text(encoding="utf-8") for name in names)


class LuaScript:
    """One script on one connection; each caller passes its KEYS explicitly, so it would run on Redis Cluster."""

    def __init__(self, connection: Redis, *names: str):
        self._script: Script = connection.register_script(source(*names))

    def __call__(self, keys: Sequence[str], args: Sequence[Any] = (), client: Any = None) -> Any:
        return self._script(keys=list(keys), args=list(args), client=client)
