"""The report_settings table: its defaults before any write, one typed row, decimals kept exact or refused."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.report_settings import (
    FREE_GIB_MONTHS_PLACES,
    PRICE_PLACES,
    ReportSettings,
    exact_decimal,
    write_report_settings,
)

WRITTEN_AT = datetime(2024, 3, 10, 12, tzinfo=timezone.utc)


def test_a_new_warehouse_holds_the_default_settings_in_typed_columns(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as con:
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE report_settings)").fetchall())
        rows = con.execute("SELECT * EXCLUDE (only_row) FROM report_settings").fetchall()
    assert types == {"only_row": "BOOLEAN", "free_gib_months": "DECIMAL(18,6)", "price_per_gib_month": "DECIMAL(18,9)",
                     "currency": "VARCHAR", "protection_days": "DOUBLE", "anomaly_factor": "DOUBLE",
                     "updated_at": "TIMESTAMP WITH TIME ZONE"}
    defaults = ReportSettings()
    assert rows == [(defaults.free_gib_months, defaults.price_per_gib_month, defaults.currency,
                     defaults.protection_days, defaults.anomaly_factor, None)]


def test_a_write_replaces_the_one_row_with_exact_decimals(tmp_path):
    settings = ReportSettings(free_gib_months=Decimal("123456789012.345678"),
                              price_per_gib_month=Decimal("999999999.000000001"), currency="EUR",
                              protection_days=2.5, anomaly_factor=1.25)
    with open_warehouse(tmp_path / "w.duckdb") as con:
        write_report_settings(con, ReportSettings(price_per_gib_month=Decimal("1")), WRITTEN_AT)
        write_report_settings(con, settings, WRITTEN_AT)
        rows = con.execute("SELECT * FROM report_settings").fetchall()
        with pytest.raises(Exception, match="CHECK|[Cc]onstraint"):
            con.execute("INSERT INTO report_settings VALUES (false, 0, NULL, 'USD', 7, 3, NULL)")
    assert rows == [(True, Decimal("123456789012.345678"), Decimal("999999999.000000001"), "EUR", 2.5, 1.25,
                     WRITTEN_AT)]


@pytest.mark.parametrize(
    ("text", "places", "message"),
    [
        ("0.0000000001", PRICE_PLACES, "at most 9 decimal places"),
        ("0.0000001", FREE_GIB_MONTHS_PLACES, "at most 6 decimal places"),
        ("1000000000", PRICE_PLACES, "less than 1000000000"),
        ("1e12", FREE_GIB_MONTHS_PLACES, "less than 1000000000000"),
        ("-0.01", PRICE_PLACES, "greater than or equal to 0"),
        ("NaN", PRICE_PLACES, "finite"),
        ("0,05", PRICE_PLACES, "not a decimal number"),
    ],
)
def test_a_decimal_the_table_cannot_hold_exactly_is_refused_not_rounded(tmp_path, text, places, message):
    with pytest.raises(ValueError, match=message):
        exact_decimal(text, places)
    if places == PRICE_PLACES and "decimal places" in message:
        with open_warehouse(tmp_path / "w.duckdb") as con, pytest.raises(ValueError, match=message):
            write_report_settings(con, ReportSettings(price_per_gib_month=Decimal(text)), WRITTEN_AT)


def test_trailing_zeros_and_exponents_are_not_extra_places():
    assert exact_decimal(" 0.050000000000 ", PRICE_PLACES) == Decimal("0.05")
    assert exact_decimal("1E+3", FREE_GIB_MONTHS_PLACES) == 1000
    assert exact_decimal("999999999.999999999", PRICE_PLACES) == Decimal("999999999.999999999")
