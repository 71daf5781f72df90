"""The report views against sums computed here from what the demo cloud served, over a known history."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from pipeline.demo.server import DemoCloud
from pipeline.reports.export import REPORTS, export_report, read_report
from pipeline.warehouse.connection import open_warehouse
from tests.conftest import SMALL_FLEET, SyncHarness, run_failure_text

GIB_KB = 1024**2
DAY = timedelta(days=1)


# --- what the cloud serves, summed here ------------------------------------------------------


def served(cloud: DemoCloud) -> list[dict]:
    """Every served backup with its VM id and the VM's owner."""
    return [
        {**backup, "virtual_machine_id": vm_id, "owner": vm["user_id"]}
        for vm_id, vm in cloud.fleet.vms.items()
        for backup in cloud.fleet.backups_of(vm_id)
    ]


def totals(cloud: DemoCloud, dimension: str) -> dict[int | None, int]:
    """kB per backup server (None: no server) or per owner, as served now."""
    out: dict[int | None, int] = defaultdict(int)
    for backup in served(cloud):
        key = backup.get("backup_server_id") if dimension == "backup_server" else backup["owner"]
        out[key] += int(backup["backup_size"])
    return dict(out)


def key(text: str) -> int | None:
    return int(text) if text else None


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def shift_history(harness: SyncHarness, days: float) -> None:
    """Move every storage_history snapshot so far back in time, as if the syncs had run then."""
    with open_warehouse(harness.db_path) as con:
        con.execute("UPDATE storage_history SET synced_at = synced_at - to_microseconds(?)",
                    [int(days * 86400e6)])


def latest_sync(harness: SyncHarness) -> datetime:
    latest = harness.query("SELECT max(synced_at) AS t FROM storage_history")["t"][0].to_pydatetime()
    return latest.astimezone(timezone.utc)


def ok(harness: SyncHarness, **options: object) -> None:
    result = harness.run(**options)
    assert result.success, run_failure_text(result)


def vms_with_backups(cloud: DemoCloud) -> list[int]:
    return sorted(vm for vm in cloud.fleet.vms if cloud.fleet.backups_of(vm))


def assert_gib(value, kb: float) -> None:
    """A GiB figure: kB / 1024², shown to 3 decimals."""
    assert float(value) == pytest.approx(kb / GIB_KB, abs=0.0005 + 1e-12)
    assert float(value) == round(float(value), 3)


# --- columns ---------------------------------------------------------------------------------


def test_existing_columns_keep_their_order_and_growth_is_appended(harness):
    ok(harness)
    assert list(harness.csv("storage_by_backup_server").columns) == [
        "cloud", "backup_server_id", "backup_server_label", "backups", "storage_kb", "storage_gib", "normal_backups",
        "incremental_backups", "reclaimable_kb", "users", "virtual_machines", "capacity_gib", "used_pct",
        "growth_7d_kb", "growth_30d_kb",
    ]
    assert list(harness.csv("storage_by_user").columns) == [
        "cloud", "user_id", "user_login", "backups", "storage_kb", "storage_gib", "virtual_machines", "normal_backups",
        "incremental_backups", "reclaimable_kb", "share_pct", "growth_7d_kb", "growth_30d_kb",
    ]
    # Every report has a view, a CSV and nothing half-written beside them.
    assert sorted(p.name for p in harness.reports_dir.glob("*.csv")) == sorted(f"{n}.csv" for n in REPORTS)
    assert not list(harness.reports_dir.glob(".*"))


def test_a_rerun_with_nothing_changed_writes_identical_reports(harness, tmp_path):
    # Each view ends with a total ORDER BY and reads "now" from the data, so the bytes repeat. Reports
    # "as of" the latest sync move with it (a rerun is a later sync): read again, they repeat too.
    moving = {"chargeback_by_user_month", "protection_gaps"}
    ok(harness)
    first = {name: (harness.reports_dir / f"{name}.csv").read_bytes() for name in REPORTS}
    (tmp_path / "again").mkdir()
    with open_warehouse(harness.db_path, read_only=True) as con:
        again = {name: export_report(con, name, tmp_path / "again").files["csv"].read_bytes() for name in moving}
    assert again == {name: first[name] for name in moving}
    ok(harness)
    steady = [name for name in REPORTS if name not in moving]
    assert {name: (harness.reports_dir / f"{name}.csv").read_bytes() for name in steady} == {
        name: first[name] for name in steady}


