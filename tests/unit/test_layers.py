"""The layers of bot/ import only what docs/ARCHITECTURE.md says they may (lazy imports count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(source: str) -> set[str]:
    """Every DockWarden module a source imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("bot", "adapters")}


def _outside(folder: str, allowed: tuple[str, ...]) -> list[str]:
    """`file: module` for each import under bot/<folder> of a module not in `allowed`."""
    offenders = []
    for path in sorted((ROOT / "bot" / folder).rglob("*.py")):
        for name in sorted(_imports(path.read_text())):
            if not any(name == ok or name.startswith(f"{ok}.") for ok in allowed):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    return offenders


def test_the_domain_imports_only_the_error_tree_and_the_schedule_syntax() -> None:
    assert _outside("domain", ("bot.errors", "bot.domain", "bot.config.cron")) == []


@pytest.mark.parametrize("folder", ["registry", "engines", "store"])
def test_registry_engines_and_store_know_nothing_of_checks_updates_or_chat(folder: str) -> None:
    assert _outside(folder, ("bot.errors", "bot.domain", f"bot.{folder}")) == []


def test_only_the_entry_points_import_the_adapters() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if "entrypoints" not in path.relative_to(ROOT / "bot").parts
        for name in sorted(_imports(path.read_text()))
        if name.split(".")[0] == "adapters"
    ]
    assert offenders == []


def test_the_rule_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import httpx\n"
        "if TYPE_CHECKING:\n"
        "    from bot.check.checker import Checker\n"
        "def later() -> None:\n"
        "    import adapters.console\n"
    )
    assert _imports(source) == {
        "bot.check.checker", "bot.check.checker.Checker", "adapters.console"
    }


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_public_error_of_the_core_is_declared_in_the_error_tree() -> None:
    import importlib

    from bot.errors import DockWardenError

    for path in sorted((ROOT / "bot").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] not in ("__init__", "__main__"):
            importlib.import_module(".".join(parts))
    elsewhere = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(DockWardenError)
        if cls.__module__.startswith("bot.")
        and cls.__module__ != "bot.errors"
        and not cls.__name__.startswith("_")
    )
    assert elsewhere == []
