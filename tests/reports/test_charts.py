"""The PNG charts beside the report CSVs: valid pictures of the right data, written atomically."""

from __future__ import annotations

import base64
import dataclasses
import io
from datetime import datetime, timedelta, timezone

import matplotlib.image
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.dates import num2date
import pytest
from PIL import Image

from pipeline.defs.report_assets import CHARTED
from pipeline.reports.atomic_file import atomic_path
from pipeline.reports.charts import (
    CHARTS,
    MIN_BAR_SLOTS,
    TOP_USERS,
    backup_server_chart,
    chargeback_chart,
    trend_chart,
    user_chart,
    write_chart,
)
from pipeline.reports.export import REPORTS, read_report
from pipeline.warehouse.connection import open_warehouse
from tests.conftest import SMALL_FLEET, SyncHarness, run_failure_text
from tests.reports import two_clouds
from tests.reports.history import GIB_KB, history, utc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> None:
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert pixels.std() > 0  # something was drawn, not a blank canvas


def test_each_report_run_writes_its_charts_as_valid_pngs(harness):
    result = harness.run()
    assert result.success, run_failure_text(result)
    assert set(CHARTS) == {"storage_by_backup_server", "storage_trend", "storage_by_user",
                           "chargeback_by_user_month"} <= set(REPORTS)
    assert set(CHARTED) == set(CHARTS)  # the step names them before it loads matplotlib
    for name in CHARTS:
        assert_png((harness.reports_dir / f"{name}.png").read_bytes())
    # Only those reports are pictured, and no temporary file is left beside them.
    assert sorted(p.name for p in harness.reports_dir.glob("*.png")) == sorted(f"{n}.png" for n in CHARTS)
    assert not list(harness.reports_dir.glob(".*"))


def test_the_materialization_carries_the_chart_and_a_preview(harness):
    result = harness.run()
    assert result.success, run_failure_text(result)
    for name in REPORTS:
        [materialization] = [event.materialization for event in result.get_asset_materialization_events()
                             if event.asset_key.to_user_string() == name]
        metadata = materialization.metadata
        assert metadata["rows"].value == len(harness.csv(name))
        assert metadata["csv"].path == str(harness.reports_dir / f"{name}.csv")
        assert "|" in metadata["preview"].value or metadata["preview"].value == "(no rows)"
        if name not in CHARTS:
            assert "chart" not in metadata
            continue
        assert metadata["chart"].path == str(harness.reports_dir / f"{name}.png")
        markdown = metadata["chart_preview"].value
        prefix = f"![{name}](data:image/png;base64,"
        assert markdown.startswith(prefix) and markdown.endswith(")")
        embedded = base64.b64decode(markdown[len(prefix):-1])
        assert embedded == (harness.reports_dir / f"{name}.png").read_bytes()


def test_backup_server_chart_has_a_bar_per_row_and_a_marker_per_known_capacity(harness):
    assert harness.run().success
    with open_warehouse(harness.db_path, read_only=True) as con:
        frame = read_report(con, "storage_by_backup_server")
    axes = backup_server_chart(frame).axes[0]
    heights = [bar.get_height() for bar in axes.patches]
    assert heights == pytest.approx(list(frame["storage_gib"].astype(float)))
    [markers] = axes.collections
    levels = sorted(segment[0][1] for segment in markers.get_segments())
    capacities = {s["capacity"] for s in harness.cloud.fleet.backup_servers.values()}
    assert levels == sorted(frame["capacity_gib"].dropna().astype(float)) and set(levels) == capacities
    labels = [tick.get_text() for tick in axes.get_xticklabels()]
    assert "no backup server" in labels  # the NULL-server row is named, not blank


