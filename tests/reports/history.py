"""A real warehouse file filled with a history a test chooses: syncs, users, VMs, backup servers, backups and
storage snapshots of one cloud or several, with the timestamps and sizes it picks, so every figure of a report
can be worked out by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import duckdb

from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.report_settings import ReportSettings, write_report_settings

GIB_KB = 1024**2
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def half_up(value: Fraction, places: int) -> Decimal:
    """An exact fraction rounded half up to a number of decimals, as a Decimal of that scale."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)  # 28 digits: plenty before rounding
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class History:
    """Rows of one cloud written straight into a warehouse migrated by the project's own connection code."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cloud: str = "default") -> None:
        self.con = con
        self.cloud = cloud
        self._runs = 0

    def in_cloud(self, cloud: str) -> History:
        """The same warehouse, writing another cloud's rows (its ids may repeat this one's)."""
        return History(self.con, cloud)

    def sync(self, at: datetime, status: str = "ok") -> str:
        """A ledger row: a sync that read its VM list at `at`; its run id."""
        self._runs += 1
        run_id = f"run-{self._runs}"
        self.con.execute(
            "INSERT INTO sync_runs (cloud, run_id, started_at, finished_at, source_url, format, status) "
            "VALUES (?, ?, ?, ?, 'https://cp.example.com', 'json', ?)",
            [self.cloud, run_id, at, at + timedelta(minutes=5), status],
        )
        return run_id

    def user(self, user_id: int, login: str) -> None:
        self.con.execute("INSERT INTO users (cloud, id, login, synced_at) VALUES (?, ?, ?, ?)",
                         [self.cloud, user_id, login, utc(2024, 1, 1)])

    def vm(self, vm_id: int, label: str, user_id: int | None, deleted_at: datetime | None = None) -> None:
        self.con.execute(
            "INSERT INTO virtual_machines (cloud, id, label, user_id, first_seen_at, last_seen_at, deleted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [self.cloud, vm_id, label, user_id, utc(2024, 1, 1), utc(2024, 1, 1), deleted_at])

    def server(self, server_id: int, label: str, capacity: int | None) -> None:
        """A backup server of capacity GB (read as GiB)."""
        self.con.execute("INSERT INTO backup_servers (cloud, id, label, capacity, synced_at) VALUES (?, ?, ?, ?, ?)",
                         [self.cloud, server_id, label, capacity, utc(2024, 1, 1)])

    def snapshot(self, at: datetime, dimension: str, key: int | None, storage_kb: int, backups: int = 1,
                 run_id: str = "r") -> None:
        """A storage_history row: what a sync at `at` found on a backup server or of a user."""
        self.con.execute(
            "INSERT INTO storage_history (cloud, run_id, synced_at, dimension, key, backups, storage_kb) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [self.cloud, run_id, at, dimension, key, backups, storage_kb])

    def backup(self, backup_id: int, *, created_at: datetime | None, vm: int = 1, owner: int | None = None,
               size: int | None = GIB_KB, deleted_at: datetime | None = None,
               first_seen_at: datetime | None = None, built: bool | None = True, built_at: datetime | None = None,
               backup_type: str | None = "normal", marked_for_delete: bool = False,
               backup_server_id: int | None = None) -> None:
        """A backup row; first seen when created unless told otherwise."""
        seen = first_seen_at or created_at
        assert seen is not None, "a backup without created_at needs first_seen_at"
        self.con.execute(
            "INSERT INTO backups (cloud, id, backup_size, backup_server_id, backup_type, marked_for_delete, built, "
            "built_at, created_at, virtual_machine_id, owner_user_id, first_seen_at, last_seen_at, deleted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.cloud, backup_id, size, backup_server_id, backup_type, marked_for_delete, built, built_at,
             created_at, vm, owner, seen, seen, deleted_at],
        )

    def settings(self, **fields: object) -> None:
        """The report settings a load would write (the defaults for every field not given)."""
        write_report_settings(self.con, ReportSettings(**fields), utc(2024, 1, 1))

    def columns(self, view: str) -> list[str]:
        """A view's column names, in order."""
        return [name for name, *_ in self.con.execute(f"DESCRIBE {view}").fetchall()]

    def rows(self, view: str) -> list[tuple]:
        """Every row of a view as Python values (exact Decimals, UTC datetimes), in the view's order."""
        return self.con.execute(f"SELECT * FROM {view}").fetchall()  # noqa: S608 - a test's own view name


@contextmanager
def history(path: Path, cloud: str = "default") -> Iterator[History]:
    """An empty warehouse at path, migrated, open for writing for the block; rows go to cloud unless told."""
    with open_warehouse(path) as con:
        yield History(con, cloud)


def read_view(path: Path, fill: Callable[[History], None], view: str, **settings: object) -> tuple[list[str], list]:
    """A view's columns and rows over the history fill writes (in the default cloud), with these report settings
    (else the defaults)."""
    with history(path) as h:
        fill(h)
        if settings:
            h.settings(**settings)
        return h.columns(view), h.rows(view)
