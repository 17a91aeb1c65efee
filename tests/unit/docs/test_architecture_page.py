"""docs/architecture.md's worker page matches the code (issue 84): every thread the code starts has a row in its table
of threads (or is named among those not in a worker process), every bound a row names is the code's, the waiters on
wake-up lists are ``run.WAITERS``, and every value of fluxhook/core/holds.py has a row with its number and what it
is written as."""

from __future__ import annotations

import ast
import importlib
import re
from fnmatch import fnmatch
from pathlib import Path

from devtools.holds_scan import holds_values
from devtools.processes import ROOT
from fluxhook.core import holds
from worker import run

PAGE = ROOT / "docs" / "architecture.md"
# Where the threads a worker process runs are started: the worker and the code below it.
SOURCES = [ROOT / "worker", ROOT / "fluxhook"]
# Where a row's `module.NAME` bound is looked for.
PACKAGES = ("worker", "fluxhook.core", "fluxhook.store", "fluxhook.net", "fluxhook.credits", "fluxhook.lifecycle")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _table(section: str) -> list[list[str]]:
    """The rows of the first table in ``section``, each a list of its cells (the head and its rule left out)."""
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip().strip("|").split(" | ")] for row in rows[2:]]


def _page() -> str:
    return PAGE.read_text()


def _thread_rows() -> list[list[str]]:
    return _table(_section(_page(), "### Threads"))


def _thread_names(cell: str) -> list[str]:
    """The names a row's first cell gives (backticked, before the parenthesis)."""
    return re.findall(r"`([^`]+)`", cell.split("(")[0])


# --- The threads the code starts ---

def _pattern(node: ast.expr) -> str | None:
    """A thread's name as a pattern: a literal as it is, an f-string with ``*`` for each formatted part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "*" for part in node.values)
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


THREAD_BASES = {"Thread", "Loop", "RestingLoop", "Timer", "Pool"}


def _named_by(call: ast.Call, params: list[str]) -> ast.expr | None:
    """The argument a call passes for the parameter ``name`` (``params``: the callee's, in order)."""
    for keyword in call.keywords:
        if keyword.arg == "name":
            return keyword.value
    index = params.index("name") if "name" in params else -1
    return call.args[index] if 0 <= index < len(call.args) else None


def started_threads() -> dict[str, str]:
    """Each thread name (a pattern) the code gives a thread it starts, with where; a helper that names a thread by its
    own parameter ``name`` (``heartbeats.beating``, a ``Lane``) is followed to its callers."""
    trees = {path: ast.parse(path.read_text()) for source in SOURCES for path in sorted(source.rglob("*.py"))}
    found: dict[str, str] = {}
    unnamed: list[str] = []
    helpers: dict[str, list[str]] = {}  # a function or class whose parameter ``name`` names its thread: its params

    def named(node: ast.expr | None, where: str, params: list[str], helper: str) -> None:
        if isinstance(node, ast.Name) and node.id == "name" and "name" in params:
            helpers[helper] = params
            return
        pattern = None if node is None else _pattern(node)
        if pattern is None:
            unnamed.append(where)
        else:
            found.setdefault(pattern, where)

    for path, tree in trees.items():
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
            if not {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in cls.bases} & THREAD_BASES:
                continue
            for init in [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]:
                params = [a.arg for a in init.args.args[1:]]
                for call in [n for n in ast.walk(init) if isinstance(n, ast.Call) and _call_name(n) == "__init__"]:
                    arg = _named_by(call, []) or (call.args[0] if call.args else None)
                    named(arg, f"{path.name}: {cls.name}", params, cls.name)
        for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            params = [a.arg for a in func.args.args]
            for call in [n for n in ast.walk(func) if isinstance(n, ast.Call)]:
                if _call_name(call) in ("Thread", "Timer"):
                    named(_named_by(call, []), f"{path.name}: {func.name}", params, func.name)
                elif _call_name(call) == "ThreadPoolExecutor":
                    prefix = next((k.value for k in call.keywords if k.arg == "thread_name_prefix"), None)
                    pattern = None if prefix is None else _pattern(prefix)
                    if pattern is None:
                        unnamed.append(f"{path.name}: {func.name}")
                    else:
                        found.setdefault(pattern + "*", f"{path.name}: {func.name}")
    for path, tree in trees.items():
        for call in [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) in helpers]:
            node = _named_by(call, helpers[_call_name(call)])
            pattern = None if node is None else _pattern(node)
            if pattern is not None:
                found.setdefault(pattern, f"{path.name}: {_call_name(call)}")
            elif not (isinstance(node, ast.Name) and node.id == "name"):
                unnamed.append(f"{path.name}: a call of {_call_name(call)}")
    assert not unnamed, f"threads started without a name the page can list: {unnamed}"
    return found


def test_every_thread_the_code_starts_has_a_row():
    rows = [name for row in _thread_rows() for name in _thread_names(row[0])]
    elsewhere = _page().split("Not in a worker process:", 1)[1].split("\n\n", 1)[0]
    listed = rows + re.findall(r"`([^`]+)`", elsewhere)
    started = started_threads()
    missing = [f"{pattern} ({where})" for pattern, where in started.items()
               if not any(fnmatch(name, pattern) for name in listed)]
    assert not missing, f"threads with no row in docs/architecture.md's table of threads: {missing}"
    stale = [name for name in rows if name.startswith("fluxhook-")
             and not any(fnmatch(name, pattern) for pattern in started)]
    assert not stale, f"rows of threads the code no longer starts: {stale}"


