"""One run's alerting: move the alerts into their states now, then tell the webhook what it has not been told.

An alert is sent when it starts firing and when it resolves, never in between. What the webhook did not
accept stays pending in the table and goes with the next run that posts; without a webhook nothing is
posted and nothing counts as told, so a webhook set later hears of every alert firing then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.alerts import state
from pipeline.alerts.state import Scope
from pipeline.alerts.message import first_due, payload
from pipeline.alerts.webhook import Delivery, post
from pipeline.warehouse.clock import utc_now

# Alerts one message carries. A first night on a large cloud can find tens of thousands; a receiver
# refusing so large a body (Slack's answer to one of megabytes) would keep refusing it every night.
# The rest stay pending and go with the next runs.
MAX_ALERTS_PER_MESSAGE = 1000


@dataclass
class Outcome:
    """What one run did: the alerts that changed state, the ones it posted (if any), and how that went."""

    changed: state.Changes
    sent: pd.DataFrame = field(default_factory=pd.DataFrame)
    delivery: Delivery | None = None  # None: nothing was posted
    totals: dict[str, int] = field(default_factory=dict)  # alerts in the table by state, after the run


def idle(con: duckdb.DuckDBPyConnection, scope: Scope, *, webhook: bool) -> Outcome | None:
    """The run's outcome when it has nothing to write (no alert changes state, none is pending for the webhook),
    else None; the alerts found now are staged on con. Read-only: the writer's session costs a copy of the
    warehouse."""
    changed = state.changes(con, scope)
    if not changed.empty or (webhook and not state.pending(con).empty):
        return None
    return Outcome(changed=changed, totals=state.counts(con))


def update_and_notify(con: duckdb.DuckDBPyConnection, scope: Scope, *, run_id: str,
                      webhook_url: str, now: datetime | None = None,
                      max_alerts: int = MAX_ALERTS_PER_MESSAGE) -> Outcome:
    """Apply what changed in the scope (its (kind, cloud) pairs), of which the alerts staged on con hold every
    firing alert (state.stage_found, conditions.firing_in_views); post what is pending; record it.

    Run it on the writer's connection: one writer at a time, so two runs never post the same change.
    """
    now = now or utc_now()
    changed = state.changes(con, scope)
    state.apply(con, changed, run_id=run_id, now=now)
    outcome = Outcome(changed=changed)
    pending = state.pending(con) if webhook_url else pd.DataFrame()
    due = first_due(pending, max_alerts)
    if not due.empty:
        delivery = post(webhook_url, payload(due, left=len(pending) - len(due)))
        state.record_delivery(con, due, run_id=run_id, attempted_at=now, status=delivery.status,
                              http_status=delivery.http_status, tries=delivery.tries, reason=delivery.reason)
        if delivery.ok:
            state.mark_notified(con, due, now=utc_now())
        outcome.sent, outcome.delivery = due, delivery
    outcome.totals = state.counts(con)
    return outcome
