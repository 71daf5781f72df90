"""Turn raw backup records (JSON or XML, any API version) into one typed frame, setting aside the untrustworthy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.schema import (
    BACKUP_FIELDS,
    EXTRA_COLUMN,
    KNOWN_SOURCE_KEYS,
    PANDAS_DTYPES,
    Column,
    column_names,
    frame_dtypes,
)

REJECT_COLUMNS = ["virtual_machine_id", "backup_id", "reason", "raw_record"]

_BOOL_VALUES = {
    True: True, False: False, 1: True, 0: False,
    "true": True, "false": False, "1": True, "0": False, "t": True, "f": False,
}

# Before API 4.2 the auto-backup period rode in backup_type ("days-autobackup").
_AUTOBACKUP_SUFFIX = "-autobackup"


@dataclass
class NormalizedBackups:
    """The typed backups frame and the records set aside, each with its reason."""

    frame: pd.DataFrame
    rejects: pd.DataFrame


def empty_frame() -> pd.DataFrame:
    """A backups frame with no rows and every declared column and dtype."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in frame_dtypes().items()})


def normalize_backups(
    listings: Mapping[int, Sequence[dict]], vm_owners: Mapping[int, int | None]
) -> NormalizedBackups:
    """Normalize every listed backup into the declared schema.

    Args:
        listings: VM id -> the backup records its list returned (unwrapped, secrets stripped).
        vm_owners: VM id -> the VM's user_id, the owner of backups that carry none (API < 4.2).

    Returns:
        The frame (one row per listed record, in the order listed) and the rejects.
    """
    vm_ids = [vm_id for vm_id, records in listings.items() for _ in records]
    records = [record for records in listings.values() for record in records]
    if not records:
        return NormalizedBackups(empty_frame(), pd.DataFrame(columns=REJECT_COLUMNS))

    raw = pd.DataFrame.from_records(records)
    raw.index = pd.RangeIndex(len(raw))
    problems = pd.Series("", index=raw.index, dtype=object)
    out: dict[str, pd.Series] = {}
    for column in BACKUP_FIELDS:
        source = _first_present(raw, column)
        typed, bad = _convert(source, column)
        out[column.name] = typed
        problems = _add_problem(problems, bad, f"{column.name} is not a valid {column.kind}")
        if column.required:
            problems = _add_problem(problems, source.isna(), f"no {column.name}")
    problems = _add_problem(problems, out["backup_size"] < 0, "negative backup_size")

    _split_legacy_backup_type(out)
    vm_series = pd.Series(vm_ids, index=raw.index, dtype="Int64")
    owners = vm_series.map(lambda v: vm_owners.get(int(v))).astype("Int64")
    out["virtual_machine_id"] = vm_series
    out["owner_user_id"] = out["user_id"].fillna(owners)
    out[EXTRA_COLUMN] = _extra_json(raw)

    frame = pd.DataFrame(out, columns=column_names()).astype(frame_dtypes())
    rejected = problems != ""
    rejects = _rejects(raw, records, vm_ids, problems, rejected)
    frame = frame.loc[~rejected].reset_index(drop=True)
    return NormalizedBackups(frame, rejects)


def _first_present(raw: pd.DataFrame, column: Column) -> pd.Series:
    """The column's value from the first of its source keys the record has."""
    present = [raw[key] for key in column.keys if key in raw.columns]
    if not present:
        return pd.Series(None, index=raw.index, dtype=object)
    result = present[0].astype(object)
    for other in present[1:]:
        result = result.where(result.notna(), other.astype(object))
    return result


