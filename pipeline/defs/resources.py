"""Dagster resources, each setting a typed and bounded field: the OnApp API, the warehouse, the reports, the checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Literal

import dagster as dg
import duckdb
from pydantic import Field, field_validator

from pipeline.clouds.config import CLOUD_NAME, DEFAULT_CLOUD
from pipeline.onapp.client import ClientSettings, OnAppClient
from pipeline.reports.export import EXPORT_FORMATS
from pipeline.warehouse.connection import (
    DEFAULT_DB,
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MEMORY_LIMIT,
    WarehouseBusy,
    open_warehouse,
)
from pipeline.warehouse.load import DEFAULT_MAX_DELETED_FRACTION, DEFAULT_MAX_FAILED_FRACTION
from pipeline.warehouse.publish import writing_session
from pipeline.warehouse.report_settings import FREE_GIB_MONTHS_PLACES, PRICE_PLACES, ReportSettings, plain_decimal
from pipeline.warehouse.staging import RunStaging

# Numbers must be finite: an infinite timeout or threshold is a typo, not a wish.
_FINITE = {"allow_inf_nan": False}


class OnAppResource(dg.ConfigurableResource):
    """One cloud's OnApp API, and how politely and patiently it is read."""

    cloud: str = Field(default=DEFAULT_CLOUD, pattern=rf"^{CLOUD_NAME.pattern}$",
                       description="The cloud's name in the warehouse (BACKUPS_CLOUDS_FILE; 'default' without).")
    api_url: str = Field(default="", description="Base URL of the API (ONAPP_API_URL).")
    user: str = Field(default="", description="HTTP Basic user (ONAPP_API_USER).")
    api_key: str = Field(default="", description="HTTP Basic key (ONAPP_API_KEY); never shown.")
    api_format: Literal["json", "xml"] = "json"
    max_concurrency: int = Field(default=8, ge=1, le=256)
    per_page: int = Field(default=100, ge=1)
    max_pages: int = Field(default=10_000, ge=1)
    retries: int = Field(default=5, ge=0, le=100)
    backoff_factor: float = Field(default=0.5, ge=0, **_FINITE)
    backoff_max: float = Field(default=30.0, ge=0, **_FINITE)
    backoff_jitter: float = Field(default=0.25, ge=0, **_FINITE)
    connect_timeout: float = Field(default=5.0, gt=0, **_FINITE)
    read_timeout: float = Field(default=30.0, gt=0, **_FINITE)
    ca_bundle: str = Field(default="", description="CA bundle of a private CA (ONAPP_CA_BUNDLE).")
    progress_seconds: float = Field(default=5.0, gt=0, **_FINITE)
    max_response_mb: float = Field(default=64.0, gt=0, **_FINITE, description="Cap on one decoded response, MiB.")
    request_deadline: float = Field(default=120.0, gt=0, **_FINITE, description="Seconds one request may take.")

    @property
    def is_demo(self) -> bool:
        return False

    @property
    def source(self) -> str:
        """What the warehouse records as its source: the API's URL."""
        return self.api_url.rstrip("/")

    def endpoint(self) -> tuple[str, str, str]:
        """The URL, user and key requests go to."""
        return self.api_url, self.user, self.api_key

    def settings(self) -> ClientSettings:
        """The client's settings from this resource's fields."""
        url, user, key = self.endpoint()
        return ClientSettings(
            api_url=url, user=user, api_key=key, api_format=self.api_format, per_page=self.per_page,
            max_pages=self.max_pages, max_concurrency=self.max_concurrency, retries=self.retries,
            backoff_factor=self.backoff_factor, backoff_max=self.backoff_max, backoff_jitter=self.backoff_jitter,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            ca_bundle=self.ca_bundle or None, progress_seconds=self.progress_seconds,
            max_response_mb=self.max_response_mb, request_deadline=self.request_deadline,
        )

    def client(self) -> OnAppClient:
        """A client with one pooled session; close it when done."""
        return OnAppClient(self.settings())

    def shown(self) -> dict[str, object]:
        """The effective settings for a run's metadata: everything but the key."""
        return {name: value for name, value in self.dict().items() if name != "api_key"} | {"source": self.source}


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file, where runs stage their data, and when a sync must not load."""

    path: str = Field(default=DEFAULT_DB, min_length=1)
    # Empty: a folder "staging" beside the warehouse file, on the same disk as the load that reads it.
    staging_dir: str = ""
    lock_timeout_s: float = Field(default=DEFAULT_LOCK_TIMEOUT_S, ge=0, **_FINITE)
    max_failed_fraction: float = Field(default=DEFAULT_MAX_FAILED_FRACTION, ge=0, le=1)
    max_deleted_fraction: float = Field(default=DEFAULT_MAX_DELETED_FRACTION, ge=0, le=1)
    memory_limit: str = Field(default=DEFAULT_MEMORY_LIMIT, pattern=r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
    # One thread: each of DuckDB's threads keeps buffers of its own, and on the load's mostly serial
    # upserts a second one bought no time (`make bench`, the job table).
    load_threads: int = Field(default=1, ge=1, le=256)

    @contextmanager
    def open(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only: the published warehouse as it is now. Otherwise the writer's session (see below).

        The writer holds the warehouse's lock for the block (waiting up to lock_timeout_s for another writer,
        then 'warehouse busy'), works on a private copy and publishes it whole when the block ends without
        error (pipeline.warehouse.publish).
        """
        limits = {"lock_timeout_s": self.lock_timeout_s, "memory_limit": self.memory_limit}
        if read_only:
            session = open_warehouse(self.path, read_only=True, **limits)
        else:
            session = writing_session(self.path, threads=self.load_threads, **limits)
        with ExitStack() as held:
            try:
                con = held.enter_context(session)
            except WarehouseBusy as error:
                # A plain message in the UI, not a stack trace, and no step retry: the wait was the retry.
                raise dg.Failure(description=str(error), allow_retries=False) from None
            yield con

    def staging(self, run_key: str, cloud: str) -> RunStaging:
        """The staging folder of one run and cloud (see pipeline.warehouse.staging)."""
        root = Path(self.staging_dir) if self.staging_dir else Path(self.path).parent / "staging"
        return RunStaging(root=root, run_key=run_key, cloud=cloud)


