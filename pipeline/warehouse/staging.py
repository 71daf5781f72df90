"""One run's staged data: typed Parquet files in a folder per run and cloud, read by that run's load alone."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.records.normalize import normalize_backups
from pipeline.records.reference import vm_owners
from pipeline.records.schema import frame_dtypes

# pandas' nullable dtypes as the Arrow types Parquet stores, so an empty or all-null part keeps its types.
_ARROW_OF_DTYPE = {
    "Int64": pa.int64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "datetime64[us, UTC]": pa.timestamp("us", tz="UTC"),
}
BACKUPS_SCHEMA = pa.schema([(name, _ARROW_OF_DTYPE[dtype]) for name, dtype in frame_dtypes().items()])
REJECTS_SCHEMA = pa.schema([
    ("virtual_machine_id", pa.int64()), ("backup_id", pa.string()), ("reason", pa.string()),
    ("raw_record", pa.string()),
])
# One VM's outcome as the fetch step records it: id, status, HTTP status, error kind, message.
VmStatus = tuple[int, str, int | None, str | None, str | None]
VM_STATUS_SCHEMA = pa.schema([
    ("virtual_machine_id", pa.int64()), ("status", pa.string()), ("http_status", pa.int64()),
    ("error_kind", pa.string()), ("message", pa.string()),
])

# A run folder older than this was left by a run that was killed; nothing will read it again.
STALE_AFTER_S = 7 * 24 * 3600


class StagingMissing(RuntimeError):
    """The load found no staged data of its own run (its fetch steps did not run in this run)."""


@dataclass(frozen=True)
class RunStaging:
    """The folder <root>/<run key>/<cloud>/ and the files in it; every path is this run's own."""

    root: Path
    run_key: str
    cloud: str

    @property
    def run_path(self) -> Path:
        """The run's folder: one folder per cloud in it, removed together by a stale-run purge."""
        return self.root / self.run_key

    @property
    def path(self) -> Path:
        return self.run_path / self.cloud

    # -- the VM list step --------------------------------------------------------------------------
    def write_listing(self, meta: dict[str, Any], vms: pd.DataFrame, users: pd.DataFrame | None,
                      backup_servers: pd.DataFrame | None) -> None:
        """Stage the VM list, the admin lists (None: not readable) and the listing's facts (time, source)."""
        listing = self.path / "listing"
        _reset(listing)
        vms.to_parquet(listing / "vms.parquet", index=False)
        if users is not None:
            users.to_parquet(listing / "users.parquet", index=False)
        if backup_servers is not None:
            backup_servers.to_parquet(listing / "backup_servers.parquet", index=False)
        _write_json(listing / "meta.json", meta)

    def listing_meta(self) -> dict[str, Any]:
        """What the VM list step recorded: listed_at, source, format, requests, retries."""
        meta = self.path / "listing" / "meta.json"
        if not meta.exists():
            raise StagingMissing(
                f"no VM list staged for this run in {self.path}: materialize the whole job "
                "(dagster asset materialize -m pipeline.definitions --select '*')"
            )
        return json.loads(meta.read_text(encoding="utf-8"))

    def vms(self) -> pd.DataFrame:
        """The staged VM list (typed reference columns)."""
        return pd.read_parquet(self.path / "listing" / "vms.parquet")

    def reference(self, name: str) -> pd.DataFrame | None:
        """The staged users or backup_servers list; None when the key could not read it."""
        path = self.path / "listing" / f"{name}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    # -- the backup lists step ---------------------------------------------------------------------
    def start_backups(self) -> BackupsWriter:
        """A writer of this run's backup parts; a retried step starts from an empty folder."""
        folder = self.path / "backups"
        _reset(folder)
        return BackupsWriter(folder)

    def backups_done(self) -> dict[str, Any]:
        """What the backup lists step recorded at its end; StagingMissing when it never finished."""
        done = self.path / "backups" / "done.json"
        if not done.exists():
            raise StagingMissing(f"the backup lists of this run were not staged completely in {self.path}")
        return json.loads(done.read_text(encoding="utf-8"))

    def backup_files(self) -> list[str]:
        """The Parquet parts of the normalized backups, in the order written."""
        return sorted(str(p) for p in (self.path / "backups").glob("part-*.parquet"))

    def reject_files(self) -> list[str]:
        return sorted(str(p) for p in (self.path / "backups").glob("rejects-*.parquet"))

    def vm_status_file(self) -> str:
        return str(self.path / "backups" / "vm_status.parquet")

    # -- a cloud that could not be read ----------------------------------------------------------
    def write_failure(self, meta: dict[str, Any]) -> None:
        """Mark this cloud as given up for the run (its failed ledger row is written): the load skips it."""
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "failed.json", meta)

    def failure(self) -> dict[str, Any] | None:
        """What write_failure recorded (message, source), or None when the cloud was read."""
        marker = self.path / "failed.json"
        return json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None

    def remove(self) -> None:
        """Delete this cloud's folder (its data is in the warehouse, or the run was superseded), and the
        run's folder once no cloud's is left in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.run_path.rmdir()
        except OSError:
            pass  # another cloud's staging is kept for diagnosis, or was never there


class BackupsWriter:
    """Appends normalized parts as they are made; finish() writes the VM statuses and marks the step done."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts = 0
        self.rows = 0
        self.rejected = 0

    def write_part(self, frame: pd.DataFrame, rejects: pd.DataFrame) -> None:
        """One batch of normalized backups and the records it set aside."""
        _write_table(pa.Table.from_pandas(frame, schema=BACKUPS_SCHEMA, preserve_index=False),
                     self.folder / f"part-{self.parts:05d}.parquet")
        if len(rejects):
            rejects = rejects.astype({"virtual_machine_id": "Int64", "backup_id": "string", "reason": "string",
                                      "raw_record": "string"})
            _write_table(pa.Table.from_pandas(rejects, schema=REJECTS_SCHEMA, preserve_index=False),
                         self.folder / f"rejects-{self.parts:05d}.parquet")
        self.parts += 1
        self.rows += len(frame)
        self.rejected += len(rejects)

    def finish(self, outcomes: Iterable[VmStatus], facts: dict[str, Any]) -> None:
        """Write every VM's outcome, an empty part if none was written, then the mark the load looks for."""
        if self.parts == 0:
            _write_table(BACKUPS_SCHEMA.empty_table(), self.folder / "part-00000.parquet")
        rows = [dict(zip(VM_STATUS_SCHEMA.names, outcome)) for outcome in outcomes]
        _write_table(pa.Table.from_pylist(rows, schema=VM_STATUS_SCHEMA), self.folder / "vm_status.parquet")
        _write_json(self.folder / "done.json", {**facts, "rows": self.rows, "rejected": self.rejected})