def test_user_chart_shows_the_top_users_largest_first(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, vms=90, users=30))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "reports")
    assert harness.run().success
    with open_warehouse(harness.db_path, read_only=True) as con:
        frame = read_report(con, "storage_by_user")
    assert len(frame) > TOP_USERS
    axes = user_chart(frame).axes[0]
    widths = [bar.get_width() for bar in axes.patches]
    assert widths == pytest.approx(list(frame["storage_gib"].astype(float)[:TOP_USERS]))
    logins = {u["id"]: u["login"] for u in cloud.fleet.users.values()}
    assert [t.get_text() for t in axes.get_yticklabels()] == [logins[int(i)] for i in frame["user_id"][:TOP_USERS]]
    assert axes.yaxis_inverted()  # the largest at the top


def test_trend_chart_draws_a_line_per_server_over_the_days(harness):
    assert harness.run().success
    day = datetime(2026, 2, 1, 12, tzinfo=timezone.utc)
    servers = sorted(harness.cloud.fleet.backup_servers)
    with open_warehouse(harness.db_path) as con:
        for k in range(3):
            # Server 1 is missing on the middle day: it held nothing then, so the line dips to 0.
            for server in servers if k != 1 else servers[1:]:
                con.execute("INSERT INTO storage_history VALUES ('default', 't', ?, 'backup_server', ?, 1, ?)",
                            [day + timedelta(days=k), server, (k + 1) * 1024**2])
        frame = read_report(con, "storage_trend")
    axes = trend_chart(frame).axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in axes.get_lines()}
    names = {harness.cloud.fleet.backup_servers[s]["label"] for s in servers} | {"no backup server"}
    assert set(lines) == names
    first = harness.cloud.fleet.backup_servers[servers[0]]["label"]
    assert lines[first][:3] == [1.0, 0.0, 3.0]


def _trend_over(tmp_path, days: list[int]):
    """The storage_trend frame of two servers with a sync at noon UTC on each of the given days of March 2026."""
    with open_warehouse(tmp_path / "w.duckdb") as con:
        for day in days:
            for server in (1, 2):
                con.execute("INSERT INTO storage_history VALUES ('default', 't', ?, 'backup_server', ?, 1, ?)",
                            [datetime(2026, 3, day, 12, tzinfo=timezone.utc), server, server * day * 1024**2])
        return read_report(con, "storage_trend")


@pytest.mark.parametrize(("days", "note"), [([10], "1 day of history"), ([9, 10, 12], "3 days of history")])
def test_a_short_trend_is_drawn_on_a_week_of_days_and_says_so(tmp_path, days, note):
    figure = trend_chart(_trend_over(tmp_path, days))
    figure.canvas.draw()
    axes = figure.axes[0]
    assert axes.get_title() == f"Backup storage per backup server over time ({note})"
    left, right = (num2date(x) for x in axes.get_xlim())
    assert right - left >= timedelta(days=7)
    assert left < datetime(2026, 3, days[0], tzinfo=timezone.utc)
    assert right > datetime(2026, 3, days[-1], tzinfo=timezone.utc) + timedelta(days=1)
    # One tick per calendar day, labelled as a date, the data's days among them.
    ticks = [num2date(x) for x in axes.get_xticks() if axes.get_xlim()[0] <= x <= axes.get_xlim()[1]]
    assert [t - ticks[0] for t in ticks] == [timedelta(days=k) for k in range(len(ticks))]
    labels = {label.get_text() for label in axes.get_xticklabels()}
    assert {f"2026-03-{d:02d}" for d in days} <= labels
    assert all(len(line.get_xdata()) == len(days) for line in axes.get_lines())


def test_a_trend_of_a_week_or_more_keeps_the_automatic_axis(tmp_path):
    days = list(range(1, 12))
    axes = trend_chart(_trend_over(tmp_path, days)).axes[0]
    assert axes.get_title() == "Backup storage per backup server over time"
    left, right = (num2date(x) for x in axes.get_xlim())
    # The data fill the axis, with matplotlib's own small margins.
    assert left > datetime(2026, 2, 28, tzinfo=timezone.utc) and right < datetime(2026, 3, 13, tzinfo=timezone.utc)