# --- growth ----------------------------------------------------------------------------------


def _growth(harness: SyncHarness, report: str, id_column: str) -> dict:
    frame = harness.csv(report)
    return {key(r[id_column]): (key(r["growth_7d_kb"]), key(r["growth_30d_kb"]))
            for _, r in frame.iterrows()}


def _expected(now: dict, past_7: dict | None, past_30: dict | None) -> dict:
    # A key absent from a past snapshot held nothing then.
    return {k: (None if past_7 is None else kb - past_7.get(k, 0),
                None if past_30 is None else kb - past_30.get(k, 0)) for k, kb in now.items()}


def test_growth_is_measured_against_the_latest_snapshot_at_or_before_7_and_30_days(harness):
    cloud = harness.cloud
    vms = vms_with_backups(cloud)
    ok(harness)
    state_a = {d: totals(cloud, d) for d in ("backup_server", "user")}
    # One sync: no history reaches back 7 days.
    assert set(_growth(harness, "storage_by_backup_server", "backup_server_id").values()) == {(None, None)}
    assert set(_growth(harness, "storage_by_user", "user_id").values()) == {(None, None)}

    # The first sync 8 days ago; then backups grow, shrink, move and vanish.
    shift_history(harness, 8)
    cloud.fleet.add_backup(vms[0], backup_server_id=1, backup_size=7_000_000)
    cloud.fleet.add_backup(vms[1], backup_server_id=None, backup_size=123_456)
    cloud.fleet.delete_backup(cloud.fleet.backups_of(vms[2])[0]["id"])
    cloud.fleet.update_backup(cloud.fleet.backups_of(vms[3])[0]["id"], backup_server_id=2, backup_size=999)
    ok(harness)
    state_b = {d: totals(cloud, d) for d in ("backup_server", "user")}
    assert state_b != state_a
    assert _growth(harness, "storage_by_backup_server", "backup_server_id") == _expected(
        state_b["backup_server"], state_a["backup_server"], None)
    assert _growth(harness, "storage_by_user", "user_id") == _expected(state_b["user"], state_a["user"], None)

    # Now A is 31 days old and B 23: 7 days compares with B (the latest old enough), 30 with A.
    shift_history(harness, 23)
    new_owner_vm = cloud.fleet.add_vm(user_id=max(cloud.fleet.users))["id"]
    cloud.fleet.add_backup(new_owner_vm, backup_server_id=3, backup_size=5_000)
    cloud.fleet.delete_backup(cloud.fleet.backups_of(vms[4])[-1]["id"])
    ok(harness)
    state_c = {d: totals(cloud, d) for d in ("backup_server", "user")}
    assert _growth(harness, "storage_by_backup_server", "backup_server_id") == _expected(
        state_c["backup_server"], state_b["backup_server"], state_a["backup_server"])
    assert _growth(harness, "storage_by_user", "user_id") == _expected(
        state_c["user"], state_b["user"], state_a["user"])


def test_a_snapshot_exactly_7_days_old_counts_and_a_younger_one_does_not(harness):
    ok(harness)
    now = latest_sync(harness)
    current = totals(harness.cloud, "backup_server")
    with open_warehouse(harness.db_path) as con:
        for at, kb in ((now - 7 * DAY, 1_000), (now - 7 * DAY + timedelta(seconds=1), 2_000)):
            con.execute("INSERT INTO storage_history VALUES ('default', 'old', ?, 'backup_server', 1, 1, ?)", [at, kb])
    with open_warehouse(harness.db_path) as con:
        rows = dict(con.execute(
            "SELECT backup_server_id, growth_7d_kb FROM storage_by_backup_server").fetchall())
    # Server 1 against 1,000 kB; the others were absent from that snapshot (0 kB then).
    assert rows == {k: kb - (1_000 if k == 1 else 0) for k, kb in current.items()}


