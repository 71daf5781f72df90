"""The chargeback, protection and anomaly reports through a real run against the demo cloud: the CSVs,
their columns, and the run's prices and thresholds reaching them through the warehouse."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import duckdb
import pandas as pd
import pytest

from pipeline.defs.settings import SettingsError, build_resources
from pipeline.demo.server import DemoCloud
from tests.conftest import SyncHarness, run_failure_text
from tests.reports.history import GIB_KB, half_up

COLUMNS = {
    "chargeback_by_user_month": ["cloud", "user_id", "user_login", "month", "backups", "gib_hours", "gib_months",
                                 "billable_gib_months", "amount", "currency", "as_of"],
    "protection_gaps": ["cloud", "virtual_machine_id", "label", "user_id", "user_login", "backups", "newest_backup_at",
                        "age_days", "reason"],
    "backup_anomalies": ["cloud", "backup_id", "virtual_machine_id", "user_id", "backup_type", "backup_size_kb",
                         "median_kb", "ratio", "created_at"],
}
SETTINGS = {"price_per_gib_month": "0.05", "free_gib_months": "2.5", "currency": "EUR", "protection_days": 400.0,
            "anomaly_factor": 2.5}
US = timedelta(microseconds=1)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def served(cloud: DemoCloud) -> list[dict]:
    return [{**b, "vm": vm_id} for vm_id in cloud.fleet.vms for b in cloud.fleet.backups_of(vm_id)]


def as_of(harness: SyncHarness) -> datetime:
    at = harness.query("SELECT max(started_at) AS t FROM sync_runs WHERE status IN ('ok', 'partial')")["t"][0]
    return at.to_pydatetime().astimezone(timezone.utc)


def _months(start: datetime, end: datetime):
    """(first instant, next month's first instant) of each UTC month a life [start, end) touches."""
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = max(start, end - US)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        yield month, following
        month = following


def expected_chargeback(cloud: DemoCloud, at: datetime) -> list[tuple]:
    """Every row the CSV must hold, from what the cloud served: no backup was deleted, so each runs to as of."""
    logins = {u["id"]: u["login"] for u in cloud.fleet.users.values()}
    kb_us: dict = defaultdict(int)
    count: dict = defaultdict(int)
    for backup in served(cloud):
        start = when(backup["created_at"])
        for month, following in _months(start, at):
            key = (month, backup["user_id"])
            kb_us[key] += backup["backup_size"] * ((min(at, following) - max(start, month)) // US)
            count[key] += 1
    rows = []
    for (month, user), total in sorted(kb_us.items()):
        gib_hours = Fraction(total, GIB_KB * 3_600_000_000)
        days = ((month + timedelta(days=32)).replace(day=1) - month).days
        gib_months = half_up(gib_hours / (24 * days), 6)
        billable = max(gib_months - Decimal(SETTINGS["free_gib_months"]), Decimal(0))
        amount = (billable * Decimal(SETTINGS["price_per_gib_month"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
        rows.append((str(user), logins[user], month.strftime("%Y-%m"), str(count[(month, user)]),
                     f"{half_up(gib_hours, 6):f}", f"{gib_months:f}", f"{billable:.6f}", f"{amount:f}", "EUR"))
    return rows


def expected_gaps(cloud: DemoCloud, at: datetime) -> dict[int, tuple]:
    logins = {u["id"]: u["login"] for u in cloud.fleet.users.values()}
    gaps = {}
    for vm_id, vm in cloud.fleet.vms.items():
        backups = cloud.fleet.backups_of(vm_id)
        times = [when(b["built_at"] or b["created_at"]) for b in backups]
        built = [when(b["built_at"] or b["created_at"]) for b in backups if b["built"]]
        reasons = []
        if not backups:
            reasons.append("no backups")
        elif not built or max(built) < at - timedelta(days=SETTINGS["protection_days"]):
            reasons.append("no recent backup")
        if any(not b["built"] and when(b["created_at"]) < at - timedelta(hours=24) for b in backups):
            reasons.append("backup not built")
        if reasons:
            newest = max(times) if times else None
            gaps[vm_id] = (vm["label"], vm["user_id"], logins[vm["user_id"]], len(backups), newest,
                           None if newest is None else (at - newest) / timedelta(days=1), "; ".join(reasons))
    return gaps


def expected_anomalies(cloud: DemoCloud) -> dict[int, tuple]:
    backups = served(cloud)
    found = {}
    for backup in backups:
        others = [o["backup_size"] for o in backups if o["vm"] == backup["vm"]
                  and o["backup_type"] == backup["backup_type"] and o["id"] != backup["id"]]
        if len(others) < 3:
            continue
        median, size = statistics.median(others), backup["backup_size"]
        if size > SETTINGS["anomaly_factor"] * median or size < median / SETTINGS["anomaly_factor"]:
            found[backup["id"]] = (backup["vm"], backup["user_id"], backup["backup_type"], size, median, size / median)
    return found


def stored_settings(harness: SyncHarness) -> list[tuple]:
    with duckdb.connect(str(harness.db_path), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (only_row, updated_at) FROM report_settings").fetchall()


def _blank(value: str) -> str | None:
    return value or None


def test_the_reports_hold_the_history_and_the_settings_the_run_was_given(harness):
    result = harness.run(report_settings=SETTINGS)
    assert result.success, run_failure_text(result)
    at = as_of(harness)
    assert stored_settings(harness) == [(Decimal("2.5"), Decimal("0.05"), "EUR", 400.0, 2.5)]
    csv = {name: harness.csv(name) for name in COLUMNS}
    assert {name: list(frame.columns) for name, frame in csv.items()} == COLUMNS
    assert (harness.reports_dir / "chargeback_by_user_month.png").exists()

    bill = csv["chargeback_by_user_month"]
    assert {pd.Timestamp(value) for value in bill["as_of"]} == {pd.Timestamp(at)}
    got = [(r.user_id, r.user_login.lstrip("'"), r.month, r.backups, r.gib_hours, r.gib_months,
            r.billable_gib_months, r.amount, r.currency) for r in bill.itertuples()]
    assert got == expected_chargeback(harness.cloud, at)
    assert any(Decimal(amount) > 0 for amount in bill["amount"])

    gaps = {int(r.virtual_machine_id): r for r in csv["protection_gaps"].itertuples()}
    want = expected_gaps(harness.cloud, at)
    assert set(gaps) == set(want) and want
    for vm_id, (label, user, login, count, newest, age, reason) in want.items():
        row = gaps[vm_id]
        assert (row.label, int(row.user_id), row.user_login.lstrip("'"), int(row.backups), row.reason) == (
            label, user, login, count, reason)
        assert (_blank(row.newest_backup_at) and when(row.newest_backup_at)) == newest
        assert (float(row.age_days) if row.age_days else None) == (None if age is None else pytest.approx(age, abs=0.051))

    anomalies = {int(r.backup_id): r for r in csv["backup_anomalies"].itertuples()}
    want = expected_anomalies(harness.cloud)
    assert set(anomalies) == set(want) and want
    for backup_id, (vm_id, user, kind, size, median, ratio) in want.items():
        row = anomalies[backup_id]
        assert (int(row.virtual_machine_id), int(row.user_id), row.backup_type, int(row.backup_size_kb),
                float(row.median_kb)) == (vm_id, user, kind, size, median)
        assert float(row.ratio) == pytest.approx(round(ratio, 2), abs=0.0051)


def test_the_next_run_applies_its_own_settings(harness):
    assert harness.run(report_settings=SETTINGS).success
    assert harness.run().success  # the defaults: no price, USD, 7 days, factor 3
    bill = harness.csv("chargeback_by_user_month")
    assert set(bill["amount"]) == {""} and set(bill["currency"]) == {"USD"}
    assert (bill["billable_gib_months"] == bill["gib_months"]).all()  # nothing free
    assert stored_settings(harness) == [(Decimal(0), None, "USD", 7.0, 3.0)]


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("BACKUPS_PRICE_PER_GIB_MONTH", "0.0000000001", "at most 9 decimal places"),
        ("BACKUPS_PRICE_PER_GIB_MONTH", "1000000000", "less than 1000000000"),
        ("BACKUPS_FREE_GIB_MONTHS", "0.0000001", "at most 6 decimal places"),
    ],
)
def test_a_price_the_warehouse_cannot_hold_exactly_stops_the_code_location(variable, value, reason):
    with pytest.raises(SettingsError) as error:
        build_resources({variable: value})
    assert str(error.value).startswith(f"{variable}={value!r}: ") and reason in str(error.value)