def test_a_lone_bar_gets_the_room_of_a_few(harness):
    assert harness.run().success
    with open_warehouse(harness.db_path, read_only=True) as con:
        servers = read_report(con, "storage_by_backup_server")
        users = read_report(con, "storage_by_user")
    left, right = backup_server_chart(servers.head(1)).axes[0].get_xlim()
    assert right - left == MIN_BAR_SLOTS and left < 0 < right
    axes = user_chart(users.head(2)).axes[0]
    bottom, top = axes.get_ylim()
    assert bottom - top == MIN_BAR_SLOTS and axes.yaxis_inverted()
    assert [t.get_text() for t in axes.get_yticklabels()] == list(users["user_login"].head(2))
    # Enough bars keep matplotlib's own limits.
    assert len(users) >= MIN_BAR_SLOTS
    axes = user_chart(users).axes[0]
    drawn = axes.get_ylim()
    axes.autoscale(axis="y")
    assert axes.get_ylim() == drawn


@pytest.mark.parametrize(
    "label",
    [
        # Between two '$' matplotlib parses math: this one fails to render, "$x$" loses its dollars.
        r"team$\frac$ops",
        "$x$",
        "cost$center",
        # Formula-looking and non-ASCII labels are drawn as text.
        '=HYPERLINK("http://evil.example")',
        "Jörg’s backups ✓",
    ],
)
def test_odd_labels_still_draw(harness, label):
    harness.cloud.fleet.backup_servers[1]["label"] = label
    next(iter(harness.cloud.fleet.users.values()))["login"] = label
    result = harness.run()
    assert result.success, run_failure_text(result)
    for name in CHARTS:
        assert_png((harness.reports_dir / f"{name}.png").read_bytes())
    with open_warehouse(harness.db_path, read_only=True) as con:
        axes = backup_server_chart(read_report(con, "storage_by_backup_server")).axes[0]
    assert label in {tick.get_text().replace(r"\$", "$") for tick in axes.get_xticklabels()}


