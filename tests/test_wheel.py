"""The wheel: it holds the code and the SQL, and syncs when installed away from the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import duckdb

from pipeline.warehouse.connection import migration_files, view_files
from tests.conftest import served_backups

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "pipeline", "sql")

# Run by the fresh environment's interpreter: where the package and its SQL come from, and who finds them.
PROBE = """
import json, sys
from importlib.resources import files
import pipeline
print(json.dumps({"pipeline": pipeline.__file__, "sql": str(files("pipeline.sql")),
                  "finders": [repr(finder) for finder in sys.meta_path]}))
"""


def test_pyproject_lists_every_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "pipeline").rglob("__init__.py")}
    assert set(setuptools["packages"]) == on_disk | {"pipeline.sql"}
    assert setuptools["package-dir"] == {"pipeline.sql": "sql"}


def _run(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output if it fails."""
    done = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(tmp_path: Path) -> Path:
    """Build the wheel offline from a copy of the sources, so the build leaves nothing in the repository."""
    src, dist = tmp_path / "src", tmp_path / "dist"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", dist, src, timeout=300)
    [wheel] = dist.glob("*.whl")
    return wheel


def install_apart(tmp_path: Path, wheel: Path) -> Path:
    """A new virtualenv with the wheel installed; its dependencies are the project environment's.

    The project's site-packages is added by a .pth line, which puts the folder on sys.path without
    running the .pth files in it: the editable install's finder there is never installed.
    """
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # Before the .pth exists, so pip sees no other copy of the project.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel,
         timeout=300)
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    shared = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site) / "project_dependencies.pth").write_text("".join(f"{path}\n" for path in shared), encoding="utf-8")
    return python


def test_the_installed_wheel_syncs_from_another_directory(tmp_path, cloud):
    python = install_apart(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}

    found = json.loads(_run(python, "-c", PROBE, cwd=elsewhere, env=env).stdout)
    venv = python.parent.parent
    for key in ("pipeline", "sql"):
        assert Path(found[key]).is_relative_to(venv), found
        assert not Path(found[key]).resolve().is_relative_to(ROOT), found
    assert not any("__editable__" in finder for finder in found["finders"]), found["finders"]

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    db = tmp_path / "warehouse" / "backups.duckdb"
    env.update(
        DAGSTER_HOME=str(home), ONAPP_API_URL=cloud.url, ONAPP_API_USER=cloud.config.user,
        ONAPP_API_KEY=cloud.config.api_key, BACKUPS_DB=str(db), BACKUPS_REPORTS_DIR=str(tmp_path / "reports"),
    )
    _run(python, "-m", "dagster", "asset", "materialize", "-m", "pipeline.definitions", "--select", "*",
         cwd=elsewhere, env=env, timeout=300)

    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute("SELECT id FROM backups WHERE deleted_at IS NULL ORDER BY id").fetchall()
        applied = con.execute("SELECT name FROM schema_version ORDER BY name").fetchall()
    assert [row[0] for row in loaded] == sorted(served_backups(cloud)["id"])
    assert [row[0] for row in applied] == sorted(migration_files() + view_files())
