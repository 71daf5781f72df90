"""A bad body is its VM's problem alone; a VM list never puts an unusable id in a URL (hostile loopback server)."""

from __future__ import annotations

import logging

import pytest

from pipeline.demo.config import DemoCloudConfig
from pipeline.onapp.client import CredentialsRefused, PaginationError
from pipeline.onapp.fanout import fetch_outcome
from pipeline.onapp.secrets import TooDeep, strip_secrets
from tests.onapp.hostile_api import Crafted, json_list
from tests.onapp.test_bounds import backups_path, fetch, others_ok


def nested_json(depth: int) -> bytes:
    """A backup list whose one record holds a value nested ``depth`` arrays deep."""
    return b'[{"backup":{"id":1,"backup_size":1,"x":' + b"[" * depth + b"]" * depth + b"}}]"


def nested_xml(depth: int) -> bytes:
    inner = b"<x>" * depth + b"</x>" * depth
    return b'<backups type="array"><backup><id type="integer">1</id>' + inner + b"</backup></backups>"


@pytest.mark.parametrize(("body", "reason"), [
    (nested_json(900), "nested deeper than 32 levels"),
    (nested_json(100_000), "nested deeper than 32 levels"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32 levels"),
    (b'{"backup": {"id": 1, "backup_size": 1}}', "expected a JSON array, got dict"),
    (b'"a list, honestly"', "expected a JSON array, got str"),
    (b"42", "expected a JSON array, got int"),
    (b"[1, 2]", "list items are not records"),
    (b'[{"backup": {"id": 1, "note": "\xff"}}]', "codec can't decode"),
])
def test_a_bad_json_body_fails_its_vm_with_the_reason(hostile, body, reason):
    api, client = hostile(retries=1)
    api.answers[backups_path(2)] = Crafted(body=body)
    report = fetch(client, range(1, 7))
    bad = report.outcomes[2]
    assert (bad.status, bad.http_status, bad.error_kind) == ("failed", 200, "bad_payload")
    assert bad.message.startswith("HTTP 200: ") and reason in bad.message
    assert others_ok(report, 2)


def test_xml_nested_5000_deep_fails_its_vm(hostile):
    api, client = hostile(api_format="xml", retries=0)
    api.answers["/virtual_machines/2/backups/images.xml"] = Crafted(
        headers={"Content-Type": "application/xml"}, body=nested_xml(5000))
    report = fetch(client, range(1, 7))
    assert report.outcomes[2].error_kind == "bad_payload"
    assert "nested deeper than 32 levels" in report.outcomes[2].message
    assert others_ok(report, 2)


@pytest.mark.parametrize("note", [b"a\\ud800", b"a\xed\xa0\x80"])  # escaped, or as (invalid) UTF-8 bytes
def test_a_lone_surrogate_reaches_normalization_as_text(hostile, note):
    # Python's JSON keeps it either way; normalization rejects that record with its reason (tests/records).
    api, client = hostile()
    api.answers[backups_path(2)] = Crafted(body=b'[{"backup":{"id":1,"backup_size":1,"note":"' + note + b'"}}]')
    assert client.list_backups(2) == [{"id": 1, "backup_size": 1, "note": "a\ud800"}]


def test_strip_secrets_walks_any_depth_without_recursion():
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    with pytest.raises(TooDeep, match="nested deeper than 32 levels"):
        strip_secrets({"x": deep})
    shallow = {"a": [{"b": [{"password": 1, "c": 2}]}]}
    assert strip_secrets(shallow) == {"a": [{"b": [{"c": 2}]}]}


# --- the VM list -----------------------------------------------------------------------------------


def vm_list_answer(records: list[dict], headers: dict[str, str] | None = None):
    """Page 1 is the given list, later pages are empty."""
    def answer(query: dict) -> Crafted:
        body = json_list("virtual_machine", records if query.get("page", ["1"])[0] == "1" else [])
        return Crafted(headers={"Content-Type": "application/json", **(headers or {})}, body=body)
    return answer


def test_vm_entries_without_a_usable_id_never_reach_a_url(hostile, caplog):
    api, client = hostile(DemoCloudConfig(vms=3))
    unusable = [True, False, 2**70, 2**63, -1, "abc", None, 1.0, "7\x1b[2J", {"id": 1}]
    api.answers["/virtual_machines.json"] = vm_list_answer(
        [{"id": 1}, {"id": "2"}, {"id": 2**63 - 1}] + [{"id": value} for value in unusable])
    with caplog.at_level(logging.WARNING, logger="pipeline.onapp.paging"):
        vms = client.list_virtual_machines()
    assert [vm["id"] for vm in vms] == [1, "2", 2**63 - 1]  # as listed: old APIs quote ids
    [warning] = [r.getMessage() for r in caplog.records if r.name == "pipeline.onapp.paging"]
    assert f"{len(unusable)} VM entries without a usable id" in warning and "True" in warning
    report = fetch(client, [1, 2])
    assert {o.status for o in report.outcomes.values()} == {"ok"}
    asked = {path for path in api.seen if path.startswith("/virtual_machines/")}
    assert asked == {backups_path(1), backups_path(2)}


@pytest.mark.parametrize("vm_id", [True, 2**63, -1, "3", 2.0])
def test_list_backups_refuses_what_is_not_an_id(hostile, vm_id):
    api, client = hostile()
    with pytest.raises(ValueError, match="not a VM id"):
        client.list_backups(vm_id)
    assert not any(path.startswith("/virtual_machines/") for path in api.seen)


@pytest.mark.parametrize(("header", "value"), [
    ("X-Total", "abc"), ("X-Total", "-3"), ("X-Limit", "1e3"), ("X-Total", "5\x1b[31m"),
])
def test_a_malformed_paging_header_is_an_error_naming_it(hostile, header, value):
    api, client = hostile()
    api.answers["/virtual_machines.json"] = vm_list_answer([{"id": 1}], {header: value})
    with pytest.raises(PaginationError, match=f"malformed {header} header at http://") as failure:
        client.list_virtual_machines()
    assert "\x1b" not in str(failure.value)


def test_anything_unforeseen_in_one_vm_stays_that_vms_failure():
    def list_backups(vm_id: int) -> list:
        if vm_id == 2:
            raise RecursionError("maximum recursion depth exceeded\n\x1b[2Jforged")
        if vm_id == 3:
            raise CredentialsRefused(401, "http://api/", "demo")
        return []

    outcome = fetch_outcome(list_backups, 2)
    assert (outcome.status, outcome.error_kind) == ("failed", "client_error")
    assert outcome.message == "RecursionError: maximum recursion depth exceeded\\n\\x1b[2Jforged"
    with pytest.raises(CredentialsRefused):
        fetch_outcome(list_backups, 3)
