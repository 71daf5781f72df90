"""The alerts asset: the alert state in the warehouse, and the webhook told what started firing or resolved."""

import dagster as dg
import duckdb
import pandas as pd

from pipeline.alerts.conditions import after_load, firing_in_views, sync_failed
from pipeline.alerts.notify import Outcome, idle, update_and_notify
from pipeline.alerts.state import first_found, stage_found
from pipeline.defs.metadata import preview, settings_table
from pipeline.defs.resources import AlertsResource, WarehouseResource

# The tables the report views behind the alerts read: a superseded run materializes none but the ledger,
# so it skips the alerts, which the run that superseded it already evaluated.
ALERT_TABLES = ["backups", "virtual_machines", "users", "backup_servers", "storage_history", "sync_runs"]


@dg.asset(name="alerts", group_name="alerts", deps=ALERT_TABLES, kinds={"duckdb"},
          description="Every alert's state (firing or resolved) by kind, cloud and key, and what the webhook was told.")
def alert_state(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                alerts: AlertsResource) -> dg.MaterializeResult:
    """Updates the alerts from the report views and posts what started firing or resolved to the webhook."""
    webhook = bool(alerts.webhook_url)
    # Read-only first: a run with nothing new neither copies the warehouse to write it nor posts.
    try:
        with warehouse.open(read_only=True) as con:
            firing_in_views(con, full_days=alerts.full_days)
            outcome = idle(con, after_load(con, run_id=context.run_id), webhook=webhook)
            found = first_found(con)
    except (duckdb.CatalogException, duckdb.BinderException):
        # A warehouse of an older version, not yet migrated (a view, a table or a column such as cloud
        # missing): the writer migrates it.
        outcome = None
    if outcome is None:
        with warehouse.open() as con:
            # Again under the writer's lock: another run may have moved the same alerts meanwhile.
            firing_in_views(con, full_days=alerts.full_days)
            outcome = update_and_notify(con, after_load(con, run_id=context.run_id), run_id=context.run_id,
                                        webhook_url=alerts.webhook_url)
            found = first_found(con)
    _log(context, outcome, webhook)
    return dg.MaterializeResult(metadata=_metadata(outcome, found, alerts))


def alert_sync_failed(context: dg.AssetExecutionContext, alerts: AlertsResource, warehouse: WarehouseResource,
                      message: str, *, cloud: str) -> None:
    """Fires sync_failed for a cloud whose sync ends failed in this step, and posts it; call it on the last
    attempt only. The other clouds' alerts, sync_failed included, are left as they are.

    Never raises: the step goes on to fail with its own cause. Without a webhook it writes nothing, so a
    refused key still leaves the warehouse untouched.
    """
    if not alerts.webhook_url:
        return
    try:
        with warehouse.open() as con:
            stage_found(con, sync_failed(f"{context.op_def.name}: {message}", cloud=cloud))
            outcome = update_and_notify(con, [("sync_failed", cloud)], run_id=context.run_id,
                                        webhook_url=alerts.webhook_url)
    except Exception as error:  # noqa: BLE001 - the step's own failure is what the run must report
        context.log.warning(f"the sync_failed alert could not be recorded: {error}")
        return
    _log(context, outcome, webhook=True)


def _log(context: dg.AssetExecutionContext, outcome: Outcome, webhook: bool) -> None:
    started, resolved = outcome.changed.started, outcome.changed.resolved
    firing = outcome.totals.get("firing", 0)
    line = f"{firing} alert{'' if firing == 1 else 's'} firing ({started} new), {resolved} resolved; "
    delivery = outcome.delivery
    if not webhook:
        context.log.info(line + "BACKUPS_ALERT_WEBHOOK_URL not set, nothing posted")
    elif delivery is None:
        context.log.info(line + "nothing new to post")
    elif delivery.ok:
        context.log.info(line + f"{len(outcome.sent)} posted to the webhook")
    else:
        context.log.warning(line + f"the webhook did not take {len(outcome.sent)} alerts after {delivery.tries} "
                            f"tries ({delivery.reason}); they are posted with the next run")


def _metadata(outcome: Outcome, found: pd.DataFrame, alerts: AlertsResource) -> dict[str, object]:
    # found: the first of the alerts firing now, enough for the preview.
    delivery = outcome.delivery
    status = delivery.status if delivery else ("nothing to send" if alerts.webhook_url else "no webhook")
    metadata: dict[str, object] = {
        "firing": outcome.totals.get("firing", 0),
        "started_firing": outcome.changed.started,
        "resolved": outcome.changed.resolved,
        "sent": len(outcome.sent) if delivery and delivery.ok else 0,
        "delivery": status,
        "dagster/row_count": sum(outcome.totals.values()),
        "changes": preview(outcome.changed.first, rows=20),
        "firing_now": preview(found, rows=20),
        "settings": settings_table(alerts.shown()),
    }
    if delivery is not None:
        metadata |= {"tries": delivery.tries, "http_status": delivery.http_status or "no answer",
                     "reason": delivery.reason or ""}
    return metadata


alert_assets = [alert_state]
