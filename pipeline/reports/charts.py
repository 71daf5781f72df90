"""PNG charts of the reports where a picture says more than a table, drawn off-screen with Agg."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, DayLocator
from matplotlib.figure import Figure

from pipeline.reports.atomic_file import atomic_path

TOP_USERS = 20
# The chargeback chart: this many months up to as of, the largest users over them, the others as one.
BILLED_MONTHS = 12
TOP_BILLED_USERS = 10
OTHER_USERS = "other users"
# History spanning less than this is drawn on a window this wide, a tick per day.
MIN_TREND_WINDOW = pd.Timedelta(days=7)
# Fewer bars than this get the room of this many, so a lone bar does not fill the plot.
MIN_BAR_SLOTS = 5
_SIZE = (10, 5.5)  # inches; at 100 dpi a 1000 x 550 picture, small enough to embed in run metadata
_DPI = 100
_TREND_TITLE = "Backup storage per backup server over time"


def _text(value: object) -> str:
    # Matplotlib reads text between two '$' as math: 'a$\frac$b' fails to render, '$x$' loses its '$'.
    return str(value).replace("$", r"\$")


def _name(label: object, key: object, kind: str, nobody: str) -> str:
    if isinstance(label, str) and label:
        return _text(label)
    return nobody if pd.isna(key) else f"{kind} {int(key)}"


def _names(frame: pd.DataFrame, label: str, key: str, kind: str, nobody: str) -> list[str]:
    """Each row's name: its label, else the kind and id. Ids and labels repeat across clouds (two clouds both
    have a user 1, a backup-server-01), so with more than one cloud in the frame each name leads with its
    cloud: 'eu/alice'."""
    several = frame["cloud"].nunique() > 1
    return [(f"{_text(cloud)}/" if several else "") + _name(text, k, kind, nobody)
            for cloud, text, k in zip(frame["cloud"], frame[label], frame[key])]


def _series(frame: pd.DataFrame, key: str) -> list[str]:
    """Each row's series: its cloud and id, so that two clouds' servers or users of one id (or one label) are
    two lines or bars, never one. The empty id is the cloud's 'no server' or 'no owner'."""
    return [f"{cloud}/{'' if pd.isna(k) else int(k)}" for cloud, k in zip(frame["cloud"], frame[key])]


def _figure(title: str) -> tuple[Figure, Axes]:
    # A Figure with its own Agg canvas, not pyplot: no display, no global state between runs.
    figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _bar_span(count: int) -> tuple[float, float] | None:
    # Without it one bar spans the whole plot and the legend sits on its capacity marker.
    if count >= MIN_BAR_SLOTS:
        return None
    pad = (MIN_BAR_SLOTS - count) / 2
    return -0.5 - pad, count - 0.5 + pad


def _empty(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no backups yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def backup_server_chart(frame: pd.DataFrame) -> Figure:
    """Storage per backup server as bars, each with its capacity as a marker."""
    figure, axes = _figure("Backup storage per backup server against capacity")
    if frame.empty:
        _empty(axes)
        return figure
    names = _names(frame, "backup_server_label", "backup_server_id", "server", "no backup server")
    positions = list(range(len(frame)))
    # Backups on no dedicated server have no capacity to fill: grey, so they do not read as one.
    colors = ["tab:gray" if pd.isna(key) else "tab:blue" for key in frame["backup_server_id"]]
    bars = axes.bar(positions, frame["storage_gib"].astype(float), color=colors, label="stored")
    capacity = frame["capacity_gib"].astype("Float64")
    known = [p for p, value in zip(positions, capacity) if pd.notna(value)]
    axes.hlines(capacity.dropna().astype(float), [p - 0.45 for p in known], [p + 0.45 for p in known],
                colors="tab:red", linewidths=3, zorder=3, label="capacity")
    for bar, pct in zip(bars, frame["used_pct"]):
        if pd.notna(pct):
            axes.annotate(f"{pct:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=8)
    axes.set_xticks(positions, names, rotation=30, ha="right")
    if span := _bar_span(len(frame)):
        axes.set_xlim(*span)
    axes.set_ylabel("GiB")
    axes.legend()
    return figure


def _history_note(days: int) -> str:
    return f"{days} day{'' if days == 1 else 's'} of history"


def _short_history_axis(axes: Axes, days: pd.DatetimeIndex) -> None:
    # Left alone, matplotlib spreads one day over years and a few over hours: show a week
    # around the data instead, one tick per calendar day.
    spread = days.max() - days.min()
    margin = max(MIN_TREND_WINDOW - spread, pd.Timedelta(days=1)) / 2
    axes.set_xlim(days.min() - margin, days.max() + margin)
    axes.xaxis.set_major_locator(DayLocator())
    axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))


