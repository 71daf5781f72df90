"""What each asset check finds: keys, sizes, the last sync's failures and rejects, storage swings, freshness,
protection gaps and size anomalies, each cloud on its own (ids are unique only within a cloud, and clouds are
synced apart). Each rule reads one open read-only connection; pipeline.defs.checks runs them as steps."""

from dataclasses import dataclass

import dagster as dg
import duckdb
import pandas as pd

from pipeline.clouds.config import DEFAULT_CLOUD
from pipeline.defs.metadata import preview
from pipeline.defs.resources import ChecksResource, WarehouseResource
from pipeline.warehouse.load import LOADED
from pipeline.warehouse.sql_files import query_sql

# Items a warning's description names; the metadata lists more ids and previews the rows.
NAMED = 10
LISTED = 500


@dataclass(frozen=True)
class CheckSettings:
    """What a check may read besides the warehouse: the resources' thresholds."""

    warehouse: WarehouseResource
    checks: ChecksResource


def _read(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> pd.DataFrame:
    return query_sql(con, f"checks/{name}", params)


def _in_cloud(cloud: str, text: str) -> str:
    """text about an id, prefixed with its cloud: the id alone names nothing once two clouds share it. The
    default cloud's stay as they read with one cloud."""
    return text if cloud == DEFAULT_CLOUD else f"{cloud}: {text}"


def _last_sync(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The latest run's ledger rows, one per cloud it synced; empty before any sync."""
    return _read(con, "last_sync.sql")


def _count(value: object) -> int:
    return 0 if pd.isna(value) else int(value)


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _named(first: list[str], total: int) -> str:
    # The first items of total, and how many more there are: only those named are formatted.
    more = total - len(first)
    return ", ".join(first) + (f" and {more} more" if more > 0 else "")


def _ids_in_clouds(clouds: pd.Series, ids: pd.Series, limit: int) -> list[str]:
    return [_in_cloud(cloud, str(key)) for cloud, key in zip(clouds.head(limit), ids.head(limit))]


def _none_found(offending: pd.DataFrame, *, count: str, rows: str, noun: str) -> dg.AssetCheckResult:
    """Passed when the query found no offending rows (cloud, id, ...); the description names them, the
    metadata counts and shows them."""
    named = _ids_in_clouds(offending["cloud"], offending["id"], NAMED)
    return dg.AssetCheckResult(
        passed=offending.empty,
        description=f"{_counted(len(offending), noun)}: {_named(named, len(offending))}" if named else None,
        metadata={count: len(offending), rows: preview(offending, rows=20)},
    )


def _no_sync_yet() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"last_sync": "none yet"})


