"""Each benchmark of `make bench`, small: it runs and produces its table with the right columns (not how fast)."""

from __future__ import annotations

import re

import pytest

from bench import clouds, common, dlt_sync, fetch, job, latency, load, materialize, reports

pytestmark = pytest.mark.slow

RATIO = re.compile(r"^\d+\.\d\d×$")
SECONDS = re.compile(r"^\d+\.\d+ s$")
MIB = re.compile(r"^[\d,]+ MiB$")


def test_fetch_prints_each_concurrency_beside_its_bound():
    table = fetch.run(vms=30, backups_per_vm=2, latency_ms=5, concurrencies=(1, 4, 16), serial_vms=10, runs=1,
                      profile_dir=None)
    assert table.columns == fetch.COLUMNS
    assert [row[0] for row in table.rows] == ["1 (10-VM subset)", "4", "16"]
    for row in table.rows:
        assert SECONDS.match(row[3]) and SECONDS.match(row[4]) and RATIO.match(row[5])
    assert table.rows[2][-1].startswith("≤ 1.2×")  # the target is judged at concurrency 16
    assert any("first 10 VMs" in note for note in table.notes)


def test_load_checks_that_a_rerun_grows_the_tables_by_what_changed(tmp_path):
    table = load.run(records=2_000, runs=1, cache_dir=tmp_path)
    assert table.columns == load.COLUMNS
    first, changed = table.rows
    assert first[1] == "2,000" and first[9].startswith("2,000 / 2,000 / ")
    assert "growth = changes: met" in changed[-1]


def test_reports_refresh_every_report_over_the_history(tmp_path):
    from pipeline.reports.export import REPORTS

    table = reports.run(records=2_000, days=5, runs=1, cache_dir=tmp_path)
    assert table.columns == reports.COLUMNS
    assert [row[0] for row in table.rows[:-1]] == list(REPORTS)
    assert table.rows[-1][0].startswith(f"**all {len(REPORTS)} reports**")
    assert any("6 syncs" in note for note in table.notes)  # the loaded one and five days before it


def test_the_job_memory_is_judged_per_fleet_and_between_fleets(tmp_path):
    fleets = ((5, None), (10, 1024 * common.MIB), (20, 1024 * common.MIB))
    table, steps = job.run(fleets=fleets, backups_per_vm=2, runs=1, cache_dir=tmp_path)
    assert table.columns == job.COLUMNS
    floor, small, large, ratio = table.rows
    assert floor[0].startswith("5 VMs (the floor") and floor[5] == "—"
    assert small[-1].startswith("10 / ") and large[-1].startswith("20 / ")
    assert SECONDS.match(large[3]) and MIB.match(large[4]) and RATIO.match(large[6])
    assert large[7].startswith("≤ 1,024 MiB: ") and large[8] not in ("", "—")  # where the process peaked
    assert ratio[0] == "**20 ÷ 10 VMs**" and RATIO.match(ratio[4]) and ratio[7].startswith("sub-linear, < 2×")
    assert [row[0] for row in steps.rows] == [*job.GROUPS, materialize.BETWEEN, "whole command"]
    sync_rows = steps.rows[1:4]
    assert all(SECONDS.match(cell) for row in sync_rows for cell in row[1::2])
    assert all(MIB.match(cell) for row in sync_rows for cell in row[2::2])
    assert (tmp_path / "profiles" / "job-rss-20.csv").read_text().startswith("t_s,rss_mib,hwm_mib,step\n")


def test_the_job_is_judged_against_the_fetch_bound_beside_dlt(tmp_path):
    table = latency.run(vms=20, backups_per_vm=2, latency_ms=5, concurrency=4, runs=1, cache_dir=tmp_path)
    assert table.columns == latency.COLUMNS
    the_job = table.rows[0]
    assert the_job[0].startswith("this job") and the_job[-1].startswith("20 / ")
    assert SECONDS.match(the_job[3]) and SECONDS.match(the_job[4]) and RATIO.match(the_job[5])
    assert the_job[6].startswith("≤ 1.15×: ") and "backup_lists" in the_job[10]
    if dlt_sync.installed():
        [peer] = table.rows[1:]
        assert peer[0].startswith("dlt ") and RATIO.match(peer[8]) and RATIO.match(peer[9])
        assert peer[-1] == the_job[-1]  # the same VMs and backups loaded
    else:
        assert len(table.rows) == 1 and any("dlt is not installed" in note for note in table.notes)


def test_two_clouds_are_compared_with_one_of_their_whole_fleet(tmp_path):
    table = clouds.run(vms=(20, 40), backups_per_vm=2, latency_ms=5, concurrency=4, runs=1, cache_dir=tmp_path)
    assert table.columns == clouds.COLUMNS
    # A pair of rows per fleet size, each pair's ratios to its own one-cloud run.
    assert [row[0].split(" VMs")[0] for row in table.rows] == [
        "one cloud of 20", "two clouds of 10", "one cloud of 40", "two clouds of 20"]
    for (one, two), fleet in ((table.rows[:2], 20), (table.rows[2:], 40)):
        assert one[5] == "1.00×" and RATIO.match(two[5]) and SECONDS.match(two[2])
        # The sync as the ledger times it: the fetch and the load, inside the whole command's wall time.
        assert one[7] == "1.00×" and RATIO.match(two[7]) and SECONDS.match(two[6])
        for row in (one, two):
            assert 0 < float(row[6].removesuffix(" s")) < float(row[2].removesuffix(" s"))
        assert "fetch (the slowest cloud's backup lists)" in two[8]
        # Both clouds were loaded: as many VMs as the one cloud, and about as many backups.
        assert one[-1].startswith(f"{fleet} / ") and two[-1].startswith(f"{fleet} / ")


def test_dagster_durations_are_read_in_every_format_it_prints():
    assert [materialize._duration(text) for text in ("0.83ms", "533ms", "5.6s", "4m52s", "1h4m")] == pytest.approx(
        [0.00083, 0.533, 5.6, 292.0, 3840.0])


def test_tables_replace_their_own_section_of_the_file(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nprose\n\n<!-- bench:fetch -->\nold\n<!-- /bench:fetch -->\n\nmore prose\n")
    common.write_tables(path, [common.Table("fetch", "Fetch", ["a", "b"], [["1", "2"]]),
                               common.Table("job", "Job", ["c"], [["3"]])])
    text = path.read_text()
    assert "old" not in text and "| 1 | 2 |" in text and text.count("<!-- bench:fetch -->") == 1
    assert text.index("more prose") < text.index("<!-- bench:job -->")  # a new section goes at the end
