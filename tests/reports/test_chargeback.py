"""chargeback_by_user_month over a known history: a month boundary, a leap-year February, bad input,
prices, free allowance and rounding, each figure worked out by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pipeline.reports.export import read_report
from tests.reports.history import DAY, GIB_KB, HOUR, History, history, read_view, utc

AS_OF = utc(2024, 3, 10, 12)  # the latest loaded sync; the wall clock is years later
COLUMNS = ["cloud", "user_id", "user_login", "month", "backups", "gib_hours", "gib_months", "billable_gib_months",
           "amount", "currency", "as_of"]


def _known_history(h: History) -> None:
    # Only loaded syncs set "as of": an earlier ok one, the partial one at AS_OF, then a failed one.
    h.sync(utc(2024, 3, 1), "ok")
    h.sync(AS_OF, "partial")
    h.sync(utc(2024, 3, 20), "failed")
    h.sync(utc(2024, 3, 21), "superseded")
    h.user(1, "alice")
    h.user(2, "bob")
    h.user(3, "carol")
    # alice: A (2 GiB) across the January/February boundary, 6 h each side; B (1 GiB) from 15 February,
    # still current; F of 0 kB.
    h.backup(1, owner=1, size=2 * GIB_KB, created_at=utc(2024, 1, 31, 18), deleted_at=utc(2024, 2, 1, 6))
    h.backup(2, owner=1, size=GIB_KB, created_at=utc(2024, 2, 15))
    h.backup(6, owner=1, size=0, created_at=utc(2024, 3, 1))
    # bob: C of 1000 kB for 28.5 days of February; D without created_at, first seen 1 March; E deleted
    # before it was created (first seen 1 March, gone 2 March); K (1 GiB) from 23:00 on 31 December to
    # 01:00 on 1 March, so every hour of January and of the leap February.
    h.backup(3, owner=2, size=1000, created_at=utc(2024, 2, 1), deleted_at=utc(2024, 2, 29, 12))
    h.backup(4, owner=2, size=GIB_KB, created_at=None, first_seen_at=utc(2024, 3, 1))
    h.backup(5, owner=2, size=GIB_KB, created_at=utc(2024, 3, 5), first_seen_at=utc(2024, 3, 1),
             deleted_at=utc(2024, 3, 2))
    h.backup(11, owner=2, size=GIB_KB, created_at=utc(2023, 12, 31, 23), deleted_at=utc(2024, 3, 1, 1))
    # carol: I deleted before created and first seen after its deletion too: an empty life.
    h.backup(9, owner=3, size=GIB_KB, created_at=utc(2024, 3, 4), first_seen_at=utc(2024, 3, 4),
             deleted_at=utc(2024, 3, 3))
    # G with no owner (1 GiB, the last day); H (0.5 GiB, the last 12 h) of a user /users did not list.
    h.backup(7, owner=None, size=GIB_KB, created_at=AS_OF - DAY)
    h.backup(8, owner=99, size=GIB_KB // 2, created_at=AS_OF - 12 * HOUR)


# By hand: GiB-hours = GiB x hours in the month; GiB-months = GiB-hours / (24 x days of the month):
# 744 h in December, January and March, 696 h in February 2024. Both rounded half up to 6 decimals.
FIGURES = [
    # user, login, month, backups, gib_hours, gib_months
    (2, "bob", "2023-12", 1, D("1.000000"), D("0.001344")),        # K 1 h; 1/744 = 0.0013440...
    (1, "alice", "2024-01", 1, D("12.000000"), D("0.016129")),     # A 2 GiB x 6 h; 12/744 = 0.0161290...
    (2, "bob", "2024-01", 1, D("744.000000"), D("1.000000")),      # K the whole month
    (1, "alice", "2024-02", 2, D("372.000000"), D("0.534483")),    # A 2 x 6 + B 1 x 360; 372/696 = 0.5344827...
    # C 1000 kB x 684 h = 0.652313232421875 GiB-hours, + K 696; 696.652313.../696 = 1.00093723...
    (2, "bob", "2024-02", 2, D("696.652313"), D("1.000937")),
    (1, "alice", "2024-03", 2, D("228.000000"), D("0.306452")),    # B 1 x 228 (to as of), F 0; 228/744
    (2, "bob", "2024-03", 3, D("253.000000"), D("0.340054")),      # D 228 + E 24 + K 1; 253/744 = 0.3400537...
    (3, "carol", "2024-03", 1, D("0.000000"), D("0.000000")),      # I: counted, nothing billed
    (99, None, "2024-03", 1, D("6.000000"), D("0.008065")),        # H 0.5 x 12; 6/744 = 0.0080645...
    (None, None, "2024-03", 1, D("24.000000"), D("0.032258")),     # G 1 x 24; 24/744 = 0.0322580...
]


def test_every_row_of_a_known_history_with_the_default_settings(tmp_path):
    columns, got = read_view(tmp_path / "w.duckdb", _known_history, "chargeback_by_user_month")
    assert columns == COLUMNS
    # Default settings: nothing free, no price (no amount), USD.
    assert got == [("default", *figures, figures[5], None, "USD", AS_OF) for figures in FIGURES]


def test_prices_free_allowance_and_currency_come_from_the_settings(tmp_path):
    _, got = read_view(tmp_path / "w.duckdb", _known_history, "chargeback_by_user_month",
                       free_gib_months=D("0.25"), price_per_gib_month=D("1.25"), currency="EUR")
    # billable = max(gib_months - 0.25, 0); amount = billable x 1.25, rounded half up to cents.
    billable_and_amount = [
        (D("0.000000"), D("0.00")),
        (D("0.000000"), D("0.00")),
        (D("0.750000"), D("0.94")),   # 0.9375
        (D("0.284483"), D("0.36")),   # 0.35560375
        (D("0.750937"), D("0.94")),   # 0.93867125
        (D("0.056452"), D("0.07")),   # 0.070565
        (D("0.090054"), D("0.11")),   # 0.1125675
        (D("0.000000"), D("0.00")),
        (D("0.000000"), D("0.00")),
        (D("0.000000"), D("0.00")),
    ]
    assert got == [("default", *figures, billable, amount, "EUR", AS_OF)
                   for figures, (billable, amount) in zip(FIGURES, billable_and_amount)]


@pytest.mark.parametrize(
    ("free", "price", "amount"),
    [
        ("0", "0.015", "0.02"),        # a float 0.015 is 0.01499...: it would round down
        ("0", "0.125", "0.13"),        # half up, not to even
        ("0", "0.004999999", "0.00"),  # nine decimals kept
        ("0", "0.005", "0.01"),
        ("0.5", "0.01", "0.01"),       # 0.5 x 0.01 = 0.005
        ("1", "5", "0.00"),
        ("2.5", "5", "0.00"),          # more free than used: billable 0, never below
    ],
)
def test_amounts_are_exact_decimals_rounded_half_up_to_cents(tmp_path, free, price, amount):
    # One GiB for exactly the leap February: 696 GiB-hours, 1 GiB-month; nothing spills into March.
    with history(tmp_path / "w.duckdb") as h:
        h.sync(utc(2024, 3, 1))
        h.user(1, "alice")
        h.backup(1, owner=1, created_at=utc(2024, 2, 1), deleted_at=utc(2024, 3, 1))
        h.settings(free_gib_months=D(free), price_per_gib_month=D(price))
        [row] = h.rows("chargeback_by_user_month")
        [frame_amount] = read_report(h.con, "chargeback_by_user_month")["amount"]
    billable = max(D("1.000000") - D(free), D(0))
    assert row == ("default", 1, "alice", "2024-02", 1, D("696.000000"), D("1.000000"), billable, D(amount), "USD",
                   utc(2024, 3, 1))
    assert str(row[8]) == amount and str(frame_amount) == amount  # the export reads the exact Decimal


def test_months_are_utc_months_whatever_the_session_time_zone(tmp_path):
    with history(tmp_path / "w.duckdb") as h:
        _known_history(h)
        in_utc = h.rows("chargeback_by_user_month")
        for zone in ("Pacific/Auckland", "America/Los_Angeles"):
            h.con.execute(f"SET TimeZone = '{zone}'")
            assert h.rows("chargeback_by_user_month") == in_utc


def test_nothing_is_billed_before_a_sync_has_loaded(tmp_path):
    # Without a loaded sync there is no "as of"; the wall clock never stands in for it.
    with history(tmp_path / "w.duckdb") as h:
        h.sync(utc(2024, 3, 1), "failed")
        h.backup(1, owner=1, created_at=utc(2024, 2, 1))
        assert h.rows("chargeback_by_user_month") == []
        h.sync(utc(2024, 2, 1, 2))
        assert h.rows("chargeback_by_user_month") == [
            ("default", 1, None, "2024-02", 1, D("2.000000"), D("0.002874"), D("0.002874"), None, "USD", utc(2024, 2, 1, 2))]
