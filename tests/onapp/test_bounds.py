"""Every response is bounded in decoded size and in time, and redirects stay on the API's origin (hostile loopback)."""

from __future__ import annotations

import threading
import tracemalloc

import pytest
import requests

from pipeline.defs.settings import SettingsError, build_resources
from pipeline.demo.config import DemoCloudConfig
from pipeline.onapp.client import ClientSettings, RequestDeadlineExceeded, ResponseTooLarge
from tests.onapp.hostile_api import Crafted, HostileApi, gzip_bomb, json_list

BIG_NOTE = [{"id": 1, "backup_size": 1, "note": "x" * (4 * 2**20)}]  # 4 MiB of valid JSON


def backups_path(vm_id: int) -> str:
    return f"/virtual_machines/{vm_id}/backups/images.json"


def fetch(client, vm_ids, *, wait: float = 60.0):
    """fetch_backups on a daemon thread: a client that hangs fails the test instead of hanging it."""
    reports: list = []
    worker = threading.Thread(target=lambda: reports.append(client.fetch_backups(vm_ids)), daemon=True)
    worker.start()
    worker.join(timeout=wait)
    assert not worker.is_alive(), "the client did not give up"
    return reports[0]


def others_ok(report, *bad: int) -> bool:
    return all(o.status == "ok" for vm_id, o in report.outcomes.items() if vm_id not in bad)


# --- size ------------------------------------------------------------------------------------------


def test_a_body_over_the_cap_fails_that_vm_once_and_the_others_load(hostile):
    api, client = hostile(max_response_mb=1)
    api.answers[backups_path(2)] = Crafted(body=json_list("backup", BIG_NOTE))
    report = fetch(client, range(1, 7))
    bad = report.outcomes[2]
    assert (bad.status, bad.http_status, bad.error_kind) == ("failed", 200, "too_large")
    assert bad.message.startswith("response too large: more than 1 MiB once decoded")
    assert others_ok(report, 2) and report.failed == 1
    assert api.seen[backups_path(2)] == 1  # the size of an answer is no accident: not retried


def test_a_gzip_bomb_is_cut_at_the_cap_without_being_inflated(hostile):
    api, client = hostile(max_response_mb=1)
    bomb = gzip_bomb(2 * 2**30)  # about 2 MB on the wire, 2 GiB once inflated
    assert len(bomb) < 4 * 2**20
    api.answers[backups_path(3)] = Crafted(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                                           body=bomb)
    tracemalloc.start()
    try:
        report = fetch(client, range(1, 7))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (report.outcomes[3].error_kind, report.outcomes[3].http_status) == ("too_large", 200)
    assert others_ok(report, 3)
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.0f} MiB for a 1 MiB cap"


def test_error_bodies_are_read_only_as_far_as_they_are_quoted(hostile):
    api, client = hostile(max_response_mb=1, retries=0)
    api.answers[backups_path(4)] = Crafted(status=500, body=b"oops " * (2 * 2**20))
    report = fetch(client, range(1, 7))
    bad = report.outcomes[4]
    assert (bad.error_kind, bad.message[:14]) == ("http_500", "HTTP 500: oops")


def test_a_vm_list_over_the_cap_is_a_clear_failure_of_the_list(hostile):
    api, client = hostile(max_response_mb=1)
    api.answers["/virtual_machines.json"] = Crafted(body=json_list("virtual_machine", BIG_NOTE))
    with pytest.raises(ResponseTooLarge, match=r"response too large: .* from http://127\.0\.0\.1:\d+/virtual_machines"):
        client.list_virtual_machines()


# --- time ------------------------------------------------------------------------------------------


def test_a_body_trickling_one_byte_a_second_times_out_at_the_deadline(hostile):
    api, client = hostile(request_deadline=1.0, read_timeout=5.0, retries=1)
    api.answers[backups_path(5)] = Crafted(body=json_list("backup", [{"id": 9, "backup_size": 1}]), trickle=1.0)
    report = fetch(client, range(1, 7))
    bad = report.outcomes[5]
    assert (bad.status, bad.http_status, bad.error_kind) == ("failed", None, "timeout")
    assert "request deadline of 1 s (ONAPP_REQUEST_DEADLINE)" in bad.message
    assert api.seen[backups_path(5)] == 2  # retried once, by the same budget as any timeout
    assert others_ok(report, 5) and report.retries == 1


def test_headers_trickling_forever_time_out_too(hostile):
    api, client = hostile(request_deadline=1.0, read_timeout=5.0, retries=1)
    api.answers[backups_path(2)] = Crafted(trickle_headers=True, trickle=0.2)
    report = fetch(client, range(1, 7))
    assert (report.outcomes[2].error_kind, api.seen[backups_path(2)]) == ("timeout", 2)
    assert "request deadline" in report.outcomes[2].message
    assert others_ok(report, 2)


