"""backup_anomalies over known sizes: above the factor, below one over it, too few others, per backup
type, deleted backups among the others, sizes of 0 and none."""

from __future__ import annotations

import pytest

from tests.reports.history import HOUR, History, read_view, utc

AS_OF = utc(2024, 3, 10, 12)
COLUMNS = ["cloud", "backup_id", "virtual_machine_id", "user_id", "backup_type", "backup_size_kb", "median_kb", "ratio",
           "created_at"]


def created(backup_id: int):
    return utc(2024, 1, 1) + backup_id * HOUR


def _sizes(h: History) -> None:
    h.sync(AS_OF)

    def add(backup_id: int, vm: int, size: int | None, backup_type: str | None = "normal", **fields) -> None:
        h.backup(backup_id, vm=vm, owner=vm if vm != 4 else None, size=size, backup_type=backup_type,
                 created_at=created(backup_id), **fields)

    # VM 1: 400 against its other normal backups 100, 110 and 120 (median 110). 120 is deleted, and still
    # one of the three others. The incrementals are a group of their own: beside the normal ones they
    # would be far too small.
    add(11, 1, 100)
    add(12, 1, 110)
    add(13, 1, 120, deleted_at=AS_OF - HOUR)
    add(14, 1, 400)
    for backup_id, size in zip((15, 16, 17, 18), (10, 11, 12, 13)):
        add(backup_id, 1, size, "incremental")
    # VM 2: 1000 beside 100 and 100, but only 2 others with a size: nothing to say yet.
    add(21, 2, 100)
    add(22, 2, 100)
    add(23, 2, 1000)
    add(24, 2, None)
    # VM 3: 300 against 1000, 1000, 1100 and 1200 (median 1050): below 1050 / 3 = 350.
    for backup_id, size in zip((31, 32, 33, 34, 35), (1000, 1000, 1200, 1100, 300)):
        add(backup_id, 3, size)
    # VM 4 (no owner): an empty backup beside three of 500.
    for backup_id, size in zip((41, 42, 43, 44), (500, 500, 500, 0)):
        add(backup_id, 4, size)
    # VM 5: three empty backups give no usual size to compare 100 with.
    for backup_id, size in zip((51, 52, 53, 54), (0, 0, 0, 100)):
        add(backup_id, 5, size)
    # VM 6: backups without a type compare with each other; a lone normal one has no others.
    for backup_id, size in zip((61, 62, 63, 64), (100, 100, 100, 1000)):
        add(backup_id, 6, size, None)
    add(65, 6, 5)
    # VM 7: a huge backup that is deleted is no longer listed.
    for backup_id, size in zip((71, 72, 73), (100, 100, 100)):
        add(backup_id, 7, size)
    add(74, 7, 10_000, deleted_at=AS_OF - HOUR)


def test_anomalies_of_a_known_fleet_with_the_default_factor(tmp_path):
    columns, got = read_view(tmp_path / "w.duckdb", _sizes, "backup_anomalies")
    assert columns == COLUMNS
    # The largest ratio first; ratios to 2 decimals.
    assert got == [
        ("default", 64, 6, 6, None, 1000, 100.0, 10.0, created(64)),
        ("default", 14, 1, 1, "normal", 400, 110.0, 3.64, created(14)),     # 3.636...
        ("default", 35, 3, 3, "normal", 300, 1050.0, 0.29, created(35)),    # 0.2857...
        ("default", 44, 4, None, "normal", 0, 500.0, 0.0, created(44)),
    ]


@pytest.mark.parametrize(
    ("factor", "listed"),
    [
        # 3.636 is above 3.5; 300 is not below 1050 / 3.5 = 300 exactly.
        (3.5, [64, 14, 44]),
        (4, [64, 44]),
        # 1200 vs 1000: 1.2; 13 vs 11: 1.18; 100 vs 120 and 10 vs 12: 0.83 (ties by id); 1000 vs 1050: 0.95
        (1.15, [64, 14, 33, 18, 11, 15, 35, 44]),
    ],
)
def test_the_factor_comes_from_the_settings(tmp_path, factor, listed):
    _, got = read_view(tmp_path / "w.duckdb", _sizes, "backup_anomalies", anomaly_factor=factor)
    assert [row[1] for row in got] == listed


def test_a_large_fleet_is_compared_within_a_small_memory_limit(tmp_path):
    # 20,000 VMs of 40 backups: pairing each backup with the others of its VM (31 million pairs) ran out of
    # the load's memory at a million backups; the median read off each VM's ordered sizes does not.
    from pipeline.warehouse.connection import connect_warehouse

    con = connect_warehouse(tmp_path / "w.duckdb")
    con.execute("""
        INSERT INTO sync_runs (cloud, run_id, started_at, finished_at, source_url, format, status)
        VALUES ('default', 'r', TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00', 's', 'json', 'ok')""")
    con.execute("""
        INSERT INTO backups (cloud, id, virtual_machine_id, backup_type, backup_size, first_seen_at, last_seen_at)
        SELECT 'default', i, i // 40, 'normal', CASE WHEN i % 40 = 0 THEN 1000000 ELSE 1000 + i % 7 END,
               TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00'
        FROM range(800000) AS t(i)""")
    con.close()
    con = connect_warehouse(tmp_path / "w.duckdb", read_only=True, memory_limit="128MB")
    assert con.execute("SELECT count(*), min(ratio) FROM backup_anomalies").fetchone() == (20_000, 997.01)
    con.close()
