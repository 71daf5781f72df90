"""The simulated OnApp API, exercised over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
import json
import logging
import xml.etree.ElementTree as ET

import pytest
import requests

from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.server import DemoCloud, start_embedded_demo_cloud

SMALL = DemoCloudConfig(vms=40, backups_per_vm=4)


@pytest.fixture(scope="module")
def cloud():
    with DemoCloud(SMALL) as running:
        yield running


def get(http, cloud, path, **params):
    return http.get(cloud.url + path, params=params, timeout=5)


def vm_with_backups(fleet, kind=None):
    return next(v for v in sorted(fleet.vms) if any(kind in (None, b["backup_type"]) for b in fleet.backups_of(v)))


@pytest.fixture
def tuned(cloud):
    """Swap knobs on the shared running server for one test, then restore them."""
    original = cloud.config

    def tune(**changes):
        cloud.config = dataclasses.replace(original, **changes)

    yield tune
    cloud.config = original


def test_auth_is_required_before_any_fault(cloud, tuned):
    tuned(fail_5xx_fraction=1.0, html_fraction=1.0)
    for auth in (None, ("demo", "wrong")):
        response = requests.get(cloud.url + "/virtual_machines.json", auth=auth, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"errors": ["You need to sign in or sign up before continuing."]}


def test_vm_list_json_shape_and_secrets(cloud, http):
    response = get(http, cloud, "/virtual_machines.json")
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert isinstance(body, list) and len(body) == 40
    vm = body[0]["virtual_machine"]
    assert set(body[0]) == {"virtual_machine"}
    assert len(vm["identifier"]) == 14 and vm["identifier"].islower()
    assert isinstance(vm["total_disk_size"], int) and isinstance(vm["booted"], bool)
    assert {vm["initial_root_password"], vm["remote_access_password"]} <= cloud.fleet.secrets()
    assert get(http, cloud, "/virtual_machines").json() == body  # no suffix means JSON


def test_pagination(cloud, http, tuned):
    pages, page = [], 1
    while batch := get(http, cloud, "/virtual_machines.json", page=page, per_page=15).json():
        pages.append(batch)
        page += 1
    assert [len(p) for p in pages] == [15, 15, 10]
    assert [i["virtual_machine"]["id"] for p in pages for i in p] == sorted(cloud.fleet.vms)
    last = get(http, cloud, "/virtual_machines.json", page=3, per_page=15)
    assert (last.headers["X-Total"], last.headers["X-Page"], last.headers["X-Limit"]) == ("40", "3", "15")
    tuned(page_size_cap=10, default_per_page=25)
    assert len(get(http, cloud, "/virtual_machines.json").json()) == 10
    assert get(http, cloud, "/virtual_machines.json", per_page=500).headers["X-Limit"] == "10"
    tuned(default_per_page=25, ignore_page=True, pagination_headers=False)
    first, second = (get(http, cloud, "/virtual_machines.json", page=n) for n in (1, 2))
    assert first.json() == second.json() and len(first.json()) == 25
    assert "X-Total" not in second.headers


def test_backup_list_shapes(cloud, http):
    fleet = cloud.fleet
    vm_id = vm_with_backups(fleet, "incremental")
    images = get(http, cloud, f"/virtual_machines/{vm_id}/backups/images.json").json()
    assert [b["backup"] for b in images] == fleet.backups_of(vm_id)
    assert get(http, cloud, f"/virtual_machines/{vm_id}/backups.json").json() == images
    files = get(http, cloud, f"/virtual_machines/{vm_id}/backups/files.json").json()
    assert files and all(b["backup"]["backup_type"] == "incremental" for b in files)
    for wrapped in images:
        backup = wrapped["backup"]
        assert backup["user_id"] == fleet.vms[vm_id]["user_id"]
        assert backup["target_type"] == ("VirtualMachine" if backup["backup_type"] == "incremental" else "Disk")
    empty = next(v for v in sorted(fleet.vms) if not fleet.backups_of(v))
    assert get(http, cloud, f"/virtual_machines/{empty}/backups/images.json").json() == []
    for path in ("/virtual_machines/99999/backups/images.json", "/nope.json"):
        response = get(http, cloud, path)
        assert (response.status_code, response.json()) == (404, {"errors": ["Resource not found"]})


def test_xml_is_rails_shaped(cloud, http):
    vm_id = vm_with_backups(cloud.fleet)
    response = get(http, cloud, f"/virtual_machines/{vm_id}/backups/images.xml")
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == "backups" and root.get("type") == "array"
    first = root.find("backup")
    assert first.find("id").get("type") == "integer" and first.find("built").get("type") == "boolean"
    assert first.find("created_at").get("type") == "datetime"
    assert first.find("iqn").get("nil") == "true"
    assert int(first.find("backup_size").text) == cloud.fleet.backups_of(vm_id)[0]["backup_size"]
    vms = ET.fromstring(get(http, cloud, "/virtual_machines.xml", per_page=2).content)
    assert [e.tag for e in vms] == ["virtual_machine"] * 2
    empty = next(v for v in sorted(cloud.fleet.vms) if not cloud.fleet.backups_of(v))
    assert b'<backups type="array"/>' in get(http, cloud, f"/virtual_machines/{empty}/backups.xml").content
    users = ET.fromstring(get(http, cloud, "/users.xml").content)
    assert users.find("user/login").text == cloud.fleet.users[1]["login"]


def test_legacy_payloads_render_the_same_fleet(cloud, http, tuned):
    vm_id = vm_with_backups(cloud.fleet)
    modern = [b["backup"] for b in get(http, cloud, f"/virtual_machines/{vm_id}/backups.json").json()]
    tuned(legacy_api=True)
    legacy = [b["backup"] for b in get(http, cloud, f"/virtual_machines/{vm_id}/backups.json").json()]
    assert [b["id"] for b in legacy] == [str(b["id"]) for b in modern]
    for old, new in zip(legacy, modern):
        assert old["backup_size"] == str(new["backup_size"])
        assert not {"user_id", "target_type", "initiated", "marked_for_delete", "note"} & set(old)
        if new["backup_type"] == "normal" and new["initiated"] != "manual":
            assert old["backup_type"] == f"{new['initiated']}-autobackup"
    vm = get(http, cloud, "/virtual_machines.json").json()[0]["virtual_machine"]
    assert vm["total_disk_size"] == f"{cloud.fleet.vms[int(vm['id'])]['total_disk_size']}.0"
    xml = ET.fromstring(get(http, cloud, f"/virtual_machines/{vm_id}/backups.xml").content)
    assert xml.find("backup/backup_size").get("type") is None


def not_json(content):
    try:
        json.loads(content)
    except ValueError:
        return True
    return False


FAULTS = {
    "fail_429_fraction": lambda r: r.status_code == 429 and r.headers["Retry-After"] == "3" and r.json()["errors"],
    "fail_5xx_fraction": lambda r: r.status_code in (500, 502, 503, 504) and r.json()["errors"],
    "html_fraction": lambda r: r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    and b"<h1>502 Bad Gateway</h1>" in r.content,
    "truncated_fraction": lambda r: r.status_code == 200 and not_json(r.content)
    and int(r.headers["Content-Length"]) == len(r.content),
}


@pytest.mark.parametrize("knob", sorted(FAULTS))
def test_fault_knobs_hit_every_data_path(cloud, http, tuned, knob):
    tuned(**{knob: 1.0}, retry_after="3")
    before = cloud.stats.snapshot()
    vm_id = vm_with_backups(cloud.fleet)
    for path in ("/virtual_machines.json", "/users.json", f"/virtual_machines/{vm_id}/backups.json"):
        assert FAULTS[knob](get(http, cloud, path)), path
    assert cloud.stats["requests"] - before.get("requests", 0) == 3
    counter = {"html_fraction": "html", "truncated_fraction": "truncated"}.get(knob)
    if counter:
        assert cloud.stats[counter] - before.get(counter, 0) == 3


def test_vanished_failing_and_refused(cloud, http, tuned):
    tuned(vanish_fraction=0.3)
    gone = cloud.vanished_vm_ids()
    assert 0 < len(gone) < 40 and gone == cloud.vanished_vm_ids()
    failing = min(set(cloud.fleet.vms) - gone)
    tuned(vanish_fraction=0.3, failing_vm_ids=frozenset({failing}), admin_refused=True)
    listed = {v["virtual_machine"]["id"] for v in get(http, cloud, "/virtual_machines.json").json()}
    assert gone <= listed
    assert get(http, cloud, f"/virtual_machines/{min(gone)}/backups/images.json").status_code == 404
    assert get(http, cloud, f"/virtual_machines/{failing}/backups/images.json").status_code == 500
    for path in ("/users.json", "/settings/backup_servers.xml"):
        response = get(http, cloud, path)
        assert response.status_code == 403
        assert response.json() == {"errors": ["You do not have permissions for this action"]}


def test_users_and_backup_servers(cloud, http):
    users = get(http, cloud, "/users.json").json()
    assert set(users[0]["user"]) == {"id", "login", "email", "first_name", "last_name", "status"}
    servers = get(http, cloud, "/settings/backup_servers.json").json()
    assert len(servers) == 4
    # Capacities (GB) leave room above what each server holds, as on a healthy cloud.
    for item in servers:
        server = item["backup_server"]
        held_gb = sum(b["backup_size"] for b in cloud.fleet.backups.values()
                      if b["backup_server_id"] == server["id"]) / 1024**2
        assert 1.1 * held_gb <= server["capacity"] <= 2.5 * held_gb + 500


def test_mutations_show_in_next_listing(http):
    with DemoCloud(DemoCloudConfig(vms=5)) as cloud:
        fleet = cloud.fleet
        vm_id = vm_with_backups(fleet)
        path = f"/virtual_machines/{vm_id}/backups/images.json"
        ids = lambda: [b["backup"]["id"] for b in get(http, cloud, path).json()]  # noqa: E731
        doomed = ids()[0]
        fleet.delete_backup(doomed)
        added = fleet.add_backup(vm_id, note="fresh")
        assert added["id"] == max(fleet.backups) > doomed and added["backup_type"] == "normal"
        fleet.update_backup(added["id"], backup_size=42)
        assert doomed not in ids() and ids()[-1] == added["id"]
        assert get(http, cloud, path).json()[-1]["backup"]["backup_size"] == 42
        new_vm = fleet.add_vm(user_id=1)
        assert get(http, cloud, f"/virtual_machines/{new_vm['id']}/backups.json").json() == []
        fleet.delete_vm(vm_id)
        assert get(http, cloud, path).status_code == 404
        assert vm_id not in fleet.backup_vm.values()


def test_embedded_cloud_says_where_it_serves_and_stops(caplog, http):
    with caplog.at_level(logging.INFO, logger="pipeline.demo"):
        cloud = start_embedded_demo_cloud(DemoCloudConfig(vms=3))
    url = cloud.url + "/virtual_machines.json"
    try:
        assert f"EMBEDDED DEMO CLOUD at {cloud.url}" in caplog.text
        assert len(http.get(url, timeout=5).json()) == 3
    finally:
        cloud.stop()
    with pytest.raises(requests.ConnectionError):  # even the pooled keep-alive connection is gone
        http.get(url, timeout=2)