def check_backup_ids_unique(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """No backup id appears twice among the current (not deleted) rows of one cloud."""
    # DuckDB's primary key forbids it; DuckLake has no primary keys, and a rewrite of the upsert may slip.
    return _none_found(_read(con, "duplicate_backup_ids.sql"), count="duplicate_ids", rows="duplicates",
                       noun="backup id appearing twice")


def check_backup_sizes_not_negative(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """No current backup has a negative size."""
    return _none_found(_read(con, "negative_backup_sizes.sql"), count="negative_sizes", rows="backups",
                       noun="backup with a negative size")


def _failed_fractions(runs: pd.DataFrame) -> pd.DataFrame:
    """Each cloud of a run with its share of VMs whose backups could not be read; the worst first."""
    def fraction(row: pd.Series) -> float:
        listed, failed = _count(row["vms_listed"]), _count(row["vms_failed"])
        # A sync that failed before listing any VM read nothing: count it as all failed.
        return failed / listed if listed else (1.0 if row["status"] == "failed" else 0.0)

    shares = runs.assign(vms_listed=[_count(v) for v in runs["vms_listed"]],
                         vms_failed=[_count(v) for v in runs["vms_failed"]],
                         failed_fraction=[round(fraction(row), 4) for _, row in runs.iterrows()])
    columns = ["cloud", "status", "vms_listed", "vms_failed", "failed_fraction"]
    return shares.sort_values(["failed_fraction", "cloud"], ascending=[False, True], kind="stable")[columns]


def _judged(shares: pd.DataFrame) -> pd.DataFrame:
    """The clouds of a run whose failed VMs the check judges: those it loaded. A cloud that failed beside
    loaded ones loaded nothing and kept its rows; every_cloud_synced names it, and failing this blocking check
    for it would hold back the reports of the clouds that did load. A run that loaded no cloud is judged whole."""
    loaded = shares[shares["status"].isin(LOADED)]
    return loaded if not loaded.empty else shares


def check_failed_vms_under_threshold(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """In every cloud the last sync loaded, the share of VMs whose backups could not be read is at most
    max_failed_fraction (a run that loaded none: in every cloud it tried)."""
    last = _last_sync(con)
    if last.empty:
        return _no_sync_yet()
    shares = _failed_fractions(last)
    judged = _judged(shares)
    worst = judged.iloc[0]
    limit = settings.warehouse.max_failed_fraction
    over = judged[judged["failed_fraction"] > limit]
    errors = _read(con, "vm_errors_of_run.sql", {"run_id": last["run_id"].iloc[0]})
    named = [_in_cloud(row.cloud, f"{row.vms_failed} of {row.vms_listed} VMs failed" if row.vms_listed
                       else f"no VM listed ({row.status})") for row in over.head(NAMED).itertuples()]
    return dg.AssetCheckResult(
        passed=over.empty,
        description=f"over {limit}: {_named(named, len(over))}" if named else None,
        metadata={
            "run_id": last["run_id"].iloc[0],
            # The worst judged cloud's figures: the one the threshold fails first.
            "cloud": worst["cloud"],
            "status": worst["status"],
            "vms_listed": int(worst["vms_listed"]),
            "vms_failed": int(worst["vms_failed"]),
            "failed_fraction": float(worst["failed_fraction"]),
            "max_failed_fraction": limit,
            "clouds": preview(shares, rows=20),
            "failed_vms": preview(errors, rows=20),
        },
    )


def check_no_rejected_records(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """The last sync set no backup record aside as untrustworthy, in any cloud (a warning: the rest loaded)."""
    last = _last_sync(con)
    if last.empty:
        return _no_sync_yet()
    run_id = last["run_id"].iloc[0]
    rejects = _read(con, "rejects_of_run.sql", {"run_id": run_id})
    return dg.AssetCheckResult(
        passed=rejects.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"run_id": run_id, "rejected": len(rejects), "rejects": preview(rejects, rows=20)},
    )


def _swing_pct(previous_kb: int, current_kb: int) -> float:
    if previous_kb:
        return 100.0 * (current_kb - previous_kb) / previous_kb
    # A server that appears with data has no base to compare with: an unbounded swing.
    return float("inf") if current_kb else 0.0


def _server(key: object) -> str:
    return "no backup server" if pd.isna(key) else f"backup server {int(key)}"


def check_storage_swing_per_backup_server(con: duckdb.DuckDBPyConnection,
                                          settings: CheckSettings) -> dg.AssetCheckResult:
    """No backup server's total storage moved by more than BACKUPS_MAX_SWING_PCT since its cloud's previous sync."""
    max_swing = settings.checks.max_swing_pct
    totals = _read(con, "storage_swing.sql", {"loaded": list(LOADED)})
    # A cloud with one loaded sync has nothing to compare with yet; the others still are compared.
    compared = totals[totals["syncs"] >= 2].drop(columns="syncs")
    if compared.empty:
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.WARN,
            metadata={"compared": "fewer than two loaded syncs", "max_swing_pct": max_swing},
        )
    compared = compared.assign(swing_pct=[
        round(_swing_pct(int(p), int(c)), 2) for p, c in zip(compared["previous_kb"], compared["current_kb"])
    ])
    swung = compared[compared["swing_pct"].abs() > max_swing]
    named = [_in_cloud(row.cloud, f"{_server(row.backup_server_id)} ({row.swing_pct:+}%)")
             for row in swung.head(NAMED).itertuples()]
    return dg.AssetCheckResult(
        passed=swung.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{_counted(len(swung), 'backup server')} moved more than {max_swing}%: "
                     f"{_named(named, len(swung))}" if named else None),
        metadata={
            "max_swing_pct": max_swing,
            "backup_servers": len(compared),
            "swung": len(swung),
            "swings": preview(swung, rows=20),
        },
    )


def _age(row: pd.Series) -> str:
    if pd.isna(row["finished_at"]):
        return "no loaded sync"
    return f"last loaded sync {float(row['age_hours']):.1f} hours ago"


def _staleness(row: pd.Series) -> str:
    return _in_cloud(row["cloud"], _age(row))


def check_last_sync_fresh(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """Every configured cloud's last sync that loaded data (ok or partial) finished less than
    BACKUPS_MAX_AGE_HOURS ago."""
    max_age = settings.checks.max_age_hours
    found = _read(con, "last_loaded_sync.sql", {"loaded": list(LOADED), "clouds": list(settings.checks.clouds)})
    # A cloud taken out of the clouds file is synced no more: named, never stale.
    clouds, others = found[found["judged"]].drop(columns="judged"), found[~found["judged"]]
    if clouds.empty:
        return dg.AssetCheckResult(
            passed=False, metadata={"last_loaded_sync": "none", "max_age_hours": max_age}
        )
    # Sorted stalest first (a cloud that never loaded before any): the one that fails the check first.
    stale = clouds[clouds["finished_at"].isna() | (clouds["age_hours"] >= max_age)]
    stalest = clouds.iloc[0]
    never = pd.isna(stalest["finished_at"])
    metadata = {
        "last_loaded_sync": "none" if never else stalest["finished_at"].isoformat(),
        "max_age_hours": max_age,
        "clouds": preview(clouds.assign(age_hours=clouds["age_hours"].round(2)), rows=20),
    }
    if not never:
        metadata["age_hours"] = round(float(stalest["age_hours"]), 2)
    if not others.empty:
        metadata["not_configured"] = ", ".join(f"{row['cloud']}: {_age(row)}" for _, row in others.iterrows())
    named = [_staleness(row) for _, row in stale.head(NAMED).iterrows()]
    return dg.AssetCheckResult(
        passed=stale.empty,
        description=f"not fresh: {_named(named, len(stale))}" if named else None,
        metadata=metadata,
    )


def check_no_protection_gaps(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """Every current VM has a built backup newer than BACKUPS_PROTECTION_DAYS and none stuck unbuilt (a warning)."""
    gaps = _read(con, "protection_gaps.sql")
    named = [_in_cloud(row.cloud, f"{row.virtual_machine_id} ({row.label}: {row.reason})")
             for row in gaps.head(NAMED).itertuples()]
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{_counted(len(gaps), 'VM')} not protected: {_named(named, len(gaps))}" if named else None,
        metadata={
            "vms": len(gaps),
            "virtual_machine_ids": _named(_ids_in_clouds(gaps["cloud"], gaps["virtual_machine_id"], LISTED),
                                          len(gaps)),
            "gaps": preview(gaps, rows=20),
        },
    )


def check_no_backup_anomalies(con: duckdb.DuckDBPyConnection, settings: CheckSettings) -> dg.AssetCheckResult:
    """No current backup is BACKUPS_ANOMALY_FACTOR times larger or smaller than its VM's usual (a warning)."""
    found = _read(con, "backup_anomalies.sql")
    named = [_in_cloud(row.cloud, f"backup {row.backup_id} of VM {row.virtual_machine_id} ({row.ratio} times the "
                                  f"median)") for row in found.head(NAMED).itertuples()]
    vms = found[["cloud", "virtual_machine_id"]].drop_duplicates()
    return dg.AssetCheckResult(
        passed=found.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{_counted(len(found), 'backup')} far from the VM's usual size: {_named(named, len(found))}"
                     if named else None),
        metadata={
            "backups": len(found),
            "backup_ids": _named(_ids_in_clouds(found["cloud"], found["backup_id"], LISTED), len(found)),
            "virtual_machine_ids": _named(_ids_in_clouds(vms["cloud"], vms["virtual_machine_id"], LISTED), len(vms)),
            "anomalies": preview(found, rows=20),
        },
    )
