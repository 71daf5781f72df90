"""protection_gaps over a known fleet: each gap alone, gaps joined, the thresholds' edges, bad input."""

from __future__ import annotations

import pytest

from tests.reports.history import DAY, HOUR, History, history, read_view, utc

AS_OF = utc(2024, 3, 10, 12)
COLUMNS = ["cloud", "virtual_machine_id", "label", "user_id", "user_login", "backups", "newest_backup_at", "age_days",
           "reason"]


def _fleet(h: History) -> None:
    h.sync(AS_OF - 3 * DAY)
    h.sync(AS_OF)
    h.user(1, "alice")
    for vm, label in [(1, "no-backups"), (2, "fresh"), (3, "stale"), (4, "week-old"), (5, "none-built"),
                      (6, "stuck"), (7, "stale-and-stuck"), (9, "only-deleted"), (10, "no-created-at"),
                      (12, "unbuilt-a-day")]:
        h.vm(vm, label, 1)
    h.vm(8, "gone", 1, deleted_at=AS_OF - DAY)  # not listed by the latest sync: not a current VM
    h.vm(11, "stranger", 99)                     # an owner /users did not list

    def built(backup_id: int, vm: int, at, **fields) -> None:
        h.backup(backup_id, vm=vm, created_at=at - HOUR, built=True, built_at=at, **fields)

    def unbuilt(backup_id: int, vm: int, created_at, **fields) -> None:
        h.backup(backup_id, vm=vm, created_at=created_at, built=False, built_at=None, **fields)

    built(21, 2, AS_OF - 2 * DAY)
    built(31, 3, AS_OF - 20 * DAY)
    built(32, 3, AS_OF - 8 * DAY - 3 * HOUR)
    built(41, 4, AS_OF - 7 * DAY)                 # exactly 7 days: not older than 7
    unbuilt(51, 5, AS_OF - 2 * HOUR)              # none built, but not stuck a day yet
    built(61, 6, AS_OF - DAY)
    unbuilt(62, 6, AS_OF - 25 * HOUR)
    built(71, 7, AS_OF - 10 * DAY)
    unbuilt(72, 7, AS_OF - 3 * DAY)
    built(81, 8, AS_OF - 30 * DAY)
    built(91, 9, AS_OF - DAY, deleted_at=AS_OF - 3 * DAY)
    unbuilt(101, 10, None, first_seen_at=AS_OF - 2 * DAY)  # no created_at: first seen two days ago
    built(111, 11, AS_OF - 30 * DAY)
    built(121, 12, AS_OF - HOUR)
    unbuilt(122, 12, AS_OF - 24 * HOUR)           # exactly 24 hours: not more than 24
    built(131, 13, AS_OF - 30 * DAY)              # a VM the warehouse does not know: no row


def test_every_gap_alone_and_joined_with_the_default_settings(tmp_path):
    columns, got = read_view(tmp_path / "w.duckdb", _fleet, "protection_gaps")
    assert columns == COLUMNS
    assert got == [
        ("default", 1, "no-backups", 1, "alice", 0, None, None, "no backups"),
        ("default", 3, "stale", 1, "alice", 2, AS_OF - 8 * DAY - 3 * HOUR, 8.1, "no recent backup"),        # 8.125 days
        ("default", 5, "none-built", 1, "alice", 1, AS_OF - 2 * HOUR, 0.1, "no recent backup"),             # created_at
        ("default", 6, "stuck", 1, "alice", 2, AS_OF - DAY, 1.0, "backup not built"),
        # The newest backup is the unbuilt one of 3 days ago; the newest built is 10 days old.
        ("default", 7, "stale-and-stuck", 1, "alice", 2, AS_OF - 3 * DAY, 3.0, "no recent backup; backup not built"),
        ("default", 9, "only-deleted", 1, "alice", 0, None, None, "no backups"),
        ("default", 10, "no-created-at", 1, "alice", 1, AS_OF - 2 * DAY, 2.0, "no recent backup; backup not built"),
        ("default", 11, "stranger", 99, None, 1, AS_OF - 30 * DAY, 30.0, "no recent backup"),
    ]


@pytest.mark.parametrize(
    ("days", "listed"),
    [
        # Over 9 days: "stale" (8.1 days) is recent enough; 10 and 30 days are not.
        (9, {1: "no backups", 5: "no recent backup", 6: "backup not built",
             7: "no recent backup; backup not built", 9: "no backups", 10: "no recent backup; backup not built",
             11: "no recent backup"}),
        # Half a day: the 1-day and 2-day old backups are stale now; the 1-hour old one is not.
        (0.5, {1: "no backups", 2: "no recent backup", 3: "no recent backup", 4: "no recent backup",
               5: "no recent backup", 6: "no recent backup; backup not built",
               7: "no recent backup; backup not built", 9: "no backups", 10: "no recent backup; backup not built",
               11: "no recent backup"}),
    ],
)
def test_protection_days_come_from_the_settings(tmp_path, days, listed):
    _, got = read_view(tmp_path / "w.duckdb", _fleet, "protection_gaps", protection_days=days)
    assert {row[1]: row[8] for row in got} == listed


def test_age_is_counted_to_as_of_in_tenths_of_a_day(tmp_path):
    with history(tmp_path / "w.duckdb") as h:
        h.sync(AS_OF)
        for vm, age in [(1, 8 * DAY + 2 * HOUR), (2, 8 * DAY + 4 * HOUR), (3, 400 * DAY + 23 * HOUR)]:
            h.vm(vm, f"vm-{vm}", None)
            h.backup(vm, vm=vm, created_at=AS_OF - age - HOUR, built_at=AS_OF - age)
        got = {row[1]: row[7] for row in h.rows("protection_gaps")}
    # 8.083 -> 8.1, 8.167 -> 8.2, 400.958 -> 401.0
    assert got == {1: 8.1, 2: 8.2, 3: 401.0}
