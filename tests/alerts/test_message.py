"""The webhook's message: a readable Slack `text` that no label can turn into a mention, and the full `alerts` list."""

from __future__ import annotations

import pandas as pd

from pipeline.alerts.message import MAX_LINES, first_due, payload


def alerts(*rows: tuple[str, str, str, str], cloud: str = "default") -> pd.DataFrame:
    """Alerts of one cloud as the table holds them, from (kind, key, state, message) rows."""
    return pd.DataFrame([(cloud, *row) for row in rows], columns=["cloud", "kind", "key", "state", "message"])


def test_the_message_lists_each_alert_in_text_and_in_alerts():
    body = payload(alerts(
        ("backup_server_full", "1", "firing", "backup server 1 (bs-01) is 91.2% full"),
        ("protection_gap", "7", "firing", "VM 7 (web-007, owner anna.1): no backups"),
        ("backup_anomaly", "2044", "resolved", "backup 2044 of VM 3 (normal): 50000000 kB, 50.0 times ..."),
    ))
    assert body["text"].splitlines() == [
        "OnApp backups: 2 alerts firing, 1 resolved",
        "FIRING backup_server_full 1: backup server 1 (bs-01) is 91.2% full",
        "FIRING protection_gap 7: VM 7 (web-007, owner anna.1): no backups",
        "RESOLVED backup_anomaly 2044: backup 2044 of VM 3 (normal): 50000000 kB, 50.0 times ...",
    ]
    assert body["alerts"][1] == {"cloud": "default", "kind": "protection_gap", "key": "7", "state": "firing",
                                 "message": "VM 7 (web-007, owner anna.1): no backups"}


def test_text_from_the_api_cannot_mention_a_channel_forge_a_link_or_add_lines():
    label = "<!channel> & <http://evil.example|click>\nFIRING sync_failed sync: fake"
    body = payload(alerts(("protection_gap", "7", "firing", f"VM 7 ({label}): no backups")))
    [_, line] = body["text"].splitlines()
    assert "<" not in line and ">" not in line
    assert "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt; FIRING sync_failed" in line
    # Tools get the message as it was.
    assert body["alerts"][0]["message"] == f"VM 7 ({label}): no backups"


def test_a_long_message_lists_the_first_alerts_in_text_and_all_in_alerts():
    many = alerts(*[("protection_gap", str(key), "firing", f"VM {key}: no backups") for key in range(1, 51)])
    body = payload(many)
    lines = body["text"].splitlines()
    assert lines[0] == "OnApp backups: 50 alerts firing"
    assert len(lines) == 1 + MAX_LINES + 1 and lines[-1] == f"... and {50 - MAX_LINES} more (see the alerts list)"
    assert len(body["alerts"]) == 50


def test_one_resolved_alert_reads_as_such():
    body = payload(alerts(("sync_failed", "sync", "resolved", "the sync failed: vm_list: refused")))
    assert body["text"].splitlines()[0] == "OnApp backups: 1 resolved"


def test_each_alert_carries_its_cloud_and_the_text_names_any_but_the_default():
    body = payload(pd.concat([
        alerts(("backup_server_full", "3", "firing", "backup server 3 (bs-03) is 91.2% full"), cloud="eu"),
        alerts(("backup_server_full", "3", "firing", "backup server 3 (bs-03) is 85.0% full"), cloud="us"),
        alerts(("backup_server_full", "3", "firing", "backup server 3 (bs-03) is 80.0% full")),
        alerts(("sync_failed", "sync", "resolved", "the sync failed: vm_list: refused"), cloud="us"),
    ]))
    assert body["text"].splitlines() == [
        "OnApp backups: 3 alerts firing, 1 resolved",
        "FIRING backup_server_full 3: backup server 3 (bs-03) is 80.0% full",
        "FIRING backup_server_full 3: [eu] backup server 3 (bs-03) is 91.2% full",
        "FIRING backup_server_full 3: [us] backup server 3 (bs-03) is 85.0% full",
        "RESOLVED sync_failed sync: [us] the sync failed: vm_list: refused",
    ]
    assert [(a["cloud"], a["kind"], a["key"], a["state"]) for a in body["alerts"]] == [
        ("default", "backup_server_full", "3", "firing"), ("eu", "backup_server_full", "3", "firing"),
        ("us", "backup_server_full", "3", "firing"), ("us", "sync_failed", "sync", "resolved")]
    assert body["alerts"][1]["message"] == "backup server 3 (bs-03) is 91.2% full"  # as written, cloud aside


def test_a_message_that_cannot_carry_all_carries_the_most_urgent_kinds_of_every_cloud_first():
    due = first_due(pd.concat([
        alerts(*[("protection_gap", str(vm), "firing", f"VM {vm}: no backups") for vm in (1, 2)], cloud="ap"),
        alerts(("sync_failed", "sync", "firing", "the sync failed: vm_list: refused"), cloud="us"),
        alerts(("backup_server_full", "1", "firing", "backup server 1 (bs-1) is 99.0% full"), cloud="eu"),
    ]), 2)
    assert list(zip(due["cloud"], due["kind"])) == [("us", "sync_failed"), ("eu", "backup_server_full")]