def purge_stale(root: Path, *, keep: str, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove run folders under root untouched for older_than_s (left by killed runs); never keep's."""
    removed = []
    if not root.is_dir():
        return removed
    cutoff = time.time() - older_than_s
    for folder in root.iterdir():
        if folder.name != keep and folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _reset(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _write_table(table: pa.Table, path: Path) -> None:
    # Written under a temporary name, then renamed: a killed step never leaves a part that looks whole.
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, default=str), encoding="utf-8")
    os.replace(tmp, path)


def stage_in_memory(staging: RunStaging, *, listed_at: datetime, source: str, api_format: str,
                    vms: pd.DataFrame, listings: dict[int, list[dict]],
                    users: pd.DataFrame | None = None, backup_servers: pd.DataFrame | None = None) -> None:
    """Stage a whole sync given at once (VM frame, each VM's records), every VM read 'ok'."""
    staging.write_listing({"listed_at": listed_at.isoformat(), "source": source, "format": api_format,
                           "requests": 0, "retries": 0}, vms, users, backup_servers)
    writer = staging.start_backups()
    result = normalize_backups(listings, vm_owners(vms))
    writer.write_part(result.frame, result.rejects)
    writer.finish([(int(vm_id), "ok", None, None, None) for vm_id in vms["id"]], {"requests": 0, "retries": 0})
