"""Alert state in the warehouse table alerts: what changes now, what the webhook has not been told, what it was told.

An alert is its kind, cloud and key: ids are unique only within a cloud, so the same key in two clouds is
two alerts, each firing, resolving and told on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.alerts.conditions import Scope
from pipeline.warehouse.sql_files import query_sql, run_sql

STATES = ("firing", "resolved")


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> Iterator[None]:
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def _scope_frame(scope: Scope) -> pd.DataFrame:
    # Text columns even when empty, and a missing cloud as NULL: DuckDB reads it as "every cloud".
    return pd.DataFrame(list(scope), columns=["kind", "cloud"]).astype("string")


def changes(con: duckdb.DuckDBPyConnection, found: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """The alerts that start firing (in found, not firing in the table) and the firing ones in scope no longer found.

    found holds every alert of the scope's (kind, cloud) pairs that fires now (cloud, kind, key, message); an
    alert outside the scope is left as it is, so a failed sync's alert never resolves what the views found,
    and one cloud's run never resolves another cloud's failed sync.
    """
    with _registered(con, "alerts_now", found), _registered(con, "alert_scope", _scope_frame(scope)):
        return query_sql(con, "alerts/changes.sql")


def apply(con: duckdb.DuckDBPyConnection, changed: pd.DataFrame, *, run_id: str, now: datetime) -> None:
    """Move each changed alert (cloud, kind, key, state, message) into its new state, since now."""
    if changed.empty:
        return
    with _registered(con, "alert_changes", changed):
        run_sql(con, "alerts/apply_changes.sql", {"now": now, "run_id": run_id})


def pending(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The alerts the webhook has not been told of in their current state (cloud, kind, key, state, message)."""
    return query_sql(con, "alerts/pending.sql")


def mark_notified(con: duckdb.DuckDBPyConnection, sent: pd.DataFrame, *, now: datetime) -> None:
    """Record that the webhook accepted these alerts in these states."""
    with _registered(con, "alerts_sent", sent[["cloud", "kind", "key", "state"]]):
        run_sql(con, "alerts/mark_notified.sql", {"now": now})


def record_delivery(con: duckdb.DuckDBPyConnection, sent: pd.DataFrame, *, run_id: str, attempted_at: datetime,
                    status: str, http_status: int | None, tries: int, reason: str | None) -> None:
    """One row in alert_deliveries for one POST (the URL is never among its values)."""
    run_sql(con, "alerts/insert_delivery.sql", {
        "run_id": run_id, "attempted_at": attempted_at,
        "firing": int((sent["state"] == "firing").sum()), "resolved": int((sent["state"] == "resolved").sum()),
        "status": status, "http_status": http_status, "tries": tries, "reason": reason,
    })


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How many alerts the table holds in each state."""
    found = query_sql(con, "alerts/state_counts.sql")
    return {state: int(found.loc[found["state"] == state, "alerts"].sum()) for state in STATES}