def test_a_trickling_vm_list_raises_a_timeout(hostile):
    api, client = hostile(request_deadline=1.0, read_timeout=5.0, retries=0)
    api.answers["/virtual_machines.json"] = Crafted(body=json_list("virtual_machine", [{"id": 1}]), trickle=1.0)
    failures: list[BaseException] = []

    def list_vms() -> None:
        try:
            client.list_virtual_machines()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failures.append(error)

    worker = threading.Thread(target=list_vms, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert isinstance(failures[0], RequestDeadlineExceeded) and isinstance(failures[0], requests.Timeout)


def test_a_deadline_does_not_cut_answers_that_come_in_time(hostile):
    api, client = hostile(DemoCloudConfig(vms=6, latency_ms=50), request_deadline=5.0, max_concurrency=3)
    report = fetch(client, range(1, 7))
    assert {o.status for o in report.outcomes.values()} == {"ok"}


# --- redirects -------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere():
    """A second server on another port, recording what reaches it."""
    other = HostileApi().start()
    yield other
    other.stop()


@pytest.mark.parametrize("where", ["port", "scheme", "host", "credentials"])
def test_a_redirect_to_another_origin_fails_that_vm_and_is_not_followed(hostile, elsewhere, where):
    api, client = hostile()
    port = api.url.rsplit(":", 1)[1]
    target = {
        "port": f"{elsewhere.url}{backups_path(2)}",
        "scheme": f"https://127.0.0.1:{port}{backups_path(2)}",
        "host": f"http://localhost:{port}{backups_path(2)}",
        "credentials": f"http://spy:s3cret@127.0.0.1:{port}{backups_path(2)}",
    }[where]
    api.answers[backups_path(2)] = Crafted(status=302, headers={"Location": target}, body=b"")
    report = fetch(client, range(1, 7))
    bad = report.outcomes[2]
    assert (bad.status, bad.http_status, bad.error_kind) == ("failed", 302, "redirect")
    assert bad.message.startswith("redirect to another origin (")
    assert "s3cret" not in bad.message and "spy" not in bad.message
    assert api.seen[backups_path(2)] == 1 and not elsewhere.seen  # refused, not retried, not followed
    assert others_ok(report, 2)


def test_same_origin_redirects_are_followed(hostile):
    api, client = hostile()
    moved = backups_path(3)
    api.answers[moved] = lambda query: None if "moved" in query else Crafted(
        status=301, headers={"Location": f"{moved}?moved=1"}, body=b"")
    report = fetch(client, range(1, 7))
    assert report.outcomes[3].status == "ok" and api.seen[moved] == 2
    assert report.outcomes[3].backups == client.list_backups(3)


def test_a_redirect_loop_ends_as_a_redirect_failure(hostile):
    api, client = hostile()
    api.answers[backups_path(4)] = Crafted(status=307, headers={"Location": backups_path(4)}, body=b"")
    report = fetch(client, range(1, 7))
    assert (report.outcomes[4].error_kind, report.outcomes[4].message) == ("redirect", "more than 5 redirects")
    assert api.seen[backups_path(4)] == 6


# --- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_response_mb", "request_deadline"])
@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_bounds_must_be_finite_and_positive(field, value):
    with pytest.raises(ValueError, match=field):
        ClientSettings(api_url="http://127.0.0.1:1", **{field: value})


@pytest.mark.parametrize(("variable", "value"), [
    ("ONAPP_MAX_RESPONSE_MB", "0"), ("ONAPP_MAX_RESPONSE_MB", "inf"), ("ONAPP_REQUEST_DEADLINE", "-5"),
    ("ONAPP_REQUEST_DEADLINE", "nan"), ("ONAPP_REQUEST_DEADLINE", "soon"),
])
def test_the_variables_are_validated_and_named(variable, value):
    with pytest.raises(SettingsError, match=f"^{variable}="):
        build_resources({"ONAPP_API_URL": "http://127.0.0.1:1", variable: value})


def test_the_variables_reach_the_client():
    onapp = build_resources({"ONAPP_API_URL": "http://127.0.0.1:1", "ONAPP_MAX_RESPONSE_MB": "2.5",
                             "ONAPP_REQUEST_DEADLINE": "7"})["onapp"]
    settings = onapp.settings()
    assert (settings.max_response_mb, settings.request_deadline) == (2.5, 7.0)
    assert (ClientSettings(api_url="http://x").max_response_mb, ClientSettings(api_url="http://x").request_deadline) \
        == (64.0, 120.0)