# --- per VM ----------------------------------------------------------------------------------


def test_storage_by_virtual_machine_sums_each_vm_and_lists_top_consumers_first(harness):
    cloud = harness.cloud
    gone = vms_with_backups(cloud)[0]
    cloud.fleet.delete_vm(gone)  # a deleted VM's backups no longer count
    ok(harness)
    logins = {u["id"]: u["login"] for u in cloud.fleet.users.values()}
    expected = []
    for vm_id in vms_with_backups(cloud):
        vm, backups = cloud.fleet.vms[vm_id], cloud.fleet.backups_of(vm_id)
        size = sum(int(b["backup_size"]) for b in backups)
        created = [when(b["created_at"]) for b in backups]
        expected.append({
            "cloud": "default", "virtual_machine_id": vm_id, "label": vm["label"], "hostname": vm["hostname"],
            "user_id": vm["user_id"], "user_login": logins[vm["user_id"]], "backups": len(backups),
            "storage_kb": size, "storage_gib": round(size / GIB_KB, 3),
            "oldest_backup_at": min(created), "newest_backup_at": max(created),
        })
    expected.sort(key=lambda r: (-r["storage_kb"], r["virtual_machine_id"]))

    got = harness.csv("storage_by_virtual_machine")
    assert list(got.columns) == list(expected[0])
    assert len(got) == len(expected) and gone not in set(got["virtual_machine_id"].astype(int))
    for row, want in zip(got.to_dict("records"), expected):
        assert int(row["virtual_machine_id"]) == want["virtual_machine_id"]
        assert (row["label"], row["hostname"]) == (want["label"], want["hostname"])
        assert (int(row["user_id"]), row["user_login"].lstrip("'")) == (want["user_id"], want["user_login"])
        assert (int(row["backups"]), int(row["storage_kb"])) == (want["backups"], want["storage_kb"])
        assert_gib(row["storage_gib"], want["storage_kb"])
        assert when(row["oldest_backup_at"]) == want["oldest_backup_at"]
        assert when(row["newest_backup_at"]) == want["newest_backup_at"]


# --- trend -----------------------------------------------------------------------------------


def test_storage_trend_keeps_the_last_snapshot_of_each_day(harness):
    cloud = harness.cloud
    ok(harness)
    servers = sorted(cloud.fleet.backup_servers)
    users = sorted(cloud.fleet.users)
    day_1, day_2 = datetime(2026, 3, 9, tzinfo=timezone.utc), datetime(2026, 3, 10, tzinfo=timezone.utc)
    with open_warehouse(harness.db_path) as con:
        rows = []
        for dim, keys in (("backup_server", servers + [None]), ("user", users)):
            for i, k in enumerate(keys):
                # Day 1 has a morning and an evening sync: only the evening one may show.
                rows.append(("m", day_1 + timedelta(hours=8), dim, k, 1, 10_000 + i))
                rows.append(("e", day_1 + timedelta(hours=23, minutes=59), dim, k, 2, 20_000 + i))
                if k != keys[0]:  # the first key held nothing on day 2
                    rows.append(("d2", day_2 + timedelta(hours=0, minutes=1), dim, k, 3, 30_000 + i))
        con.executemany("INSERT INTO storage_history VALUES ('default', ?, ?, ?, ?, ?, ?)", rows)
    ok(harness)  # a second sync today: the later of today's two counts (same totals)

    trend = harness.csv("storage_trend")
    assert list(trend.columns) == ["cloud", "dimension", "day", "key", "label", "backups", "storage_kb", "storage_gib"]
    today = latest_sync(harness).date().isoformat()
    labels = {("backup_server", s): cloud.fleet.backup_servers[s]["label"] for s in servers}
    labels |= {("user", u): cloud.fleet.users[u]["login"] for u in users}
    expected = []
    for dim, keys in (("backup_server", servers + [None]), ("user", users)):
        for i, k in enumerate(keys):
            expected.append((dim, "2026-03-09", k, 2, 20_000 + i))
            if k != keys[0]:
                expected.append((dim, "2026-03-10", k, 3, 30_000 + i))
        now = totals(cloud, dim)
        counts: dict = defaultdict(int)
        for backup in served(cloud):
            counts[backup.get("backup_server_id") if dim == "backup_server" else backup["owner"]] += 1
        expected += [(dim, today, k, counts[k], kb) for k, kb in now.items()]
    expected.sort(key=lambda r: (r[0], r[1], r[2] is None, r[2] or 0))
    got = [(r.dimension, r.day, key(r.key), int(r.backups), int(r.storage_kb)) for r in trend.itertuples()]
    assert got == expected
    for r in trend.itertuples():
        assert_gib(r.storage_gib, int(r.storage_kb))
        assert r.label.lstrip("'") == labels.get((r.dimension, key(r.key)), "")


