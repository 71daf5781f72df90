"""The OnApp client against a real simulated cloud on loopback: paging, formats, retries, failures, secrets."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.server import DemoCloud
from pipeline.onapp.client import CredentialsRefused, OnAppClient, PaginationError
from pipeline.onapp.errors import BadPayload
from pipeline.onapp.rails_xml import RailsXmlError, parse_rails_xml
from pipeline.onapp.secrets import body_snippet, strip_secrets
from tests.onapp.hostile_api import Crafted, json_list


def vm_ids(cloud: DemoCloud) -> list[int]:
    return sorted(cloud.fleet.vms)


# --- pagination ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, per_page",
    [
        # X-Total/X-Limit headers: the client stops when X-Total VMs are in, without an empty page.
        (DemoCloudConfig(vms=23), 5),
        # No headers: a short (3 of 5) last page ends the list.
        (DemoCloudConfig(vms=23, pagination_headers=False), 5),
        # No headers and the fleet is a multiple of per_page: the empty page ends the list.
        (DemoCloudConfig(vms=20, pagination_headers=False), 5),
        # Server caps per_page at 4 below the 10 asked, X-Limit says so.
        (DemoCloudConfig(vms=23, page_size_cap=4), 10),
        # Same cap without headers: the short first page is the cap, not the end.
        (DemoCloudConfig(vms=23, page_size_cap=4, pagination_headers=False), 10),
        # Cap without headers, fleet a multiple of the cap: ends on the empty page.
        (DemoCloudConfig(vms=24, page_size_cap=4, pagination_headers=False), 10),
        # Fewer VMs than one page, no headers: one short page, then an empty one.
        (DemoCloudConfig(vms=3, pagination_headers=False), 10),
        # Empty fleet.
        (DemoCloudConfig(vms=0), 10),
    ],
)
def test_every_vm_listed_once(serve, config, per_page):
    cloud, client = serve(config, per_page=per_page)
    vms = client.list_virtual_machines()
    assert [vm["id"] for vm in vms] == vm_ids(cloud)


def test_pagination_with_headers_needs_no_extra_request(serve):
    cloud, client = serve(DemoCloudConfig(vms=20), per_page=5)
    client.list_virtual_machines()
    assert cloud.stats["requests"] == 4  # X-Total says 20: no probe for a fifth page


def test_a_server_that_honours_per_page_but_ignores_page_is_not_taken_as_unpaged(serve):
    # Page 1 is short and page 2 repeats it, but a smaller per_page gives a smaller page 1: the server
    # pages by per_page and ignores page, so its short page 1 may be a cap. (A server that ignores both,
    # an old unpaged one, is tested in tests/defs/test_reliability_paging.py.)
    cloud, client = serve(DemoCloudConfig(vms=6, ignore_page=True, pagination_headers=False), per_page=10)
    with pytest.raises(PaginationError, match="page 2 repeats page 1, yet honours per_page"):
        client.list_virtual_machines()


def test_server_ignoring_page_raises(serve):
    cloud, client = serve(DemoCloudConfig(vms=30, ignore_page=True, pagination_headers=False), per_page=10)
    with pytest.raises(PaginationError, match=r"ignores the page parameter at .*: page 2 repeats page 1"):
        client.list_virtual_machines()


@pytest.mark.parametrize("headers", [True, False])
def test_capped_server_ignoring_page_raises(serve, headers):
    # Page 1 is short of what was asked only because of the server's cap: with X-Total/X-Limit
    # saying more exist, a repeated page 2 is an error, not an unpaged list. Without headers, page 1
    # asked again with a smaller per_page comes back smaller: the server pages, so it is an error too.
    config = DemoCloudConfig(vms=30, ignore_page=True, page_size_cap=10, pagination_headers=headers)
    cloud, client = serve(config, per_page=50)
    with pytest.raises(PaginationError, match="page 2 repeats page 1"):
        client.list_virtual_machines()


def test_page_cap_stops_a_server_that_never_ends(serve):
    # Six pages needed, three allowed: the cap is what ends paging on a server that never ends.
    cloud, client = serve(DemoCloudConfig(vms=30), per_page=5, max_pages=3)
    with pytest.raises(PaginationError, match="more than 3 pages"):
        client.list_virtual_machines()


def test_overlapping_pages_are_deduplicated(serve):
    # The list shifts between two page reads (here: the server starts capping pages at 3),
    # so page 2 (VMs 4-6) repeats VMs 4 and 5 of page 1 (VMs 1-5).
    cloud, client = serve(DemoCloudConfig(vms=12), per_page=5)
    read_page = client._api.get_list

    def get_list(path, wrapper, params=None, **kw):
        items, headers = read_page(path, wrapper, params, **kw)
        cloud.config = dataclasses.replace(cloud.config, page_size_cap=3)
        return items, headers

    client._api.get_list = get_list
    assert [vm["id"] for vm in client.list_virtual_machines()] == vm_ids(cloud)


def _page_log(pause_s: float):
    """An answer for the VM list that forwards each page after a pause, noting how many were read at once."""
    lock = threading.Lock()
    seen = {"in_flight": 0, "most": 0, "pages": []}

    def answer(query):
        with lock:
            seen["in_flight"] += 1
            seen["most"] = max(seen["most"], seen["in_flight"])
            seen["pages"].append(int(query["page"][0]))
        time.sleep(pause_s)  # long enough for the pages read ahead to overlap
        with lock:
            seen["in_flight"] -= 1
        return None  # forwarded to the demo cloud

    return answer, seen


def test_pages_after_the_first_are_read_ahead_within_the_concurrency(hostile):
    api, client = hostile(DemoCloudConfig(vms=57), per_page=5, max_concurrency=4)
    answer, seen = _page_log(0.05)
    api.answers["/virtual_machines.json"] = answer
    assert [vm["id"] for vm in client.list_virtual_machines()] == vm_ids(api.upstream)
    # X-Total says 57: pages 2-12 overlap, never more than the 4 allowed at once, none past the last.
    assert 1 < seen["most"] <= 4
    assert sorted(seen["pages"]) == list(range(1, 13))


def test_a_list_that_ends_before_x_total_says_wastes_at_most_a_window_of_pages(hostile):
    # The server announces 400 VMs but its pages run dry after 3: read-ahead stops a window past them.
    api, client = hostile(per_page=5, max_concurrency=4)

    def lying_total(query):
        page = int(query["page"][0])
        vms = [{"id": vm_id, "label": f"vm-{vm_id}"} for vm_id in range(5 * page - 4, 5 * page + 1)] if page <= 3 else []
        return Crafted(headers={"Content-Type": "application/json", "X-Total": "400"},
                       body=json_list("virtual_machine", vms))

    api.answers["/virtual_machines.json"] = lying_total
    assert [vm["id"] for vm in client.list_virtual_machines()] == list(range(1, 16))
    assert api.seen["/virtual_machines.json"] <= 4 + 4


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True])
def test_json_and_xml_give_the_same_records(serve, legacy):
    cloud, json_client = serve(DemoCloudConfig(vms=8, legacy_api=legacy), per_page=3)
    xml_client = OnAppClient(dataclasses.replace(json_client.settings, api_format="xml"))
    try:
        assert xml_client.list_virtual_machines() == json_client.list_virtual_machines()
        for vm_id in vm_ids(cloud):
            assert xml_client.list_backups(vm_id) == json_client.list_backups(vm_id)
        assert xml_client.list_users() == json_client.list_users()
        assert xml_client.list_backup_servers() == json_client.list_backup_servers()
    finally:
        xml_client.close()


def rails_xml(value, tag: str) -> str:
    """Render a value the way Rails to_xml does (nested hashes and typed arrays included)."""
    if value is None:
        return f'<{tag} nil="true"/>'
    if isinstance(value, bool):
        return f'<{tag} type="boolean">{str(value).lower()}</{tag}>'
    if isinstance(value, int):
        return f'<{tag} type="integer">{value}</{tag}>'
    if isinstance(value, float):
        return f'<{tag} type="float">{value!r}</{tag}>'
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(rails_xml(v, k) for k, v in value.items()) + f"</{tag}>"
    if isinstance(value, list):
        return f'<{tag} type="array">' + "".join(rails_xml(v, "item") for v in value) + f"</{tag}>"
    kind = ' type="datetime"' if tag.endswith("_at") else ""
    return f"<{tag}{kind}>{escape(value)}</{tag}>"


keys = st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True)
# XML 1.0 cannot carry control characters, and parsers turn a raw CR into LF.
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), max_size=30)
numbers = st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | texts
# Rails renders an empty hash like an empty string, so nested hashes are never empty here.
hashes = st.dictionaries(keys, scalars, min_size=1, max_size=3)
leaf_or_nested = scalars | hashes | st.lists(scalars | hashes, max_size=3)
records = st.dictionaries(keys, leaf_or_nested, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=4))
def test_rails_xml_parses_to_what_json_gives(backups):
    json_body = json.dumps([{"backup": b} for b in backups])
    xml_body = '<?xml version="1.0" encoding="UTF-8"?>\n<backups type="array">'
    xml_body += "".join(rails_xml(b, "backup") for b in backups) + "</backups>"
    expected = [item["backup"] for item in json.loads(json_body)]
    assert parse_rails_xml(xml_body.encode("utf-8")) == expected


def test_rails_xml_refuses_entity_expansion():
    billion_laughs = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<backups type="array"><backup><note>&lol3;</note></backup></backups>"""
    with pytest.raises(ValueError):
        parse_rails_xml(billion_laughs)


