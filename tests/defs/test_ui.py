"""`dagster dev` on this code location, asked over its GraphQL API for the assets, the checks and the schedule."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipeline.defs.checks import asset_checks
from pipeline.definitions import defs
from pipeline.defs.schedule import SCHEDULE_NAME

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
STARTUP_TIMEOUT_S = 180

LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""

GRAPH_QUERY = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } }
  }
  repositoriesOrError { __typename ... on RepositoryConnection { nodes {
    schedules { name cronSchedule executionTimezone pipelineName }
  } } }
}
"""


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str) -> dict:
    response = requests.post(url, json={"query": query}, timeout=(2, 30))
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_until_loaded(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll until the code location is loaded; fail with the log if it cannot load or never comes up."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            entries = graphql(url, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        except requests.RequestException:
            entries = []  # not listening yet
        for entry in entries:
            error = entry["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                pytest.fail(f"code location {entry['name']} failed to load: {error['message']}")
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not load within {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop dagster dev and everything it started (webserver, daemon, code server): its process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Children that outlive the parent still belong to the group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_dagster_dev_serves_every_asset_every_check_and_the_schedule(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ONAPP_", "BACKUPS_"))}
    env.update(DAGSTER_HOME=str(home), BACKUPS_DB=str(tmp_path / "backups.duckdb"),
               BACKUPS_REPORTS_DIR=str(tmp_path / "reports"))
    port = free_loopback_port()
    log = tmp_path / "dagster_dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        wait_until_loaded(url, process, log)
        data = graphql(url, GRAPH_QUERY)
    finally:
        stop(process)

    assets = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert assets == {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    checks = {
        ("/".join(node["assetKey"]["path"]), check["name"], check["blocking"])
        for node in data["assetNodes"]
        for check in node["assetChecksOrError"]["checks"]
    }
    expected = {
        (spec.asset_key.to_user_string(), spec.name, spec.blocking)
        for checks_def in asset_checks
        for spec in checks_def.check_specs
    }
    assert checks == expected and len(checks) == 8
    [repository] = data["repositoriesOrError"]["nodes"]
    assert repository["schedules"] == [
        {"name": SCHEDULE_NAME, "cronSchedule": "0 2 * * *", "executionTimezone": "UTC", "pipelineName": "backups_sync"}
    ]
