"""VM-list paging that cannot be trusted stops the sync; only a server that ignores page and per_page is unpaged."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.onapp.client import ClientSettings, OnAppClient
from tests.conftest import SMALL_FLEET, run_failure_text, table_contents

# The whole fleet of the unpaged server.
UNPAGED_VMS = [{"id": vm_id, "label": f"vm-{vm_id}", "user_id": 1} for vm_id in range(1, 7)]


class _UnpagedHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        # Each request, as (page, per_page), for the test to see how the client told what paging it does.
        self.server.asked.append((query.get("page", [""])[0], query.get("per_page", [""])[0]))
        # A control panel from before pagination: the whole list, whatever page and per_page say.
        body = json.dumps([{"virtual_machine": vm} for vm in UNPAGED_VMS]).encode()
        self.send_response(200 if parts.path == "/virtual_machines.json" else 404)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def unpaged_server() -> Iterator[ThreadingHTTPServer]:
    """A loopback server that ignores both page and per_page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _UnpagedHandler)
    server.asked = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_server_that_ignores_page_and_per_page_is_read_as_one_page(unpaged_server):
    host, port = unpaged_server.server_address[:2]
    client = OnAppClient(ClientSettings(api_url=f"http://{host}:{port}", user="u", api_key="k", per_page=10,
                                        backoff_factor=0.001, backoff_max=0.01))
    try:
        assert [vm["id"] for vm in client.list_virtual_machines()] == [vm["id"] for vm in UNPAGED_VMS]
    finally:
        client.close()
    # Page 1, page 2 (the same list), then page 1 asked smaller: still the whole list, so nothing pages.
    assert unpaged_server.asked == [("1", "10"), ("2", "10"), ("1", "3")]


def test_a_capped_server_that_ignores_page_without_headers_fails_the_sync_and_keeps_the_rows(harness):
    first = harness.run()
    assert first.success, run_failure_text(first)
    before = table_contents(harness.db_path)
    # Page 1 is 10 of the 100 asked, page 2 repeats it, no X-Total/X-Limit: a cap or the end? Asked for 5,
    # the server sends 5, so it pages and ignores `page`; its 10 VMs are not the fleet's 40.
    harness.cloud.config = dataclasses.replace(
        harness.cloud.config, page_size_cap=10, default_per_page=10, ignore_page=True, pagination_headers=False)
    result = harness.run()
    assert not result.success
    failure = run_failure_text(result)
    assert "ignores the page parameter" in failure and "honours per_page" in failure
    after = table_contents(harness.db_path)
    for table in ("backups", "backup_versions", "storage_history", "virtual_machines"):
        assert after[table].equals(before[table]), table
    ledger = harness.query("SELECT status, message FROM sync_runs ORDER BY started_at")
    assert ledger["status"].tolist() == ["ok", "failed"]
    assert "ignores the page parameter" in ledger["message"][1]
    assert harness.query("SELECT count(*) AS n FROM virtual_machines")["n"][0] == SMALL_FLEET.vms
