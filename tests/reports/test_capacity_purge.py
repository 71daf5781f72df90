"""capacity_forecast's reclaimable_gib and days_to_100_pct_after_purge over known servers and history;
the columns before them keep their meaning."""

from __future__ import annotations

from datetime import date

from tests.reports.history import DAY, GIB_KB, history, utc

NOW = utc(2030, 6, 15, 12)  # the latest sync in storage_history


def test_a_purge_of_the_marked_backups_and_the_days_it_buys(tmp_path):
    # server: (capacity GiB, GiB kept, GiB marked for delete, GiB a day over the last 10 days)
    servers = {1: (100, 10, 20, 1.0), 2: (20, 15, 10, 0.5), 3: (50, 10, 5, 0.0), 4: (10, 30, 5, 1.0)}
    with history(tmp_path / "w.duckdb") as h:
        backup_id = 0
        for server, (capacity, kept, marked, pace) in servers.items():
            h.server(server, f"bs-{server}", capacity)
            for gib, is_marked in ((kept, False), (marked, True)):
                backup_id += 1
                h.backup(backup_id, size=gib * GIB_KB, backup_server_id=server, marked_for_delete=is_marked,
                         created_at=NOW - 40 * DAY)
            stored = kept + marked
            for k in range(10):
                h.snapshot(NOW - k * DAY, "backup_server", server, int((stored - pace * k) * GIB_KB))
        # Deleted, or on no dedicated server: marked too, but reclaimable from none of these.
        h.backup(90, size=5 * GIB_KB, backup_server_id=1, marked_for_delete=True, created_at=NOW - 40 * DAY,
                 deleted_at=NOW - DAY)
        h.backup(91, size=5 * GIB_KB, backup_server_id=None, marked_for_delete=True, created_at=NOW - 40 * DAY)
        got = h.rows("capacity_forecast")
        columns = [column for column, *_ in h.con.description]
    assert columns[-2:] == ["reclaimable_gib", "days_to_100_pct_after_purge"]
    assert got == [
        # 30 of 100 GiB at 1 GiB a day: 80% in 50 days, full in 70; 10 GiB after the purge, full in 90.
        ("default", 1, "bs-1", 100.0, 30.0, 30.0, 1.0, 10, 50.0, date(2030, 8, 4), 70.0, date(2030, 8, 24), "growing",
         20.0, 90.0),
        # Full now (25 of 20 GiB); the purge leaves 15, full again in (20 - 15) / 0.5 = 10 days.
        ("default", 2, "bs-2", 20.0, 25.0, 125.0, 0.5, 10, None, None, None, None, "already full", 10.0, 10.0),
        # Not growing: no date, with or without the purge.
        ("default", 3, "bs-3", 50.0, 15.0, 30.0, 0.0, 10, None, None, None, None, "not growing", 5.0, None),
        # Still over capacity after the purge (30 of 10 GiB): no day to wait for.
        ("default", 4, "bs-4", 10.0, 35.0, 350.0, 1.0, 10, None, None, None, None, "already full", 5.0, None),
    ]
