"""Every setting of the job read from the environment once, where the code location is built, and validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import pydantic

from pipeline.clouds.config import CloudSpec, CloudsFileError, read_clouds_file
from pipeline.defs.clouds import cloud_names, onapp_key
from pipeline.defs.resources import AlertsResource, ChecksResource, OnAppResource, ReportsResource, WarehouseResource

# The documented variables, each the field of one resource: (resource key, field).
VARIABLES: dict[str, tuple[str, str]] = {
    "ONAPP_API_URL": ("onapp", "api_url"),
    "ONAPP_API_USER": ("onapp", "user"),
    "ONAPP_API_KEY": ("onapp", "api_key"),
    "ONAPP_API_FORMAT": ("onapp", "api_format"),
    "ONAPP_MAX_CONCURRENCY": ("onapp", "max_concurrency"),
    "ONAPP_PER_PAGE": ("onapp", "per_page"),
    "ONAPP_MAX_PAGES": ("onapp", "max_pages"),
    "ONAPP_RETRIES": ("onapp", "retries"),
    "ONAPP_BACKOFF_FACTOR": ("onapp", "backoff_factor"),
    "ONAPP_BACKOFF_MAX": ("onapp", "backoff_max"),
    "ONAPP_BACKOFF_JITTER": ("onapp", "backoff_jitter"),
    "ONAPP_CONNECT_TIMEOUT": ("onapp", "connect_timeout"),
    "ONAPP_READ_TIMEOUT": ("onapp", "read_timeout"),
    "ONAPP_CA_BUNDLE": ("onapp", "ca_bundle"),
    "ONAPP_PROGRESS_SECONDS": ("onapp", "progress_seconds"),
    "ONAPP_MAX_RESPONSE_MB": ("onapp", "max_response_mb"),
    "ONAPP_REQUEST_DEADLINE": ("onapp", "request_deadline"),
    "BACKUPS_DB": ("warehouse", "path"),
    "BACKUPS_STAGING_DIR": ("warehouse", "staging_dir"),
    "BACKUPS_LOCK_TIMEOUT": ("warehouse", "lock_timeout_s"),
    "BACKUPS_MAX_FAILED_FRACTION": ("warehouse", "max_failed_fraction"),
    "BACKUPS_MAX_DELETED_FRACTION": ("warehouse", "max_deleted_fraction"),
    "BACKUPS_DUCKDB_MEMORY_LIMIT": ("warehouse", "memory_limit"),
    "BACKUPS_LOAD_THREADS": ("warehouse", "load_threads"),
    "BACKUPS_REPORTS_DIR": ("reports", "reports_dir"),
    "BACKUPS_EXPORT_FORMATS": ("reports", "export_formats"),
    "BACKUPS_FREE_GIB_MONTHS": ("reports", "free_gib_months"),
    "BACKUPS_PRICE_PER_GIB_MONTH": ("reports", "price_per_gib_month"),
    "BACKUPS_CURRENCY": ("reports", "currency"),
    "BACKUPS_PROTECTION_DAYS": ("reports", "protection_days"),
    "BACKUPS_ANOMALY_FACTOR": ("reports", "anomaly_factor"),
    "BACKUPS_ALERT_WEBHOOK_URL": ("alerts", "webhook_url"),
    "BACKUPS_ALERT_FULL_DAYS": ("alerts", "full_days"),
    "BACKUPS_MAX_SWING_PCT": ("checks", "max_swing_pct"),
    "BACKUPS_MAX_AGE_HOURS": ("checks", "max_age_hours"),
}
# The clouds, each with its URL, user, key variable, format and concurrency; without it, ONAPP_API_URL is one
# cloud named 'default' (pipeline.clouds.config).
CLOUDS_FILE = "BACKUPS_CLOUDS_FILE"
# What the clouds file says for each cloud: with it, these variables would be ignored, so they are refused.
_PER_CLOUD = ("ONAPP_API_URL", "ONAPP_API_USER", "ONAPP_API_KEY", "ONAPP_API_FORMAT")
# Comma-separated lists, split before validation.
_LISTS = {"BACKUPS_EXPORT_FORMATS"}
# Words folded to lower case: `XML` and `Parquet` mean what they say; and to upper case: `eur` is EUR.
_LOWERED = {"ONAPP_API_FORMAT", "BACKUPS_EXPORT_FORMATS"}
_UPPERED = {"BACKUPS_CURRENCY"}
# Values that are secrets: resolved when a run starts (never in the definitions) and never shown.
_SECRETS = {"ONAPP_API_KEY": ("onapp", "api_key"), "BACKUPS_ALERT_WEBHOOK_URL": ("alerts", "webhook_url")}
_RESOURCES = {"onapp": OnAppResource, "warehouse": WarehouseResource, "reports": ReportsResource,
              "alerts": AlertsResource, "checks": ChecksResource}


class SettingsError(ValueError):
    """A setting with a value the job cannot use; the message is one line naming the variable and value."""


@dataclass(frozen=True)
class ScheduleSettings:
    """When the job runs and how its API steps retry (definition-time settings, not resources)."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    step_retries: int = 2
    step_retry_delay_s: float = 30.0


