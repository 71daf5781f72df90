"""Turn raw backup records (JSON or XML, any API version) into one typed frame, setting aside the untrustworthy."""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.records.schema import (
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
    listed = {vm_id: records for vm_id, records in listings.items() if len(records)}
    records = [record for records in listed.values() for record in records]
    if not records:
        return NormalizedBackups(empty_frame(), pd.DataFrame(columns=REJECT_COLUMNS))

    index = pd.RangeIndex(len(records))
    arrays = _arrow_sources(records)
    problems = pd.Series("", index=index, dtype=object)
    out: dict[str, pd.Series] = {}
    for column in BACKUP_FIELDS:
        converted = _convert_arrow(arrays, column)
        if converted is None:
            # Values of unexpected types: the per-value path decides exactly as it always did.
            source = _first_present(_raw_frame(records, list(column.keys)), column)
            typed, bad = _convert(source, column)
            missing = source.isna()
        else:
            (typed, bad), missing = converted
        out[column.name] = typed
        problems = _add_problem(problems, bad, f"{column.name} is not a valid {column.kind}")
        if column.required:
            problems = _add_problem(problems, missing, f"no {column.name}")
    del arrays
    problems = _add_problem(problems, out["backup_size"] < 0, "negative backup_size")

    _split_legacy_backup_type(out)
    # Per VM, then repeated over its records: a lookup per record is a second per call.
    vm_series = pd.Series(list(listed), dtype="Int64")
    owners = vm_series.map(lambda v: vm_owners.get(int(v))).astype("Int64")
    positions = np.repeat(np.arange(len(listed)), [len(records) for records in listed.values()])
    out["virtual_machine_id"] = vm_series.take(positions).set_axis(index)
    out["owner_user_id"] = out["user_id"].fillna(owners.take(positions).set_axis(index))
    out[EXTRA_COLUMN] = _extra_json(records)

    frame = pd.DataFrame(out, columns=column_names()).astype(frame_dtypes())
    rejected = problems != ""
    rejects = _rejects(records, out["virtual_machine_id"], problems, rejected)
    if rejected.any():  # a copy of a million rows only when some must go
        frame = frame.loc[~rejected].reset_index(drop=True)
    return NormalizedBackups(frame, rejects)


# Arrow reads every source key in one pass over the records (a pass per column in Python was
# most of the time). Integers go through float64 as pd.to_numeric did, and only come out when
# every value is whole and within 2**53, where that is exact; other values take the old path.
_ARROW_KINDS = {"int": pa.float64(), "str": pa.large_string(), "bool": pa.bool_(), "timestamp": pa.large_string()}
_ARROW_SOURCE = pa.struct([(key, _ARROW_KINDS[c.kind]) for c in BACKUP_FIELDS for key in c.keys])
_EXACT_INT = 2.0**53
_PANDAS_OF_ARROW = {pa.bool_(): pd.BooleanDtype(), pa.large_string(): pd.StringDtype()}.get


def _arrow_sources(records: Sequence[dict]) -> dict[str, pa.Array | None]:
    """Each source key's values as an Arrow array; None for a key whose values do not fit its kind."""
    try:
        table = pa.array(records, type=_ARROW_SOURCE)
        return {field.name: table.field(field.name) for field in _ARROW_SOURCE}
    except (pa.ArrowException, OverflowError):
        pass
    arrays: dict[str, pa.Array | None] = {}
    for field in _ARROW_SOURCE:
        try:
            arrays[field.name] = pa.array(map(dict.get, records, repeat(field.name)), type=field.type)
        except (pa.ArrowException, OverflowError):
            arrays[field.name] = None
    return arrays


def _convert_arrow(
    arrays: Mapping[str, pa.Array | None], column: Column
) -> tuple[tuple[pd.Series, pd.Series], pd.Series] | None:
    """The column typed from Arrow, with its bad and missing masks; None when the old path must decide."""
    found = [arrays[key] for key in column.keys]
    if any(array is None for array in found):
        return None
    array = found[0] if len(found) == 1 else pc.coalesce(*found)
    missing = pd.Series(array.is_null().to_numpy(zero_copy_only=False))
    if column.kind == "timestamp":
        # The same parser as before, on the same text: mixed offsets and 'Z' must agree.
        source = pd.Series(array.to_numpy(zero_copy_only=False), dtype=object)
        return _convert(source, column), missing
    if column.kind == "int":
        values = array.fill_null(0).to_numpy()
        if not (np.isfinite(values).all() and (values == np.trunc(values)).all()
                and np.abs(values).max(initial=0) <= _EXACT_INT):
            return None
        typed = pd.Series(pd.arrays.IntegerArray(values.astype(np.int64), missing.to_numpy(copy=True)))
    else:
        typed = array.to_pandas(types_mapper=_PANDAS_OF_ARROW)
    return (typed, pd.Series(False, index=typed.index)), missing


def _raw_frame(records: Sequence[dict], keys: list[str]) -> pd.DataFrame:
    """The records' values under these keys, as DataFrame.from_records types them."""
    raw = pd.DataFrame.from_records(records, columns=keys)
    raw.index = pd.RangeIndex(len(raw))
    return raw


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


def _extra_json(records: Sequence[dict]) -> pd.Series:
    """Fields the schema does not name, as one JSON object per row (NULL when there are none)."""
    result = pd.Series(None, index=pd.RangeIndex(len(records)), dtype=object)
    unknown = [key for key in set().union(*records) if key not in KNOWN_SOURCE_KEYS]
    if not unknown:
        return result.astype("string")
    holds = np.zeros(len(records), dtype=bool)
    for key in unknown:
        holds |= np.fromiter(map(operator.contains, records, repeat(key)), dtype=bool, count=len(records))
    positions = np.flatnonzero(holds)
    subset = [records[position] for position in positions]
    if len(subset) < len(records):
        # In a frame of all records the others are NaN there; one empty record types the columns alike.
        subset.append({})
    extras = _raw_frame(subset, unknown).astype(object)
    has_any = extras.notna().any(axis=1).to_numpy()[: len(positions)]
    columns = [extras[key].to_numpy()[: len(positions)][has_any] for key in unknown]
    cache: dict = {}
    result.iloc[positions[has_any]] = [_extra_text(unknown, row, cache) for row in zip(*columns)]
    return result.astype("string")


# Rows of these types alone render the same JSON whenever they are equal (0.0 and -0.0 do not).
_PLAIN_TYPES = frozenset({bool, int, str, type(None)})


def _extra_text(keys: list, row: tuple, cache: dict) -> str:
    """One row's unknown fields as JSON; most rows repeat a few values, so plain ones are cached."""
    kinds = tuple(map(type, row))
    plain = _PLAIN_TYPES.issuperset(kinds)
    if plain and (row, kinds) in cache:
        return cache[row, kinds]
    text = json.dumps({k: v for k, v in zip(keys, row) if not _missing(v)}, sort_keys=True, default=str)
    if plain:
        cache[row, kinds] = text
    return text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _rejects(
    records: Sequence[dict],
    vm_ids: pd.Series,
    problems: pd.Series,
    rejected: pd.Series,
) -> pd.DataFrame:
    rows = []
    for position in np.flatnonzero(rejected.to_numpy()):
        record = records[position]
        backup_id = record.get("id")
        rows.append(
            {
                "virtual_machine_id": int(vm_ids.iat[position]),
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
