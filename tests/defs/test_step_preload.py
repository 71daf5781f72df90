"""The forkserver's preload: a step process forked from it opens the instance without importing its storage."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.defs.executor import PRELOAD_MODULES, default_executor

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter, as the forkserver is: preload, then open the instance as a step process does.
PROBE = """
import json, os, sys, threading
import pipeline.defs.step_preload
preloaded = set(sys.modules)
threads = threading.active_count()
files = sorted(os.listdir(os.environ["DAGSTER_HOME"]))
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
instance = DagsterInstance.from_ref(InstanceRef.from_dir(os.environ["DAGSTER_HOME"]))
instance.dispose()
print(json.dumps({"threads": threads, "files": files,
                  "imported_by_open": sorted(set(sys.modules) - preloaded)}))
"""


def _probe(home: Path) -> dict:
    env = {"DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_the_preload_opening_the_instance_imports_no_storage_module(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    probe = _probe(home)
    storage = [name for name in probe["imported_by_open"]
               if name.startswith(("sqlalchemy", "alembic", "dagster._core.storage"))]
    assert storage == []


def test_the_preload_opens_nothing_that_cannot_cross_a_fork(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    probe = _probe(home)
    # One thread and no database yet: a forked step process inherits no lock held by another thread and
    # no SQLite handle of its parent's.
    assert probe["threads"] == 1
    assert probe["files"] == ["dagster.yaml"]


def test_several_clouds_fork_their_steps_from_a_process_that_preloaded_the_instance_storage():
    config = default_executor(2).config_schema.default_value["multiprocess"]
    assert config["start_method"] == {"forkserver": {"preload_modules": PRELOAD_MODULES}}
    assert "pipeline.defs.step_preload" in PRELOAD_MODULES
