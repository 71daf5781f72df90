"""Alerts through real syncs of a demo cloud to a real loopback webhook: sent when they fire and when they resolve,
never in between, kept when the webhook is down, and the webhook's URL seen nowhere."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.defs.alert_assets import alert_sync_failed
from pipeline.defs.resources import AlertsResource, WarehouseResource
from tests.alerts.receiver import DROP
from tests.conftest import ALL_ASSETS, NO_STEP_RETRIES, SyncHarness, materialized_metadata, run_failure_text
from tests.defs.alerting_cloud import fix_trouble, make_trouble, tidy
from tests.onapp.hostile_api import Crafted, HostileApi
from tests.reports import two_clouds
from tests.reports.history import history


def table(harness: SyncHarness) -> list[tuple]:
    return list(harness.query("SELECT kind, key, state, notified_state FROM alerts ORDER BY kind, key")
                .itertuples(index=False, name=None))


def deliveries(harness: SyncHarness) -> list[tuple]:
    return list(harness.query("SELECT firing, resolved, status, http_status, tries FROM alert_deliveries "
                              "ORDER BY attempted_at").itertuples(index=False, name=None))


def test_alerts_fire_once_stay_quiet_and_resolve_through_three_syncs(harness, receiver):
    tidy(harness.cloud)
    trouble = make_trouble(harness.cloud)

    first = harness.run(webhook_url=receiver.url)
    assert first.success, run_failure_text(first)
    assert len(receiver.posts) == 1 and receiver.alerts(0) == trouble.alerts("firing")
    message = receiver.posts[0].body
    assert message["text"].splitlines()[0] == "OnApp backups: 3 alerts firing"
    gap = next(alert for alert in message["alerts"] if alert["kind"] == "protection_gap")
    assert gap["message"].startswith(f"VM {trouble.vm_without_backups} (") and gap["message"].endswith(": no backups")
    assert {key: materialized_metadata(first, "alerts")[key] for key in ("firing", "started_firing", "sent",
                                                                         "delivery")} == {
        "firing": 3, "started_firing": 3, "sent": 3, "delivery": "sent"}

    unchanged = harness.run(webhook_url=receiver.url)
    assert unchanged.success and len(receiver.posts) == 1 and receiver.tries == 1
    assert materialized_metadata(unchanged, "alerts")["delivery"] == "nothing to send"

    fix_trouble(harness.cloud, trouble)
    fixed = harness.run(webhook_url=receiver.url)
    assert fixed.success, run_failure_text(fixed)
    assert len(receiver.posts) == 2 and receiver.alerts(1) == trouble.alerts("resolved")
    assert receiver.posts[1].body["text"].splitlines()[0] == "OnApp backups: 3 resolved"
    assert {row[2:] for row in table(harness)} == {("resolved", "resolved")}
    assert deliveries(harness) == [(3, 0, "sent", 200, 1), (0, 3, "sent", 200, 1)]


def test_without_a_webhook_the_state_is_kept_and_nothing_is_posted(harness, receiver):
    tidy(harness.cloud)
    make_trouble(harness.cloud)
    result = harness.run()
    assert result.success, run_failure_text(result)
    assert materialized_metadata(result, "alerts")["delivery"] == "no webhook"
    assert {row[2:] for row in table(harness)} == {("firing", None)} and len(table(harness)) == 3
    assert deliveries(harness) == []

    # Set later, the webhook hears of what fires then.
    assert harness.run(webhook_url=receiver.url).success
    assert len(receiver.posts) == 1 and len(receiver.posts[0].body["alerts"]) == 3


def test_a_webhook_that_answers_500_is_retried_recorded_and_told_by_a_later_run(harness, receiver):
    tidy(harness.cloud)
    trouble = make_trouble(harness.cloud)
    receiver.always = 500
    down = harness.run(webhook_url=receiver.url)
    assert down.success, run_failure_text(down)  # the webhook never fails the sync
    assert receiver.tries == 4 and receiver.posts == []
    assert deliveries(harness) == [(3, 0, "failed", 500, 4)]
    assert {row[3] for row in table(harness)} == {None}  # nothing counts as told
    found = materialized_metadata(down, "alerts")
    assert (found["delivery"], found["sent"], found["tries"], found["http_status"]) == ("failed", 0, 4, 500)

    receiver.always = None
    up = harness.run(webhook_url=receiver.url)
    assert up.success and len(receiver.posts) == 1 and receiver.alerts(0) == trouble.alerts("firing")
    assert harness.run(webhook_url=receiver.url).success and len(receiver.posts) == 1


def _refused_key(harness, api):
    return {"api_key": "wrong-key-123"}, {}


def _unreadable_list(harness, api):
    harness.cloud.config = dataclasses.replace(harness.cloud.config, fail_5xx_fraction=1.0)
    return {"retries": 0}, {}


def _refused_backup_list(harness, api):
    api.answers[f"/virtual_machines/{min(harness.cloud.fleet.vms)}/backups/images.json"] = Crafted(
        status=401, body=b'{"error":"Access denied"}')
    return {"url": api.url}, {"url": api.url}


def _too_many_failed_vms(harness, api):
    harness.cloud.config = dataclasses.replace(harness.cloud.config, failing_vm_ids=frozenset(harness.cloud.fleet.vms))
    return {"retries": 0}, {}


@pytest.mark.parametrize(("breaks", "step"), [
    (_refused_key, "vm_list"),
    (_unreadable_list, "vm_list"),
    (_refused_backup_list, "backup_lists"),
    (_too_many_failed_vms, "warehouse_load"),
])
def test_sync_failed_fires_on_a_failing_run_and_resolves_on_the_next_good_one(harness, receiver, breaks, step):
    tidy(harness.cloud)
    config = harness.cloud.config
    api = HostileApi(harness.cloud).start()
    try:
        failing, healthy = breaks(harness, api)
        for _ in range(2):  # failing twice in a row is one alert
            failed = harness.run(webhook_url=receiver.url, **failing)
            assert not failed.success
        [message] = [post.body for post in receiver.posts]
        assert receiver.alerts(0) == {("sync_failed", "sync", "firing")}
        assert message["alerts"][0]["message"].startswith(f"the sync failed: {step}: ")
        assert f"FIRING sync_failed sync: the sync failed: {step}: " in message["text"]

        harness.cloud.config = config
        api.answers.clear()
        good = harness.run(webhook_url=receiver.url, **healthy)
        assert good.success, run_failure_text(good)
        assert len(receiver.posts) == 2 and receiver.alerts(1) == {("sync_failed", "sync", "resolved")}
    finally:
        api.stop()


def test_a_failing_run_without_a_webhook_records_no_alert(harness):
    tidy(harness.cloud)
    assert harness.run().success
    assert not harness.run(api_key="wrong-key-123").success
    assert table(harness) == []


def test_the_webhook_url_is_in_no_log_metadata_event_table_or_file(harness, receiver, tmp_path, monkeypatch, caplog,
                                                                  capfd):
    tidy(harness.cloud)
    trouble = make_trouble(harness.cloud)
    monkeypatch.setenv("BACKUPS_ALERT_WEBHOOK_URL", receiver.url)
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "dagster_home"
    home.mkdir()
    results = []
    with dg.instance_for_test(temp_dir=str(home)) as instance:

        def sync(**options: object) -> dg.ExecuteInProcessResult:
            resources = harness.resources(**options)
            # As the code location builds it: read when the run starts, never part of the definitions.
            resources["alerts"] = AlertsResource(webhook_url=dg.EnvVar("BACKUPS_ALERT_WEBHOOK_URL"))
            result = dg.materialize(ALL_ASSETS, resources=resources, run_config=NO_STEP_RETRIES, instance=instance,
                                    raise_on_error=False)
            results.append(result)
            return result

        receiver.always = DROP  # urllib3 warns of each retry, naming the request's path
        assert sync().success
        receiver.always = 404  # an error page quoting the path
        assert not sync(api_key="wrong-key-123").success
        receiver.always = None
        assert sync().success
        events = "\n".join(str(record) for result in results for record in instance.all_logs(result.run_id))

    # The three firing ones; sync_failed resolved before the webhook took any message, so it is never sent.
    assert len(receiver.posts) == 1 and receiver.alerts(0) == trouble.alerts("firing")
    reasons = harness.query("SELECT reason FROM alert_deliveries WHERE status = 'failed' ORDER BY attempted_at")
    assert reasons["reason"].tolist() == ["the connection closed without an answer", "HTTP 404: no such hook: (hidden)"]
    assert "Retrying" in caplog.text  # the dangerous lines were logged, hidden
    captured = capfd.readouterr()
    token = receiver.token
    assert token not in caplog.text and token not in captured.out + captured.err
    assert token not in events and "materialization" in events.lower()
    holding = [path for path in [harness.db_path, *Path(home).rglob("*")]
               if path.is_file() and token.encode() in path.read_bytes()]
    assert holding == []


@pytest.mark.parametrize("older", [
    # Written before the anomalies report existed: the read-only pass cannot find the view.
    ["DROP VIEW backup_anomalies", "DELETE FROM schema_version WHERE name = 'reports/backup_anomalies.sql'"],
    # Written before the reports had a cloud column: the read-only pass cannot bind it.
    ["CREATE OR REPLACE VIEW backup_anomalies AS SELECT id AS backup_id FROM backups WHERE false",
     "UPDATE schema_version SET checksum = 'older' WHERE name = 'reports/backup_anomalies.sql'"],
])
def test_the_alerts_alone_upgrade_a_warehouse_of_an_older_version(harness, receiver, older):
    tidy(harness.cloud)
    trouble = make_trouble(harness.cloud)
    assert harness.run().success
    # Either way the step opens the warehouse as its writer, which migrates it. (Not a warehouse written
    # before the alerts table: its migration precedes the one that adds the cloud to every table, which
    # such a file lacks, so dropping the table alone makes no file that ever existed.)
    with duckdb.connect(str(harness.db_path)) as con:
        for statement in older:
            con.execute(statement)
    result = dg.materialize(ALL_ASSETS, selection=["alerts"], resources=harness.resources(webhook_url=receiver.url),
                            run_config=NO_STEP_RETRIES, raise_on_error=False)
    assert result.success, run_failure_text(result)
    assert receiver.alerts(0) == trouble.alerts("firing")


# --- several clouds ----------------------------------------------------------------------------


def _views_alerts(harness: SyncHarness, receiver) -> dg.ExecuteInProcessResult:
    """The alerts asset alone, over whatever the warehouse at the harness's path holds."""
    result = dg.materialize(ALL_ASSETS, selection=["alerts"], resources=harness.resources(webhook_url=receiver.url),
                            run_config=NO_STEP_RETRIES, raise_on_error=False)
    assert result.success, run_failure_text(result)
    return result


