"""A run killed (-9) inside the warehouse step blocks no later run: the writer's lock dies with its holder."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.publish import lock_path, private_path
from tests.conftest import MATERIALIZE, dagster_cli, kill_sync_when, ledger

pytestmark = pytest.mark.slow

# Rows of incompressible numbers (about 340 MB): the writer copies the warehouse, and with it the load
# step lasts long enough to be caught inside.
BALLAST_ROWS = 20_000_000


def add_ballast(db: Path) -> None:
    """Make the warehouse large, in place, as a tool could; the sync keeps the extra table as it is."""
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ballast AS SELECT hash(i) AS a, hash(i + 1) AS b FROM range($n) t(i)",
                    {"n": BALLAST_ROWS})


def test_a_run_killed_inside_the_warehouse_step_does_not_block_the_next(cloud, tmp_path):
    db = tmp_path / "backups.duckdb"
    first = dagster_cli(MATERIALIZE, tmp_path, cloud)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    add_ballast(db)
    published = db.stat().st_ino

    # The private copy exists only while the writer holds its lock, between its copy and its publish.
    kill_sync_when(lambda: private_path(db).exists(), tmp_path, cloud, interval_s=0.01)
    # It died inside: its private copy is left, the published file is the one it started from.
    assert private_path(db).exists() and db.stat().st_ino == published
    assert [status for status, _ in ledger(tmp_path)] == ["ok"]

    # The same instance (DAGSTER_HOME), with the killed run still 'started' in it: the next run waits for
    # nothing and completes, and the killed run's copy is never published.
    second = dagster_cli(MATERIALIZE, tmp_path, cloud)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert [status for status, _ in ledger(tmp_path)] == ["ok", "ok"]
    assert not private_path(db).exists() and lock_path(db).exists()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ballast").fetchall() == [(BALLAST_ROWS,)]
