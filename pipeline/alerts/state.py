"""Alert state in the warehouse table alerts: what changes now, what the webhook has not been told, what it was told.

An alert is its kind, cloud and key: ids are unique only within a cloud, so the same key in two clouds is
two alerts, each firing, resolving and told on its own. The alerts found now and this run's changes are staged as temporary tables of the connection (alerts_now,
alert_changes), so that tens of thousands of alerts are compared and written inside DuckDB, not as frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.warehouse.sql_files import query_sql, run_sql, stage_sql

STATES = ("firing", "resolved")
# What a run evaluated: (kind, cloud) pairs whose firing alerts resolve when not found again; a cloud of
# None stands for every cloud. An alert outside it is left as it is: one cloud's failed sync never resolves
# what the views found, nor another cloud's failed sync.
Scope = Sequence[tuple[str, str | None]]
FOUND = "alerts_now"  # the alerts found now (cloud, kind, key, message)
CHANGES = "alert_changes"  # what they change (cloud, kind, key, state, message)
# Changes and found alerts a run's metadata shows.
SHOWN = 20


@dataclass(frozen=True)
class Changes:
    """The changes staged in alert_changes: how many alerts start firing, how many resolve, and the first ones."""

    started: int
    resolved: int
    first: pd.DataFrame  # the first SHOWN changes (cloud, kind, key, state, message), firing ones first

    @property
    def empty(self) -> bool:
        """Whether no alert changes state."""
        return not (self.started or self.resolved)


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


def stage_found(con: duckdb.DuckDBPyConnection, found: pd.DataFrame) -> None:
    """Stage alerts the run found itself (cloud, kind, key, message; e.g. a failed sync's) as the alerts found now."""
    with _registered(con, "alerts_given", found):
        stage_sql(con, FOUND, "alerts/given.sql")


def first_found(con: duckdb.DuckDBPyConnection, rows: int = SHOWN) -> pd.DataFrame:
    """The first of the alerts found now, in their order (cloud, kind, key, message)."""
    return query_sql(con, "alerts/first_found.sql", {"rows": rows})


def changes(con: duckdb.DuckDBPyConnection, scope: Scope) -> Changes:
    """Stage the alerts that start firing (found now, not firing in the table) and the firing ones in scope no
    longer found as alert_changes, and count them.

    The alerts found now are those staged before (stage_found, or conditions.firing_in_views) and hold every
    alert of the scope's (kind, cloud) pairs that fires now; an alert outside the scope is left as it is, so
    a failed sync's alert never resolves what the views found, and one cloud's run never resolves another
    cloud's failed sync.
    """
    with _registered(con, "alert_scope", _scope_frame(scope)):
        stage_sql(con, CHANGES, "alerts/changes.sql")
    [(started, resolved)] = run_sql(con, "alerts/change_counts.sql")
    return Changes(started=started, resolved=resolved, first=query_sql(con, "alerts/first_changes.sql", {"rows": SHOWN}))


def apply(con: duckdb.DuckDBPyConnection, changed: Changes, *, run_id: str, now: datetime) -> None:
    """Move each staged change (cloud, kind, key, state, message) into its new state, since now."""
    if changed.empty:
        return
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
