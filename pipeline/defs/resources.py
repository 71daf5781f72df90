"""Dagster resources: the OnApp API (or the embedded demo cloud) and the DuckDB warehouse."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from pipeline.demo.cloud import DemoCloud, start_embedded_demo_cloud
from pipeline.onapp.client import ClientSettings, OnAppClient
from pipeline.warehouse.load import DEFAULT_MAX_FAILED_FRACTION
from pipeline.warehouse.connection import DEFAULT_DB, DEFAULT_LOCK_TIMEOUT_S, WarehouseBusy, connect_warehouse

DEMO_SOURCE = "embedded demo cloud"


class OnAppResource(dg.ConfigurableResource):
    """The OnApp API; with no api_url, a simulated cloud the package serves on loopback."""

    api_url: str = ""
    user: str = ""
    api_key: str = ""
    api_format: str = "json"
    # Unset knobs come from the ONAPP_* environment variables (see README), then the defaults.
    retries: int | None = None
    backoff_factor: float | None = None
    max_concurrency: int | None = None
    read_timeout: float | None = None
    per_page: int | None = None

    _demo: DemoCloud | None = PrivateAttr(default=None)

    @property
    def is_demo(self) -> bool:
        return not self.api_url

    @property
    def source(self) -> str:
        """What the warehouse records as its source: the URL, or the demo cloud's name."""
        return DEMO_SOURCE if self.is_demo else self.api_url.rstrip("/")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._demo is not None:
            self._demo.stop()
            self._demo = None

    def settings(self) -> ClientSettings:
        """The client's settings: this resource's fields over the environment's."""
        url, user, key = self.api_url, self.user, self.api_key
        if self.is_demo:
            if self._demo is None:
                self._demo = start_embedded_demo_cloud()
            url, user, key = self._demo.url, self._demo.config.user, self._demo.config.api_key
        env = {**os.environ, "ONAPP_API_URL": url}
        base = ClientSettings.from_env(env)
        overrides = {
            name: value
            for name in ("retries", "backoff_factor", "max_concurrency", "read_timeout", "per_page")
            if (value := getattr(self, name)) is not None
        }
        return dataclasses.replace(
            base, api_url=url, user=user, api_key=key, api_format=self.api_format, **overrides
        )

    def client(self) -> OnAppClient:
        """A client with one pooled session; close it when done."""
        return OnAppClient(self.settings())

    @classmethod
    def from_env(cls) -> OnAppResource:
        """Configuration from ONAPP_API_URL, ONAPP_API_USER, ONAPP_API_KEY, ONAPP_API_FORMAT."""
        key = dg.EnvVar("ONAPP_API_KEY") if os.environ.get("ONAPP_API_KEY") else ""
        return cls(
            api_url=os.environ.get("ONAPP_API_URL", ""),
            user=os.environ.get("ONAPP_API_USER", ""),
            api_key=key,
            api_format=(os.environ.get("ONAPP_API_FORMAT") or "json").strip().lower(),
        )


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file and the folder its reports are exported to."""

    path: str = DEFAULT_DB
    reports_dir: str = "reports"
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION

    @contextmanager
    def open(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A migrated connection; waits for another writer, then fails with 'warehouse busy'."""
        try:
            con = connect_warehouse(self.path, lock_timeout_s=self.lock_timeout_s, read_only=read_only)
        except WarehouseBusy as error:
            # A plain message in the UI, not a stack trace: another sync or a reader holds the file.
            raise dg.Failure(description=str(error)) from None
        try:
            yield con
        finally:
            con.close()

    @classmethod
    def from_env(cls) -> WarehouseResource:
        """Configuration from BACKUPS_DB, BACKUPS_REPORTS_DIR, BACKUPS_LOCK_TIMEOUT, BACKUPS_MAX_FAILED_FRACTION."""
        return cls(
            path=os.environ.get("BACKUPS_DB", DEFAULT_DB),
            reports_dir=os.environ.get("BACKUPS_REPORTS_DIR", "reports"),
            lock_timeout_s=float(os.environ.get("BACKUPS_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT_S),
            max_failed_fraction=float(
                os.environ.get("BACKUPS_MAX_FAILED_FRACTION") or DEFAULT_MAX_FAILED_FRACTION
            ),
        )
