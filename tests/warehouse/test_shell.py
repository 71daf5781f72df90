"""`make sql`: a read-only SQL shell on a real warehouse file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.shell import interact

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A small warehouse file with a backups table."""
    path = tmp_path / "backups.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE backups AS SELECT range AS id, range * 100 AS backup_size FROM range(1, 4)")
    return path


def shell(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    """Run the shell as `make sql` does, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.warehouse.shell", *args], input=stdin, capture_output=True, text=True,
        cwd=ROOT, env={**os.environ, **env}, timeout=60,
    )


def sizes(db: Path) -> list[tuple]:
    """Every backup's size, read without the shell."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT id, backup_size FROM backups ORDER BY id").fetchall()


def test_a_command_runs_each_statement_and_prints_tables(db):
    done = shell("--db", str(db), "-c", "SELECT sum(backup_size) AS total FROM backups; -- a remark; naming $x\n"
                                       "SELECT 'a;b' AS text_with_semicolon")
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "600" in done.stdout
    assert "a;b" in done.stdout


def test_the_warehouse_cannot_be_changed(db):
    before = sizes(db)
    done = shell("--db", str(db), "-c", "UPDATE backups SET backup_size = 0; SELECT 'not reached' AS never")
    assert done.returncode == 1
    assert "read-only" in done.stderr
    assert "not reached" not in done.stdout
    assert sizes(db) == before


def test_statements_can_be_piped_in_and_the_file_comes_from_backups_db(db):
    done = shell(stdin="SELECT count(*) AS backups_count\nFROM backups;\n", BACKUPS_DB=str(db))
    assert done.returncode == 0, done.stderr
    assert "backups_count" in done.stdout and "3" in done.stdout


def test_a_missing_warehouse_is_reported_not_created(tmp_path):
    missing = tmp_path / "none.duckdb"
    done = shell("--db", str(missing), "-c", "SELECT 1")
    assert done.returncode == 1
    assert "No warehouse" in done.stderr
    assert not missing.exists()


def test_interactive_statements_run_once_their_semicolon_ends_a_line(db, capsys):
    lines = iter(["SELECT 'a;", "b' AS joined,", "max(id) AS top FROM backups;", "SELEC 1;", "SELECT 42 AS answer;",
                  ".quit", "SELECT 'after quit' AS never;"])
    with duckdb.connect(str(db), read_only=True) as con:
        interact(con, read_line=lambda prompt: next(lines))
    out, err = capsys.readouterr()
    assert "joined" in out and "top" in out
    assert "syntax error" in err  # a typo is reported and the session goes on
    assert "42" in out
    assert "after quit" not in out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_sql_runs_one_query(db):
    # -o: never reinstall from a test; BIN: this interpreter's environment.
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed-stamp", "sql", f"BIN={Path(sys.executable).parent}",
         f"BACKUPS_DB={db}", "Q=SELECT 'it''s' AS quoted, count(*) AS n FROM backups"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "it's" in done.stdout and "quoted" in done.stdout