def test_the_same_server_full_in_two_clouds_is_two_alerts_that_resolve_apart(harness, receiver):
    with history(harness.db_path) as h:
        two_clouds.fill(h)  # eu's and us's backup server 1 are both full; eu's VM 13, us's VM 12 unprotected
    _views_alerts(harness, receiver)
    assert receiver.alerts(0) == {("backup_server_full", "1", "firing"), ("protection_gap", "13", "firing"),
                                  ("protection_gap", "12", "firing"), ("backup_anomaly", "6117", "firing")}
    sent = {(a["cloud"], a["kind"], a["key"]): a["message"] for a in receiver.posts[0].body["alerts"]}
    assert sent == {
        ("eu", "backup_server_full", "1"): "backup server 1 (bs-1) is 81.25% full; 100% in 3.0 days at the last "
                                           "30 days' pace",
        ("us", "backup_server_full", "1"): "backup server 1 (bs-1) is 120.0% full",
        ("eu", "protection_gap", "13"): "VM 13 (bare, owner alice): no backups",
        ("us", "protection_gap", "12"): "VM 12 (app, owner carol): no recent backup; newest backup 10.0 days old",
        ("eu", "backup_anomaly", "6117"): "backup 6117 of VM 12 (normal): 10485760 kB, 10.0 times the median of "
                                          "its other backups (1048576 kB)",
    }
    assert receiver.posts[0].body["text"].splitlines()[1:3] == [
        "FIRING backup_server_full 1: [eu] backup server 1 (bs-1) is 81.25% full; 100% in 3.0 days at the last "
        "30 days' pace",
        "FIRING backup_server_full 1: [us] backup server 1 (bs-1) is 120.0% full",
    ]

    with duckdb.connect(str(harness.db_path)) as con:  # eu's server gets room; us's does not
        con.execute("UPDATE backup_servers SET capacity = 1000 WHERE cloud = 'eu'")
    _views_alerts(harness, receiver)
    assert [(a["cloud"], a["kind"], a["state"]) for a in receiver.posts[1].body["alerts"]] == [
        ("eu", "backup_server_full", "resolved")]
    assert harness.query("SELECT state FROM alerts WHERE cloud = 'us' AND kind = 'backup_server_full'")[
        "state"].tolist() == ["firing"]


