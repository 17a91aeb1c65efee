"""Find every hold of the service written as a number outside fluxhook/core/holds.py (tests/unit/core/test_holds.py
runs it over the tree; tests/unit/devtools/test_holds_scan.py plants the faults it must find).

A hold is what a value is used as, not what it is named: the scan follows each argument that sets a key's expiry, a
blocking wait's timeout, a lock's or a lease's length, an RQ task's timeout or TTL, a sleep or a wait, or a due time
(a time plus an offset), back through the names it is written from (local, module, imported, ``self.``'s) to what it
is made of. A number it reaches outside holds.py fails, and so does a number given to a name that says it is a hold
(a lease, lock, TTL, claim, timeout, deadline), wherever it goes next (a script's ARGV, a dict of options).

What is not a hold, by what it is and with no list of places: a ratio (a number multiplied or divided with a value
that holds no number of its own: ``lease * 1000`` is milliseconds, ``4 * deadline`` four of them), a count of digits
(``round(x, 3)``), zero (no wait at all), and a subscript (``ARGV[2]``).

In a script (fluxhook/store/lua/*.lua): comments dropped and strings read as words, the whole file one line (a call
split over lines is one call); a ``redis.call``/``redis.pcall`` of EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, SETEX,
PSETEX, SET or GETEX with EX/PX/EXAT/PXAT, or ZADD whose score adds to a time, fails when its hold is a number or a
local bound to one; so does a local named as a hold bound to a number. A script takes its holds as ARGV from Python.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOLDS_MODULE = "fluxhook.core.holds"
SOURCES = ("fluxhook", "worker", "receiver")
LUA_DIR = "fluxhook/store/lua"

# A name (a variable, an attribute, a keyword, a parameter, a dict's key) that says it is a hold.
HOLD_NAME = re.compile(r"(?i)(^|_)(lease|lock|ttl|claim|expire|hold)s?(_|$)")
# Keywords that set a hold whatever the rest of the name: SET's and GETEX's expiry, XREAD's block, RQ's task timeout.
HOLD_KEYWORDS = {"ex", "px", "exat", "pxat", "block", "job_timeout"}
# Redis's blocking commands, its lock and RQ's queueing: their ``timeout=`` is a hold.
TIMED_CALLS = {"blpop", "brpop", "bzpopmin", "bzpopmax", "blmove", "brpoplpush", "blmpop", "bzmpop", "lock", "enqueue",
               "enqueue_call", "enqueue_at", "enqueue_in", "enqueue_many", "prepare_data", "create", "register"}
# Methods whose positional argument at this index is a hold (redis-py's).
HOLD_POSITIONS = {
    "expire": 1, "pexpire": 1, "expireat": 1, "pexpireat": 1, "setex": 1, "psetex": 1,
    "blpop": 1, "brpop": 1, "bzpopmin": 1, "bzpopmax": 1, "blmove": 2, "brpoplpush": 2, "blmpop": 0, "bzmpop": 0,
    "lock": 1,
}
# redis-py's SET: (name, value, ex, px, ...).
SET_POSITIONS = {"set": (2, 3)}
# A name or a call that reads a time: a number added to it, as a sorted set's score, is a due offset.
TIME_WORD = re.compile(r"(?i)^(_?)(now|clock|time|monotonic)(_ms|_s)?$")
# Calls a value passes through unchanged in what it is made of.
PASSING = {"float", "int", "round", "max", "min", "abs", "timedelta", "Decimal", "str"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.what}"


@dataclass
class _Module:
    name: str
    path: str
    tree: ast.Module
    values: dict[str, list[ast.expr]] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # local name -> (module, name or None)
    classes: dict[str, dict[str, list[ast.expr]]] = field(default_factory=dict)


def _number(node: ast.AST) -> bool:
    """A number that could be a hold: not zero (no wait), not one unit or less (a floor: ``max(1, ttl)``)."""
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and abs(node.value) > 1


def _assigned(body: list[ast.stmt] | list[ast.AST], into: dict[str, list[ast.expr]]) -> None:
    """Every value bound to a plain name (or ``self.name``) in ``body``, nested blocks included, not nested defs."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            for name, part in _unpacked(target, value):
                into.setdefault(name, []).append(part)
        stack.extend(ast.iter_child_nodes(node))


