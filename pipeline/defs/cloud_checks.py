"""With several clouds, the check that ends a run failed when one of its clouds did, once the others are loaded."""

from collections.abc import Sequence

import dagster as dg

from pipeline.defs.resources import WarehouseResource


def build_cloud_checks(clouds: Sequence[str]) -> list[dg.AssetChecksDefinition]:
    """every_cloud_synced on sync_runs: fails the run, naming each cloud of it that failed or left no row."""

    @dg.asset_check(asset="sync_runs", name="every_cloud_synced")
    def every_cloud_synced(context: dg.AssetCheckExecutionContext,
                           warehouse: WarehouseResource) -> dg.AssetCheckResult:
        """Every cloud of this run has a loaded (ok, partial) or superseded sync; else the run fails."""
        # A failing cloud must not stop the others' load and reports; this step, which nothing depends on,
        # is where the run learns that it failed.
        with warehouse.open(read_only=True) as con:
            rows = dict(con.execute(
                "SELECT cloud, CASE WHEN status = 'failed' THEN coalesce(message, 'failed') END "
                "FROM sync_runs WHERE run_id = ?", [context.op_execution_context.run_id]).fetchall())
        problems = {cloud: rows[cloud] if cloud in rows else "no sync recorded in this run"
                    for cloud in clouds if cloud not in rows or rows[cloud] is not None}
        if problems:
            raise dg.Failure(
                description="; ".join(f"cloud '{cloud}' failed: {reason}" for cloud, reason in problems.items()),
                metadata={"failed_clouds": ", ".join(problems), "loaded_clouds": len(clouds) - len(problems)},
                allow_retries=False,
            )
        return dg.AssetCheckResult(passed=True, metadata={"clouds": ", ".join(clouds)})

    return [every_cloud_synced] if len(clouds) > 1 else []