@pytest.mark.parametrize(
    "body",
    [
        b'<backup><id type="integer">1</id></backup>',  # a single record, not an array
        b"<html><body>502 Bad Gateway</body></html>",  # a proxy's page
        b'<backups type="array"><backup><id type="integer">1</id>',  # cut off
        b'<backups type="array"><backup><id type="integer">x</id></backup></backups>',  # bad integer
    ],
)
def test_rails_xml_rejects_what_is_not_a_rails_array(body):
    with pytest.raises(RailsXmlError):
        parse_rails_xml(body)


# --- retries and failures --------------------------------------------------------------------


def test_transient_faults_are_retried_until_every_vm_is_ok(serve):
    config = DemoCloudConfig(
        vms=40, fail_5xx_fraction=0.3, fail_429_fraction=0.2, truncated_fraction=0.1, html_fraction=0.1
    )
    cloud, client = serve(config, retries=12, per_page=10)
    ids = [vm["id"] for vm in client.list_virtual_machines()]
    report = client.fetch_backups(ids)
    assert ids == vm_ids(cloud)
    assert {o.status for o in report.outcomes.values()} == {"ok"}
    for vm_id in ids:
        assert report.outcomes[vm_id].backups == strip_secrets(cloud.fleet.backups_of(vm_id))
    # All four kinds of fault were served and survived.
    assert cloud.stats["status_429"] and cloud.stats["truncated"] and cloud.stats["html"]
    assert client.retries > 0 and report.retries > 0
    assert client.requests == cloud.stats["requests"]


