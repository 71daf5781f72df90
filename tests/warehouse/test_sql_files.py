"""The SQL files: found as package data, split and bound by DuckDB's own parser."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import sql_files
from pipeline.warehouse.sql_files import query_sql, read_sql, run_sql, sql_names, sql_root, stage_sql, statements

ROOT = Path(__file__).resolve().parents[2]
# The pipeline's SQL and the benchmarks' (bench/sql/), which run through the same parser.
REPO_SQL = sorted(
    path.relative_to(ROOT).as_posix() for folder in ("sql", "bench") for path in (ROOT / folder).rglob("*.sql")
)

COMMENTED = """\
-- Rows older than $since are kept on purpose; $since is not a parameter here.
SELECT $a + 1 AS x; /* nor is $b */ ;
;
-- A remark between statements, naming $c.
SELECT $a * 10 AS y, '$d is text' AS t;
-- A closing remark with $e, after the last statement.
"""


@pytest.fixture
def con():
    """An in-memory DuckDB connection."""
    with duckdb.connect() as con:
        yield con


@pytest.fixture
def sql_text(monkeypatch):
    """Make read_sql serve the given text for any name, as though it were a file of sql/."""

    def serve(text: str) -> None:
        monkeypatch.setattr(sql_files, "read_sql", lambda name: text)

    return serve


def test_duckdb_splits_around_comments_and_drops_empty_statements():
    parsed = duckdb.extract_statements(COMMENTED)
    assert len(parsed) == 2  # the lone ';' makes no statement
    assert [statement.named_parameters for statement in parsed] == [{"a"}, {"a"}]
    # Comments stay in the statement's text (the closing one with the last statement) but are never parameters.
    assert "$since" in parsed[0].query and "$e" in parsed[1].query
    assert duckdb.extract_statements("-- only a comment\n;\n/* and another */") == []


def test_a_parameter_named_in_a_comment_is_not_required(con, sql_text):
    sql_text(COMMENTED)
    assert run_sql(con, "commented.sql", {"a": 2}) == [(20, "$d is text")]
    sql_text("-- one query, counting rows newer than $since\nSELECT $a AS a -- and $b after it\n")
    assert query_sql(con, "commented.sql", {"a": 5}).to_dict("records") == [{"a": 5}]


def test_each_statement_gets_only_the_parameters_it_uses(con, sql_text):
    sql_text("CREATE TABLE t AS SELECT $n AS n; SELECT n + $m FROM t;")
    assert run_sql(con, "two.sql", {"n": 1, "m": 2, "unused": 3}) == [(3,)]


def test_a_missing_parameter_is_named(con, sql_text):
    sql_text("SELECT 1; SELECT $run_id;")
    with pytest.raises(KeyError, match=r"\$run_id"):
        run_sql(con, "ledger.sql", {"synced_at": 1})


def test_a_query_is_staged_as_a_temporary_table_in_its_order_even_read_only(tmp_path, sql_text):
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS n FROM range(1000)")
    sql_text("-- the rows from $low, largest first\nSELECT n, n::VARCHAR AS text FROM t WHERE n >= $low ORDER BY n DESC;\n")
    with duckdb.connect(str(db), read_only=True) as con:
        stage_sql(con, "staged", "staged.sql", {"low": 10})
        assert con.execute("SELECT n FROM staged LIMIT 3").fetchall() == [(999,), (998,), (997,)]
        stage_sql(con, "staged", "staged.sql", {"low": 995})  # replaced, not appended to
        assert con.execute("SELECT n, text FROM staged").fetchall() == [(n, str(n)) for n in range(999, 994, -1)]


def test_statements_gives_the_text_of_each_statement():
    assert statements("SELECT 1;\n;\n-- trailing remark") == ["SELECT 1;\n;\n-- trailing remark"]
    assert statements("SELECT 1; SELECT 2") == ["SELECT 1;", "SELECT 2"]
    assert statements("-- nothing to run\n") == []


def test_the_package_serves_the_repository_sql_folder():
    # In the repository (editable install or pytest's pythonpath), pipeline.sql is the top-level sql/.
    assert Path(str(sql_root())).resolve() == ROOT / "sql"
    on_disk = sorted(f"migrations/{path.name}" for path in (ROOT / "sql" / "migrations").glob("*.sql"))
    assert sql_names("migrations") == on_disk
    assert read_sql(on_disk[0]) == (ROOT / "sql" / on_disk[0]).read_text(encoding="utf-8")


def test_the_repository_has_sql_files():
    assert any(name.startswith("sql/migrations/") for name in REPO_SQL)
    assert any(name.startswith("sql/checks/") for name in REPO_SQL)
    assert any(name.startswith("bench/") for name in REPO_SQL)


@pytest.mark.parametrize("name", REPO_SQL)
def test_every_sql_file_parses_with_named_parameters_only(name):
    parsed = duckdb.extract_statements((ROOT / name).read_text(encoding="utf-8"))
    assert parsed, f"{name} has no statement"
    for statement in parsed:
        # run_sql binds by name: a positional ? or $1 would get no value.
        assert all(key.isidentifier() for key in statement.named_parameters), (name, statement.named_parameters)