def _unpacked(target: ast.expr, value: ast.expr | None) -> Iterator[tuple[str, ast.expr]]:
    if value is None:
        return
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in ("self", "cls"):
        yield "self." + target.attr, value
    elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
            and len(target.elts) == len(value.elts):
        for one, part in zip(target.elts, value.elts, strict=True):
            yield from _unpacked(one, part)


def _load(name: str, path: str, text: str) -> _Module:
    tree = ast.parse(text)
    module = _Module(name, path, tree)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members: dict[str, list[ast.expr]] = {}
            _assigned(node.body, members)
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found: dict[str, list[ast.expr]] = {}
                    _assigned(method.body, found)
                    for key, values in found.items():
                        if key.startswith("self."):
                            members.setdefault(key[5:], []).extend(values)
            module.classes[node.name] = members
    _assigned([node for node in tree.body if not isinstance(node, ast.ClassDef)], module.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([source] if source else []))
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0], None)
    return module


class Scan:
    """The service's modules, and what each hold argument in them is made of."""

    def __init__(self, files: dict[str, str]) -> None:
        self.modules: dict[str, _Module] = {}
        self.scripts: dict[str, str] = {}
        for path, text in sorted(files.items()):
            if path.endswith(".py"):
                name = path[:-3].replace("/", ".").removesuffix(".__init__")
                self.modules[name] = _load(name, path, text)
            elif path.endswith(".lua"):
                self.scripts[path] = text

    @classmethod
    def of_tree(cls, root: Path) -> Scan:
        files = {str(path.relative_to(root)): path.read_text() for source in SOURCES
                 for path in sorted((root / source).rglob("*.py"))}
        files |= {str(path.relative_to(root)): path.read_text() for path in sorted((root / LUA_DIR).glob("*.lua"))}
        return cls(files)

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        for module in self.modules.values():
            if module.name != HOLDS_MODULE:
                found += _PythonScan(self, module).run()
        for path, text in self.scripts.items():
            found += lua_findings(path, text)
        return sorted(set(found), key=lambda one: (one.path, one.line, one.what))

    # --- What a value is made of: the numbers written outside holds.py that reach it ---

    def numbers(self, node: ast.expr, module: _Module, scopes: list[dict[str, list[ast.expr]]],
                cls: str | None, seen: frozenset[int] = frozenset()) -> list[ast.Constant]:
        if id(node) in seen:
            return []
        seen = seen | {id(node)}
        if _number(node):
            assert isinstance(node, ast.Constant)
            return [node] if module.name != HOLDS_MODULE else []
        if module.name == HOLDS_MODULE:
            return []
        if isinstance(node, ast.Name):
            return self._name(node.id, module, scopes, cls, seen)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, module, scopes, cls, seen)
        if isinstance(node, ast.BinOp):
            left = self.numbers(node.left, module, scopes, cls, seen)
            right = self.numbers(node.right, module, scopes, cls, seen)
            if isinstance(node.op, (ast.Mult, ast.Div, ast.FloorDiv)):
                # A number times (or over) a value with none of its own is a ratio of it, not seconds.
                if _number(node.left) and not right:
                    return []
                if _number(node.right) and not left:
                    return []
            return left + right
        if isinstance(node, ast.UnaryOp):
            return self.numbers(node.operand, module, scopes, cls, seen)
        if isinstance(node, ast.IfExp):
            return self.numbers(node.body, module, scopes, cls, seen) + self.numbers(node.orelse, module, scopes, cls, seen)
        if isinstance(node, ast.BoolOp):
            return [one for value in node.values for one in self.numbers(value, module, scopes, cls, seen)]
        if isinstance(node, (ast.Tuple, ast.List)):
            return [one for value in node.elts for one in self.numbers(value, module, scopes, cls, seen)]
        if isinstance(node, ast.Subscript):
            return self.numbers(node.value, module, scopes, cls, seen)
        if isinstance(node, ast.Call) and _called(node) in PASSING:
            args = node.args[:1] if _called(node) == "round" else node.args
            return [one for value in [*args, *(kw.value for kw in node.keywords)]
                    for one in self.numbers(value, module, scopes, cls, seen)]
        return []

    def _name(self, name: str, module: _Module, scopes: list[dict[str, list[ast.expr]]], cls: str | None,
              seen: frozenset[int]) -> list[ast.Constant]:
        for scope in scopes:
            if name in scope:
                return [one for value in scope[name] for one in self.numbers(value, module, scopes, cls, seen)]
        if name in module.values:
            return [one for value in module.values[name] for one in self.numbers(value, module, [], None, seen)]
        if name in module.imports:
            source, imported = module.imports[name]
            if imported is not None and source in self.modules:
                return self._name(imported, self.modules[source], [], None, seen)
        return []

    def _attribute(self, node: ast.Attribute, module: _Module, scopes: list[dict[str, list[ast.expr]]],
                   cls: str | None, seen: frozenset[int]) -> list[ast.Constant]:
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls") and cls in module.classes:
            values = module.classes[cls].get(node.attr, [])
            return [one for value in values for one in self.numbers(value, module, [], cls, seen)]
        if isinstance(owner, ast.Name) and owner.id in module.classes:
            values = module.classes[owner.id].get(node.attr, [])
            return [one for value in values for one in self.numbers(value, module, [], owner.id, seen)]
        if isinstance(owner, ast.Name) and owner.id in module.imports:
            source, imported = module.imports[owner.id]
            target = source if imported is None else f"{source}.{imported}"
            if target in self.modules:
                return self._name(node.attr, self.modules[target], [], None, seen)
            if source in self.modules and imported in self.modules[source].classes:
                values = self.modules[source].classes[imported].get(node.attr, [])
                return [one for value in values for one in self.numbers(value, self.modules[source], [], imported, seen)]
        return []


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _reads_time(node: ast.expr) -> bool:
    """Whether ``node`` reads a time (a call of ``time.time()``, ``monotonic()``, ``now()``, or a name of one)."""
    if isinstance(node, ast.Call):
        return bool(TIME_WORD.search(_called(node)))
    if isinstance(node, ast.Name):
        return bool(TIME_WORD.search(node.id))
    if isinstance(node, ast.Attribute):
        return bool(TIME_WORD.search(node.attr))
    return False