def _convert(source: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Cast one raw column to its declared kind; also return where a present value did not fit."""
    present = source.notna()
    if column.kind == "int":
        numbers = pd.to_numeric(source, errors="coerce")
        # Old APIs send integers as strings ("8", "51.0"): accept them when integral.
        integral = numbers.notna() & (numbers % 1 == 0)
        typed = numbers.where(integral).astype("Float64").astype("Int64")
        return typed, present & ~integral
    if column.kind == "bool":
        keys = source.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
        typed = keys.map(lambda v: _BOOL_VALUES.get(v) if _hashable(v) else None)
        return typed.astype("boolean"), present & typed.isna()
    if column.kind == "timestamp":
        typed = pd.to_datetime(source, utc=True, errors="coerce", format="ISO8601")
        return typed.astype("datetime64[us, UTC]"), present & typed.isna()
    text = source.map(lambda v: v if isinstance(v, str) or v is None else _text(v))
    return text.astype("string"), pd.Series(False, index=source.index)


def _hashable(value: object) -> bool:
    return isinstance(value, (str, bool, int, float)) or value is None


def _text(value: object) -> str | None:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _add_problem(problems: pd.Series, mask: pd.Series, reason: str) -> pd.Series:
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return problems
    joined = problems.where(problems == "", problems + "; ") + reason
    return problems.where(~mask, joined)


def _split_legacy_backup_type(out: dict[str, pd.Series]) -> None:
    """Map 'days-autobackup' to backup_type 'normal' with initiated 'days'."""
    backup_type = out["backup_type"].astype("string")
    legacy = backup_type.str.endswith(_AUTOBACKUP_SUFFIX).fillna(False)
    if not legacy.any():
        return
    period = backup_type.str.slice(stop=-len(_AUTOBACKUP_SUFFIX))
    out["initiated"] = out["initiated"].astype("string").where(
        ~legacy | out["initiated"].notna(), period
    )
    out["backup_type"] = backup_type.where(~legacy, "normal")


def _extra_json(raw: pd.DataFrame) -> pd.Series:
    """Fields the schema does not name, as one JSON object per row (NULL when there are none)."""
    unknown = [key for key in raw.columns if key not in KNOWN_SOURCE_KEYS]
    if not unknown:
        return pd.Series(None, index=raw.index, dtype="string")
    extras = raw[unknown].astype(object)
    has_any = extras.notna().any(axis=1)
    result = pd.Series(None, index=raw.index, dtype=object)
    rows = extras.loc[has_any].to_dict("records")
    result.loc[has_any] = [
        json.dumps({k: v for k, v in row.items() if not _missing(v)}, sort_keys=True, default=str)
        for row in rows
    ]
    return result.astype("string")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _rejects(
    raw: pd.DataFrame,
    records: Sequence[dict],
    vm_ids: Sequence[int],
    problems: pd.Series,
    rejected: pd.Series,
) -> pd.DataFrame:
    rows = []
    for position in np.flatnonzero(rejected.to_numpy()):
        record = records[position]
        backup_id = record.get("id")
        rows.append(
            {
                "virtual_machine_id": vm_ids[position],
                "backup_id": None if backup_id is None else str(backup_id),
                "reason": problems.iat[position],
                "raw_record": json.dumps(record, sort_keys=True, default=str),
            }
        )
    return pd.DataFrame(rows, columns=REJECT_COLUMNS)


# Reference lists (VMs, users, backup servers): the fields the warehouse keeps, nothing else.
VM_FIELDS = (
    Column("id", "int"), Column("identifier", "str"), Column("label", "str"),
    Column("hostname", "str"), Column("user_id", "int"),
)
USER_FIELDS = (
    Column("id", "int"), Column("login", "str"), Column("email", "str"),
    Column("first_name", "str"), Column("last_name", "str"), Column("status", "str"),
)
BACKUP_SERVER_FIELDS = (
    Column("id", "int"), Column("label", "str"), Column("ip_address", "str"),
    Column("capacity", "int"), Column("enabled", "bool"), Column("backup_server_group_id", "int"),
)


def reference_frame(records: Sequence[dict], fields: Sequence[Column]) -> pd.DataFrame:
    """A typed frame of the named fields; records whose id is missing or malformed are dropped."""
    raw = pd.DataFrame.from_records(list(records)) if records else pd.DataFrame()
    raw.index = pd.RangeIndex(len(raw))
    out = {}
    for column in fields:
        typed, _ = _convert(_first_present(raw, column), column)
        out[column.name] = typed.astype(PANDAS_DTYPES[column.kind])
    frame = pd.DataFrame(out, columns=[c.name for c in fields])
    return frame.loc[frame["id"].notna()].drop_duplicates(subset=["id"]).reset_index(drop=True)
