"""Shared fixtures: a demo cloud on loopback, a warehouse in tmp_path, and a real Dagster run of the job."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from pipeline.defs.alert_assets import alert_assets
from pipeline.defs.api_assets import build_api_assets
from pipeline.defs.table_assets import table_assets
from pipeline.defs.report_assets import report_assets
from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.server import DemoCloud
from pipeline.defs.resources import AlertsResource, ChecksResource, OnAppResource, ReportsResource, WarehouseResource
from pipeline.defs.retry import step_retry_policy
from pipeline.defs.settings import ScheduleSettings
from pipeline.defs.table_assets import TABLES

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))

# Every asset of the code location, with the default step retry policy.
ALL_ASSETS = [*build_api_assets(step_retry_policy(ScheduleSettings())), *table_assets, *report_assets, *alert_assets]

# The client retries requests within milliseconds here; Dagster's step retries wait 30 s each.
NO_STEP_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}

SMALL_FLEET = DemoCloudConfig(vms=40, backups_per_vm=3, users=6, backup_servers=3)


@dataclass
class SyncHarness:
    """Runs the whole job (every asset) against one cloud and one warehouse, as many times as asked."""

    cloud: DemoCloud
    db_path: Path
    reports_dir: Path

    def resources(self, *, api_format: str = "json", user: str | None = None, api_key: str | None = None,
                  url: str | None = None, max_failed_fraction: float = 0.5, lock_timeout_s: float = 60.0,
                  export_formats: tuple[str, ...] = ("csv",), max_swing_pct: float = 30.0,
                  max_age_hours: float = 26.0, report_settings: dict | None = None, webhook_url: str = "",
                  alert_full_days: float = 30.0, clouds: tuple[str, ...] = (), **client: object) -> dict:
        """The job's resources against this cloud and warehouse, with a fast client backoff."""
        onapp = OnAppResource(
            api_url=url or self.cloud.url,
            user=self.cloud.config.user if user is None else user,
            api_key=self.cloud.config.api_key if api_key is None else api_key,
            api_format=api_format,
            # Fast backoff: tests exercise the retries, not the waiting.
            retries=client.pop("retries", 4),
            backoff_factor=client.pop("backoff_factor", 0.001),
            **client,
        )
        warehouse = WarehouseResource(
            path=str(self.db_path), max_failed_fraction=max_failed_fraction, lock_timeout_s=lock_timeout_s,
        )
        reports = ReportsResource(reports_dir=str(self.reports_dir), export_formats=list(export_formats),
                                  **(report_settings or {}))
        alerts = AlertsResource(webhook_url=webhook_url, full_days=alert_full_days)
        checks = ChecksResource(max_swing_pct=max_swing_pct, max_age_hours=max_age_hours, clouds=list(clouds))
        return {"onapp": onapp, "warehouse": warehouse, "reports": reports, "alerts": alerts, "checks": checks}

    def run(self, *, step_retries: bool = False, **options: object) -> dg.ExecuteInProcessResult:
        """Materialize every asset once; Dagster's step retries (30 s apart) only when asked."""
        return dg.materialize(
            ALL_ASSETS,
            resources=self.resources(**options),
            run_config=None if step_retries else NO_STEP_RETRIES,
            raise_on_error=False,
        )

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            return con.execute(sql, params or []).df()

    def csv(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.reports_dir / f"{name}.csv", keep_default_na=False, dtype=str)


@pytest.fixture
def make_cloud() -> Iterator:
    """Start demo clouds with given configs; all stop at the end of the test."""
    clouds: list[DemoCloud] = []

    def start(config: DemoCloudConfig = SMALL_FLEET) -> DemoCloud:
        cloud = DemoCloud(config).start()
        clouds.append(cloud)
        return cloud

    yield start
    for cloud in clouds:
        cloud.stop()


@pytest.fixture
def receiver() -> Iterator:
    """A loopback webhook receiver (tests/alerts/receiver.py), stopped at the end of the test."""
    from tests.alerts.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def cloud(make_cloud) -> DemoCloud:
    return make_cloud()


@pytest.fixture
def harness(cloud: DemoCloud, tmp_path: Path) -> SyncHarness:
    return SyncHarness(cloud=cloud, db_path=tmp_path / "backups.duckdb", reports_dir=tmp_path / "reports")


