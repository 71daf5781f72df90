"""A report set comes from one sync and is swapped in whole; a killed export leaves nothing a later run keeps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from pipeline.reports.charts import CHARTS
from pipeline.reports.export import MANIFEST, REPORTS
from tests.conftest import (
    MATERIALIZE,
    ROOT,
    SyncHarness,
    dagster_cli,
    kill_sync_when,
    run_failure_text,
)



def manifest(reports_dir: Path) -> dict:
    return json.loads((reports_dir / MANIFEST).read_text(encoding="utf-8"))


def leftovers(reports_dir: Path) -> list[str]:
    """Anything an export writes beside the folder or inside it that is not part of a finished set."""
    beside = [p.name for p in reports_dir.parent.iterdir() if p.name.startswith(f".{reports_dir.name}.")]
    inside = [p.name for p in reports_dir.iterdir() if p.name.startswith(".")]
    return sorted(name for name in beside + inside if not name.endswith(".lock"))


def expected_files(formats: tuple[str, ...] = ("csv",)) -> set[str]:
    return {f"{name}.{fmt}" for name in REPORTS for fmt in formats} | {f"{n}.png" for n in CHARTS} | {MANIFEST}


def test_the_set_names_its_sync_and_holds_nothing_else(harness):
    for _ in range(2):
        result = harness.run()
        assert result.success, run_failure_text(result)
    [[run_id, finished_at]] = harness.query(
        "SELECT run_id, finished_at FROM sync_runs ORDER BY started_at DESC LIMIT 1").values.tolist()
    stamp = manifest(harness.reports_dir)
    assert stamp["sync"]["run_id"] == run_id == result.run_id
    assert pd.Timestamp(stamp["sync"]["finished_at"]) == pd.Timestamp(finished_at)
    assert {p.name for p in harness.reports_dir.iterdir()} == expected_files()
    for name in REPORTS:
        assert stamp["reports"][name]["rows"] == len(harness.csv(name))
    assert leftovers(harness.reports_dir) == []
    # Every report's materialization names the same sync.
    synced = {event.materialization.metadata["sync_run_id"].value for event in result.get_asset_materialization_events()
              if event.asset_key.to_user_string() in REPORTS}
    assert synced == {run_id}


# Reads the reports folder over and over, each time through one handle on the folder (what it was at
# that moment), and checks that the manifest and every CSV beside it agree; until a line on stdin.
_READER = textwrap.dedent(
    """
    import csv, json, os, select, sys
    folder, reads, mixed, syncs = sys.argv[1], 0, [], set()
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0.005)[0]:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            mixed.append("the folder was missing")
            continue
        try:
            opener = lambda name, flags: os.open(name, flags, dir_fd=fd)
            with open("manifest.json", encoding="utf-8", opener=opener) as handle:
                stamp = json.load(handle)
            for name, report in stamp["reports"].items():
                with open(f"{name}.csv", encoding="utf-8", newline="", opener=opener) as handle:
                    rows = sum(1 for _ in csv.reader(handle)) - 1
                if rows != report["rows"]:
                    mixed.append(f"{name}: {rows} rows, the manifest says {report['rows']}")
            syncs.add(stamp["sync"]["run_id"])
            reads += 1
        except FileNotFoundError:
            pass  # this set was removed after a newer one took its place: read the folder again
        finally:
            os.close(fd)
    print(json.dumps({"reads": reads, "mixed": mixed[:5], "syncs": sorted(syncs)}))
    """
)


def test_a_reader_during_a_sync_sees_one_whole_set_at_a_time(harness):
    cloud = harness.cloud
    assert harness.run().success
    before = manifest(harness.reports_dir)
    first = before["sync"]["run_id"]
    # A VM with backups is new: the next set has one more row in storage_by_virtual_machine, so a
    # manifest of one set beside that CSV of the other would not agree.
    vm = cloud.fleet.add_vm()
    for _ in range(3):
        cloud.fleet.add_backup(vm["id"])
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(harness.reports_dir)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        second = harness.run()
        assert second.success, run_failure_text(second)
        output, _ = reader.communicate("stop\n", timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    seen = json.loads(output.strip().splitlines()[-1])
    assert seen["mixed"] == [] and seen["reads"] > 0
    assert set(seen["syncs"]) <= {first, second.run_id}
    after = manifest(harness.reports_dir)
    assert after["sync"]["run_id"] == second.run_id
    rows = [stamp["reports"]["storage_by_virtual_machine"]["rows"] for stamp in (before, after)]
    assert rows[1] == rows[0] + 1


@pytest.mark.slow
def test_an_export_killed_midway_leaves_the_last_set_and_the_next_run_clears_its_remains(cloud, tmp_path):
    reports_dir = tmp_path / "reports"
    first = dagster_cli(MATERIALIZE, tmp_path, cloud)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    before = {p.name: p.read_bytes() for p in reports_dir.iterdir()}

    # The new set is written into a folder beside the reports, which exists until the swap.
    kill_sync_when(lambda: list(tmp_path.glob(".reports.*.partial")), tmp_path, cloud, interval_s=0.002,
                   BACKUPS_EXPORT_FORMATS="csv,parquet")
    # Killed before its swap: the reports are the first run's, byte for byte, and its unfinished set is left.
    assert list(tmp_path.glob(".reports.*.partial")) != []
    assert {p.name: p.read_bytes() for p in reports_dir.iterdir()} == before

    second = dagster_cli(MATERIALIZE, tmp_path, cloud, BACKUPS_EXPORT_FORMATS="csv,parquet")
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert leftovers(reports_dir) == []
    assert {p.name for p in reports_dir.iterdir()} == expected_files(("csv", "parquet"))


def test_a_folder_of_older_flat_exports_is_replaced_and_foreign_files_stop_the_swap(harness):
    # A folder of reports written one by one in place, with the temporary file of a killed write.
    harness.reports_dir.mkdir()
    (harness.reports_dir / "storage_by_user.csv").write_text("old\r\n")
    (harness.reports_dir / ".storage_by_user.csv.0123456789ab.tmp").write_text("half")
    result = harness.run()
    assert result.success, run_failure_text(result)
    assert {p.name for p in harness.reports_dir.iterdir()} == expected_files()
    assert leftovers(harness.reports_dir) == []

    # Someone keeps a file of their own there: replacing the folder would lose it, so the export refuses.
    (harness.reports_dir / "notes.txt").write_text("mine")
    kept = {p.name: p.read_bytes() for p in harness.reports_dir.iterdir()}
    refused = SyncHarness(harness.cloud, harness.db_path, harness.reports_dir).run()
    assert not refused.success
    assert "notes.txt" in run_failure_text(refused)
    assert {p.name: p.read_bytes() for p in harness.reports_dir.iterdir()} == kept
    assert leftovers(harness.reports_dir) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_folder_swap_leaves_the_new_set_and_nothing_beside_it(tmp_path, monkeypatch, exchange):
    from pipeline.reports import atomic_file

    if not exchange:  # a system without an atomic exchange of two folders
        monkeypatch.setattr(atomic_file, "_exchange", lambda first, second: False)
    target = tmp_path / "reports"
    for content in ("old", "new"):
        with atomic_file.atomic_folder(target, replaceable=lambda name: name == "a.csv") as folder:
            (folder / "a.csv").write_text(content)
    assert (target / "a.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