def test_trend_days_are_utc_days_whatever_the_session_time_zone(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as con:
        # 23:30 UTC is already the next day in Auckland and still the same in Los Angeles.
        con.execute("INSERT INTO storage_history VALUES ('default', 'r', '2026-05-01 23:30:00+00', 'user', 1, 1, 5)")
        days = set()
        for setting in ("SET TimeZone = 'UTC'", "SET TimeZone = 'Pacific/Auckland'",
                        "SET TimeZone = 'America/Los_Angeles'"):
            con.execute(setting)
            days |= {d for (d,) in con.execute("SELECT day FROM storage_trend").fetchall()}
    assert {d.isoformat() for d in days} == {"2026-05-01"}


# --- capacity forecast -----------------------------------------------------------------------

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=timezone.utc)  # later than any real sync: "now" is this


def _insert_series(con, server: int, kb_at_day: dict[int, int]) -> None:
    """Snapshots of one server at NOW - k days: {k: storage_kb}."""
    con.executemany(
        "INSERT INTO storage_history VALUES ('default', 's', ?, 'backup_server', ?, 1, ?)",
        [(NOW - k * DAY, server, kb) for k, kb in kb_at_day.items()],
    )


def _forecast(con) -> dict[int, dict]:
    frame = con.execute("SELECT * FROM capacity_forecast").df()
    return {int(r["backup_server_id"]): r for r in frame.to_dict("records")}


def _none(value) -> bool:
    return value is None or pd.isna(value)


@pytest.fixture
def forecast_harness(make_cloud, tmp_path) -> SyncHarness:
    return SyncHarness(make_cloud(SMALL_FLEET), tmp_path / "w.duckdb", tmp_path / "reports")


