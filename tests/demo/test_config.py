"""DemoCloudConfig: DEMO_CLOUD_* variables, and values rejected at construction."""

from __future__ import annotations

import pytest

from pipeline.demo.config import DemoCloudConfig


def test_from_env():
    assert DemoCloudConfig.from_env({}) == DemoCloudConfig()
    config = DemoCloudConfig.from_env({
        "DEMO_CLOUD_VMS": "12", "DEMO_CLOUD_LATENCY_MS": "2.5", "DEMO_CLOUD_IGNORE_PAGE": "true",
        "DEMO_CLOUD_NO_PAGINATION_HEADERS": "1", "DEMO_CLOUD_FAILING_VMS": "3, 7,", "DEMO_CLOUD_PAGE_CAP": "50",
        "DEMO_CLOUD_RETRY_AFTER": "Wed, 21 Oct 2026 07:28:00 GMT", "DEMO_CLOUD_LEGACY_API": "",
    })
    assert (config.vms, config.latency_ms, config.ignore_page, config.pagination_headers) == (12, 2.5, True, False)
    assert config.failing_vm_ids == {3, 7} and config.page_size_cap == 50 and not config.legacy_api
    assert config.retry_after.startswith("Wed")
    for var, value in [("DEMO_CLOUD_VMS", "many"), ("DEMO_CLOUD_FAIL_5XX", "1.5"), ("DEMO_CLOUD_ADMIN_REFUSED", "maybe")]:
        with pytest.raises(ValueError, match=var):
            DemoCloudConfig.from_env({var: value})
