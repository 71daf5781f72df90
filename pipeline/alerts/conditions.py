"""Which alerts fire now: what the report views show, and the one alert a failed sync raises."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from pipeline.alerts.state import FOUND
from pipeline.warehouse.sql_files import stage_sql

KINDS = ("sync_failed", "backup_server_full", "protection_gap", "backup_anomaly")
# The kinds the views decide; sync_failed is decided by the run itself.
VIEW_KINDS = KINDS[1:]
# A sync fails or loads as a whole: one alert, whichever step failed and however many runs in a row.
SYNC_KEY = "sync"
# A backup server this full fires whatever its forecast: capacity_forecast's "over 80%".
FULL_PCT = 80.0
COLUMNS = ("kind", "key", "message")


def alert_frame(rows: Iterable[tuple[str, str, str]] = ()) -> pd.DataFrame:
    """Alerts as (kind, key, message) text columns: DuckDB reads an empty frame as text too."""
    return pd.DataFrame(list(rows), columns=list(COLUMNS)).astype("string")


def firing_in_views(con: duckdb.DuckDBPyConnection, *, full_days: float) -> None:
    """Stage every alert the report views show now, sorted by kind and key (sql/alerts/firing.sql), as the
    alerts found now (the connection's temporary table alerts_now)."""
    stage_sql(con, FOUND, "alerts/firing.sql", {"full_pct": FULL_PCT, "full_days": full_days})


def sync_failed(message: str) -> pd.DataFrame:
    """The alert a failed sync raises, with the failure's cause as its message."""
    return alert_frame([("sync_failed", SYNC_KEY, f"the sync failed: {message}")])
