"""Two clouds in one warehouse whose ids overlap: each has a backup 6117 (and 6118 to 6120), a user 1, a
VM 12 and a backup server 1 labelled bs-1, with figures of its own, and each its own as of. Every report,
check and alert must keep them apart; the expected rows are worked out by hand here."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from tests.reports.history import DAY, GIB_KB, History, utc

EU_AS_OF = utc(2024, 3, 10, 12)  # eu's latest loaded sync; a later one failed
US_AS_OF = utc(2024, 3, 9)       # us's, a day and a half earlier


def fill(h: History) -> None:
    """eu: alice's VM 12 with a 10 GiB backup beside three of 1 GiB on bs-1 (16 GiB), and VM 13 without any.
    us: carol's VM 12 with four 30 GiB backups ten days old on bs-1 (100 GiB), and a 1 GiB backup of a VM 13
    that us does not know (eu's VM 13 is another VM)."""
    eu, us = h.in_cloud("eu"), h.in_cloud("us")
    eu_before, eu_now = eu.sync(EU_AS_OF - 8 * DAY), eu.sync(EU_AS_OF)
    eu.sync(EU_AS_OF + DAY, "failed")
    us_before, us_now = us.sync(US_AS_OF - 6 * DAY), us.sync(US_AS_OF, "partial")

    eu.user(1, "alice")
    eu.server(1, "bs-1", 16)
    eu.vm(12, "web", 1)
    eu.vm(13, "bare", 1)
    eu.backup(6117, vm=12, owner=1, size=10 * GIB_KB, backup_server_id=1, created_at=EU_AS_OF - DAY)
    for backup_id, days in ((6118, 2), (6119, 3), (6120, 4)):
        eu.backup(backup_id, vm=12, owner=1, size=GIB_KB, backup_server_id=1, created_at=EU_AS_OF - days * DAY)
    for at, run_id, gib, backups in ((EU_AS_OF - 8 * DAY, eu_before, 5, 2), (EU_AS_OF, eu_now, 13, 4)):
        eu.snapshot(at, "backup_server", 1, gib * GIB_KB, backups, run_id)
        eu.snapshot(at, "user", 1, gib * GIB_KB, backups, run_id)

    us.user(1, "carol")
    us.server(1, "bs-1", 100)
    us.vm(12, "app", 1)
    for backup_id in (6117, 6118, 6119, 6120):
        us.backup(backup_id, vm=12, owner=1, size=30 * GIB_KB, backup_server_id=1, created_at=US_AS_OF - 10 * DAY)
    us.backup(7001, vm=13, owner=1, size=GIB_KB, created_at=US_AS_OF - DAY)
    us.snapshot(US_AS_OF - 6 * DAY, "backup_server", 1, 60 * GIB_KB, 2, us_before)
    us.snapshot(US_AS_OF - 6 * DAY, "user", 1, 60 * GIB_KB, 2, us_before)
    us.snapshot(US_AS_OF, "backup_server", 1, 120 * GIB_KB, 4, us_now)
    us.snapshot(US_AS_OF, "backup_server", None, GIB_KB, 1, us_now)
    us.snapshot(US_AS_OF, "user", 1, 121 * GIB_KB, 5, us_now)


# Every row of every report, in the views' order: by cloud first.
EXPECTED = {
    "as_of": [("eu", EU_AS_OF), ("us", US_AS_OF)],
    "storage_by_backup_server": [
        # 13 of 16 GiB; 8 GiB more than 8 days before eu's latest sync.
        ("eu", 1, "bs-1", 4, 13 * GIB_KB, 13.0, 4, 0, 0, 1, 1, 16.0, 81.25, 8 * GIB_KB, None),
        # us's earlier sync is 6 days before its own latest: no 7-day growth, whatever eu's dates.
        ("us", 1, "bs-1", 4, 120 * GIB_KB, 120.0, 4, 0, 0, 1, 1, 100.0, 120.0, None, None),
        ("us", None, None, 1, GIB_KB, 1.0, 1, 0, GIB_KB, 1, 1, None, None, None, None),
    ],
    "storage_by_user": [
        # Each user holds all of their own cloud's storage.
        ("eu", 1, "alice", 4, 13 * GIB_KB, 13.0, 1, 4, 0, 0, 100.0, 8 * GIB_KB, None),
        ("us", 1, "carol", 5, 121 * GIB_KB, 121.0, 2, 5, 0, GIB_KB, 100.0, None, None),
    ],
    "storage_by_virtual_machine": [
        ("eu", 12, "web", None, 1, "alice", 4, 13 * GIB_KB, 13.0, EU_AS_OF - 4 * DAY, EU_AS_OF - DAY),
        ("us", 12, "app", None, 1, "carol", 4, 120 * GIB_KB, 120.0, US_AS_OF - 10 * DAY, US_AS_OF - 10 * DAY),
        # Not eu's VM 13: us does not know its VM, so its label is empty and its owner is the backup's.
        ("us", 13, None, None, 1, "carol", 1, GIB_KB, 1.0, US_AS_OF - DAY, US_AS_OF - DAY),
    ],
    "storage_trend": [
        ("eu", "backup_server", date(2024, 3, 2), 1, "bs-1", 2, 5 * GIB_KB, 5.0),
        ("eu", "backup_server", date(2024, 3, 10), 1, "bs-1", 4, 13 * GIB_KB, 13.0),
        ("eu", "user", date(2024, 3, 2), 1, "alice", 2, 5 * GIB_KB, 5.0),
        ("eu", "user", date(2024, 3, 10), 1, "alice", 4, 13 * GIB_KB, 13.0),
        ("us", "backup_server", date(2024, 3, 3), 1, "bs-1", 2, 60 * GIB_KB, 60.0),
        ("us", "backup_server", date(2024, 3, 9), 1, "bs-1", 4, 120 * GIB_KB, 120.0),
        ("us", "backup_server", date(2024, 3, 9), None, None, 1, GIB_KB, 1.0),
        ("us", "user", date(2024, 3, 3), 1, "carol", 2, 60 * GIB_KB, 60.0),
        ("us", "user", date(2024, 3, 9), 1, "carol", 5, 121 * GIB_KB, 121.0),
    ],
    "capacity_forecast": [
        # 5 then 13 GiB 8 days apart: 1 GiB a day, 3 GiB left, full 3 days after eu's latest sync.
        ("eu", 1, "bs-1", 16.0, 13.0, 81.25, 1.0, 2, None, None, 3.0, date(2024, 3, 13), "over 80%", 0.0, 3.0),
        # 60 then 120 GiB 6 days apart: 10 GiB a day, already past its 100 GiB.
        ("us", 1, "bs-1", 100.0, 120.0, 120.0, 10.0, 2, None, None, None, None, "already full", 0.0, None),
    ],
    "reclaimable_backups": [
        # eu has a current VM 13; us has none.
        ("us", 7001, 13, None, 1, GIB_KB, US_AS_OF - DAY, "virtual machine no longer exists"),
    ],
    "protection_gaps": [
        # us's backup 7001 of a VM 13 is no backup of eu's VM 13.
        ("eu", 13, "bare", 1, "alice", 0, None, None, "no backups"),
        # Ten days old as of us's own latest sync, not eleven and a half as of eu's.
        ("us", 12, "app", 1, "carol", 4, US_AS_OF - 10 * DAY, 10.0, "no recent backup"),
    ],
    "chargeback_by_user_month": [
        # alice's 10 GiB for 24 h, and 1 GiB for 48, 72 and 96 h, up to eu's as of: 456 of March's 744 hours.
        ("eu", 1, "alice", "2024-03", 4, D("456.000000"), D("0.612903"), D("0.612903"), None, "USD", EU_AS_OF),
        # carol's 4 x 30 GiB from 28 February, 48 h of the leap February's 696.
        ("us", 1, "carol", "2024-02", 4, D("5760.000000"), D("8.275862"), D("8.275862"), None, "USD", US_AS_OF),
        # ... and 192 h of March up to us's own as of, plus 1 GiB for 24 h: 23,064 = 31 x 744.
        ("us", 1, "carol", "2024-03", 5, D("23064.000000"), D("31.000000"), D("31.000000"), None, "USD", US_AS_OF),
    ],
    "backup_anomalies": [
        # 10 GiB beside eu's three of 1 GiB; us's 6117 sits among its own three of 30 GiB.
        ("eu", 6117, 12, 1, "normal", 10 * GIB_KB, float(GIB_KB), 10.0, EU_AS_OF - DAY),
    ],
}
