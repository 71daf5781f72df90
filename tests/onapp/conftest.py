"""A demo cloud on loopback with a client pointed at it, fast retries."""

from __future__ import annotations

import pytest

from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.server import DemoCloud
from pipeline.onapp.client import ClientSettings, OnAppClient

# Fast retries: the behaviour under test is whether we retry, not how long we wait.
FAST = dict(backoff_factor=0.001, backoff_jitter=0.0, backoff_max=0.01, connect_timeout=2.0, read_timeout=5.0)


@pytest.fixture
def serve():
    """Start demo clouds; return a factory giving (cloud, client); stop everything afterwards."""
    started: list[tuple[DemoCloud, OnAppClient]] = []

    def start(config: DemoCloudConfig, **knobs) -> tuple[DemoCloud, OnAppClient]:
        cloud = DemoCloud(config).start()
        client = OnAppClient(
            ClientSettings(api_url=cloud.url, user=cloud.config.user, api_key=cloud.config.api_key, **{**FAST, **knobs})
        )
        started.append((cloud, client))
        return cloud, client

    yield start
    for cloud, client in started:
        client.close()
        cloud.stop()


@pytest.fixture
def hostile():
    """Start a hostile API in front of a demo cloud; return a factory giving (api, client); stop all afterwards."""
    from tests.onapp.hostile_api import HostileApi

    started: list[tuple[DemoCloud, HostileApi, OnAppClient]] = []

    def start(config: DemoCloudConfig = DemoCloudConfig(vms=6), **knobs) -> tuple[HostileApi, OnAppClient]:
        cloud = DemoCloud(config).start()
        api = HostileApi(cloud).start()
        settings = ClientSettings(api_url=api.url, user=cloud.config.user, api_key=cloud.config.api_key,
                                  **{**FAST, **knobs})
        client = OnAppClient(settings)
        started.append((cloud, api, client))
        return api, client

    yield start
    for cloud, api, client in started:
        client.close()
        api.stop()
        cloud.stop()
