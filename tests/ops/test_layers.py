"""The import layers of pyproject.toml: every part of the project is in one, and the top-level
modules, which import-linter does not analyse (it reads packages only), keep to them too."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layers() -> list[set[str]]:
    """The layers contract, top to bottom, each layer the set of its names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [{name.strip() for name in layer.split("|")} for layer in contract["layers"]]


def parts_of_the_project() -> set[str]:
    modules = {path.stem for path in ROOT.glob("*.py")}
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    return (modules | packages) - {"tests"}


def imported_by(path: Path) -> set[str]:
    """The top-level names a module imports, wherever in it (functions, TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_module_and_package_is_in_one_layer() -> None:
    named = [name for layer in layers() for name in layer]
    assert len(named) == len(set(named))
    assert set(named) == parts_of_the_project()


def test_the_top_level_modules_import_only_from_lower_layers() -> None:
    level = {name: index for index, layer in enumerate(layers()) for name in layer}
    for path in ROOT.glob("*.py"):
        own = level[path.stem]
        for name in imported_by(path) & set(level) - {path.stem}:
            assert level[name] > own, f"{path.name} imports {name}, which is not below it"
