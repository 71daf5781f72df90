"""A whole sync against a demo cloud that misbehaves: what retries can fix is fixed, the rest is said."""

from __future__ import annotations

import dataclasses

import pandas as pd

from tests.conftest import SMALL_FLEET, SyncHarness, materialized_metadata, run_failure_text, served_backups


def test_transient_faults_end_with_every_vm_loaded_and_the_retries_shown(make_cloud, tmp_path):
    faulty = dataclasses.replace(
        SMALL_FLEET, vms=120, fail_5xx_fraction=0.10, fail_429_fraction=0.05, truncated_fraction=0.02,
        html_fraction=0.02,
    )
    cloud = make_cloud(faulty)
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run(retries=8)
    assert result.success, run_failure_text(result)

    served = served_backups(cloud).sort_values("id").reset_index(drop=True)
    loaded = harness.query("SELECT id, backup_size FROM backups WHERE deleted_at IS NULL ORDER BY id")
    pd.testing.assert_frame_equal(loaded, served[["id", "backup_size"]], check_dtype=False)
    assert harness.query("SELECT count(*) AS n FROM sync_vm_errors")["n"][0] == 0

    faults = sum(cloud.stats[key] for key in ("status_500", "status_502", "status_503", "status_504",
                                                "status_429", "truncated", "html"))
    assert faults > 10
    listing = materialized_metadata(result, "backup_lists")
    written = materialized_metadata(result, "sync_runs")
    assert listing["failed"] == 0 and written["vms_failed"] == 0 and written["status"] == "ok"
    # Every fault cost one retry; the ledger and the metadata agree on the run's total.
    assert written["retries"] == faults
    ledger = harness.query("SELECT retries, requests FROM sync_runs")
    assert ledger["retries"][0] == faults and ledger["requests"][0] == cloud.stats["requests"]


def test_a_server_that_ignores_page_fails_the_sync_instead_of_looping(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, ignore_page=True, default_per_page=10, page_size_cap=10))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run()
    assert not result.success
    assert "ignores the page parameter" in run_failure_text(result)
    assert cloud.stats["requests"] < 10
    ledger = harness.query("SELECT status, message FROM sync_runs")
    assert ledger["status"].tolist() == ["failed"] and "ignores the page parameter" in ledger["message"][0]
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] == 0


def test_an_html_error_page_for_one_vm_is_recorded_not_loaded(make_cloud, tmp_path):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, vms=10))
    harness = SyncHarness(cloud, tmp_path / "w.duckdb", tmp_path / "r")
    assert harness.run().success
    cloud.config = dataclasses.replace(cloud.config, html_fraction=1.0)
    # The VM list itself now answers HTML too: the sync fails and loads nothing.
    result = harness.run(retries=1)
    assert not result.success
    ledger = harness.query("SELECT status, message FROM sync_runs ORDER BY started_at")
    assert ledger["status"].tolist() == ["ok", "failed"]
    assert "<html>" in ledger["message"][1]
