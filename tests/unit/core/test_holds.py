"""The values that hold work (fluxhook/core/holds.py): at most ten of them independent, every other written from
them; where one bounds another, the bound holds; and no lease, lock, TTL, claim or timeout is written as a number
anywhere else in the tree (Python or Lua), but for the kinds of value listed here that hold no work of fluxhook's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from devtools.processes import ROOT
from fluxhook.core import holds
from fluxhook.core.bfl_limits import CALL_BOUND, EXCHANGE_DEADLINE, TASK_DEADLINE

MOST_INDEPENDENT = 10


def _values() -> dict[str, ast.expr]:
    """Each value holds.py assigns, by name: the expression it is written as."""
    tree = ast.parse(Path(holds.__file__).read_text())
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def _imported() -> set[str]:
    tree = ast.parse(Path(holds.__file__).read_text())
    return {alias.asname or alias.name for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module != "__future__" for alias in node.names}


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _independent() -> list[str]:
    """The values a reader could change on their own: those written as a number, and those imported that any uses."""
    values = _values()
    used = {node.id for value in values.values() for node in ast.walk(value) if isinstance(node, ast.Name)}
    return [name for name, value in values.items() if _number(value)] + sorted(_imported() & used)


def test_at_most_ten_values_are_independent():
    independent = _independent()
    assert len(independent) <= MOST_INDEPENDENT, f"{len(independent)} independent values: {independent}"


def test_a_value_written_from_others_adds_no_seconds_of_its_own():
    # A number in an expression is a ratio (a factor or a divisor: four deadlines, a third of a grace), never seconds
    # added: those would be one more independent value, uncounted.
    for name, value in _values().items():
        if _number(value):
            continue
        ratios = {id(operand) for node in ast.walk(value)
                  if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.FloorDiv))
                  for operand in (node.left, node.right)}
        added = [node.value for node in ast.walk(value) if _number(node) and id(node) not in ratios]
        assert not added, f"{name} adds {added} to what it is written from"


def test_a_supervisor_outwaits_every_wait_of_its_members_stop_within_the_platforms_grace():
    waits = {"the hand-back": holds.IMMINENT_SHUTDOWN_DELAY + holds.HAND_BACK_GRACE,
             "the sends": holds.SEND_STOP_TIMEOUT, "the notifications": holds.NOTIFY_STOP_TIMEOUT}
    for what, wait in waits.items():
        assert holds.STOP_TIMEOUT > wait, what
    assert holds.NOTIFY_STOP_TIMEOUT >= holds.ATTEMPT_DEADLINE + 1  # an attempt taken as the stop came ends in it
    assert holds.STOP_TIMEOUT < holds.PLATFORM_STOP_GRACE


def test_each_lease_outlasts_the_work_it_holds():
    assert holds.ATTEMPT_LEASE > holds.ATTEMPT_DEADLINE
    assert holds.SUBMIT_LEASE >= CALL_BOUND > EXCHANGE_DEADLINE
    assert holds.CLAIM_LEASE >= CALL_BOUND
    assert holds.SLOT_LEASE >= holds.SUBMIT_LEASE + TASK_DEADLINE + holds.CLAIM_LEASE
    assert holds.RESERVATION_LEASE >= TASK_DEADLINE + CALL_BOUND
    assert holds.DOWNLOAD_LOCK_TTL > holds.DOWNLOAD_TIMEOUT
    assert holds.QUEUE_ROOM_LEASE > holds.BATCH_MAKING_LEASE  # the sweep cuts a stopped making short first
    assert holds.HEARTBEAT_GRACE > holds.JOB_MONITORING_INTERVAL  # a beat late is not a task abandoned
    # An abandoned task's heartbeat lapses, then a dead lane's cleaning claim: no later than a lost check comes back.
    assert holds.JOB_MONITORING_INTERVAL + holds.HEARTBEAT_GRACE + holds.CLEANING_LOCK_TTL <= holds.CLAIM_LEASE
    assert holds.WAITING_LEASE > holds.NEXT_LEASE  # a boundable job holds the next one alone back the shorter


# --- No hold written as a number outside holds.py ---

# A name (a variable, a keyword, a parameter) that says it is a lease, a lock, a TTL, a claim or a timeout.
HOLD_WORD = re.compile(r"(?i)(^|_)(lease|lock|ttl|claim|timeout)s?(_|$)")
# A key's TTL set in Python (a number there is one whatever the names around it).
EXPIRING = {"expire", "pexpire", "setex", "psetex"}
# In a script: a TTL set (EXPIRE, PEXPIRE, SET's EX or PX) or a local named as a hold, with a number of its own.
LUA_TTL = re.compile(r"'(EXPIRE|PEXPIRE|SETEX|PSETEX|EX|PX)'.*[^\w.\[]([0-9]{2,})")
LUA_NAMED = re.compile(r"(?i)\b(\w+_)?(lease|lock|ttl|claim|timeout)s?(_\w+)?\s*=\s*.*\b([0-9]{2,})")
SOURCES = ("fluxhook", "worker", "receiver")

# What such a name may hold as a number outside holds.py, each kind for its reason; anything else found fails.
EXCHANGE = "an exchange's or a request's own bound (a socket, an HTTP call, a web request): leases are written from them"
KEPT = "a record kept for a time (retention, counts, a setting's links), not work"
REQUEST = "what holds a request's own place while the request lives (its stream, its batch's making, a variant's)"
IDEMPOTENCY = "an Idempotency-Key's hold: a request's own place, and another change's to bring here"
WAIT = "a wait that holds nothing: a thread's join at a stop, a wait for work"
NOT_HOLDS = {
    ("fluxhook/cli/exits.py", "TIMEOUT"): EXCHANGE,
    ("fluxhook/client.py", "DEFAULT_TIMEOUT"): EXCHANGE,
    ("fluxhook/core/bfl_limits.py", "TIMEOUT"): EXCHANGE,
    ("fluxhook/core/tracing.py", "force_flush.timeout_millis"): EXCHANGE,
    ("fluxhook/lifecycle/delivering.py", "CONNECT_TIMEOUT"): EXCHANGE,
    ("fluxhook/media/fetch.py", "TIMEOUT"): EXCHANGE,
    ("fluxhook/media/storage.py", "CONNECT_TIMEOUT"): EXCHANGE,
    ("fluxhook/media/storage.py", "READ_TIMEOUT"): EXCHANGE,
    ("fluxhook/services.py", "socket_connect_timeout"): EXCHANGE,
    ("fluxhook/services.py", "socket_timeout"): EXCHANGE,
    ("receiver/gunicorn_conf.py", "timeout"): EXCHANGE,
    ("receiver/gunicorn_conf.py", "graceful_timeout"): EXCHANGE,
    ("fluxhook/core/config.py", "image_url_ttl_seconds"): KEPT,
    ("fluxhook/services.py", "ttl"): KEPT,
    ("fluxhook/store/effects.py", "USAGE_TTL"): KEPT,
    ("fluxhook/store/effects.py", "HOURLY_TTL"): KEPT,
    ("fluxhook/store/effects.py", "END_USER_TTL"): KEPT,
    ("fluxhook/store/effects.py", "STORED_TTL"): KEPT,
    ("fluxhook/store/jobs.py", "DEFAULT_TTL"): KEPT,
    ("fluxhook/store/kept_callbacks.py", "expire"): KEPT,
    ("fluxhook/store/slots.py", "STRIKES_TTL"): KEPT,  # refusals in a row, counted for an hour
    ("worker/cron.py", "result_ttl"): KEPT,
    ("worker/cron.py", "failure_ttl"): KEPT,
    ("fluxhook/lifecycle/steps/enqueueing.py", "failure_ttl"): KEPT,  # a failed task's record, kept a week to look at
    ("fluxhook/store/lua/app_key_take_items.lua", None): KEPT,  # a key's items of the day, kept an hour past it
    ("fluxhook/lifecycle/variants.py", "MAKING_LEASE"): REQUEST,
    ("fluxhook/store/batch_turns.py", "WAITER_LEASE"): REQUEST,
    ("fluxhook/store/streams.py", "LEASE_SECONDS"): REQUEST,
    ("fluxhook/store/lua/batch_turns.lua", None): REQUEST,
    ("receiver/idempotency.py", "KEY_HOLD_LEASE"): IDEMPOTENCY,
    ("fluxhook/store/lua/idempotency_finish.lua", None): IDEMPOTENCY,
    ("worker/loops.py", "stop.timeout"): WAIT,
    ("worker/feeding.py", "IDLE_WAKE_TIMEOUT"): WAIT,
    ("worker/dispatcher.py", "WAKE_TIMEOUT"): WAIT,
    ("fluxhook/store/job_changes.py", "timeout"): WAIT,
    ("receiver/stream_hub.py", "timeout"): WAIT,
    ("worker/sending.py", "IDLE_WAKE_TIMEOUT"): WAIT,
}


def _numbers(node: ast.AST) -> list[float]:
    """The numbers written in ``node`` that could be seconds: not a unit's factor (``* 1000``), not a count of digits
    (``round(x, 3)``), not under a second (no hold that short outlives a process's death)."""
    skipped = {id(operand) for found in ast.walk(node) if isinstance(found, ast.BinOp)
               and isinstance(found.op, (ast.Mult, ast.Div)) for operand in (found.left, found.right)
               if isinstance(operand, ast.Constant) and operand.value in (1000, 1000.0)}
    skipped |= {id(found.args[1]) for found in ast.walk(node) if isinstance(found, ast.Call)
                and isinstance(found.func, ast.Name) and found.func.id == "round" and len(found.args) > 1}
    return [found.value for found in ast.walk(node) if isinstance(found, ast.Constant)
            and type(found.value) in (int, float) and found.value >= 1 and id(found) not in skipped]


def _python_holds(tree: ast.AST) -> list[tuple[str, int]]:
    """Each hold-named value written with a number of its own in ``tree``: (its name, its line)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                name = getattr(target, "id", None) or getattr(target, "attr", "")
                if HOLD_WORD.search(name) and _numbers(node.value):
                    found.append((name, node.lineno))
        elif isinstance(node, ast.keyword) and node.arg and HOLD_WORD.search(node.arg) and _numbers(node.value):
            found.append((node.arg, node.value.lineno))
        elif isinstance(node, ast.Dict):
            found += [(key.value, value.lineno) for key, value in zip(node.keys, node.values, strict=True)
                      if isinstance(key, ast.Constant) and isinstance(key.value, str) and HOLD_WORD.search(key.value)
                      and _numbers(value)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in EXPIRING \
                and any(_numbers(arg) for arg in node.args[1:]):
            found.append((node.func.attr, node.lineno))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            positional = node.args.posonlyargs + node.args.args
            pairs = list(zip(positional[len(positional) - len(node.args.defaults):], node.args.defaults, strict=True))
            pairs += [(arg, default) for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                      if default]
            found += [(f"{node.name}.{arg.arg}", node.lineno) for arg, default in pairs
                      if HOLD_WORD.search(arg.arg) and _numbers(default)]
    return found


def _lua_holds(text: str) -> list[int]:
    """The lines of a script that set a TTL or name a hold with a number of their own (comments left out)."""
    return [n for n, line in enumerate(text.splitlines(), 1)
            if LUA_TTL.search(line.split("--")[0]) or LUA_NAMED.search(line.split("--")[0])]


def written_holds() -> dict[tuple[str, str | None], list[str]]:
    """Every lease, lock, TTL, claim or timeout written as a number outside holds.py: (file, name) -> where."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if path == Path(holds.__file__):
                continue
            for name, line in _python_holds(ast.parse(path.read_text())):
                found.setdefault((relative, name), []).append(f"{relative}:{line}")
    for path in sorted((ROOT / "fluxhook" / "store" / "lua").glob("*.lua")):
        relative = str(path.relative_to(ROOT))
        for line in _lua_holds(path.read_text()):
            found.setdefault((relative, None), []).append(f"{relative}:{line}")
    return found


def test_no_hold_is_written_as_a_number_outside_holds_py():
    found = written_holds()
    outside = sorted(where for key, places in found.items() if key not in NOT_HOLDS for where in places)
    assert not outside, f"a lease, lock, TTL, claim or timeout written as a number outside core/holds.py: {outside}"
    stale = sorted(f"{path} {name}" for path, name in NOT_HOLDS if (path, name) not in found)
    assert not stale, f"NOT_HOLDS names values the tree no longer writes so: {stale}"


def test_the_scan_finds_a_hold_written_as_a_number_in_python_and_in_lua():
    code = ast.parse("MOVE_LEASE = 15\nlock.acquire(key, 'me', ttl=60)\npipe.expire(key, 3600)\n"
                     "def stop(self, timeout=5.0): pass\nx = int(lease * 1000)\nclaim = round(t + CLAIM, 3)\n"
                     "KEEP = {'failure_ttl': 7 * 86400, 'name': 'x', **more}")
    assert sorted(name for name, _ in _python_holds(code)) == ["MOVE_LEASE", "expire", "failure_ttl", "stop.timeout",
                                                               "ttl"]
    script = "local lease = 15000\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nredis.call('SET', k, 1, 'EX', 60)\n"
    assert _lua_holds(script) == [1, 3]
