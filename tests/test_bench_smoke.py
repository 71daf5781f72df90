"""Each benchmark of `make bench`, small: it runs and produces its table with the right columns (not how fast)."""

from __future__ import annotations

import re

import pytest

from bench import common, fetch, job, load, reports

pytestmark = pytest.mark.slow

RATIO = re.compile(r"^\d+\.\d\d×$")
SECONDS = re.compile(r"^\d+\.\d+ s$")


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


def test_the_whole_job_runs_from_the_command_line(tmp_path):
    table = job.run(vms=12, backups_per_vm=2, runs=1, rerun=False, cache_dir=tmp_path)
    assert table.columns == job.COLUMNS
    [row] = table.rows
    assert row[0] == "first sync, empty warehouse" and row[-1].startswith("12 / ")
    assert all(SECONDS.match(cell) for cell in row[4:9])


def test_tables_replace_their_own_section_of_the_file(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nprose\n\n<!-- bench:fetch -->\nold\n<!-- /bench:fetch -->\n\nmore prose\n")
    common.write_tables(path, [common.Table("fetch", "Fetch", ["a", "b"], [["1", "2"]]),
                               common.Table("job", "Job", ["c"], [["3"]])])
    text = path.read_text()
    assert "old" not in text and "| 1 | 2 |" in text and text.count("<!-- bench:fetch -->") == 1
    assert text.index("more prose") < text.index("<!-- bench:job -->")  # a new section goes at the end