def served_backups(cloud: DemoCloud) -> pd.DataFrame:
    """What the cloud serves right now, one row per backup, with its VM and the VM's owner."""
    rows = []
    for vm_id, vm in cloud.fleet.vms.items():
        for backup in cloud.fleet.backups_of(vm_id):
            rows.append({"id": int(backup["id"]), "backup_size": int(backup["backup_size"]),
                         "backup_server_id": backup.get("backup_server_id"),
                         "virtual_machine_id": vm_id, "owner_user_id": int(vm["user_id"])})
    return pd.DataFrame(rows)


def run_failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every failure message of a run, for asserting on what the user is told."""
    return "\n".join(
        str(event.step_failure_data.error.message) + str(event.step_failure_data.user_failure_data)
        for event in result.all_events
        if event.is_step_failure
    )


def materialize_with_checks(harness: SyncHarness, *, selection: object = None,
                            **options: object) -> dg.ExecuteInProcessResult:
    """Every asset and every asset check against the harness's cloud; selection narrows it (e.g. to checks)."""
    from pipeline.defs.checks import asset_checks

    return dg.materialize(
        [*ALL_ASSETS, *asset_checks],
        resources=harness.resources(**options),
        selection=selection,
        run_config=NO_STEP_RETRIES,
        raise_on_error=False,
    )


def materialized_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata values of the one materialization of an asset (by key) in a run."""
    [materialization] = [event.materialization for event in result.get_asset_materialization_events()
                         if event.asset_key.to_user_string() == asset]
    return {key: value.value for key, value in materialization.metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict:
    """The run's asset check evaluations by check name."""
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def cli_environment(tmp_path: Path, cloud: DemoCloud, **env: str) -> dict[str, str]:
    """The environment of a dagster CLI run against the cloud, with a DAGSTER_HOME and warehouse in tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ONAPP_API_URL": cloud.url,
        "ONAPP_API_USER": cloud.config.user,
        "ONAPP_API_KEY": cloud.config.api_key,
        "BACKUPS_DB": str(tmp_path / "backups.duckdb"),
        "BACKUPS_REPORTS_DIR": str(tmp_path / "reports"),
        **env,
    }


def dagster_cli(args: list[str], tmp_path: Path, cloud: DemoCloud, **env: str) -> subprocess.CompletedProcess:
    """Run the dagster CLI on this code location against the cloud, with a DAGSTER_HOME of its own."""
    return subprocess.run(
        [DAGSTER, *args], cwd=ROOT, env=cli_environment(tmp_path, cloud, **env), capture_output=True, text=True,
        timeout=300,
    )


# Columns that differ between two syncs of the same data: when they ran, and which run it was.
TIMING = {"first_seen_at", "last_seen_at", "deleted_at", "valid_from", "valid_to", "synced_at", "run_id",
          "started_at", "finished_at", "applied_at"}


def table_contents(db: Path) -> dict[str, pd.DataFrame]:
    """Every warehouse table without its timing columns, sorted, for comparing two warehouses."""
    contents = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table in TABLES:
            frame = con.execute(f"SELECT * FROM {table}").df()  # noqa: S608 - names from a fixed tuple
            frame = frame.drop(columns=[c for c in frame.columns if c in TIMING])
            contents[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return contents


MATERIALIZE = ["asset", "materialize", "-m", "pipeline.definitions", "--select", "*"]


def wait_for(probe, *, timeout_s: float, interval_s: float = 0.05):
    """Poll probe until it returns something truthy or the time runs out; return its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def kill_sync_when(reached, tmp_path: Path, cloud: DemoCloud, *, interval_s: float = 0.05, **env: str) -> None:
    """Start a whole sync with the dagster CLI and SIGKILL its process group once reached() is true.

    Raises:
        AssertionError: the sync never reached that point, or it outlived the kill.
    """
    sync = subprocess.Popen(
        [DAGSTER, *MATERIALIZE], cwd=ROOT, env=cli_environment(tmp_path, cloud, **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        assert wait_for(reached, timeout_s=180, interval_s=interval_s), "the sync never reached the point to kill"
        os.killpg(sync.pid, signal.SIGKILL)
        assert sync.wait(timeout=30) == -signal.SIGKILL
    finally:
        if sync.poll() is None:
            os.killpg(sync.pid, signal.SIGKILL)


def ledger(tmp_path: Path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "backups.duckdb"), read_only=True) as con:
        return con.execute("SELECT status, message FROM sync_runs").fetchall()