class ReportsResource(dg.ConfigurableResource):
    """Where the report files go, in which formats, and the prices and thresholds the reports apply."""

    reports_dir: str = Field(default="reports", min_length=1)
    export_formats: list[str] = Field(default_factory=lambda: ["csv"], min_length=1)
    # Decimals kept as text: Dagster's config has no decimal type, and a float would round a price.
    free_gib_months: str = Field(default="0", description="GiB-months per user and month not billed.")
    price_per_gib_month: str = Field(default="", description="Price of one GiB-month; empty: no amounts.")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    protection_days: float = Field(default=7.0, gt=0, le=36_500, **_FINITE)
    anomaly_factor: float = Field(default=3.0, gt=1, le=1_000_000, **_FINITE)

    @field_validator("free_gib_months")
    @classmethod
    def _free_is_decimal(cls, text: str) -> str:
        return plain_decimal(text, FREE_GIB_MONTHS_PLACES)

    @field_validator("price_per_gib_month")
    @classmethod
    def _price_is_decimal(cls, text: str) -> str:
        return plain_decimal(text, PRICE_PLACES) if text.strip() else ""

    def settings(self) -> ReportSettings:
        """The prices and thresholds as the warehouse keeps them for its views (exact decimals)."""
        price = self.price_per_gib_month
        return ReportSettings(
            free_gib_months=Decimal(self.free_gib_months), price_per_gib_month=Decimal(price) if price else None,
            currency=self.currency, protection_days=self.protection_days, anomaly_factor=self.anomaly_factor,
        )

    @field_validator("export_formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        unknown = [name for name in formats if name not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"unknown format {', '.join(map(repr, unknown))}; use a comma-separated list of "
                             f"{', '.join(EXPORT_FORMATS)}")
        return list(dict.fromkeys(formats))


class AlertsResource(dg.ConfigurableResource):
    """Where alerts are posted (a Slack-compatible webhook) and when a backup server counts as filling up."""

    webhook_url: str = Field(default="", description="Webhook URL (BACKUPS_ALERT_WEBHOOK_URL); a secret, never shown.")
    full_days: float = Field(default=30.0, gt=0, le=36_500, **_FINITE)

    def shown(self) -> dict[str, object]:
        """The effective settings for a run's metadata: whether a webhook is set, never its URL."""
        return {"webhook": "set" if self.webhook_url else "not set", "full_days": self.full_days}


class ChecksResource(dg.ConfigurableResource):
    """The thresholds of the warning and freshness checks, and the clouds they expect to be synced."""

    max_swing_pct: float = Field(default=30.0, ge=0, **_FINITE)
    max_age_hours: float = Field(default=26.0, gt=0, **_FINITE)
    clouds: list[str] = Field(
        default_factory=list,
        description="The clouds this code location syncs: the freshness check judges these, and only names the "
                    "others the ledger holds (a cloud taken out of the clouds file). Empty: every cloud of the ledger.",
    )