class _PythonScan:
    def __init__(self, scan: Scan, module: _Module) -> None:
        self.scan, self.module = scan, module
        self.found: list[Finding] = []

    def run(self) -> list[Finding]:
        self._visit(self.module.tree, [], None)
        return self.found

    def _visit(self, node: ast.AST, scopes: list[dict[str, list[ast.expr]]], cls: str | None) -> None:
        if isinstance(node, ast.ClassDef):
            cls = node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scope: dict[str, list[ast.expr]] = {}
            if not isinstance(node, ast.Lambda):
                _assigned(node.body, scope)
            arguments = node.args
            positional = arguments.posonlyargs + arguments.args
            defaults = list(zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults, strict=True))
            defaults += [(arg, default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
                         if default is not None]
            for arg, default in defaults:
                scope.setdefault(arg.arg, []).append(default)
                if HOLD_NAME.search(arg.arg):
                    self._check(default, f"{getattr(node, 'name', 'lambda')}({arg.arg}=)", scopes, cls)
            for arg in positional + arguments.kwonlyargs:
                scope.setdefault(arg.arg, [])
            scopes = [scope, *scopes]
        self._look(node, scopes, cls)
        for child in ast.iter_child_nodes(node):
            self._visit(child, scopes, cls)

    def _check(self, value: ast.expr | None, what: str, scopes: list[dict[str, list[ast.expr]]], cls: str | None) -> None:
        if value is None:
            return
        for number in self.scan.numbers(value, self.module, scopes, cls):
            self.found.append(Finding(self.module.path, value.lineno, f"{what}: {number.value!r} (line {number.lineno})"))

    def _look(self, node: ast.AST, scopes: list[dict[str, list[ast.expr]]], cls: str | None) -> None:
        if isinstance(node, ast.Call):
            self._call(node, scopes, cls)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for name, value in _unpacked(target, node.value):
                    if HOLD_NAME.search(name.removeprefix("self.")):
                        self._check(value, name, scopes, cls)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                        and (HOLD_NAME.search(key.value) or key.value in HOLD_KEYWORDS):
                    self._check(value, f"{{{key.value!r}: }}", scopes, cls)

    def _call(self, node: ast.Call, scopes: list[dict[str, list[ast.expr]]], cls: str | None) -> None:
        called = _called(node)
        for keyword in node.keywords:
            if keyword.arg and (HOLD_NAME.search(keyword.arg) or keyword.arg in HOLD_KEYWORDS):
                self._check(keyword.value, f"{called}({keyword.arg}=)", scopes, cls)
            elif keyword.arg == "timeout" and called in TIMED_CALLS:
                self._check(keyword.value, f"{called}(timeout=)", scopes, cls)
        if called == "zadd":
            self._scores([*node.args[1:2], *(kw.value for kw in node.keywords if kw.arg == "mapping")], scopes, cls)
        index = HOLD_POSITIONS.get(called)
        if index is not None and len(node.args) > index and isinstance(node.func, ast.Attribute | ast.Name):
            self._check(node.args[index], f"{called}()", scopes, cls)
        for index in SET_POSITIONS.get(called, ()):
            if len(node.args) > index:
                self._check(node.args[index], f"{called}()", scopes, cls)

    def _scores(self, mappings: list[ast.expr], scopes: list[dict[str, list[ast.expr]]], cls: str | None) -> None:
        """A sorted set's scores that are a time plus an offset: the offset is a due time's hold."""
        for mapping in mappings:
            values = mapping.values if isinstance(mapping, ast.Dict) else [
                one for value in _values_of(mapping, scopes) for one in getattr(value, "values", [])]
            for score in values:
                if isinstance(score, ast.BinOp) and isinstance(score.op, (ast.Add, ast.Sub)):
                    for time, offset in ((score.left, score.right), (score.right, score.left)):
                        if _reads_time(time):
                            self._check(offset, "zadd()'s due offset", scopes, cls)


def _values_of(node: ast.expr, scopes: list[dict[str, list[ast.expr]]]) -> list[ast.expr]:
    if isinstance(node, ast.Name):
        return [value for scope in scopes[:1] for value in scope.get(node.id, [])]
    return [node]


# --- Scripts ---

LUA_TOKEN = re.compile(r"""--\[(=*)\[.*?\]\1\]|--[^\n]*|\[(=*)\[(.*?)\]\2\]|"((?:\\.|[^"\\])*)"|'((?:\\.|[^'\\])*)'"""
                       r"""|(\d+\.?\d*(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+)|([A-Za-z_][\w]*)|(\S)""", re.S)
LUA_EXPIRY = {"EXPIRE": 2, "PEXPIRE": 2, "EXPIREAT": 2, "PEXPIREAT": 2, "SETEX": 2, "PSETEX": 2}
LUA_OPTIONS = {"SET", "GETEX"}
LUA_OPTION_WORDS = {"EX", "PX", "EXAT", "PXAT"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "str", "num", "name", "op"
    text: str
    line: int


def lua_tokens(text: str) -> list[_Token]:
    """A script's tokens, comments dropped, a string one token of its text, line breaks gone (but kept as lines)."""
    tokens: list[_Token] = []
    for match in LUA_TOKEN.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match.group(0).startswith("--"):
            continue
        if match.group(3) is not None or match.group(4) is not None or match.group(5) is not None:
            tokens.append(_Token("str", next(g for g in match.group(3, 4, 5) if g is not None), line))
        elif match.group(6):
            tokens.append(_Token("num", match.group(6), line))
        elif match.group(7):
            tokens.append(_Token("name", match.group(7), line))
        else:
            tokens.append(_Token("op", match.group(8), line))
    return tokens


def _lua_numbers(expression: list[_Token], bound: dict[str, bool]) -> bool:
    """Whether ``expression`` holds a number of its own: a number (more than one unit) not in a subscript nor a ratio,
    or a local bound to one."""
    depth = 0
    for index, token in enumerate(expression):
        before = expression[index - 1].text if index else ""
        after = expression[index + 1].text if index + 1 < len(expression) else ""
        if token.kind == "op" and token.text in "[]":
            depth += 1 if token.text == "[" else -1
        elif depth > 0:
            continue
        elif token.kind == "num" and abs(float(token.text)) > 1 \
                and before not in ("*", "/") and after not in ("*", "/"):
            return True
        elif token.kind == "name" and bound.get(token.text) and before != ".":
            return True
    return False


def _arguments(tokens: list[_Token], start: int) -> tuple[list[list[_Token]], int]:
    """The comma-separated arguments of the call whose ``(`` is at ``start``, and the index past its ``)``."""
    arguments: list[list[_Token]] = [[]]
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.text in ("(", "{", "[") and token.kind == "op":
            depth += 1
            if depth == 1:
                continue
        elif token.text in (")", "}", "]") and token.kind == "op":
            depth -= 1
            if depth == 0:
                return arguments, index + 1
        elif token.text == "," and token.kind == "op" and depth == 1:
            arguments.append([])
            continue
        arguments[-1].append(token)
    return arguments, len(tokens)


LUA_WORDS = {"and", "or", "not"}
LUA_STATEMENTS = {"local", "if", "then", "else", "elseif", "end", "do", "for", "while", "return", "function", "until",
                  "repeat"}


def _lua_bound(tokens: list[_Token]) -> dict[str, bool]:
    """Each name assigned in a script: whether a value bound to it holds a number of its own (once bound to one,
    always)."""
    bound: dict[str, bool] = {}
    for index, token in enumerate(tokens):
        if not (token.kind == "name" and index + 2 < len(tokens) and tokens[index + 1].text == "="
                and tokens[index + 2].text != "=" and (index == 0 or tokens[index - 1].text not in (".", ":", "="))):
            continue
        end, depth = index + 2, 0
        while end < len(tokens):
            current, previous = tokens[end], tokens[end - 1]
            if current.kind == "op" and current.text in "({[":
                depth += 1
            elif current.kind == "op" and current.text in ")}]":
                depth -= 1
            elif depth == 0 and current.kind == "name" and end > index + 2 and (
                    current.text in LUA_STATEMENTS or (current.text not in LUA_WORDS and previous.text not in LUA_WORDS
                                                       and (previous.kind != "op" or previous.text in ")}]"))):
                break
            end += 1
        bound[token.text] = bound.get(token.text, False) or _lua_numbers(tokens[index + 2:end], {})
    return bound


def lua_findings(path: str, text: str) -> list[Finding]:
    tokens = lua_tokens(text)
    bound = _lua_bound(tokens)
    found: list[Finding] = []
    for name, numbered in bound.items():
        if numbered and HOLD_NAME.search(name):
            line = next(token.line for token in tokens if token.text == name)
            found.append(Finding(path, line, f"local {name} bound to a number"))
    for index, token in enumerate(tokens):
        if not (token.text == "redis" and index + 3 < len(tokens) and tokens[index + 2].text in ("call", "pcall")
                and tokens[index + 3].text == "("):
            continue
        arguments, _ = _arguments(tokens, index + 3)
        if not arguments or not arguments[0] or arguments[0][0].kind != "str":
            continue
        command = arguments[0][0].text.upper()
        holds: list[list[_Token]] = []
        if command in LUA_EXPIRY and len(arguments) > LUA_EXPIRY[command]:
            holds.append(arguments[LUA_EXPIRY[command]])
        elif command in LUA_OPTIONS:
            holds += [arguments[at + 1] for at, argument in enumerate(arguments[:-1])
                      if len(argument) == 1 and argument[0].kind == "str" and argument[0].text.upper() in LUA_OPTION_WORDS]
        elif command == "ZADD":
            holds += [argument for argument in arguments[2:] if any(one.text in ("+", "-") for one in argument)
                      and any(one.kind == "name" and TIME_WORD.search(one.text) for one in argument)]
        for hold in holds:
            if _lua_numbers(hold, bound):
                found.append(Finding(path, token.line, f"{command}'s hold written as a number"))
    return found


# --- holds.py itself ---

RECORDS_MARK = "# --- Records kept ---"


def holds_values(text: str) -> tuple[dict[str, ast.expr], dict[str, ast.expr]]:
    """What holds.py's ``text`` assigns, by name, as written: the holds, then the records kept (its last section)."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines, 1) if line.startswith(RECORDS_MARK)), len(lines) + 1)
    holds: dict[str, ast.expr] = {}
    records: dict[str, ast.expr] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    (records if node.lineno > start else holds)[target.id] = node.value
    return holds, records


def independent(text: str) -> list[str]:
    """The holds a reader could change on their own: those written as a number, and those imported that a hold is
    written from (a record's own are not counted)."""
    holds, _ = holds_values(text)
    imported = {alias.asname or alias.name for node in ast.parse(text).body
                if isinstance(node, ast.ImportFrom) and node.module != "__future__" for alias in node.names}
    used = {node.id for value in holds.values() for node in ast.walk(value) if isinstance(node, ast.Name)}
    return [name for name, value in holds.items() if isinstance(value, ast.Constant)] + sorted(imported & used)
