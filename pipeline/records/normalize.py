"""Turn raw backup records (JSON or XML, any API version) into one typed frame, setting aside the untrustworthy."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.records.reference import BACKUP_SERVER_FIELDS, USER_FIELDS, VM_FIELDS, reference_frame
from pipeline.records.schema import BACKUP_FIELDS, EXTRA_COLUMN, KNOWN_SOURCE_KEYS, Column, column_names, frame_dtypes
from pipeline.records.values import (
    NOT_TEXT,
    NOT_VALID,
    OUT_OF_RANGE,
    convert,
    escaped_text,
    json_text,
    source_values,
)

# The reference lists are read from here by the pipeline's wiring.
__all__ = [
    "BACKUP_SERVER_FIELDS", "USER_FIELDS", "VM_FIELDS", "NormalizedBackups", "empty_frame", "normalize_backups",
    "reference_frame",
]  # fmt: skip

REJECT_COLUMNS = ["virtual_machine_id", "backup_id", "reason", "raw_record"]

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
            # Values of unexpected types, or out of range: the per-value path decides.
            source = source_values(records, column)
            (typed, why), missing = convert(source, column), source.isna()
        else:
            typed, why, missing = converted
        if why is not None:
            for kind, reason in _reasons(column).items():
                problems = _add_problem(problems, why == kind, reason)
        out[column.name] = typed
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


# Arrow reads every source key in one pass over the records (a pass per column in Python was most
# of the time). Arrow would truncate a float into int64, so an integer key goes through Arrow only
# when it holds nothing but Python ints; any other key of an integer column, and a key past BIGINT,
# takes the per-value path.
_ARROW_KINDS = {"int": pa.int64(), "str": pa.large_string(), "bool": pa.bool_(), "timestamp": pa.large_string()}
_SOURCE_KEYS = [(key, c.kind) for c in BACKUP_FIELDS for key in c.keys]
_PLAIN_INT_TYPES = frozenset({int, type(None)})  # type(True) is bool: a boolean is not plain
_PANDAS_OF_ARROW = {pa.bool_(): pd.BooleanDtype(), pa.large_string(): pd.StringDtype()}.get
# Text Arrow cannot encode (a lone surrogate) fails the conversion like a wrong type.
_NOT_ARROW = (pa.ArrowException, OverflowError, UnicodeError)


def _reasons(column: Column) -> dict[str, str]:
    return {
        NOT_VALID: f"{column.name} is not a valid {column.kind}",
        OUT_OF_RANGE: f"{column.name} is out of range (BIGINT)",
        NOT_TEXT: f"{column.name} is not valid text (lone surrogate)",
    }


def _arrow_sources(records: Sequence[dict]) -> dict[str, pa.Array | None]:
    """Each source key's values as an Arrow array; None for a key whose values do not fit its kind."""
    arrays: dict[str, pa.Array | None] = dict.fromkeys(key for key, _ in _SOURCE_KEYS)
    usable = [
        (key, _ARROW_KINDS[kind]) for key, kind in _SOURCE_KEYS
        if kind != "int" or set(map(type, map(dict.get, records, repeat(key)))) <= _PLAIN_INT_TYPES
    ]  # fmt: skip
    source = pa.struct(usable)
    try:
        table = pa.array(records, type=source)
        return arrays | {field.name: table.field(field.name) for field in source}
    except _NOT_ARROW:
        pass
    for field in source:
        try:
            arrays[field.name] = pa.array(map(dict.get, records, repeat(field.name)), type=field.type)
        except _NOT_ARROW:
            arrays[field.name] = None
    return arrays


def _convert_arrow(
    arrays: Mapping[str, pa.Array | None], column: Column
) -> tuple[pd.Series, pd.Series | None, pd.Series] | None:
    """The column typed from Arrow, why values did not fit (None: all did), and its missing mask.

    None when the per-value path must decide.
    """
    found = [arrays[key] for key in column.keys]
    if any(array is None for array in found):
        return None
    array = found[0] if len(found) == 1 else pc.coalesce(*found)
    missing = pd.Series(array.is_null().to_numpy(zero_copy_only=False))
    if column.kind == "timestamp":
        # The same parser as the per-value path, on the same text: mixed offsets and 'Z' must agree.
        typed, why = convert(pd.Series(array.to_numpy(zero_copy_only=False), dtype=object), column)
        return typed, why, missing
    if column.kind == "int":
        values = array.fill_null(0).to_numpy()
        typed = pd.Series(pd.arrays.IntegerArray(values, missing.to_numpy(copy=True)))
    else:
        typed = array.to_pandas(types_mapper=_PANDAS_OF_ARROW)
    return typed, None, missing


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
    unknown = sorted(key for key in set().union(*records) if key not in KNOWN_SOURCE_KEYS)
    if not unknown:
        return result.astype("string")
    holds = np.zeros(len(records), dtype=bool)
    for key in unknown:
        holds |= np.fromiter(map(operator.contains, records, repeat(key)), dtype=bool, count=len(records))
    positions = np.flatnonzero(holds)
    # The values themselves, not a frame of them: a frame would turn an integer column with gaps into floats.
    rows = [tuple(map(records[position].get, unknown)) for position in positions]
    cache: dict = {}
    texts = [None if all(map(_missing, row)) else _extra_text(unknown, row, cache) for row in rows]
    result.iloc[positions] = texts
    return result.astype("string")


# Rows of these types alone render the same JSON whenever they are equal (0.0 and -0.0 do not).
_PLAIN_TYPES = frozenset({bool, int, str, type(None)})


def _extra_text(keys: list, row: tuple, cache: dict) -> str:
    """One row's unknown fields as JSON; most rows repeat a few values, so plain ones are cached."""
    kinds = tuple(map(type, row))
    plain = _PLAIN_TYPES.issuperset(kinds)
    if plain and (row, kinds) in cache:
        return cache[row, kinds]
    text = json_text({k: v for k, v in zip(keys, row) if not _missing(v)})
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
                "backup_id": None if backup_id is None else escaped_text(backup_id),
                "reason": problems.iat[position],
                "raw_record": json_text(record),
            }
        )
    return pd.DataFrame(rows, columns=REJECT_COLUMNS)
