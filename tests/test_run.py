"""`make run`'s command: a short log on success, and on failure the cause as the last line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_environment

pytestmark = pytest.mark.slow


def run(tmp_path: Path, cloud, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env=cli_environment(tmp_path, cloud, **env))


def test_a_good_run_prints_a_short_log_with_the_summary_the_checks_and_the_files(cloud, tmp_path):
    done = run(tmp_path, cloud)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) < 25 and "DEBUG" not in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert any(line.startswith("warehouse_load: sync ok:") for line in lines)
    # The demo fleet's backups are months old and of any size: the protection and anomaly checks warn.
    [checks] = [line for line in lines if line.startswith("checks: ")]
    assert checks.startswith("checks: 6 checks passed, 2 warned (")
    assert "no_protection_gaps" in checks and "no_backup_anomalies" in checks
    assert lines[-2] == f"warehouse: {tmp_path / 'backups.duckdb'}"
    assert lines[-1].startswith(f"reports:   {tmp_path / 'reports'}/ (") and "storage_by_user.csv" in lines[-1]


def test_an_unreachable_api_ends_with_one_line_naming_ONAPP_API_URL(cloud, tmp_path):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run(tmp_path, cloud, ONAPP_API_URL=f"http://127.0.0.1:{port}", ONAPP_BACKOFF_MAX="1")
    assert done.returncode == 1
    output = (done.stdout + done.stderr).strip().splitlines()
    assert output[-1].startswith("error: vm_list: ") and "ONAPP_API_URL" in output[-1]
    assert "connection refused" in output[-1]
    assert "step retries are for the scheduled runs" in output[-2]
    assert not any("Traceback" in line or "urllib3" in line for line in output)


def test_a_warehouse_path_under_a_file_fails_before_any_request_naming_BACKUPS_DB(cloud, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = run(tmp_path, cloud, BACKUPS_DB=str(tmp_path / "a-file" / "backups.duckdb"))
    assert done.returncode == 1
    last = (done.stdout + done.stderr).strip().splitlines()[-1]
    assert last.startswith("error: vm_list: BACKUPS_DB=") and "a-file" in last
    assert cloud.stats["requests"] == 0