@dg.asset(name="failing_sync_of_eu")
def _failing_sync_of_eu(context, warehouse: WarehouseResource, alerts: AlertsResource) -> None:
    """A step that gives up on the cloud eu, as the API steps and the load do on their last attempt."""
    alert_sync_failed(context, alerts, warehouse, "the VM list could not be read: refused", cloud="eu")


def test_a_failed_sync_fires_in_its_own_cloud_only(harness, receiver):
    with history(harness.db_path) as h:
        two_clouds.fill(h)
    _views_alerts(harness, receiver)  # the views' alerts in both clouds, told
    resources = harness.resources(webhook_url=receiver.url)
    for _ in range(2):  # failing twice in a row is one alert
        result = dg.materialize([_failing_sync_of_eu], resources={k: resources[k] for k in ("warehouse", "alerts")})
        assert result.success
    [message] = [post.body for post in receiver.posts[1:]]
    assert message["alerts"] == [{"cloud": "eu", "kind": "sync_failed", "key": "sync", "state": "firing",
                                  "message": "the sync failed: failing_sync_of_eu: the VM list could not be read: "
                                             "refused"}]
    assert message["text"].splitlines()[1] == ("FIRING sync_failed sync: [eu] the sync failed: failing_sync_of_eu: "
                                               "the VM list could not be read: refused")
    # Nothing the views found, in either cloud, was resolved by it.
    assert set(harness.query("SELECT state FROM alerts WHERE kind <> 'sync_failed'")["state"]) == {"firing"}