def test_capacity_forecast_follows_a_series_with_a_known_slope(forecast_harness):
    harness, cloud = forecast_harness, forecast_harness.cloud
    now_kb = totals(cloud, "backup_server")
    s1, s2, s3 = (now_kb[s] for s in (1, 2, 3))
    # Server 1 roomy and growing, 2 roomy and shrinking, 3 at 90% and growing, 9 empty.
    cloud.fleet.backup_servers[1]["capacity"] = math.ceil(10 * s1 / GIB_KB)
    cloud.fleet.backup_servers[2]["capacity"] = math.ceil(10 * s2 / GIB_KB)
    cloud.fleet.backup_servers[3]["capacity"] = math.ceil(s3 / GIB_KB / 0.9)
    cloud.fleet.backup_servers[9] = {**cloud.fleet.backup_servers[1], "id": 9, "label": "empty", "capacity": 800}
    ok(harness)
    rate_1, rate_2, rate_3 = s1 // 100, s2 // 50, s3 // 1000  # kB per day
    with open_warehouse(harness.db_path) as con:
        _insert_series(con, 1, {k: s1 - k * rate_1 for k in range(0, 21)})
        _insert_series(con, 2, {k: s2 + k * rate_2 for k in range(0, 21)})
        _insert_series(con, 3, {k: s3 - k * rate_3 for k in range(0, 21)})
        # Outside the 30 days, and earlier the same day as a later snapshot: neither may count.
        _insert_series(con, 1, {40: 1})
        con.execute("INSERT INTO storage_history VALUES ('default', 'x', ?, 'backup_server', 1, 1, 1)",
                    [NOW - 5 * DAY - timedelta(hours=6)])
        got = _forecast(con)

    assert set(got) == {1, 2, 3, 9}  # servers with a capacity; "no server" has none
    capacity = {s: cloud.fleet.backup_servers[s]["capacity"] for s in (1, 2, 3, 9)}
    for server, rate, stored in ((1, rate_1, s1), (2, -rate_2, s2), (3, rate_3, s3)):
        row = got[server]
        assert_gib(row["growth_gib_per_day"], rate)
        assert_gib(row["storage_gib"], stored)
        assert row["capacity_gib"] == capacity[server]
        assert row["used_pct"] == pytest.approx(round(100 * stored / GIB_KB / capacity[server], 2))
        assert row["history_days"] == 21

    one = got[1]
    days_80 = (0.8 * capacity[1] - s1 / GIB_KB) / (rate_1 / GIB_KB)
    days_100 = (capacity[1] - s1 / GIB_KB) / (rate_1 / GIB_KB)
    assert one["status"] == "growing"
    assert one["days_to_80_pct"] == pytest.approx(round(days_80, 1), abs=0.051)
    assert one["days_to_100_pct"] == pytest.approx(round(days_100, 1), abs=0.051)
    assert one["date_80_pct"].date() == (NOW + timedelta(days=days_80)).date()
    assert one["date_100_pct"].date() == (NOW + timedelta(days=days_100)).date()

    assert got[2]["status"] == "not growing"
    assert all(_none(got[2][c]) for c in ("days_to_80_pct", "date_80_pct", "days_to_100_pct", "date_100_pct"))

    three = got[3]
    assert three["status"] == "over 80%"
    assert _none(three["days_to_80_pct"]) and _none(three["date_80_pct"])
    assert three["days_to_100_pct"] == pytest.approx((capacity[3] - s3 / GIB_KB) / (rate_3 / GIB_KB), abs=0.051)

    nine = got[9]
    assert (nine["storage_gib"], nine["growth_gib_per_day"], nine["status"]) == (0, 0, "not growing")


