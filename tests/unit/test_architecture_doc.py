"""docs/ARCHITECTURE.md names only files and folders that exist: a move updates the map too."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
_PATH = re.compile(r"\b(?:bot|adapters|tests|docs)/[\w/.-]*[\w/]")


def test_every_path_the_architecture_doc_names_exists() -> None:
    named = set(_PATH.findall(DOC.read_text()))
    assert len(named) > 50  # the doc names its modules by path
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


def test_every_module_of_the_map_is_named_with_its_folder() -> None:
    # A bare `checker.py` would be found by no one: the map names paths from the top.
    bare = re.findall(r"`([a-z_]+\.py)`", DOC.read_text())
    assert bare == []