def test_each_bound_a_row_names_is_the_codes():
    named = 0
    for row in _thread_rows():
        for module, name, number in re.findall(r"`(\w+)\.([A-Z][A-Z0-9_]+)` (\d+(?:\.\d+)?) s", " ".join(row[2:])):
            value = _resolve(module, name)
            assert float(value) == float(number), f"{row[0]}: {module}.{name} is {value}, the page says {number}"
            named += 1
    assert named >= 10  # the rows name their bounds so


def _resolve(module: str, name: str) -> float:
    for package in PACKAGES:
        try:
            found = importlib.import_module(f"{package}.{module}")
        except ModuleNotFoundError:
            continue
        if hasattr(found, name):
            return getattr(found, name)
    raise AssertionError(f"no {module}.{name} in {PACKAGES}")


def test_the_rows_waiting_on_wake_up_lists_are_the_waiters_a_stop_ends():
    waiting = [row[0] for row in _thread_rows() if "`BLPOP " in row[3]]
    assert len(waiting) == run.WAITERS, waiting


def _hold_expressions() -> tuple[dict[str, ast.expr], dict[str, ast.expr]]:
    """What holds.py defines (not what it imports), by name, as written: its holds, then its records kept."""
    return holds_values(Path(holds.__file__).read_text())


def _written_as(value: ast.expr) -> str:
    """A row's "written as": the expression, as ``ast.unparse`` writes it but for a ``float()`` of one name; nothing
    for a number (an independent value)."""
    if isinstance(value, ast.Constant):
        return ""
    return "`" + re.sub(r"\bfloat\((\w+)\)", r"\1", ast.unparse(value)) + "`"


def _check_rows(section: str, values: dict[str, ast.expr], seconds: int, written_as: int) -> None:
    rows = {row[0].strip("`"): row for row in _table(_section(_page(), section))}
    assert sorted(rows) == sorted(values), (f"in holds.py, no row: {sorted(set(values) - set(rows))}; "
                                            f"a row, not in holds.py: {sorted(set(rows) - set(values))}")
    wrong = {name: (getattr(holds, name), rows[name][seconds]) for name in values
             if float(rows[name][seconds]) != float(getattr(holds, name))}
    assert not wrong, f"the page's numbers differ from holds.py's (code, page): {wrong}"
    written = {name: (_written_as(value), rows[name][written_as]) for name, value in values.items()
               if _written_as(value) != rows[name][written_as]}
    assert not written, f"the page's expressions differ from holds.py's (code, page): {written}"


def test_every_hold_has_a_row_with_its_number_and_what_it_is_written_as():
    _check_rows("### Holds", _hold_expressions()[0], seconds=2, written_as=3)


def test_every_record_kept_has_a_row_with_its_number_and_what_it_is_written_as():
    _check_rows("### Records kept", _hold_expressions()[1], seconds=1, written_as=2)


# --- The facts the worker's pages state, against the code ---

def _backticked(text: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", text)


def test_the_worker_page_names_each_kind_of_capacity_at_its_default():
    from fluxhook.core.config import field_default

    text = _page()
    intro = _section(text, "## The worker: one download and one submission").split("```", 1)[0]
    said = {what: int(n) for n, what in re.findall(
        r"(\d+) (?:\*\*)?(senders|download \*\*lanes|checkers|attempt threads)", intro)}
    assert said == {"senders": field_default("worker_send_concurrency"),
                    "download **lanes": field_default("worker_download_concurrency"),
                    "checkers": field_default("worker_check_concurrency"),
                    "attempt threads": field_default("worker_notify_concurrency")}, said
    # Checks are fluxhook's own work, taken by a dispatcher: no lane of RQ's runs them.
    assert "check **lanes**" not in text and "check lanes (" not in text


def test_the_kinds_of_work_line_the_pages_list_are_the_codes():
    from fluxhook.store.work_lines import AHEAD, KINDS

    glossary = next(line for line in _page().splitlines() if line.startswith("| **kind** |"))
    assert _backticked(glossary.split(":", 1)[1]) == list(KINDS), glossary
    fair = (ROOT / "docs" / "fair-share.md").read_text()
    listed = re.search(r"Each kind \(([^)]*)\) has a", fair.replace("\n", " "))
    assert listed and _backticked(listed.group(1)) == list(KINDS), listed
    feed = next(line for line in _page().splitlines() if line.startswith("| **feed** |"))
    ahead = re.search(r"`AHEAD` \((\d+)\)", feed)
    assert ahead and int(ahead.group(1)) == AHEAD, feed
    # Notifications are taken by the notifier (lua/notify_take.lua), not fed from a work line.
    row = next(line for line in _page().splitlines() if line.startswith("| `work_lines.py` |"))
    assert "notification" not in row.split("|")[2], row


def test_the_fair_share_page_gives_a_move_its_lease():
    from fluxhook.core import holds as hold_values

    fair = (ROOT / "docs" / "fair-share.md").read_text().replace("\n", " ")
    stated = re.search(r"`MOVE_LEASE` \((\d+) s\)", fair)
    assert stated and float(stated.group(1)) == hold_values.MOVE_LEASE, stated


def test_each_bound_the_fair_share_page_names_is_the_codes():
    fair = (ROOT / "docs" / "fair-share.md").read_text().replace("\n", " ")
    named = re.findall(r"`(\w+)\.([A-Z][A-Z0-9_]+)` (\d+(?:\.\d+)?) s", fair)
    assert len(named) >= 3, named
    for module, name, number in named:
        assert float(_resolve(module, name)) == float(number), f"{module}.{name} is not {number} s"
