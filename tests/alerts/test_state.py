"""Alert state in the warehouse: fired once, resolved once, pending while the webhook does not take it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from functools import partial

import duckdb
import pandas as pd
import pytest

from pipeline.alerts import notify, webhook
from pipeline.alerts.conditions import KINDS, VIEW_KINDS, after_load, alert_frame, every_cloud, sync_failed
from pipeline.alerts.notify import idle, update_and_notify
from pipeline.alerts.state import SHOWN, stage_found
from pipeline.warehouse.connection import migrate

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
GAP = ("default", "protection_gap", "7", "VM 7 (web-007, owner anna.1): no backups")
FULL = ("default", "backup_server_full", "1", "backup server 1 (bs-01) is 91.2% full")
EVERYTHING = every_cloud(KINDS)
DEFAULT_SYNC = [("sync_failed", "default")]


@pytest.fixture
def con():
    with duckdb.connect(":memory:") as connection:
        connection.execute("SET TimeZone = 'UTC'")
        migrate(connection)
        yield connection


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    # The retries, not the waits between them: those are webhook.post's defaults' business.
    monkeypatch.setattr(notify, "post", partial(webhook.post, backoff_factor=0.001))


def table(con) -> list[tuple]:
    return con.execute("SELECT kind, key, state, notified_state FROM alerts ORDER BY kind, key").fetchall()


def deliveries(con) -> list[tuple]:
    return con.execute("SELECT firing, resolved, status, http_status, tries FROM alert_deliveries "
                       "ORDER BY attempted_at").fetchall()


def run(con, found, url, day, scope=EVERYTHING):
    stage_found(con, found)
    return update_and_notify(con, scope, run_id=f"run-{day}", webhook_url=url, now=T0 + timedelta(days=day))


def is_idle(con, found, *, webhook):
    stage_found(con, found)
    return idle(con, EVERYTHING, webhook=webhook) is not None


def test_an_alert_is_sent_when_it_fires_and_when_it_resolves_never_in_between(con, receiver):
    first = run(con, alert_frame([GAP, FULL]), receiver.url, 0)
    assert first.delivery.ok and (first.changed.started, first.changed.resolved) == (2, 0)
    assert first.totals == {"firing": 2, "resolved": 0}
    assert receiver.alerts() == {("protection_gap", "7", "firing"), ("backup_server_full", "1", "firing")}
    assert table(con) == [("backup_server_full", "1", "firing", "firing"), ("protection_gap", "7", "firing", "firing")]

    again = run(con, alert_frame([GAP, FULL]), receiver.url, 1)
    assert again.changed.empty and again.delivery is None and len(receiver.posts) == 1

    fixed = run(con, alert_frame([FULL]), receiver.url, 2)
    assert receiver.alerts() == {("protection_gap", "7", "resolved")} and len(receiver.posts) == 2
    assert table(con)[1] == ("protection_gap", "7", "resolved", "resolved")
    assert fixed.totals == {"firing": 1, "resolved": 1}
    # since: when it entered its state, by the run that moved it there.
    assert con.execute("SELECT since, run_id FROM alerts WHERE kind = 'protection_gap'").fetchall() == [
        (T0 + timedelta(days=2), "run-2")]

    run(con, alert_frame([GAP, FULL]), receiver.url, 3)  # back again: a new firing
    assert receiver.alerts() == {("protection_gap", "7", "firing")} and len(receiver.posts) == 3
    assert deliveries(con) == [(2, 0, "sent", 200, 1), (0, 1, "sent", 200, 1), (1, 0, "sent", 200, 1)]


def test_what_the_webhook_did_not_take_is_sent_with_the_next_run(con, receiver):
    receiver.always = 503
    failed = run(con, alert_frame([GAP]), receiver.url, 0)
    assert failed.delivery.status == "failed" and failed.delivery.tries == 4
    assert table(con) == [("protection_gap", "7", "firing", None)]
    assert deliveries(con) == [(1, 0, "failed", 503, 4)]

    receiver.always = None
    run(con, alert_frame([GAP]), receiver.url, 1)
    assert [message.body["alerts"] for message in receiver.posts] == [[
        {"cloud": "default", "kind": "protection_gap", "key": "7", "state": "firing", "message": GAP[3]}]]
    assert table(con) == [("protection_gap", "7", "firing", "firing")]


def test_an_alert_that_resolves_before_the_webhook_heard_of_it_is_never_sent(con, receiver):
    receiver.always = 500
    run(con, alert_frame([GAP]), receiver.url, 0)
    receiver.always = None
    resolved = run(con, alert_frame(), receiver.url, 1)
    assert resolved.delivery is None and receiver.posts == []
    assert table(con) == [("protection_gap", "7", "resolved", None)]


def test_without_a_webhook_the_state_is_kept_and_nothing_counts_as_told(con, receiver):
    quiet = run(con, alert_frame([GAP]), "", 0)
    assert quiet.delivery is None and quiet.changed.started == 1
    assert table(con) == [("protection_gap", "7", "firing", None)]
    # A webhook set later hears of what fires then.
    assert is_idle(con, alert_frame([GAP]), webhook=False)
    assert not is_idle(con, alert_frame([GAP]), webhook=True)
    run(con, alert_frame([GAP]), receiver.url, 1)
    assert receiver.alerts() == {("protection_gap", "7", "firing")}


def test_a_failed_sync_fires_only_its_own_kind_and_a_loaded_one_resolves_it(con, receiver):
    run(con, alert_frame([GAP]), receiver.url, 0)
    # The failed run knows nothing of the views: the gap stays firing, unsent again.
    run(con, sync_failed("vm_list: the VM list could not be read", cloud="default"), receiver.url, 1,
        scope=DEFAULT_SYNC)
    assert receiver.alerts() == {("sync_failed", "sync", "firing")}
    assert receiver.posts[-1].body["alerts"][0]["message"] == "the sync failed: vm_list: the VM list could not be read"
    run(con, sync_failed("warehouse_load: too many VMs failed", cloud="default"), receiver.url, 2, scope=DEFAULT_SYNC)
    assert len(receiver.posts) == 2  # still failing: nothing new

    run(con, alert_frame([GAP]), receiver.url, 3)
    assert receiver.alerts() == {("sync_failed", "sync", "resolved")}
    assert table(con) == [("protection_gap", "7", "firing", "firing"), ("sync_failed", "sync", "resolved", "resolved")]


def test_an_alert_of_a_kind_not_evaluated_is_left_as_it_is(con):
    run(con, sync_failed("vm_list: refused", cloud="default"), "", 0, scope=DEFAULT_SYNC)
    changed = run(con, alert_frame([GAP]), "", 1, scope=every_cloud(VIEW_KINDS)).changed
    assert changed.first[["kind", "state"]].values.tolist() == [["protection_gap", "firing"]]
    assert table(con)[1] == ("sync_failed", "sync", "firing", None)


def test_a_still_firing_alert_keeps_the_message_it_fired_with(con):
    run(con, alert_frame([FULL]), "", 0)
    run(con, alert_frame([(*FULL[:3], "backup server 1 (bs-01) is 95.0% full")]), "", 1)
    assert con.execute("SELECT message FROM alerts").fetchall() == [(FULL[3],)]


def test_keys_sort_as_numbers(con):
    found = alert_frame([("default", "protection_gap", str(key), f"VM {key}: no backups") for key in (10, 9, 100)])
    changed = run(con, found, "", 0).changed.first
    assert changed["key"].tolist() == ["9", "10", "100"]
    assert isinstance(changed, pd.DataFrame)


def test_every_change_is_counted_and_the_first_ones_are_shown_in_order(con):
    gaps = [("default", "protection_gap", str(vm_id), f"VM {vm_id}: no backups") for vm_id in range(SHOWN + 5, 0, -1)]
    fired = run(con, alert_frame([*gaps, FULL]), "", 0).changed
    assert (fired.started, fired.resolved) == (SHOWN + 6, 0)
    assert fired.first[["kind", "key"]].values.tolist() == [["backup_server_full", "1"]] + [
        ["protection_gap", str(vm_id)] for vm_id in range(1, SHOWN)]
    resolved = run(con, alert_frame([FULL]), "", 1).changed
    assert (resolved.started, resolved.resolved) == (0, SHOWN + 5)
    assert set(resolved.first["state"]) == {"resolved"} and len(resolved.first) == SHOWN


def test_a_message_carries_at_most_its_cap_and_the_rest_follow_with_the_next_runs(con, receiver):
    gaps = [("default", "protection_gap", str(vm_id), f"VM {vm_id}: no backups") for vm_id in (3, 1, 2)]

    def capped(found, **when):
        stage_found(con, found)
        return update_and_notify(con, EVERYTHING, webhook_url=receiver.url, max_alerts=2, **when)

    capped(alert_frame([*gaps, FULL]), run_id="run-0", now=T0)
    # Firing servers first, then VMs by id; the third VM waits, pending, for the next run.
    assert [(a["kind"], a["key"]) for a in receiver.posts[0].body["alerts"]] == [
        ("backup_server_full", "1"), ("protection_gap", "1")]
    assert "2 more to follow" in receiver.posts[0].body["text"]
    capped(alert_frame([*gaps, FULL]), run_id="run-1", now=T0 + timedelta(days=1))
    assert [(a["kind"], a["key"]) for a in receiver.posts[1].body["alerts"]] == [
        ("protection_gap", "2"), ("protection_gap", "3")]
    assert "more to follow" not in receiver.posts[1].body["text"]
    assert {row[3] for row in table(con)} == {"firing"}  # every alert told once


# --- several clouds: an alert is its kind, cloud and key -------------------------------------------

EU_FULL = ("eu", *FULL[1:])
US_FULL = ("us", "backup_server_full", "1", "backup server 1 (bs-1) is 120.0% full")


def cloud_table(con) -> list[tuple]:
    return con.execute("SELECT cloud, kind, key, state, notified_state FROM alerts ORDER BY kind, cloud, key").fetchall()


def test_the_same_key_in_two_clouds_is_two_alerts_that_resolve_apart(con, receiver):
    run(con, alert_frame([EU_FULL, US_FULL]), receiver.url, 0)
    assert {(a["cloud"], a["key"], a["state"]) for a in receiver.posts[0].body["alerts"]} == {
        ("eu", "1", "firing"), ("us", "1", "firing")}
    assert cloud_table(con) == [("eu", "backup_server_full", "1", "firing", "firing"),
                                ("us", "backup_server_full", "1", "firing", "firing")]

    run(con, alert_frame([US_FULL]), receiver.url, 1)  # eu's server got room; us's did not
    assert [(a["cloud"], a["key"], a["state"]) for a in receiver.posts[1].body["alerts"]] == [("eu", "1", "resolved")]
    assert cloud_table(con) == [("eu", "backup_server_full", "1", "resolved", "resolved"),
                                ("us", "backup_server_full", "1", "firing", "firing")]

    run(con, alert_frame([EU_FULL, US_FULL]), receiver.url, 2)  # eu's fills again: only it is news
    assert [(a["cloud"], a["state"]) for a in receiver.posts[2].body["alerts"]] == [("eu", "firing")]


def test_one_cloud_failing_never_resolves_another_cloud_failure(con, receiver):
    run(con, sync_failed("vm_list: refused", cloud="us"), receiver.url, 0, scope=[("sync_failed", "us")])
    run(con, sync_failed("vm_list: timed out", cloud="eu"), receiver.url, 1, scope=[("sync_failed", "eu")])
    assert [(a["cloud"], a["state"]) for a in receiver.posts[1].body["alerts"]] == [("eu", "firing")]
    assert cloud_table(con) == [("eu", "sync_failed", "sync", "firing", "firing"),
                                ("us", "sync_failed", "sync", "firing", "firing")]


def _ledger(con, run_id: str, **statuses: str) -> None:
    for cloud, status in statuses.items():
        con.execute("INSERT INTO sync_runs (cloud, run_id, started_at, finished_at, source_url, format, status) "
                    "VALUES (?, ?, ?, ?, 's', 'json', ?)", [cloud, run_id, T0, T0, status])


def test_a_run_resolves_the_failed_sync_of_the_clouds_it_loaded_only(con, receiver):
    for cloud in ("eu", "us", "ap"):
        run(con, sync_failed("vm_list: refused", cloud=cloud), receiver.url, 0, scope=[("sync_failed", cloud)])
    _ledger(con, "run-9", eu="ok", us="failed", ap="partial")
    scope = after_load(con, run_id="run-9")
    assert scope == [*every_cloud(VIEW_KINDS), ("sync_failed", "ap"), ("sync_failed", "eu")]
    run(con, alert_frame([US_FULL]), receiver.url, 1, scope=scope)
    assert {(a["cloud"], a["kind"], a["state"]) for a in receiver.posts[-1].body["alerts"]} == {
        ("ap", "sync_failed", "resolved"), ("eu", "sync_failed", "resolved"), ("us", "backup_server_full", "firing")}
    assert [row[:4] for row in cloud_table(con) if row[1] == "sync_failed"] == [
        ("ap", "sync_failed", "sync", "resolved"), ("eu", "sync_failed", "sync", "resolved"),
        ("us", "sync_failed", "sync", "firing")]
