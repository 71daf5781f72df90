"""Which alerts fire now: what the report views show, and the one alert a failed sync raises in its cloud."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from pipeline.alerts.state import FOUND
from pipeline.warehouse.sql_files import query_sql, stage_sql

KINDS = ("sync_failed", "backup_server_full", "protection_gap", "backup_anomaly")
# The kinds the views decide; sync_failed is decided by the run itself.
VIEW_KINDS = KINDS[1:]
# A cloud's sync fails or loads as a whole: one alert per cloud, whichever step failed and however many
# runs in a row.
SYNC_KEY = "sync"
# A backup server this full fires whatever its forecast: capacity_forecast's "over 80%".
FULL_PCT = 80.0
COLUMNS = ("cloud", "kind", "key", "message")


def alert_frame(rows: Iterable[tuple[str, str, str, str]] = ()) -> pd.DataFrame:
    """Alerts as (cloud, kind, key, message) text columns: DuckDB reads an empty frame as text too."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS)).astype("string")


def firing_in_views(con: duckdb.DuckDBPyConnection, *, full_days: float) -> None:
    """Stage every alert the report views show now in every cloud, sorted by kind, cloud and key
    (sql/alerts/firing.sql), as the alerts found now (the connection's temporary table alerts_now)."""
    stage_sql(con, FOUND, "alerts/firing.sql", {"full_pct": FULL_PCT, "full_days": full_days})


def sync_failed(message: str, *, cloud: str) -> pd.DataFrame:
    """The alert a cloud's failed sync raises, with the failure's cause as its message."""
    return alert_frame([(cloud, "sync_failed", SYNC_KEY, f"the sync failed: {message}")])


def every_cloud(kinds: Iterable[str]) -> list[tuple[str, None]]:
    """The scope of kinds evaluated in every cloud at once."""
    return [(kind, None) for kind in kinds]


def after_load(con: duckdb.DuckDBPyConnection, *, run_id: str) -> list[tuple[str, str | None]]:
    """What a run that loaded evaluates: the views' kinds in every cloud (the views show them all), and
    sync_failed in each cloud this run loaded, which is what resolves it. A cloud this run could not load
    keeps the sync_failed alert it fired a moment ago."""
    loaded = query_sql(con, "alerts/loaded_clouds.sql", {"run_id": run_id})["cloud"]
    return [*every_cloud(VIEW_KINDS), *(("sync_failed", cloud) for cloud in loaded)]