def test_a_full_server_says_so_and_tiny_growth_gives_no_date_rather_than_an_error(forecast_harness):
    harness, cloud = forecast_harness, forecast_harness.cloud
    s1, s2 = totals(cloud, "backup_server")[1], totals(cloud, "backup_server")[2]
    cloud.fleet.backup_servers[1]["capacity"] = max(1, s1 // GIB_KB - 1)  # below what it holds
    cloud.fleet.backup_servers[2]["capacity"] = 10_000_000
    ok(harness)
    with open_warehouse(harness.db_path) as con:
        _insert_series(con, 1, {k: s1 - k for k in range(0, 5)})
        _insert_series(con, 2, {k: s2 - k for k in range(0, 5)})  # 1 kB a day: millennia to fill
        got = _forecast(con)
    assert got[1]["status"] == "already full" and _none(got[1]["days_to_100_pct"])
    assert got[1]["used_pct"] > 100
    assert got[2]["status"] == "growing"
    assert got[2]["days_to_80_pct"] > 1e9 and _none(got[2]["date_80_pct"]) and _none(got[2]["date_100_pct"])


def _bare_warehouse(tmp_path, snapshots: list[tuple[datetime, int]]):
    """A warehouse with one 100 GiB server holding 10 GiB, and the given history of it."""
    path = tmp_path / "bare.duckdb"
    with open_warehouse(path) as con:
        con.execute("INSERT INTO backup_servers (cloud, id, label, capacity, synced_at) "
                    "VALUES ('default', 1, 'b1', 100, ?)", [NOW])
        con.execute("INSERT INTO backups (cloud, id, backup_size, backup_server_id, virtual_machine_id, first_seen_at,"
                    " last_seen_at) VALUES ('default', 1, ?, 1, 1, ?, ?)", [10 * GIB_KB, NOW, NOW])
        for at, kb in snapshots:
            con.execute("INSERT INTO storage_history VALUES ('default', 'r', ?, 'backup_server', 1, 1, ?)", [at, kb])
    return path


@pytest.mark.parametrize(
    ("snapshots", "history_days"),
    [
        # No history at all.
        ([], 0),
        # One day, however many syncs it had.
        ([(NOW - timedelta(hours=10), GIB_KB), (NOW, 10 * GIB_KB)], 1),
        # Two days, but two minutes apart across midnight: no pace can be read from that.
        ([(datetime(2030, 6, 14, 23, 59, tzinfo=timezone.utc), GIB_KB),
          (datetime(2030, 6, 15, 0, 1, tzinfo=timezone.utc), 10 * GIB_KB)], 2),
    ],
)
def test_too_little_history_is_said_not_guessed(tmp_path, snapshots, history_days):
    with open_warehouse(_bare_warehouse(tmp_path, snapshots)) as con:
        [row] = _forecast(con).values()
    assert row["status"] == "not enough history" and row["history_days"] == history_days
    assert all(_none(row[c]) for c in ("growth_gib_per_day", "days_to_80_pct", "date_80_pct"))


def test_capacity_forecast_exported_as_csv_by_the_job(forecast_harness):
    ok(forecast_harness)
    frame = forecast_harness.csv("capacity_forecast")
    assert list(frame.columns) == [
        "cloud", "backup_server_id", "label", "capacity_gib", "storage_gib", "used_pct", "growth_gib_per_day",
        "history_days", "days_to_80_pct", "date_80_pct", "days_to_100_pct", "date_100_pct", "status",
        "reclaimable_gib", "days_to_100_pct_after_purge",
    ]
    assert sorted(frame["backup_server_id"].astype(int)) == sorted(forecast_harness.cloud.fleet.backup_servers)


# --- reclaimable -----------------------------------------------------------------------------


def test_reclaimable_backups_lists_each_once_with_every_reason(harness):
    cloud = harness.cloud
    vms = vms_with_backups(cloud)
    now = datetime.now(timezone.utc)
    iso = lambda t: t.isoformat(timespec="seconds")  # noqa: E731
    # A backup both marked and stuck unbuilt; one unbuilt for two days; one only two hours.
    both = cloud.fleet.add_backup(vms[0], marked_for_delete=True, built=False, created_at=iso(now - 3 * DAY))
    stuck = cloud.fleet.add_backup(vms[0], marked_for_delete=False, built=False, created_at=iso(now - 2 * DAY))
    fresh = cloud.fleet.add_backup(vms[1], marked_for_delete=False, built=False,
                                   created_at=iso(now - timedelta(hours=2)))
    # A marked backup that is then deleted must drop out: current backups only.
    deleted = cloud.fleet.add_backup(vms[1], marked_for_delete=True)
    ok(harness)
    cloud.fleet.delete_backup(deleted["id"])
    ok(harness)
    # A VM gone while its backups are still current, and one never recorded at all.
    orphaned, unknown = vms[2], vms[3]
    with open_warehouse(harness.db_path) as con:
        con.execute("UPDATE virtual_machines SET deleted_at = now() WHERE id = ?", [orphaned])
        con.execute("DELETE FROM virtual_machines WHERE id = ?", [unknown])
        got = read_report(con, "reclaimable_backups")

    sync_at = latest_sync(harness)
    expected = []
    for b in served(cloud):
        reasons = []
        if b.get("marked_for_delete"):
            reasons.append("marked for delete")
        if b["virtual_machine_id"] in (orphaned, unknown):
            reasons.append("virtual machine no longer exists")
        if b.get("built") is False and when(b["created_at"]) < sync_at - DAY:
            reasons.append("not built for more than a day")
        if reasons:
            expected.append((int(b["id"]), int(b["virtual_machine_id"]), b.get("backup_server_id"), b["owner"],
                             int(b["backup_size"]), when(b["created_at"]), "; ".join(reasons)))
    expected.sort(key=lambda r: (-r[4], r[0]))

    assert list(got.columns) == ["cloud", "backup_id", "virtual_machine_id", "backup_server_id", "owner_user_id",
                                 "backup_size", "created_at", "reason"]
    rows = [(r.backup_id, r.virtual_machine_id, None if pd.isna(r.backup_server_id) else r.backup_server_id,
             r.owner_user_id, r.backup_size, r.created_at.to_pydatetime(), r.reason) for r in got.itertuples()]
    assert rows == expected
    reasons = dict(zip(got["backup_id"], got["reason"]))
    assert reasons[both["id"]] == "marked for delete; not built for more than a day"
    assert reasons[stuck["id"]] == "not built for more than a day"
    assert fresh["id"] not in reasons and deleted["id"] not in reasons
    assert {"marked for delete", "virtual machine no longer exists"} <= {
        part for reason in reasons.values() for part in reason.split("; ")}


def test_reclaimable_means_the_same_in_every_report(harness):
    # One backup for each reason, beside whatever the demo fleet already has.
    cloud = harness.cloud
    vms = vms_with_backups(cloud)
    cloud.fleet.add_backup(vms[0], marked_for_delete=True, built=True, backup_server_id=1)
    cloud.fleet.add_backup(vms[1], marked_for_delete=False, built=False, backup_server_id=2,
                           created_at="2020-01-01T00:00:00+00:00")
    ok(harness)
    with open_warehouse(harness.db_path) as con:
        con.execute("UPDATE virtual_machines SET deleted_at = last_seen_at WHERE id = ?", [vms[2]])
        listed = read_report(con, "reclaimable_backups")
        servers = read_report(con, "storage_by_backup_server")
        users = read_report(con, "storage_by_user")
        [(marked_kb,)] = con.execute("SELECT sum(backup_size) FROM backups "
                                     "WHERE deleted_at IS NULL AND marked_for_delete").fetchall()

    reasons = {part for reason in listed["reason"] for part in reason.split("; ")}
    assert reasons == {"marked for delete", "virtual machine no longer exists", "not built for more than a day"}
    total = int(listed["backup_size"].sum())
    assert total > marked_kb  # more than the marked ones: every reason counts
    assert int(servers["reclaimable_kb"].sum()) == total == int(users["reclaimable_kb"].sum())

    def per(frame: pd.DataFrame, column: str) -> dict:
        sums = frame.groupby(frame[column].astype("Int64"), dropna=False)["backup_size"].sum()
        return {None if pd.isna(k) else int(k): int(v) for k, v in sums.items()}

    by_server = per(listed, "backup_server_id")
    by_user = per(listed, "owner_user_id")
    for row in servers.itertuples():
        server = None if pd.isna(row.backup_server_id) else int(row.backup_server_id)
        assert row.reclaimable_kb == by_server.get(server, 0)
    for row in users.itertuples():
        assert row.reclaimable_kb == by_user.get(int(row.user_id), 0)


# --- rounding --------------------------------------------------------------------------------


def test_every_gib_figure_is_rounded_to_3_decimals(harness):
    ok(harness)
    shift_history(harness, 10)
    harness.cloud.fleet.add_backup(vms_with_backups(harness.cloud)[0], backup_server_id=1, backup_size=123_457)
    ok(harness)
    with open_warehouse(harness.db_path, read_only=True) as con:
        views = {name: read_report(con, name) for name in REPORTS}
    # GiB figures; the chargeback's GiB-hours and GiB-months are to 6 decimals (tests/reports/test_chargeback.py).
    gib_columns = {(name, c) for name, frame in views.items() for c in frame.columns
                   if c.endswith(("_gib", "_gib_per_day"))}
    assert {("storage_by_backup_server", "storage_gib"), ("storage_by_user", "storage_gib"),
            ("storage_by_virtual_machine", "storage_gib"), ("storage_trend", "storage_gib"),
            ("capacity_forecast", "storage_gib"), ("capacity_forecast", "growth_gib_per_day"),
            ("capacity_forecast", "reclaimable_gib")} <= gib_columns
    for name, column in gib_columns:
        values = views[name][column].dropna().astype(float)
        assert len(values), (name, column)
        assert list(values) == [round(v, 3) for v in values], (name, column)


def test_a_slight_shrink_shows_as_zero_growth_not_minus_zero(tmp_path):
    # 1 kB a day less rounds to -0.0 GiB a day; the report says 0.0.
    with open_warehouse(_bare_warehouse(tmp_path, [(NOW - k * DAY, 10 * GIB_KB + k) for k in range(5)])) as con:
        [row] = _forecast(con).values()
    assert row["status"] == "not growing"
    assert row["growth_gib_per_day"] == 0 and math.copysign(1, row["growth_gib_per_day"]) == 1


# --- every CSV -------------------------------------------------------------------------------


def test_no_report_cell_starts_a_formula(harness):
    cloud = harness.cloud
    vm_id = vms_with_backups(cloud)[0]
    cloud.fleet.vms[vm_id]["label"] = '=HYPERLINK("http://evil.example")'
    cloud.fleet.vms[vm_id]["hostname"] = "+cmd|' /C calc'!A0"
    cloud.fleet.backup_servers[1]["label"] = "-2+3"
    ok(harness)
    risky = ("=", "+", "-", "@", "\t", "\r")
    for name in REPORTS:
        frame = harness.csv(name)
        for column in frame.columns:
            for cell in frame[column]:
                if cell.startswith(risky):
                    float(cell)  # only a negative number may start with '-'
    vm_row = harness.csv("storage_by_virtual_machine").set_index("virtual_machine_id").loc[str(vm_id)]
    assert vm_row["label"] == "'" + cloud.fleet.vms[vm_id]["label"]
    assert vm_row["hostname"] == "'" + cloud.fleet.vms[vm_id]["hostname"]
    assert "'-2+3" in set(harness.csv("storage_trend")["label"])


# --- export formats --------------------------------------------------------------------------


def test_parquet_exports_hold_the_views_rows_unneutralized(harness):
    ok(harness, export_formats=("csv", "parquet"))
    with open_warehouse(harness.db_path, read_only=True) as con:
        views = {name: read_report(con, name) for name in REPORTS}
    for name, view in views.items():
        exported = pd.read_parquet(harness.reports_dir / f"{name}.parquet")
        pd.testing.assert_frame_equal(exported, view, check_dtype=False)
        assert (harness.reports_dir / f"{name}.csv").exists()
    # "@ops-team" stays as the API sent it: Parquet readers do not evaluate cells.
    logins = set(pd.read_parquet(harness.reports_dir / "storage_by_user.parquet")["user_login"])
    assert {u["login"] for u in harness.cloud.fleet.users.values()} == logins


def test_parquet_only_writes_no_csv(harness):
    ok(harness, export_formats=("parquet",))
    written = [p.suffix for p in harness.reports_dir.iterdir() if p.suffix not in (".png", ".json")]
    assert sorted(written) == [".parquet"] * len(REPORTS)


def test_admin_refused_reports_still_answer(make_cloud, tmp_path):
    # No users or backup servers readable: no capacities, no labels; every report still exports.
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, admin_refused=True))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    ok(harness)
    assert len(harness.csv("capacity_forecast")) == 0
    assert len(harness.csv("storage_by_virtual_machine")) == len(vms_with_backups(cloud))
    assert set(harness.csv("storage_trend")["label"]) == {""}


def test_a_full_server_is_reported_full_even_without_history(tmp_path):
    # Fullness outranks "not enough history": the operator must see it on the first day.
    path = _bare_warehouse(tmp_path, [])
    with open_warehouse(path) as con:
        con.execute("UPDATE backup_servers SET capacity = 5")
        [row] = _forecast(con).values()
    assert (row["status"], row["used_pct"], row["history_days"]) == ("already full", 200.0, 0)
