"""Streamed fetches against the demo cloud: each OK listing goes to a consumer on the calling thread, a bounded window ahead."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from pipeline.demo.config import DemoCloudConfig
from pipeline.onapp.fanout import AHEAD_PER_WORKER, VmOutcome


class ConsumerFailed(Exception):
    """Raised by a consumer to stop a fetch."""


def without_records(outcome: VmOutcome) -> tuple:
    return outcome.vm_id, outcome.status, outcome.http_status, outcome.error_kind, outcome.message


def test_each_ok_listing_reaches_the_consumer_once_on_the_calling_thread(serve, caplog):
    config = DemoCloudConfig(vms=50, vanish_fraction=0.2, failing_vm_ids=frozenset({7, 21}))
    cloud, client = serve(config, retries=1, max_concurrency=4)
    ids = sorted(cloud.fleet.vms)
    kept = client.fetch_backups(ids)
    assert {o.status for o in kept.outcomes.values()} == {"ok", "failed", "vanished"}
    handed: list[tuple[int, list[dict], int]] = []

    def consume(vm_id: int, records: list[dict]) -> None:
        handed.append((vm_id, records, threading.get_ident()))

    with caplog.at_level(logging.INFO, logger="pipeline.onapp.client"):
        streamed = client.fetch_backups(ids, on_listing=consume)

    ok = [vm_id for vm_id in ids if kept.outcomes[vm_id].status == "ok"]
    assert sorted(vm_id for vm_id, _, _ in handed) == ok  # each once; failed and vanished VMs never
    assert {vm_id: records for vm_id, records, _ in handed} == {vm_id: kept.outcomes[vm_id].backups for vm_id in ok}
    assert any(records for _, records, _ in handed)
    assert {thread for _, _, thread in handed} == {threading.get_ident()}
    # The report says what happened to every VM, failures included, but holds no records.
    assert [without_records(o) for o in streamed.outcomes.values()] == [
        without_records(o) for o in kept.outcomes.values()
    ]
    assert all(o.backups == [] for o in streamed.outcomes.values())
    gone = cloud.vanished_vm_ids()
    assert (streamed.failed, streamed.vanished) == (kept.failed, kept.vanished) == (len({7, 21} - gone), len(gone))
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.onapp.client"]
    assert lines[-1].startswith("backups: 50/50 VMs in")


def test_an_exception_from_the_consumer_propagates_and_stops_the_fetch(serve):
    concurrency = 2
    cloud, client = serve(DemoCloudConfig(vms=200), max_concurrency=concurrency)
    handed: list[int] = []

    def consume(vm_id: int, records: list[dict]) -> None:
        handed.append(vm_id)
        if len(handed) == 3:
            raise ConsumerFailed(vm_id)

    with pytest.raises(ConsumerFailed):
        client.fetch_backups(sorted(cloud.fleet.vms), on_listing=consume)
    assert len(handed) == 3
    # Nothing was read beyond the window ahead of the three listings consumed.
    assert cloud.stats["requests"] <= 3 + AHEAD_PER_WORKER * concurrency


def test_a_slow_consumer_holds_the_fetch_to_a_full_bounded_window(serve):
    concurrency, vms = 2, 60
    window = AHEAD_PER_WORKER * concurrency
    cloud, client = serve(DemoCloudConfig(vms=vms), max_concurrency=concurrency)
    ahead: list[int] = []
    # Only keeps a broken fetch from hanging the test; a working one never comes near it.
    deadline = time.monotonic() + 30

    def consume(vm_id: int, records: list[dict]) -> None:
        # Give the workers every chance to run ahead: wait until the cloud has served all
        # the window allows (an unbounded fetch serves more at once), then count how many
        # VMs were read beyond those consumed.
        consumed = len(ahead) + 1
        allowed = min(consumed + window, vms)
        while cloud.stats["requests"] < allowed and time.monotonic() < deadline:
            time.sleep(0.001)
        ahead.append(cloud.stats["requests"] - consumed)

    report = client.fetch_backups(sorted(cloud.fleet.vms), on_listing=consume)
    assert len(ahead) == vms and report.failed == 0
    # Never more than the window ahead, and the whole window while VMs remain: a fast
    # consumer keeps every worker busy.
    assert max(ahead) == window
    assert ahead[: vms - window] == [window] * (vms - window)