def test_an_empty_warehouse_still_gets_charts(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as con:
        frames = {name: read_report(con, name) for name in CHARTS}
    for name, frame in frames.items():
        assert frame.empty
        assert_png(write_chart(name, frame, tmp_path / "reports").read_bytes())


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "storage_trend.png"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a pic")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["storage_trend.png"]


def test_a_report_without_a_chart_writes_none(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as con:
        frame = read_report(con, "reclaimable_backups")
    assert write_chart("reclaimable_backups", frame, tmp_path) is None
    assert list(tmp_path.glob("*.png")) == []


def test_chargeback_chart_stacks_the_top_users_of_the_last_12_months(tmp_path):
    # Users 1..12 hold k GiB each from April 2023 (user 1 from June); "old-timer" held far more, but
    # only until February 2023, before the 12 months up to as of (March 2024).
    with history(tmp_path / "w.duckdb") as h:
        h.sync(utc(2024, 3, 10, 12))
        for k in range(1, 13):
            h.user(k, f"u{k:02d}")
            h.backup(k, owner=k, size=k * GIB_KB, created_at=utc(2023, 6 if k == 1 else 4, 1))
        h.user(13, "old-timer")
        h.backup(13, owner=13, size=1000 * GIB_KB, created_at=utc(2022, 1, 1), deleted_at=utc(2023, 3, 1))
        frame = read_report(h.con, "chargeback_by_user_month")
    axes = chargeback_chart(frame).axes[0]
    months = [f"2023-{m:02d}" for m in range(4, 13)] + ["2024-01", "2024-02", "2024-03"]
    assert [tick.get_text() for tick in axes.get_xticklabels()] == months
    assert [bars.get_label() for bars in axes.containers] == [f"u{k:02d}" for k in range(12, 2, -1)] + ["other users"]
    gib = {(row.month, row.user_login): float(row.gib_months) for row in frame.itertuples()}
    bottoms = [0.0] * len(months)
    for bars in axes.containers:
        users = [bars.get_label()] if bars.get_label() != "other users" else ["u01", "u02"]
        want = [sum(gib.get((month, user), 0.0) for user in users) for month in months]
        assert [bar.get_height() for bar in bars] == pytest.approx(want)
        assert [bar.get_y() for bar in bars] == pytest.approx(bottoms)
        bottoms = [b + w for b, w in zip(bottoms, want)]
    # The others are grey: users 1 and 2, with user 1 absent (0) in April and May.
    assert axes.containers[-1].patches[0].get_facecolor() == pytest.approx(to_rgba("tab:gray"))
    assert axes.containers[-1].patches[0].get_height() == pytest.approx(2.0)


# --- several clouds --------------------------------------------------------------------------


@pytest.fixture
def two_cloud_reports(tmp_path):
    """The chart reports of a warehouse of two clouds that both have a user 1 and a backup server 1 'bs-1'."""
    with history(tmp_path / "w.duckdb") as h:
        two_clouds.fill(h)
        return {name: read_report(h.con, name) for name in CHARTS}


def test_with_two_clouds_a_server_is_named_with_its_cloud(two_cloud_reports):
    axes = backup_server_chart(two_cloud_reports["storage_by_backup_server"]).axes[0]
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["eu/bs-1", "us/bs-1", "us/no backup server"]
    assert [bar.get_height() for bar in axes.patches] == pytest.approx([13.0, 120.0, 1.0])


def test_with_two_clouds_each_server_is_a_line_of_its_own_cloud_days(two_cloud_reports):
    axes = trend_chart(two_cloud_reports["storage_trend"]).axes[0]
    lines = {line.get_label(): ([day.date().isoformat() for day in pd.to_datetime(line.get_xdata())],
                                list(line.get_ydata())) for line in axes.get_lines()}
    # One label, two servers; each drawn on the days its cloud synced, not at 0 on the other cloud's.
    assert lines == {
        "eu/bs-1": (["2024-03-02", "2024-03-10"], [5.0, 13.0]),
        "us/bs-1": (["2024-03-03", "2024-03-09"], [60.0, 120.0]),
        "us/no backup server": (["2024-03-03", "2024-03-09"], [0.0, 1.0]),
    }


def test_with_two_clouds_user_1_is_two_users(two_cloud_reports):
    axes = user_chart(two_cloud_reports["storage_by_user"]).axes[0]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["us/carol", "eu/alice"]
    assert [bar.get_width() for bar in axes.patches] == pytest.approx([121.0, 13.0])


def test_with_two_clouds_the_chargeback_stacks_each_cloud_user_apart(two_cloud_reports):
    axes = chargeback_chart(two_cloud_reports["chargeback_by_user_month"]).axes[0]
    assert [bars.get_label() for bars in axes.containers] == ["us/carol", "eu/alice"]
    months = [tick.get_text() for tick in axes.get_xticklabels()]
    assert months[-2:] == ["2024-02", "2024-03"]
    heights = {bars.get_label(): [bar.get_height() for bar in bars][-2:] for bars in axes.containers}
    assert heights == {"us/carol": pytest.approx([8.275862, 31.0]), "eu/alice": pytest.approx([0.0, 0.612903])}


def test_user_1_of_two_clouds_without_logins_is_still_two_users(tmp_path):
    with history(tmp_path / "w.duckdb") as h:
        for cloud, gib in (("eu", 2), ("us", 3)):
            c = h.in_cloud(cloud)
            c.sync(utc(2024, 3, 10))
            c.backup(6117, owner=1, size=gib * GIB_KB, created_at=utc(2024, 3, 1))
        users = read_report(h.con, "storage_by_user")
        bill = read_report(h.con, "chargeback_by_user_month")
    assert [tick.get_text() for tick in user_chart(users).axes[0].get_yticklabels()] == ["us/user 1", "eu/user 1"]
    assert [bars.get_label() for bars in chargeback_chart(bill).axes[0].containers] == ["us/user 1", "eu/user 1"]
