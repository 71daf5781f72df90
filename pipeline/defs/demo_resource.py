"""The OnApp resource of `make run` without ONAPP_API_URL: the simulated cloud, the one place that imports it."""

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from pipeline.defs.resources import OnAppResource
from pipeline.defs.settings import SettingsError
from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.server import DemoCloud, start_embedded_demo_cloud

DEMO_SOURCE = "embedded demo cloud"


def demo_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """The simulated cloud's DEMO_CLOUD_* settings, validated, as plain values a resource field holds.

    Raises:
        SettingsError: a DEMO_CLOUD_* value is malformed or out of range (the message names it).
    """
    try:
        config = DemoCloudConfig.from_env(environ)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    values = {name: value for name, value in asdict(config).items() if value is not None}  # None: the default
    values["failing_vm_ids"] = sorted(values["failing_vm_ids"])
    return values


class DemoOnAppResource(OnAppResource):
    """A simulated cloud served on loopback by the process that needs it.

    The fleet is built from a seed, so every step process of a multiprocess run serves the very same data.
    """

    demo: dict[str, Any] = {}

    _cloud: DemoCloud | None = PrivateAttr(default=None)

    @property
    def is_demo(self) -> bool:
        return True

    @property
    def source(self) -> str:
        """Its name, not its port: a warehouse filled from the demo keeps accepting demo syncs."""
        return DEMO_SOURCE

    def endpoint(self) -> tuple[str, str, str]:
        """The embedded cloud's URL and demo credentials; the cloud starts on first use."""
        if self._cloud is None:
            self._cloud = start_embedded_demo_cloud(DemoCloudConfig(**self.demo))
        return self._cloud.url, self._cloud.config.user, self._cloud.config.api_key

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._cloud is not None:
            self._cloud.stop()
            self._cloud = None
