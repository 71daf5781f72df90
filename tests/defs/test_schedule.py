"""The daily schedule, its job and the step retry policy, run for real; and no step in a Dagster pool."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import dagster as dg
import pytest
import yaml

from pipeline.defs.checks import asset_checks
from pipeline.defs.retry import step_retry_policy
from pipeline.defs.schedule import SCHEDULE_NAME, daily_schedule, sync_job
from pipeline.defs.settings import SettingsError, schedule_settings
from pipeline.defs.table_assets import table_assets
from tests.conftest import ALL_ASSETS, ROOT, SMALL_FLEET, dagster_cli, ledger, run_failure_text

def test_the_schedule_defaults_to_two_in_the_morning_utc():
    schedule = daily_schedule(schedule_settings({}))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    assert schedule.job_name == sync_job.name
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_schedule_reads_its_cron_and_zone_from_the_environment():
    schedule = daily_schedule(schedule_settings(
        {"BACKUPS_SCHEDULE_CRON": "30 4 * * 1-5", "BACKUPS_SCHEDULE_TZ": "Europe/Amsterdam"}))
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 4 * * 1-5", "Europe/Amsterdam")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        # Four fields: a typo that would otherwise surface only when the daemon loads the code.
        ({"BACKUPS_SCHEDULE_CRON": "0 2 * *"}, "BACKUPS_SCHEDULE_CRON"),
        # A zone name that does not exist.
        ({"BACKUPS_SCHEDULE_TZ": "Mars/Olympus_Mons"}, "BACKUPS_SCHEDULE_TZ"),
    ],
)
def test_a_bad_schedule_setting_is_refused_by_name(environ, named):
    with pytest.raises(SettingsError, match=named):
        daily_schedule(schedule_settings(environ))


def test_the_code_location_has_the_job_the_schedule_and_every_check():
    from pipeline.definitions import defs

    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.job_name == "backups_sync"
    graph = defs.resolve_asset_graph()
    assert graph.asset_check_keys == {key for check in asset_checks for key in check.check_keys}
    blocking = {spec.name for check in asset_checks for spec in check.check_specs if spec.blocking}
    assert blocking == {"backup_ids_unique", "backup_sizes_not_negative", "failed_vms_under_threshold"}


def test_a_schedule_tick_runs_every_asset_and_every_check(harness):
    schedule = daily_schedule(schedule_settings({}))
    defs = dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=asset_checks,
        jobs=[sync_job],
        schedules=[schedule],
        resources=harness.resources(),
        executor=dg.in_process_executor,
    )
    tick = datetime(2030, 1, 2, 2, 0, tzinfo=timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    job = defs.resolve_job_def(schedule.job_name)
    result = job.execute_in_process(run_config=request.run_config, tags=request.tags, raise_on_error=False)
    assert result.success, run_failure_text(result)

    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == set(defs.resolve_all_asset_keys())
    evaluated = {evaluation.asset_check_key for evaluation in result.get_asset_check_evaluations()}
    assert evaluated == defs.resolve_asset_graph().asset_check_keys
    assert harness.query("SELECT count(*) AS n FROM backups")["n"][0] > 0


def test_only_the_api_steps_retry():
    from pipeline.definitions import defs

    policy = dg.RetryPolicy(max_retries=2, delay=30.0)
    assert step_retry_policy(schedule_settings({})) == policy
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("vm_list")).assets_def.op.retry_policy == policy
    assert graph.get(dg.AssetKey("backup_lists")).assets_def.op.retry_policy == policy
    # The writer fails the same way twice: retrying it only delays the alarm.
    assert [load.op.retry_policy for load in table_assets] == [None]


def test_the_step_retry_policy_reads_the_environment():
    policy = step_retry_policy(schedule_settings({"BACKUPS_STEP_RETRIES": "5", "BACKUPS_STEP_RETRY_DELAY": "0.5"}))
    assert policy == dg.RetryPolicy(max_retries=5, delay=0.5)
    # Words, a negative wait, and "inf" (a step that would wait forever) are refused by name.
    for bad in ("half a minute", "-5", "inf"):
        with pytest.raises(SettingsError, match="BACKUPS_STEP_RETRY_DELAY"):
            schedule_settings({"BACKUPS_STEP_RETRY_DELAY": bad})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "attempts"),
    [
        # The API is down: each attempt asks for the VM list once (no client retries), three attempts.
        ({"fail_5xx_fraction": 1.0}, 3),
        # A server that ignores `page` does so every time: one attempt only.
        ({"ignore_page": True, "default_per_page": 10, "page_size_cap": 10}, 1),
    ],
)
def test_a_vm_list_that_cannot_be_read_is_retried_when_it_may_pass_and_recorded_once(
    make_cloud, tmp_path, fault, attempts
):
    cloud = make_cloud(dataclasses.replace(SMALL_FLEET, **fault))
    run = dagster_cli(
        ["asset", "materialize", "-m", "pipeline.definitions", "--select", "vm_list"],
        tmp_path, cloud, ONAPP_RETRIES="0", BACKUPS_STEP_RETRY_DELAY="0",
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert output.count("STEP_UP_FOR_RETRY") == attempts - 1
    # The last attempt fails with the reason, not with a second ledger row for the same run.
    assert "STEP_FAILURE" in output, output[-3000:]
    final = output[output.rindex("STEP_FAILURE"):]
    assert "VM list could not be read" in final and "Constraint Error" not in final
    # The ledger holds one row for the run, whatever the number of attempts.
    [(status, message)] = ledger(tmp_path)
    assert status == "failed" and "VM list could not be read" in message
    if attempts == 3:
        assert cloud.stats["requests"] == 3


def test_no_step_waits_for_a_dagster_pool():
    # Writers are ordered by the warehouse's lock file, which the kernel frees when a run dies; a pool
    # slot held by a killed run stays taken (tests/defs/test_reliability_kill.py runs that case).
    ops = [definition.op for definition in [*ALL_ASSETS, *asset_checks]]
    assert {op.name: op.pool for op in ops if op.pool is not None} == {}
    assert "concurrency" not in yaml.safe_load((ROOT / "dagster.yaml").read_text())
