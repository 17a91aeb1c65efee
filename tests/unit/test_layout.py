"""The tests mirror the code: every module of fluxhook/lifecycle/ (the use cases at its top, the steps in steps/) has
its unit test, tests/unit/lifecycle/[steps/]test_<module>.py, and no test file grows past MAX_LINES (split by what
each part tests, not by size alone)."""

from __future__ import annotations

from pathlib import Path

from devtools.processes import ROOT

LIFECYCLE = ROOT / "fluxhook" / "lifecycle"
TESTS = ROOT / "tests"
MAX_LINES = 600


def _modules(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.py") if path.stem != "__init__")


def _unit_test_of(module: Path) -> Path:
    """tests/unit/lifecycle/steps/test_waits.py for fluxhook/lifecycle/steps/waits.py."""
    return TESTS / "unit" / module.parent.relative_to(ROOT / "fluxhook") / f"test_{module.stem}.py"


def test_every_lifecycle_module_has_a_unit_test_of_its_own():
    modules = _modules(LIFECYCLE) + _modules(LIFECYCLE / "steps")
    assert LIFECYCLE / "key_admin.py" in modules and LIFECYCLE / "steps" / "callers.py" in modules

    missing = [f"{module.relative_to(ROOT)}: no {_unit_test_of(module).relative_to(ROOT)}"
               for module in modules if not _unit_test_of(module).is_file()]

    assert not missing, missing


def test_no_test_file_is_longer_than_the_limit():
    lengths = {path.relative_to(ROOT): len(path.read_text().splitlines()) for path in TESTS.rglob("*.py")}
    assert lengths[Path("tests/conftest.py")] > 0

    long = {str(path): lines for path, lines in sorted(lengths.items()) if lines > MAX_LINES}

    assert not long, f"over {MAX_LINES} lines: {long}"


def test_every_use_case_is_in_the_lifecycles_import_contract():
    """import-linter holds a step from importing a use case only for the use cases its contract names."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (lifecycle,) = [c for c in contracts if c.get("containers") == ["fluxhook.lifecycle"]]
    named = {name.strip() for name in lifecycle["layers"][0].split(":")}

    assert lifecycle["layers"][1] == "steps"
    assert named == {module.stem for module in _modules(LIFECYCLE)}
