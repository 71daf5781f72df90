"""Every report over two clouds whose ids overlap: one row per cloud and key, each with its own cloud's
figures and as of, the cloud first."""

from __future__ import annotations

import pytest

from pipeline.reports.export import REPORTS, read_report
from tests.reports import two_clouds
from tests.reports.history import history


@pytest.fixture
def warehouse(tmp_path):
    with history(tmp_path / "w.duckdb") as h:
        two_clouds.fill(h)
        yield h


def test_every_report_is_covered():
    assert set(REPORTS) <= set(two_clouds.EXPECTED)


@pytest.mark.parametrize("view", sorted(two_clouds.EXPECTED))
def test_each_cloud_keeps_its_own_rows(warehouse, view):
    assert warehouse.columns(view)[0] == "cloud"
    assert warehouse.rows(view) == two_clouds.EXPECTED[view]


def test_the_export_reads_the_cloud_first(warehouse):
    frame = read_report(warehouse.con, "storage_by_user")
    assert list(frame.columns[:3]) == ["cloud", "user_id", "user_login"]
    assert list(zip(frame["cloud"], frame["user_id"], frame["user_login"])) == [("eu", 1, "alice"), ("us", 1, "carol")]


def test_a_cloud_without_a_loaded_sync_has_no_as_of_and_bills_nothing(warehouse):
    ap = warehouse.in_cloud("ap")
    ap.sync(two_clouds.EU_AS_OF, "failed")
    ap.user(1, "dave")
    ap.backup(6117, owner=1, created_at=two_clouds.US_AS_OF)
    assert warehouse.rows("as_of") == two_clouds.EXPECTED["as_of"]
    assert [row[0] for row in warehouse.rows("chargeback_by_user_month")] == ["eu", "us", "us"]
    # Its backups are still counted where no as of is needed.
    assert ("ap", 1, "dave") in {row[:3] for row in warehouse.rows("storage_by_user")}
