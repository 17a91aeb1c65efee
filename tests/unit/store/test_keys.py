"""fluxhook/store/keys.py: the slot scripts' KEYS named once. Python builds them (``slot_script_keys``) and the
scripts read them by name through the Lua the module writes (``slot_layout_lua``); these run both on a real Redis."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib.resources import files

from fluxhook.core.accounts import Account, pools
from fluxhook.store.keys import (
    KEYS,
    SLOT_PER_ACCOUNT,
    SLOT_PER_ACCOUNT_POOL,
    SLOT_PER_POOL,
    SLOT_SHARED,
    slot_script_keys,
)
from fluxhook.store.scripts import source
from slot_helpers import _config

ACCOUNTS = (Account("eu", "k1", "http://127.0.0.1:1", region="eu", max_active=2),
            Account("us", "k2", "http://127.0.0.1:2", region="us", max_active=3))


def _named_by_lua(connection, keys: list[str], n_pools: int, n_accounts: int) -> list[str]:
    """Every key the Lua names, in the order Python's layout gives them, as the scripts read them."""
    reads = [f"K.{name}" for name in SLOT_SHARED]
    reads += [f"K.pool[{i}].{name}" for i in range(1, n_pools + 1) for name in SLOT_PER_POOL]
    for j in range(1, n_accounts + 1):
        reads += [f"K.account[{j}].{name}" for name in SLOT_PER_ACCOUNT]
        reads += [f"K.account[{j}].pool[{i}].{name}" for i in range(1, n_pools + 1) for name in SLOT_PER_ACCOUNT_POOL]
    script = (source("slot_layout") + f"\nlocal K = slot_layout({n_pools}, {n_accounts})\n"
              f"return {{{', '.join(reads)}, tostring(K.after)}}")
    return [v.decode() for v in connection.eval(script, len(keys), *keys)]


def test_the_scripts_read_each_key_by_the_name_python_built_it_under(connection):
    config = replace(_config(), named_accounts=ACCOUNTS)
    named = pools(config.pooled_limits)
    keys = slot_script_keys(KEYS, named, ACCOUNTS)
    assert len(set(keys)) == len(keys) == len(SLOT_SHARED) + len(named) * (1 + 2 * len(ACCOUNTS)) + len(ACCOUNTS)
    assert _named_by_lua(connection, keys, len(named), len(ACCOUNTS)) == [*keys, str(len(keys))]
    assert keys[0] == KEYS.due and keys[len(SLOT_SHARED)] == KEYS.line(named[0])
    assert keys[-1] == KEYS.paused(named[-1], "us")


def test_no_slot_script_numbers_the_shared_keys_by_hand():
    folder = files("fluxhook.store") / "lua"
    scripts = [path for path in folder.iterdir() if path.name.startswith("slots_") and path.name.endswith(".lua")]
    assert {"slots_prelude.lua", "slots_accounts.lua", "slots_line_states.lua"} <= {path.name for path in scripts}
    for path in scripts:
        assert not re.search(r"KEYS\[\d", path.read_text()), f"{path.name} indexes KEYS by number: name it in keys.SLOT_SHARED"