@pytest.mark.parametrize(
    "retry_after",
    [
        "0",  # urllib3 would not sleep for it: backoff applies
        "-5",  # malformed for urllib3 (it raises InvalidHeader): backoff applies
        "Wed, 21 Oct 2015 07:28:00 GMT",  # a date in the past
        "3600",  # an hour: capped at backoff_max so a sync does not stall
    ],
)
def test_retry_after_values_fall_back_to_backoff(serve, retry_after):
    cloud, client = serve(DemoCloudConfig(vms=10, fail_429_fraction=0.4, retry_after=retry_after), retries=15)
    lists: list[list[dict]] = []
    # A daemon thread, so that a client sleeping for an hour fails this test instead of hanging it.
    worker = threading.Thread(target=lambda: lists.extend(map(client.list_backups, vm_ids(cloud))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), f"Retry-After {retry_after!r} stalled the client"
    assert len(lists) == 10 and cloud.stats["status_429"] > 0


def test_unusable_bodies_exhaust_into_bad_payload(serve):
    cloud, client = serve(DemoCloudConfig(vms=2, html_fraction=1.0), retries=2)
    report = client.fetch_backups(vm_ids(cloud))
    outcome = report.outcomes[vm_ids(cloud)[0]]
    assert (outcome.status, outcome.http_status, outcome.error_kind) == ("failed", 200, "bad_payload")
    assert "502 Bad Gateway" in outcome.message
    assert cloud.stats["requests"] == 2 * 3  # one try and two retries per VM


def test_a_failing_vm_does_not_stop_the_others(serve):
    cloud, client = serve(DemoCloudConfig(vms=10, failing_vm_ids=frozenset({4})), retries=2)
    report = client.fetch_backups(vm_ids(cloud))
    bad = report.outcomes[4]
    assert (bad.status, bad.http_status, bad.error_kind) == ("failed", 500, "http_500")
    assert "Internal server error" in bad.message
    assert report.failed == 1
    assert all(o.status == "ok" for vm_id, o in report.outcomes.items() if vm_id != 4)


def test_vanished_vm(serve):
    cloud, client = serve(DemoCloudConfig(vms=30, vanish_fraction=0.3))
    gone = cloud.vanished_vm_ids()
    assert gone
    report = client.fetch_backups(vm_ids(cloud))
    assert {vm_id for vm_id, o in report.outcomes.items() if o.status == "vanished"} == gone
    assert report.vanished == len(gone) and report.failed == 0
    assert all(report.outcomes[vm_id].http_status == 404 for vm_id in gone)


def test_read_timeout_fails_the_vm_as_timeout(serve):
    cloud, client = serve(DemoCloudConfig(vms=2, latency_ms=400), retries=1, read_timeout=0.1)
    report = client.fetch_backups(vm_ids(cloud))
    assert {(o.status, o.error_kind) for o in report.outcomes.values()} == {("failed", "timeout")}
    assert report.retries == 2  # one read retry per VM


def test_progress_is_logged(serve, caplog):
    cloud, client = serve(DemoCloudConfig(vms=6, latency_ms=60), max_concurrency=2, progress_seconds=0.05)
    with caplog.at_level(logging.INFO, logger="pipeline.onapp.client"):
        client.fetch_backups(vm_ids(cloud))
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.onapp.client"]
    assert any(line.startswith("backups: ") and "req/s" in line and "ETA" in line for line in lines)
    assert lines[-1].startswith("backups: 6/6 VMs in")


# --- credentials and secrets -----------------------------------------------------------------


def test_refused_credentials_abort_and_name_user_and_url_not_key(serve):
    cloud, client = serve(DemoCloudConfig(vms=200))
    cloud.config = dataclasses.replace(cloud.config, api_key="rotated-key")
    with pytest.raises(CredentialsRefused) as refused:
        client.fetch_backups(vm_ids(cloud))
    text = str(refused.value)
    assert "HTTP 401" in text and "'demo'" in text and f"{cloud.url}/virtual_machines/" in text
    assert "demo-api-key" not in text
    assert cloud.stats["requests"] < 100  # aborted: most VMs never tried, nothing retried
    with pytest.raises(CredentialsRefused):
        client.list_virtual_machines()


def test_key_is_not_in_repr(serve):
    cloud, client = serve(DemoCloudConfig(vms=1))
    assert "demo-api-key" not in repr(client.settings) and "demo-api-key" not in repr(client)


def test_admin_lists_refused_are_none_with_one_log_line(serve, caplog):
    cloud, client = serve(DemoCloudConfig(vms=1, admin_refused=True))
    with caplog.at_level(logging.INFO, logger="pipeline.onapp.client"):
        assert client.list_users() is None
        assert client.list_backup_servers() is None
    assert [r.getMessage() for r in caplog.records if r.name == "pipeline.onapp.client"] == [
        "users not readable with this key (HTTP 403): logins stay empty",
        "settings/backup_servers not readable with this key (HTTP 403): labels stay empty",
    ]


def test_admin_lists_readable(serve):
    cloud, client = serve(DemoCloudConfig(vms=1, users=3, backup_servers=2))
    assert [u["id"] for u in client.list_users()] == [1, 2, 3]
    assert [s["label"] for s in client.list_backup_servers()] == ["backup-server-01", "backup-server-02"]


@pytest.mark.parametrize("api_format", ["json", "xml"])
def test_no_secret_leaves_the_client(serve, api_format):
    # Truncated VM lists put password fields into error snippets: those must be redacted too.
    config = DemoCloudConfig(vms=30, truncated_fraction=1.0)
    cloud, client = serve(config, per_page=30, retries=1, api_format=api_format)
    with pytest.raises(BadPayload) as failure:
        client.list_virtual_machines()
    cloud.config = dataclasses.replace(cloud.config, truncated_fraction=0.0)
    vms = client.list_virtual_machines()
    report = client.fetch_backups(vm["id"] for vm in vms)
    dumped = json.dumps([vms, [dataclasses.asdict(o) for o in report.outcomes.values()]])
    dumped += str(failure.value) + repr(failure.value)
    assert "password" in str(cloud.fleet.vms[1])  # the cloud does serve them
    leaked = [secret for secret in cloud.fleet.secrets() if secret in dumped]
    assert not leaked
    assert "password" not in json.dumps(vms)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"virtual_machine":{"id":1,"initial_root_password":"s3cr\\"et!"}}]',
        b'[{"virtual_machine":{"id":1,"remote_access_password":"s3cr',  # cut inside the value
        b"<virtual_machines><virtual_machine><initial_root_password>s3cr&amp;et!</initial_root_password>",
        b"<virtual_machines><virtual_machine><remote_access_password>s3cr",
    ],
)
def test_error_snippets_redact_secret_values(body):
    assert "s3cr" not in body_snippet(body) and "[redacted]" in body_snippet(body)


def test_strip_secrets_is_recursive():
    record = {"id": 1, "Remote_Access_Password": "x", "nested": {"api_key": "k", "keep": [{"token": "t", "a": 1}]}}
    assert strip_secrets(record) == {"id": 1, "nested": {"keep": [{"a": 1}]}}


# --- settings ---------------------------------------------------------------------------------


def test_the_proxy_the_environment_names_is_used_unless_no_proxy_exempts_the_api(serve, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    _, through_proxy = serve(DemoCloudConfig(vms=2), retries=0)
    with pytest.raises(requests.exceptions.ProxyError):
        through_proxy.list_virtual_machines()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    cloud, exempt = serve(DemoCloudConfig(vms=2), retries=0)
    assert [vm["id"] for vm in exempt.list_virtual_machines()] == vm_ids(cloud)
