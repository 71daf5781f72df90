"""Every setting is typed and bounded: a bad value stops the code location with one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.defs.settings import VARIABLES, SettingsError, build_resources, schedule_settings
from tests.conftest import ROOT, cli_environment

BAD_VALUES = {
    "ONAPP_API_URL": "ftp://cp.example.com",
    "ONAPP_API_FORMAT": "jsno",
    "ONAPP_MAX_CONCURRENCY": "0",
    "ONAPP_PER_PAGE": "ten",
    "ONAPP_MAX_PAGES": "-1",
    "ONAPP_RETRIES": "lots",
    "ONAPP_BACKOFF_FACTOR": "-0.5",
    "ONAPP_BACKOFF_MAX": "inf",
    "ONAPP_BACKOFF_JITTER": "nan",
    "ONAPP_CONNECT_TIMEOUT": "0",
    "ONAPP_READ_TIMEOUT": "thirty",
    "ONAPP_PROGRESS_SECONDS": "-5",
    "ONAPP_MAX_RESPONSE_MB": "0",
    "ONAPP_REQUEST_DEADLINE": "inf",
    "BACKUPS_LOCK_TIMEOUT": "soon",
    "BACKUPS_MAX_FAILED_FRACTION": "1.5",
    "BACKUPS_MAX_DELETED_FRACTION": "-0.1",
    "BACKUPS_DUCKDB_MEMORY_LIMIT": "lots",
    "BACKUPS_LOAD_THREADS": "0",
    "BACKUPS_EXPORT_FORMATS": "csv,xlsx",
    "BACKUPS_MAX_SWING_PCT": "-1",
    "BACKUPS_MAX_AGE_HOURS": "0",
    "BACKUPS_FREE_GIB_MONTHS": "-1",
    "BACKUPS_PRICE_PER_GIB_MONTH": "0,05",
    "BACKUPS_CURRENCY": "dollars",
    "BACKUPS_PROTECTION_DAYS": "0",
    "BACKUPS_ANOMALY_FACTOR": "1",
    "BACKUPS_ALERT_FULL_DAYS": "nan",
}
# Secrets: a bad value is refused without repeating it.
SECRET_BAD = {"BACKUPS_ALERT_WEBHOOK_URL": "hooks.example.com/T0KEN-in-the-path"}
# Free text: any string is a value (a path, a user name, a key).
FREE_TEXT = {"ONAPP_API_USER", "ONAPP_API_KEY", "ONAPP_CA_BUNDLE", "BACKUPS_DB", "BACKUPS_STAGING_DIR",
             "BACKUPS_REPORTS_DIR"}
SCHEDULE_BAD = {
    "BACKUPS_STEP_RETRIES": "two",
    "BACKUPS_STEP_RETRY_DELAY": "-30",
    "BACKUPS_SCHEDULE_CRON": " ",  # blank is unset; a real typo is checked when the schedule is built
}


def test_every_variable_is_either_bounded_or_free_text():
    assert set(BAD_VALUES) | FREE_TEXT | set(SECRET_BAD) == set(VARIABLES)


@pytest.mark.parametrize(("variable", "value"), sorted(SECRET_BAD.items()))
def test_a_bad_secret_is_refused_without_showing_it(variable, value):
    with pytest.raises(SettingsError) as error:
        build_resources({variable: value})
    assert str(error.value).startswith(f"{variable}=(hidden): ") and "T0KEN" not in str(error.value)


def test_prices_stay_decimals_and_currencies_upper_case():
    reports = build_resources({"BACKUPS_PRICE_PER_GIB_MONTH": " 0.0500 ", "BACKUPS_FREE_GIB_MONTHS": "1e1",
                               "BACKUPS_CURRENCY": "eur"})["reports"]
    assert (reports.price_per_gib_month, reports.free_gib_months, reports.currency) == ("0.0500", "10", "EUR")
    assert build_resources({})["reports"].price_per_gib_month == ""


def test_the_webhook_url_is_resolved_when_a_run_starts_not_kept_in_the_definitions(monkeypatch):
    monkeypatch.setenv("BACKUPS_ALERT_WEBHOOK_URL", "https://hooks.example.com/T0KEN")
    alerts = build_resources({"BACKUPS_ALERT_WEBHOOK_URL": "https://hooks.example.com/T0KEN"})["alerts"]
    assert "T0KEN" not in repr(alerts.dict()) and "T0KEN" not in repr(alerts.shown())


@pytest.mark.parametrize(("variable", "value"), sorted(BAD_VALUES.items()))
def test_a_bad_value_is_refused_naming_the_variable_and_the_value(variable, value):
    environ = {"ONAPP_API_URL": "https://cp.example.com", variable: value}
    with pytest.raises(SettingsError) as error:
        build_resources(environ)
    message = str(error.value)
    assert message.startswith(f"{variable}=") and repr(value) in message and "\n" not in message


@pytest.mark.parametrize(("variable", "value"), sorted(v for v in SCHEDULE_BAD.items() if v[1].strip()))
def test_a_bad_schedule_value_is_refused_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=f"^{variable}="):
        schedule_settings({variable: value})


def test_a_bad_demo_value_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="DEMO_CLOUD_VMS='-3'"):
        build_resources({"DEMO_CLOUD_VMS": "-3"})


def test_the_key_is_never_shown_in_a_refusal():
    with pytest.raises(SettingsError) as error:
        build_resources({"ONAPP_API_URL": "https://user:s3cr3t-key@cp.example.com"})
    assert "s3cr3t-key" not in str(error.value)


def test_values_are_read_as_typed_fields():
    resources = build_resources({
        "ONAPP_API_URL": "https://cp.example.com/", "ONAPP_API_FORMAT": "XML", "ONAPP_MAX_CONCURRENCY": "3",
        "ONAPP_RETRIES": "0", "ONAPP_PER_PAGE": "", "BACKUPS_EXPORT_FORMATS": " Parquet , csv,parquet",
        "BACKUPS_MAX_FAILED_FRACTION": "0.25",
    })
    onapp = resources["onapp"]
    # "0" is a value, not "unset"; an empty variable keeps the default.
    assert (onapp.api_format, onapp.max_concurrency, onapp.retries, onapp.per_page) == ("xml", 3, 0, 100)
    assert onapp.source == "https://cp.example.com"
    assert resources["reports"].export_formats == ["parquet", "csv"]
    assert resources["warehouse"].max_failed_fraction == 0.25


def test_without_a_url_the_job_syncs_the_demo_cloud():
    onapp = build_resources({"DEMO_CLOUD_VMS": "7"})["onapp"]
    assert onapp.is_demo and onapp.demo["vms"] == 7


@pytest.mark.slow
def test_make_run_refuses_a_bad_value_before_any_request(cloud, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.run"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=cli_environment(tmp_path, cloud, ONAPP_RETRIES="-1"),
    )
    assert run.returncode == 2
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert lines == ["error: ONAPP_RETRIES='-1': Input should be greater than or equal to 0"]
    assert cloud.stats["requests"] == 0
    assert not (tmp_path / "backups.duckdb").exists()
