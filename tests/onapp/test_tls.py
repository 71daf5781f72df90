"""TLS is verified by default; ONAPP_CA_BUNDLE trusts a private CA. Over real HTTPS on loopback."""

from __future__ import annotations

import ssl

import pytest
import trustme

from pipeline.demo.server import DemoCloud
from tests.conftest import SMALL_FLEET, SyncHarness, run_failure_text, served_backups


@pytest.fixture
def private_ca():
    return trustme.CA()


@pytest.fixture
def https_cloud(private_ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    with DemoCloud(SMALL_FLEET, tls=context) as cloud:
        yield cloud


def test_an_unknown_certificate_is_refused_by_default(https_cloud, tmp_path):
    harness = SyncHarness(https_cloud, tmp_path / "w.duckdb", tmp_path / "r")
    assert https_cloud.url.startswith("https://")
    result = harness.run()
    assert not result.success
    told = run_failure_text(result)
    assert "certificate verify failed" in told and "ONAPP_CA_BUNDLE" in told
    assert https_cloud.stats["requests"] == 0  # no request crossed an unverified connection


def test_a_private_ca_bundle_is_trusted(https_cloud, private_ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    private_ca.cert_pem.write_to_path(str(bundle))
    harness = SyncHarness(https_cloud, tmp_path / "w.duckdb", tmp_path / "r")
    result = harness.run(ca_bundle=str(bundle))
    assert result.success, run_failure_text(result)
    loaded = harness.query("SELECT count(*) AS n FROM backups")["n"][0]
    assert loaded == len(served_backups(https_cloud))
