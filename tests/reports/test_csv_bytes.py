"""The CSVs DuckDB renders are byte for byte what pandas wrote of the same rows, awkward values included."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.defs.metadata import preview
from pipeline.reports.export import PREVIEW_ROWS, export_report, read_report, write_csv

# Every type the report views use, and values that each format in its own way: NULLs, NaN and the
# infinities, signed zeros and exponents, exact decimals (negative ones start with '-', a formula start),
# timestamps with and without microseconds, text a spreadsheet would run or csv must quote.
AWKWARD = r"""
SELECT * FROM (VALUES
    (1, 0::SMALLINT, 0::UBIGINT, 0.0::DOUBLE, 'plain', 2.600000::DECIMAL(38,6), 2.60::DECIMAL(38,2),
     DATE '2026-03-01', TIMESTAMPTZ '2026-03-01 02:00:00+00', 'x'),
    (2, -5::SMALLINT, 18446744073709551615::UBIGINT, -0.0::DOUBLE, '', -1.500000::DECIMAL(38,6),
     -0.01::DECIMAL(38,2), NULL, TIMESTAMPTZ '2026-03-01 02:00:00.5+00', NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, DATE '0999-12-31', NULL, NULL),
    (4, 32767::SMALLINT, 7::UBIGINT, 'NaN'::DOUBLE, '=SUM(A1:A9)', 0.000001::DECIMAL(38,6), 0::DECIMAL(38,2),
     DATE '2200-01-01', TIMESTAMPTZ '1970-01-01 00:00:00.000001+00', '+1'),
    (5, 1::SMALLINT, 1::UBIGINT, 'inf'::DOUBLE, '-1', 123456789012.123456::DECIMAL(38,6),
     -99999.99::DECIMAL(38,2), DATE '2026-12-31', TIMESTAMPTZ '2024-02-29 23:59:59.999999+00', '@me'),
    (6, 2::SMALLINT, 2::UBIGINT, '-inf'::DOUBLE, chr(9) || 'tab', 0::DECIMAL(38,6), 1000000::DECIMAL(38,2),
     NULL, TIMESTAMPTZ '2026-03-01 02:00:00.120000+00', chr(13) || 'cr'),
    (7, 3::SMALLINT, 3::UBIGINT, 1e-05::DOUBLE, 'a,b', NULL, NULL, NULL, NULL, 'say "hi"'),
    (8, 4::SMALLINT, 4::UBIGINT, 1e16::DOUBLE, 'two' || chr(10) || 'lines', NULL, NULL, NULL, NULL,
     '=,"' || chr(13) || chr(10)),
    (9, 5::SMALLINT, 5::UBIGINT, 962500.0::DOUBLE, '''quoted', NULL, NULL, NULL, NULL, ' leading space'),
    (10, 6::SMALLINT, 6::UBIGINT, (0.1 + 0.2)::DOUBLE, 'ünïcödé ✓', NULL, NULL, NULL, NULL, '=' || chr(769)),
    (11, 7::SMALLINT, 7::UBIGINT, -2.5e-300::DOUBLE, '"', NULL, NULL, NULL, NULL, '-'),
    (12, 8::SMALLINT, 8::UBIGINT, 1.7976931348623157e308::DOUBLE, '==', NULL, NULL, NULL, NULL, '''=')
) AS t (id, small, unsigned, ratio, label, gib_months, amount, day, created_at, note)
ORDER BY id
"""


@pytest.fixture
def con():
    with duckdb.connect(":memory:") as connection:
        connection.execute("SET TimeZone = 'UTC'")
        yield connection


def pandas_bytes(con, name, tmp_path) -> bytes:
    """What the export wrote before: the view read into a frame, neutralized, written by pandas."""
    return write_csv(read_report(con, name), tmp_path / "pandas" / f"{name}.csv").read_bytes()


def test_awkward_values_of_every_report_type_are_written_as_pandas_wrote_them(con, tmp_path):
    # A report's name over rows of this test's making: export_report reads views by those names only.
    con.execute(f"CREATE VIEW backup_anomalies AS {AWKWARD}")
    (tmp_path / "pandas").mkdir()
    report = export_report(con, "backup_anomalies", tmp_path)
    assert report.files["csv"].read_bytes() == pandas_bytes(con, "backup_anomalies", tmp_path)
    assert report.rows == 12 and len(report.head) == PREVIEW_ROWS and report.frame is None
    assert preview(report.head).value == preview(read_report(con, "backup_anomalies")).value
    # Neutralized and quoted, as a spreadsheet must see them.
    text = report.files["csv"].read_bytes().decode("utf-8")
    assert "\r\n4,32767,7,,'=SUM(A1:A9),0.000001,0.00,2200-01-01,1970-01-01 00:00:00.000001+00:00,'+1\r\n" in text
    assert ",'-1.500000,'-0.01,," in text and '"\'=,""\r\n"\r\n' in text


def test_an_empty_report_is_its_header_alone(con, tmp_path):
    con.execute(f"CREATE VIEW protection_gaps AS {AWKWARD} LIMIT 0")
    (tmp_path / "pandas").mkdir()
    report = export_report(con, "protection_gaps", tmp_path)
    assert report.files["csv"].read_bytes() == pandas_bytes(con, "protection_gaps", tmp_path)
    assert report.files["csv"].read_bytes().endswith(b",note\r\n") and report.rows == 0


def test_a_type_duckdb_does_not_render_is_written_by_pandas(con, tmp_path):
    # A naive TIMESTAMP's text depends on its whole column in pandas; a BOOLEAN is True/False there.
    con.execute("CREATE VIEW storage_trend AS SELECT * FROM (VALUES (1, TIMESTAMP '2026-03-01 00:00:00', true), "
                "(2, TIMESTAMP '2026-03-02 00:00:00', NULL)) AS t (id, taken, flag) ORDER BY id")
    (tmp_path / "pandas").mkdir()
    report = export_report(con, "storage_trend", tmp_path, with_frame=True)
    assert report.files["csv"].read_bytes() == pandas_bytes(con, "storage_trend", tmp_path)
    assert report.files["csv"].read_bytes() == b"id,taken,flag\r\n1,2026-03-01,True\r\n2,2026-03-02,\r\n"
    assert len(report.frame) == 2


def test_the_export_leaves_no_staging_table_behind(con, tmp_path):
    con.execute(f"CREATE VIEW storage_by_user AS {AWKWARD}")
    export_report(con, "storage_by_user", tmp_path, ("csv", "parquet"))
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)


def test_timestamps_take_the_finest_format_of_their_chunk_as_pandas_did(con, tmp_path):
    # pandas writes 100,000 cells at a time, every timestamp of a chunk in the format its finest one needs:
    # with 2 columns, chunks of 50,000 rows, newest first; the first holds a microsecond, the second a
    # millisecond, the third whole seconds. Many rows also show that the order of the view is kept.
    con.execute("""CREATE VIEW reclaimable_backups AS
        SELECT n AS backup_id,
               TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_seconds(n)
                 + CASE n WHEN 70000 THEN INTERVAL 5 MILLISECOND WHEN 120000 THEN INTERVAL 7 MICROSECOND
                          ELSE INTERVAL 0 SECOND END AS created_at
        FROM range(130000) AS t (n) ORDER BY n DESC""")
    (tmp_path / "pandas").mkdir()
    report = export_report(con, "reclaimable_backups", tmp_path)
    written = report.files["csv"].read_bytes()
    assert written == pandas_bytes(con, "reclaimable_backups", tmp_path)
    lines = written.decode("utf-8").split("\r\n")
    assert lines[1] == "129999,2026-03-02 12:06:39.000000+00:00" and lines[50001] == "79999,2026-03-01 22:13:19.000+00:00"
    assert lines[-2] == "0,2026-03-01 00:00:00+00:00"


def test_a_decimal_finer_than_str_of_a_decimal_shows_is_written_by_pandas(con, tmp_path):
    # str(Decimal('0.000000001')) is '1E-9': such a column keeps pandas' text.
    con.execute("CREATE VIEW capacity_forecast AS SELECT * FROM (VALUES (1, 0.000000001::DECIMAL(38,9)), "
                "(2, 0::DECIMAL(38,9))) AS t (id, price) ORDER BY id")
    (tmp_path / "pandas").mkdir()
    report = export_report(con, "capacity_forecast", tmp_path)
    assert report.files["csv"].read_bytes() == pandas_bytes(con, "capacity_forecast", tmp_path)
    assert report.files["csv"].read_bytes() == b"id,price\r\n1,1E-9\r\n2,0E-9\r\n"
