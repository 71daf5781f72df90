"""The code map holds: plain libraries never import Dagster or its wiring, the simulator stays behind its resource."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
LIBRARIES = ("onapp", "demo", "records", "warehouse", "reports", "alerts", "clouds")
MAX_LINES = 320  # "about 300": a module past it has two jobs


def imported(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules() -> list[Path]:
    return sorted(PIPELINE.rglob("*.py"))


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_plain_library_imports_neither_dagster_nor_the_wiring(library):
    offending = {
        str(path.relative_to(PIPELINE)): sorted(
            name for name in imported(path)
            if name.split(".")[0] == "dagster" or name.startswith(("pipeline.defs", "pipeline.definitions",
                                                                   "pipeline.run"))
        )
        for path in (PIPELINE / library).rglob("*.py")
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_simulator_is_imported_only_by_its_resource():
    importers = {str(path.relative_to(PIPELINE)) for path in modules()
                 if not path.is_relative_to(PIPELINE / "demo")
                 and any(name.startswith("pipeline.demo") for name in imported(path))}
    assert importers == {"defs/demo_resource.py"}


def test_libraries_depend_one_way():
    # clouds <- warehouse, records <- warehouse <- alerts -> onapp; onapp and records never reach into the warehouse, reports or alerts.
    allowed = {
        "onapp": set(), "records": set(), "demo": set(),
        "warehouse": {"records", "clouds"}, "reports": set(), "alerts": {"warehouse", "onapp"}, "clouds": set(),
    }
    found = {}
    for library in LIBRARIES:
        for path in (PIPELINE / library).rglob("*.py"):
            others = {name.split(".")[1] for name in imported(path)
                      if name.startswith("pipeline.") and name.split(".")[1] != library}
            if others - allowed[library] - {"sql"}:
                found[str(path.relative_to(PIPELINE))] = sorted(others - allowed[library])
    assert found == {}


def test_no_module_outgrows_one_job():
    long = {str(path.relative_to(PIPELINE)): n for path in modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_arrow_allocates_with_malloc_once_the_package_is_imported():
    # Arrow's own pool keeps freed pages under the load's peak; the package picks malloc before pyarrow loads.
    code = "import pipeline.definitions, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.split()[-1] == "system"


def test_the_code_location_keeps_the_garbage_collector_off_what_it_loaded_and_off_everything_at_exit():
    # atexit runs the latest registration first: this one runs after the package's freeze at exit.
    code = ("import atexit, gc; atexit.register(lambda: print('unfrozen at exit', len(gc.get_objects()))); "
            "import pipeline.definitions; print('frozen when loaded', gc.get_freeze_count() > 0); "
            "made = [[] for _ in range(1000)]")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == ["frozen when loaded True", "unfrozen at exit 0"]
