"""The folders are floors (README "Layout", docs/architecture.md "Floors"): a package imports only from the
floors below it, and no two modules import each other, directly or through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAY_IMPORT: dict[str, set[str]] = {
    "liushui": set(),
    "transforms": {"liushui"},
    "expectations": {"liushui", "transforms"},
    "synthetic": {"liushui", "transforms"},
    "flows": {"liushui", "transforms", "expectations"},
    "apps": {"liushui", "transforms", "expectations", "flows", "synthetic"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module of ours that `path` imports, at any depth (a lazy import inside a function counts)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in MAY_IMPORT}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for package in MAY_IMPORT for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_package_imports_from_a_floor_above_it():
    upward = sorted(
        (module, imported)
        for module, imports in _graph().items()
        for imported in imports
        if imported.split(".")[0] != module.split(".")[0]
        and imported.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]
    )
    assert not upward, f"imports that run upward: {upward}"


def test_no_import_circles_between_modules():
    graph = _graph()
    circles = []

    def visit(module: str, path: list[str], seen: set[str]) -> None:
        for imported in sorted(graph[module]):
            if imported == path[0]:
                circles.append(" -> ".join([*path, imported]))
            elif imported not in seen and imported in graph:
                seen.add(imported)
                visit(imported, [*path, imported], seen)

    for start in sorted(graph):
        visit(start, [start], {start})
    # a package's __init__ re-exporting its own modules is not a circle of code
    circles = [c for c in circles if not any(p for p in c.split(" -> ") if p in MAY_IMPORT)]
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles))[:20])


def test_the_floor_map_covers_every_package():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "bench"} == set(MAY_IMPORT)
