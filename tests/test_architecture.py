"""The import rules of docs/architecture.md: lower rooms never import higher ones."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "crosssent"
COMMON = {"crosssent.metrics", "crosssent.atomic_files", "crosssent.validation_errors", "crosssent.provenance"}


def room(module: str) -> str:
    if module in COMMON:
        return "common"
    parts = module.split(".")
    if len(parts) >= 3 or parts[-1] in ("data", "model", "train", "experiments", "features", "inference"):
        return parts[1]
    return {"crosssent": "package", "crosssent.scoring": "scoring", "crosssent.cli": "cli"}[module]


ALLOWED = {
    "common": set(),
    "data": {"common", "data"},
    "model": {"common", "data", "model"},
    "scoring": {"common", "data", "model"},
    "train": {"common", "data", "model", "scoring", "train"},
    "experiments": {"common", "data", "model", "scoring", "train", "experiments"},
    "features": {"common", "data", "model", "features"},
    "inference": {"common", "data", "model", "scoring", "features", "inference", "train.config"},
    "cli": {"common", "data", "model", "scoring", "train", "experiments", "features", "inference", "package"},
    "package": {"common", "model"},
}
# Rooms with a stricter rule than their package's.
ONLY = {
    "crosssent.model.configuration": {"crosssent.validation_errors"},
    "crosssent.model.modeling": {"crosssent.model.configuration"},
    "crosssent.model.objectives": set(),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Every crosssent module imported anywhere in the file (function bodies included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crosssent"):
            for alias in node.names:  # ``from crosssent.x import y`` may import module x.y
                names.add(f"{node.module}.{alias.name}")
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("crosssent")}
    known = modules()
    return {n for n in names if n in known}


@pytest.mark.parametrize("module", sorted(modules()))
def test_every_module_imports_only_rooms_below_it(module):
    path = modules()[module]
    imported = imports_of(path) - {module} - {m for m in imports_of(path) if module.startswith(m + ".")}
    if module in ONLY:
        assert imported <= ONLY[module], f"{module} imports {sorted(imported - ONLY[module])}"
        return
    allowed = ALLOWED[room(module)]
    for other in imported:
        target = room(other)
        assert target in allowed or other.removeprefix("crosssent.") in allowed, f"{module} imports {other}"


def test_nothing_imports_the_command_line():
    for module, path in modules().items():
        if module != "crosssent.cli":
            assert "crosssent.cli" not in imports_of(path), module


def test_tests_mirror_the_source_tree():
    tests = Path(__file__).resolve().parent
    for module, path in modules().items():
        if path.name == "__init__.py" or module == "crosssent.cli":
            continue
        relative = path.relative_to(SRC)
        mirror = tests / relative.parent / f"test_{relative.name}"
        assert mirror.is_file(), f"{module} has no {mirror.relative_to(tests.parent)}"
