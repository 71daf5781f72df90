"""Report files get the mode the umask gives any new file, so a web server or the group can read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.reports.atomic_file import atomic_path
from pipeline.reports.charts import CHARTS
from pipeline.reports.export import MANIFEST, REPORTS
from tests.conftest import run_failure_text


@pytest.fixture(params=[0o022, 0o027, 0o077], ids=lambda mask: f"umask-{mask:03o}")
def umask(request) -> int:
    """The process umask for the test; the previous one is restored after it."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_report_file_gets_the_mode_of_a_normally_created_file(harness, umask):
    expected = {f"{name}.{fmt}" for name in REPORTS for fmt in ("csv", "parquet")} | {f"{n}.png" for n in CHARTS}
    expected.add(MANIFEST)
    for _ in range(2):  # first written, then replaced
        result = harness.run(export_formats=("csv", "parquet"))
        assert result.success, run_failure_text(result)
        modes = {p.name: mode(p) for p in harness.reports_dir.iterdir()}
        assert modes == dict.fromkeys(expected, 0o666 & ~umask)  # 0644 under umask 022, 0640 under 027
    assert mode(harness.reports_dir) == 0o777 & ~umask


def test_an_atomic_write_replaces_a_file_with_a_narrower_mode(tmp_path, umask):
    # The new file's mode comes from the umask, not from the file it replaces.
    target = tmp_path / "report.csv"
    target.write_text("old")
    target.chmod(0o600)
    with atomic_path(target) as tmp:
        assert mode(tmp) == 0o666 & ~umask
        tmp.write_text("new")
    assert (target.read_text(), mode(target)) == ("new", 0o666 & ~umask)
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
