"""The writer's session: one writer at a time, on a private copy published whole; a kill leaves nothing it trips on."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.connection import WarehouseBusy
from pipeline.warehouse.publish import lock_path, private_path, writing_session

ROOT = Path(__file__).resolve().parents[2]

# A writer in its own process: a first commit, then (if asked) a second large one, during which it says so.
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pipeline.warehouse.publish import writing_session
    db, rows = sys.argv[1], int(sys.argv[2])
    with writing_session(db) as con:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT 1 AS x")
        print("committed", flush=True)
        if rows:
            con.execute("CREATE TABLE big AS SELECT hash(i) AS a FROM range($n) t(i)", {"n": rows})
            print("loaded", flush=True)
            time.sleep(600)
    print("published", flush=True)
    """
)


# A process that commits to a file in place and dies before DuckDB checkpoints: the commit is only in the log.
_KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import duckdb, os, sys
    con = duckdb.connect(sys.argv[1])
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("INSERT INTO t VALUES (2)")
    os.kill(os.getpid(), 9)
    """
)


def _commit_then_die(db: Path) -> None:
    subprocess.run([sys.executable, "-c", _KILLED_AFTER_COMMIT, str(db)], cwd=ROOT)
    assert Path(f"{db}.wal").exists()


def _writer(db: Path, rows: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(rows)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


def _tables(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall())


def test_a_session_publishes_at_its_end_and_a_failed_one_publishes_nothing(tmp_path):
    db = tmp_path / "w.duckdb"
    with writing_session(db) as con:
        con.execute("CREATE TABLE kept AS SELECT 1 AS x")
        assert not db.exists()  # nothing is published before the end of the block
    with pytest.raises(ValueError), writing_session(db) as con:
        con.execute("CREATE TABLE dropped AS SELECT 1 AS x")
        raise ValueError("the load failed after its commit")
    assert "kept" in _tables(db) and "dropped" not in _tables(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.lock"]


def test_a_killed_writer_frees_the_lock_and_its_copy_is_never_published(tmp_path):
    db = tmp_path / "w.duckdb"
    with writing_session(db) as con:
        con.execute("CREATE TABLE before_kill AS SELECT 1 AS x")
    victim = _writer(db, 2_000_000)
    try:
        assert victim.stdout.readline().strip() == "committed"
        assert victim.stdout.readline().strip() == "loaded"
        # While it holds the lock, another writer is told the warehouse is busy.
        with pytest.raises(WarehouseBusy, match=f"^warehouse busy: {db}$"), writing_session(db, lock_timeout_s=0.2):
            pass
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
    assert private_path(db).exists()  # its copy, with commits that were never published
    assert "before_kill" in _tables(db) and not {"t", "big"} & set(_tables(db))
    # No wait at all: the kernel released the dead writer's lock.
    with writing_session(db, lock_timeout_s=0) as con:
        con.execute("CREATE TABLE after_kill AS SELECT 1 AS x")
    assert "after_kill" in _tables(db) and not {"t", "big"} & set(_tables(db))
    assert not private_path(db).exists() and lock_path(db).exists()


def test_a_stale_log_beside_a_stale_copy_is_not_replayed(tmp_path):
    db = tmp_path / "w.duckdb"
    with writing_session(db) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    # A writer killed after a commit but before its checkpoint: its copy, and the log of that commit, which
    # DuckDB would replay onto a new copy of the same file.
    shutil.copyfile(db, private_path(db))
    _commit_then_die(private_path(db))
    with writing_session(db) as con:
        assert con.execute("SELECT list(x) FROM t").fetchall() == [([1],)]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT list(x) FROM t").fetchall() == [([1],)]
    assert not Path(f"{private_path(db)}.wal").exists()


def test_a_log_left_beside_the_published_file_is_kept_not_lost(tmp_path):
    db = tmp_path / "w.duckdb"
    with writing_session(db) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    # A tool that wrote the file in place and died before its checkpoint: its commit is only in the log.
    _commit_then_die(db)
    with writing_session(db) as con:
        con.execute("INSERT INTO t VALUES (3)")
    assert not Path(f"{db}.wal").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchall() == [([1, 2, 3],)]


def test_the_writer_runs_on_the_threads_it_is_given(tmp_path):
    # Each DuckDB thread keeps buffers of its own: the load's one thread keeps the job's peak down.
    with writing_session(tmp_path / "w.duckdb", threads=1) as con:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
    with writing_session(tmp_path / "w.duckdb", threads=2) as con:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (2,)
