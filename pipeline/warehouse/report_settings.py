"""The prices and thresholds the report views apply, kept in the warehouse's one-row report_settings table.

The views are plain SQL that anyone may query over the warehouse file, so they read these settings from
the warehouse, not from the job: each sync's load writes them beside its data, and both publish together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import duckdb

from pipeline.warehouse.sql_files import run_sql

# The columns' types (sql/migrations/008_create_report_settings.sql): DECIMAL(18, 6) and DECIMAL(18, 9).
# A value they cannot hold exactly is refused, never rounded.
FREE_GIB_MONTHS_PLACES = 6
PRICE_PLACES = 9
_DIGITS = 18


def exact_decimal(text: str, places: int) -> Decimal:
    """A finite decimal ≥ 0 with at most `places` decimals that the settings' columns hold exactly.

    Raises:
        ValueError: text is not such a number; the message says why, without repeating it.
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ValueError("must be a finite number greater than or equal to 0")
    if value != 0 and -value.normalize().as_tuple().exponent > places:
        raise ValueError(f"must have at most {places} decimal places")
    if value >= Decimal(10) ** (_DIGITS - places):
        raise ValueError(f"must be less than {Decimal(10) ** (_DIGITS - places):f}")
    return value


def plain_decimal(text: str, places: int) -> str:
    """exact_decimal's value written out in full ("10", not "1E+1"): the form DuckDB's cast to DECIMAL reads.

    Raises:
        ValueError: as exact_decimal.
    """
    return format(exact_decimal(text, places), "f")


@dataclass(frozen=True)
class ReportSettings:
    """What the views apply: the free allowance, the price (None: no amounts), currency and thresholds."""

    free_gib_months: Decimal = Decimal(0)
    price_per_gib_month: Decimal | None = None
    currency: str = "USD"
    protection_days: float = 7.0
    anomaly_factor: float = 3.0


def write_report_settings(con: duckdb.DuckDBPyConnection, settings: ReportSettings, updated_at: datetime) -> None:
    """Replace the report_settings row with these settings, checked exact first.

    Raises:
        ValueError: a decimal the table cannot hold exactly (the resource refuses those at start).
    """
    price = settings.price_per_gib_month
    params = {
        # As text: the cast in the SQL is exact once checked, where a bound Decimal's type varies with it.
        "free_gib_months": plain_decimal(format(settings.free_gib_months, "f"), FREE_GIB_MONTHS_PLACES),
        "price_per_gib_month": None if price is None else plain_decimal(format(price, "f"), PRICE_PLACES),
        "currency": settings.currency,
        "protection_days": float(settings.protection_days),
        "anomaly_factor": float(settings.anomaly_factor),
        "updated_at": updated_at,
    }
    run_sql(con, "write_report_settings.sql", params)
