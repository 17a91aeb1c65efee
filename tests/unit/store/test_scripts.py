"""fluxhook/store/scripts.py: a script is its ``-- needs:`` libraries' text, then its own, in one body. So that no
name of one library is shared with everything after it, each library is a module: it defines one top-level name,
a table named for its file, and the scripts call through it (``members.member(...)``)."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from fluxhook.store.scripts import NEEDS, WRITTEN, source

LUA = files("fluxhook.store") / "lua"
MODULES = ("members", "fair_turns", "routes", "slot_time", "effects", "job_record", "slots_accounts", "slots_prelude",
           "account_standing", "slots_waits", "slot_holders", "slot_counts", "timeline", "notify_room", "batch_counts",
           "queue_room", "work_moves", "token_bucket", "outbox", "sweep_index", "counters")
# Written from Python (store/keys.py's slot layout): one top-level function named for it.
WRITTEN_LIBRARIES = {"slot_layout"}


def _text(name: str) -> str:
    return (LUA / f"{name}.lua").read_text(encoding="utf-8")


def _top_level_names(text: str) -> list[str]:
    """Every name a chunk's top level makes: its lines at column 0 (a module's body is indented) that declare a
    local, define a function, or assign, outside comments and long strings."""
    text = re.sub(r"--\[(=*)\[.*?\]\1\]|\[(=*)\[.*?\]\2\]", "", text, flags=re.S)
    names = []
    for line in text.splitlines():
        line = line.split("--", 1)[0].rstrip()
        if not line or line[0].isspace() or line in ("end", "}", ")"):
            continue
        declared = re.match(r"local\s+function\s+(\w+)|local\s+([\w\s,]+?)\s*(=|$)", line)
        if declared:
            names += [n.strip() for n in (declared[1] or declared[2]).split(",")]
            continue
        defined = re.match(r"function\s+([\w.:]+)|([\w.\[\]'\"]+)\s*=[^=]", line)
        if defined:
            names.append(defined[1] or defined[2])
            continue
        names.append(line)  # any other statement at the top level (a call, a loop) is a module's business too
    return names


def _needed() -> set[str]:
    """Every script some script names on its ``-- needs:`` line: the libraries."""
    found = set()
    for path in LUA.iterdir():
        if path.name.endswith(".lua"):
            first = path.read_text(encoding="utf-8").partition("\n")[0]
            if first.startswith(NEEDS):
                found |= {n.strip() for n in first[len(NEEDS):].split(",")}
    return found


@pytest.mark.parametrize("name", MODULES)
def test_a_library_declares_one_local_its_table_and_puts_everything_else_in_it(name):
    names = _top_level_names(_text(name))
    assert names[0] == name, f"lua/{name}.lua must begin its code with `local {name} = {{}}`, found {names[0]!r}"
    assert all(n.startswith(f"{name}.") for n in names[1:]), \
        f"lua/{name}.lua makes {[n for n in names[1:] if not n.startswith(name + '.')]} beside its table"


@pytest.mark.parametrize("name", sorted(WRITTEN_LIBRARIES))
def test_a_library_written_from_python_declares_one_local_its_function(name):
    assert _top_level_names(WRITTEN[name]()) == [name]


def test_the_check_finds_a_shared_name_and_passes_a_module():
    assert _top_level_names("local m = {}\nfunction m.f(x)\n  local y = x\n  return y\nend\nm.LIMIT = 3 -- s\n") == \
        ["m", "m.f", "m.LIMIT"]
    assert _top_level_names("local m = {}\nlocal function helper() end\nlocal A, B = 1, 2\nx = 1\n") == \
        ["m", "helper", "A", "B", "x"]
    assert _top_level_names("--[[\nlocal hidden = 1\n]]\nlocal m = {}\nredis.call('DEL', KEYS[1])\n") == \
        ["m", "redis.call('DEL', KEYS[1])"]


def test_every_library_a_script_needs_is_a_module():
    assert _needed() <= set(MODULES) | WRITTEN_LIBRARIES
    assert set(MODULES) <= _needed()  # no module left that nothing needs
    assert set(WRITTEN) == WRITTEN_LIBRARIES


@pytest.mark.parametrize("name", MODULES)
def test_a_library_run_alone_leaves_its_table_and_no_global(connection, name):
    """Run by Redis with what it needs: it makes its table (and Redis refuses a script that sets a global)."""
    kinds = connection.eval(source(name) + f"\nlocal kinds = {{}}\nfor k, v in pairs({name}) do"
                            " kinds[#kinds + 1] = k .. '=' .. type(v) end\ntable.sort(kinds)\nreturn kinds", 0)
    assert kinds and all(k.decode().split("=")[1] in ("function", "number", "string") for k in kinds)


def test_a_script_calls_a_library_through_its_table_and_sees_no_name_of_its_own(connection):
    # The old shared name is gone: Redis 7 refuses a read of an unknown global, an older one reads nil.
    script = source("members") + ("\nlocal ok, found = pcall(function() return member end)"
                                  "\nreturn {members.member('key_a', 'j1'), (ok and found ~= nil) and 1 or 0}")
    assert connection.eval(script, 0) == [b"key_a:j1", 0]


def _uses(text: str) -> set[str]:
    """The libraries a chunk calls through: ``name.`` or ``name(`` of a module or a written library, outside comments
    and strings."""
    text = re.sub(r"--\[(=*)\[.*?\]\1\]|--[^\n]*|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", "", text, flags=re.S)
    return {name for name in (*MODULES, *WRITTEN_LIBRARIES) if re.search(rf"(?<![\w.]){name}\s*[.(]", text)}


def _needs(name: str) -> set[str]:
    first = _text(name).partition("\n")[0]
    return {n.strip() for n in first[len(NEEDS):].split(",")} if first.startswith(NEEDS) else set()


@pytest.mark.parametrize("name", sorted(p.name[:-4] for p in LUA.iterdir() if p.name.endswith(".lua")))
def test_a_script_names_on_its_needs_line_every_library_it_calls(name):
    """Not only through another library that needs it: a script works then, but a library that stops needing the
    module takes it from every script that used it without saying so."""
    missing = _uses(_text(name)) - _needs(name) - {name}
    assert not missing, f"lua/{name}.lua calls {sorted(missing)}: add them to its `{NEEDS.strip()}` line"


def test_the_needs_check_finds_a_library_called_and_not_one_named_in_a_comment_or_a_string():
    assert _uses("local s = slots_accounts.read()\nlocal K = slot_layout(1, 2)\n") == {"slots_accounts", "slot_layout"}
    assert _uses("-- members.member(owner, job)\nlocal x = 'routes.allows'\nlocal my_members = {}\n") == set()