class _ScheduleModel(pydantic.BaseModel):
    cron: str = pydantic.Field(min_length=1)
    timezone: str = pydantic.Field(min_length=1)
    step_retries: int = pydantic.Field(ge=0, le=100)
    step_retry_delay_s: float = pydantic.Field(ge=0, allow_inf_nan=False)


_SCHEDULE_VARIABLES = {
    "BACKUPS_SCHEDULE_CRON": "cron",
    "BACKUPS_SCHEDULE_TZ": "timezone",
    "BACKUPS_STEP_RETRIES": "step_retries",
    "BACKUPS_STEP_RETRY_DELAY": "step_retry_delay_s",
}


def _given(environ: Mapping[str, str], variable: str) -> str | None:
    raw = environ.get(variable)
    return None if raw is None or not raw.strip() else raw.strip()


def _value(variable: str, raw: str) -> Any:
    text = raw.lower() if variable in _LOWERED else raw.upper() if variable in _UPPERED else raw
    return [part.strip() for part in text.split(",") if part.strip()] if variable in _LISTS else text


def _fail(error: pydantic.ValidationError, variables: Mapping[str, str], environ: Mapping[str, str]) -> SettingsError:
    detail = error.errors()[0]
    field = str(detail["loc"][0]) if detail.get("loc") else ""
    variable = variables.get(field, field)
    shown = "(hidden)" if variable in _SECRETS else repr(environ.get(variable, ""))
    return SettingsError(f"{variable}={shown}: {detail['msg']}")


def build_resources(environ: Mapping[str, str]) -> dict[str, dg.ConfigurableResource]:
    """The job's resources from the environment: an OnApp resource per cloud of BACKUPS_CLOUDS_FILE, else one
    for ONAPP_API_URL, and without either the embedded demo cloud.

    Raises:
        SettingsError: a variable's value is out of bounds or of the wrong kind (the message names it).
    """
    fields: dict[str, dict[str, Any]] = {name: {} for name in _RESOURCES}
    for variable, (resource, field) in VARIABLES.items():
        raw = _given(environ, variable)
        if raw is not None:
            fields[resource][field] = _value(variable, raw)
    _check_webhook(fields["alerts"].get("webhook_url"))
    for variable, (resource, field) in _SECRETS.items():
        if field in fields[resource]:
            # Resolved when a run starts, so the secret never sits in the code location's definitions.
            fields[resource][field] = dg.EnvVar(variable)
    classes = dict(_RESOURCES)
    clouds_file = _given(environ, CLOUDS_FILE)
    if clouds_file is None and not fields["onapp"].get("api_url"):
        from pipeline.defs.demo_resource import DemoOnAppResource, demo_settings

        classes["onapp"] = DemoOnAppResource
        fields["onapp"]["demo"] = demo_settings(environ)
    if clouds_file is not None:
        del classes["onapp"]
    resources = {}
    for name, cls in classes.items():
        try:
            resources[name] = cls(**fields[name])
        except pydantic.ValidationError as error:
            raise _fail(error, _variables_of(name), environ) from None
    if clouds_file is None:
        _check_url(resources["onapp"])
    else:
        resources |= _cloud_resources(clouds_file, fields["onapp"], environ)
    # The checks judge the clouds configured now, not every cloud a warehouse has ever held.
    resources["checks"] = ChecksResource(**fields["checks"], clouds=cloud_names(resources))
    return resources


