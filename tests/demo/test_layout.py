"""The demo package's modules depend on each other one way only: config, fleet, render, server, cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline.demo

ORDER = ("config", "fleet", "render", "server", "cli", "__main__")


def demo_imports(path: Path) -> set[str]:
    """Names of the pipeline.demo modules a source file imports, however it spells the import."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline.demo":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline.demo."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("pipeline.demo."))
    return found


def test_modules_import_only_earlier_ones():
    package = Path(pipeline.demo.__file__).parent
    assert {p.stem for p in package.glob("*.py")} == set(ORDER) | {"__init__"}
    for rank, name in enumerate(ORDER):
        imported = demo_imports(package / f"{name}.py")
        assert imported <= set(ORDER[:rank]), f"{name} imports {sorted(imported - set(ORDER[:rank]))}"
