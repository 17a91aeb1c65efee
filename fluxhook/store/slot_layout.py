"""The KEYS of the slot scripts, named once: ``script_keys`` builds them in this order, and the scripts read them by
name through the Lua this module writes (``lua_names``, loaded as the script ``slot_layout``). A key added here
reaches both sides; nothing is numbered by hand."""

from __future__ import annotations

from typing import Sequence

from fluxhook.core.accounts import Account
from fluxhook.store.keys import Keys

# Each is a ``Keys`` attribute, and the script's ``K.<name>``: one key each, first, in this order.
SHARED = ("due", "fair_held", "fair_passes", "share_weights", "share_max_active", "slot_holders", "routes",
          "slot_freed", "aside", "slot_counts", "queued_jobs", "queue_room", "queue_room_lapses", "sweep_added", "store_held")
# Then per pool, in the scripts' order of pools: ``K.pool[i].<name>`` (``Keys.<name>(pool)``).
PER_POOL = ("line",)
# Then per account, in their order: ``K.account[j].<name>`` (``Keys.<name>(account)``), then per pool
# ``K.account[j].pool[i].<name>`` (``Keys.<name>(pool, account)``).
PER_ACCOUNT = ("cooling",)
PER_ACCOUNT_POOL = ("slots", "paused")


def script_keys(keys: Keys, pools: Sequence[str], accounts: Sequence[Account]) -> list[str]:
    """The KEYS of every slot script; the keys a script has of its own follow from ``K.after + 1`` in Lua: a job's
    record, or for a job ``slots_acquire`` makes, the keys of its record's spec (``JobStore.creation``)."""
    found = [getattr(keys, name) for name in SHARED]
    found += [getattr(keys, name)(pool) for pool in pools for name in PER_POOL]
    for account in accounts:
        found += [getattr(keys, name)(account.name) for name in PER_ACCOUNT]
        found += [getattr(keys, name)(pool, account.name) for pool in pools for name in PER_ACCOUNT_POOL]
    return found


def lua_names() -> str:
    """The Lua that names the KEYS ``script_keys`` builds: ``slot_layout(n_pools, n_accounts)`` returns ``K``."""
    shared = ", ".join(f"{name} = KEYS[{i}]" for i, name in enumerate(SHARED, 1))
    return "\n".join([
        "-- Written by store/slot_layout.py (lua_names): the slot scripts' KEYS by name.",
        "local function slot_layout(n_pools, n_accounts)",
        f"  local K = {{{shared}, pool = {{}}, account = {{}}}}",
        f"  local at = {len(SHARED)}",
        "  local function next_key() at = at + 1; return KEYS[at] end",
        "  for i = 1, n_pools do",
        "    K.pool[i] = {" + ", ".join(f"{name} = next_key()" for name in PER_POOL) + "}",
        "  end",
        "  for j = 1, n_accounts do",
        "    local account = {" + ", ".join(f"{name} = next_key()" for name in PER_ACCOUNT) + ", pool = {}}",
        "    for i = 1, n_pools do",
        "      account.pool[i] = {" + ", ".join(f"{name} = next_key()" for name in PER_ACCOUNT_POOL) + "}",
        "    end",
        "    K.account[j] = account",
        "  end",
        "  K.after = at",
        "  return K",
        "end",
    ])