def _cloud_resources(clouds_file: str, shared: dict[str, Any], environ: Mapping[str, str]
                     ) -> dict[str, OnAppResource]:
    """One OnApp resource per cloud of the file: its own URL, user, key, format and concurrency, the rest shared."""
    given = [variable for variable in _PER_CLOUD if _given(environ, variable) is not None]
    if given:
        raise SettingsError(f"{CLOUDS_FILE} names each cloud's URL, user, key and format: {', '.join(given)} "
                            "would be ignored; remove them")
    try:
        clouds = read_clouds_file(clouds_file, environ)
    except CloudsFileError as error:
        raise SettingsError(str(error)) from None
    resources = {}
    for cloud in clouds:
        try:
            resources[onapp_key(cloud.name)] = OnAppResource(**(shared | _cloud_fields(cloud)))
        except pydantic.ValidationError as error:
            raise _fail(error, _variables_of("onapp"), environ) from None
    return resources


def _variables_of(resource: str) -> dict[str, str]:
    """The documented variables of one resource, by the field each sets: what an error names."""
    return {field: variable for variable, (name, field) in VARIABLES.items() if name == resource}


def _cloud_fields(cloud: CloudSpec) -> dict[str, Any]:
    """What the file says of a cloud, over the shared ONAPP_* fields: a max_concurrency it gives wins over
    ONAPP_MAX_CONCURRENCY. The key is resolved when a run starts, from the variable the file names."""
    fields = {"cloud": cloud.name, "api_url": cloud.url, "user": cloud.user, "api_key": dg.EnvVar(cloud.key_env),
              "api_format": cloud.api_format}
    if cloud.max_concurrency is not None:
        fields["max_concurrency"] = cloud.max_concurrency
    return fields


def _check_url(onapp: OnAppResource) -> None:
    if onapp.is_demo:
        return
    parts = urlsplit(onapp.api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"ONAPP_API_URL={onapp.api_url!r}: not an http(s) URL")
    if parts.password is not None or parts.username is not None:
        # Credentials in the URL would leak into every error message.
        raise SettingsError("ONAPP_API_URL carries credentials: put them in ONAPP_API_USER and ONAPP_API_KEY")


def _check_webhook(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # The URL may carry a token: the message never repeats it.
        raise SettingsError("BACKUPS_ALERT_WEBHOOK_URL=(hidden): not an http(s) URL")


def schedule_settings(environ: Mapping[str, str]) -> ScheduleSettings:
    """The schedule's cron and zone and the API steps' retry policy from the environment.

    Raises:
        SettingsError: a variable's value is out of bounds or of the wrong kind (the message names it).
    """
    values = {field: _given(environ, variable) for variable, field in _SCHEDULE_VARIABLES.items()}
    defaults = ScheduleSettings()
    given = {field: value if value is not None else getattr(defaults, field) for field, value in values.items()}
    try:
        model = _ScheduleModel(**given)
    except pydantic.ValidationError as error:
        raise _fail(error, {f: v for v, f in _SCHEDULE_VARIABLES.items()}, environ) from None
    return ScheduleSettings(**model.model_dump())