def trend_chart(frame: pd.DataFrame) -> Figure:
    """Storage per backup server over days, one line each, from the storage_trend report."""
    servers = frame[frame["dimension"] == "backup_server"]
    if servers.empty:
        figure, axes = _figure(_TREND_TITLE)
        _empty(axes)
        return figure
    series = _series(servers, "key")
    names = dict(zip(series, _names(servers, "label", "key", "server", "no backup server")))
    clouds = dict(zip(series, servers["cloud"]))
    # The days each cloud synced (a row of either dimension): clouds sync apart, so another cloud's day says
    # nothing of this one's servers.
    synced = {cloud: set(days) for cloud, days in frame.groupby("cloud")["day"]}
    table = servers.assign(series=series).pivot_table(index="day", columns="series", values="storage_gib",
                                                      aggfunc="sum", sort=True)
    table = table[sorted(table.columns, key=lambda s: (names[s], s))]  # the legend in order of names
    days = pd.DatetimeIndex(pd.to_datetime(table.index))
    short = days.max() - days.min() < MIN_TREND_WINDOW
    figure, axes = _figure(f"{_TREND_TITLE} ({_history_note(len(days))})" if short else _TREND_TITLE)
    for line in table.columns:
        # A server missing from a day its cloud synced held nothing that day: 0, not a gap the line would
        # bridge. A day its cloud did not sync is no point of its line.
        points = table[line][table.index.isin(synced[clouds[line]])].fillna(0.0)
        # Few days are few points: big enough markers that a single day reads as data, not a speck.
        axes.plot(pd.to_datetime(points.index), points.astype(float), marker="o", markersize=6 if short else 3,
                  label=names[line])
    if short:
        _short_history_axis(axes, days)
    axes.set_ylabel("GiB")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    return figure


def user_chart(frame: pd.DataFrame) -> Figure:
    """The top users by storage as horizontal bars, the largest on top."""
    figure, axes = _figure(f"Backup storage per user (top {TOP_USERS})")
    if frame.empty:
        _empty(axes)
        return figure
    # Named before the cut: whether names lead with their cloud depends on every cloud the report holds.
    named = frame.assign(name=_names(frame, "user_login", "user_id", "user", "no owner"))
    top = named.sort_values(["storage_kb", "cloud", "user_id"], ascending=[False, True, True],
                            na_position="last").head(TOP_USERS)
    names = list(top["name"])
    axes.barh(range(len(top)), top["storage_gib"].astype(float), color="tab:blue")
    axes.set_yticks(range(len(top)), names, fontsize=8)
    axes.invert_yaxis()
    if span := _bar_span(len(top)):
        axes.set_ylim(span[1], span[0])  # inverted: the first (largest) on top
    axes.set_xlabel("GiB")
    return figure


def chargeback_chart(frame: pd.DataFrame) -> Figure:
    """GiB-months of the last 12 months up to as of, stacked per month: the top users, then the rest as one."""
    title = f"Backup GiB-months per user, last {BILLED_MONTHS} months (top {TOP_BILLED_USERS})"
    figure, axes = _figure(title)
    if frame.empty:
        _empty(axes)
        return figure
    # The months up to that of as of (UTC); those without rows (nothing stored) still get their slot, at 0.
    last = pd.Timestamp(frame["as_of"].max()).tz_convert("UTC").tz_localize(None).to_period("M")
    months = [str(last - k) for k in range(BILLED_MONTHS - 1, -1, -1)]
    named = frame.assign(series=_series(frame, "user_id"), name=_names(frame, "user_login", "user_id", "user",
                                                                      "no owner"))
    names = dict(zip(named["series"], named["name"])) | {OTHER_USERS: OTHER_USERS}
    recent = named[named["month"].isin(months)].assign(gib_months=lambda f: f["gib_months"].astype(float))
    # By series (cloud and user id), not by name: two clouds' user 1 are two users, whatever their logins.
    ranked = recent.groupby("series", sort=False)["gib_months"].sum().sort_values(ascending=False, kind="stable")
    top = list(ranked.index[:TOP_BILLED_USERS])
    table = (recent.assign(series=recent["series"].where(recent["series"].isin(top), OTHER_USERS))
             .pivot_table(index="month", columns="series", values="gib_months", aggfunc="sum")
             .reindex(index=months, columns=[*top, *([OTHER_USERS] if len(ranked) > len(top) else [])])
             .fillna(0.0))
    bottom = [0.0] * len(months)
    # A colour per user, none of them the grey that stands for the other users.
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan", "navy"]
    for index, series in enumerate(table.columns):
        color = "tab:gray" if series == OTHER_USERS else palette[index % len(palette)]
        axes.bar(range(len(months)), table[series], bottom=bottom, label=names[series], color=color)
        bottom = [b + h for b, h in zip(bottom, table[series])]
    axes.set_xticks(range(len(months)), months, rotation=30, ha="right")
    axes.set_ylabel("GiB-months")
    # Beside the bars, not on them: stacked bars leave no empty corner.
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return figure


# Report name -> how to draw it; the other reports are tables only.
CHARTS: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "storage_by_backup_server": backup_server_chart,
    "storage_trend": trend_chart,
    "storage_by_user": user_chart,
    "chargeback_by_user_month": chargeback_chart,
}


def write_chart(name: str, frame: pd.DataFrame, reports_dir: str | Path) -> Path | None:
    """Write <reports_dir>/<name>.png atomically when the report has a chart; return its path."""
    draw = CHARTS.get(name)
    if draw is None:
        return None
    path = Path(reports_dir) / f"{name}.png"
    figure = draw(frame)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def markdown_image(path: Path) -> str:
    """The PNG as a markdown image with a data URI, so the Dagster UI shows it without file access."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"![{path.stem}](data:image/png;base64,{encoded})"
