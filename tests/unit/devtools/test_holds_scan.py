"""devtools/holds_scan.py: each of the six holds issue 104 planted outside core/holds.py is found, written in a
module of the service (Python) or a script (Lua); the same code with its hold taken from holds.py is not."""

from __future__ import annotations

import pytest

from devtools.holds_scan import Scan

HOLDS = "fluxhook/core/holds.py"
HOLDS_TEXT = "LIVE_LEASE = 15\nCLAIM = 6 * LIVE_LEASE\n"

PLANTED = {
    "set with ex=90": ("fluxhook/store/planted.py", "def hold(r, k):\n    r.set(k, 1, ex=90)\n"),
    "expire(k, HOLD_FOR) with HOLD_FOR = 45": (
        "fluxhook/store/planted.py", "HOLD_FOR = 45\n\n\ndef hold(r, k):\n    r.expire(k, HOLD_FOR)\n"),
    "zadd(due, {m: now + 90})": (
        "fluxhook/store/planted.py", "import time\n\n\ndef due(r, m):\n    now = time.time()\n"
                                     "    r.zadd('due', {m: now + 90})\n"),
    "Lua: local hold = 90, then EXPIRE": (
        "fluxhook/store/lua/planted.lua", "local k = KEYS[1]\nlocal hold = 90\nredis.call('EXPIRE', k, hold)\n"),
    "Lua: PEXPIRE split over two lines": (
        "fluxhook/store/lua/planted.lua", "redis.call('PEXPIRE',\n  KEYS[1],\n  90000)\n"),
    "blpop(k, timeout=30)": ("worker/planted.py", "def wait(r, k):\n    return r.blpop([k], timeout=30)\n"),
}

# The same places, their holds from holds.py (or from ARGV, in a script): nothing to find.
CLEAN = {
    "fluxhook/store/clean.py": "import time\n\nfrom fluxhook.core.holds import CLAIM, LIVE_LEASE\n"
                               "from fluxhook.core import holds\nHOLD_FOR = LIVE_LEASE\n\n\n"
                               "def hold(r, k, m):\n    r.set(k, 1, ex=CLAIM)\n"
                               "    r.expire(k, HOLD_FOR)\n    r.pexpire(k, int(HOLD_FOR * 1000))\n"
                               "    r.zadd('due', {m: time.time() + holds.CLAIM})\n"
                               "    return r.blpop([k], timeout=max(0.01, LIVE_LEASE))\n",
    "fluxhook/store/lua/clean.lua": "local hold = tonumber(ARGV[2])\nredis.call('EXPIRE', KEYS[1], hold)\n"
                                    "redis.call('PEXPIRE',\n  KEYS[1],\n  tonumber(ARGV[3]) * 1000)\n"
                                    "local lease = ARGV[1 + 2]\n",
}


@pytest.mark.parametrize("fault", sorted(PLANTED))
def test_a_planted_hold_fails_the_scan(fault):
    path, text = PLANTED[fault]
    found = Scan({HOLDS: HOLDS_TEXT, path: text, **CLEAN}).findings()
    assert found and {one.path for one in found} == {path}, (fault, [str(one) for one in found])


def test_the_same_holds_taken_from_holds_py_pass_it():
    assert Scan({HOLDS: HOLDS_TEXT, **CLEAN}).findings() == []
