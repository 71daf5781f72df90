"""Typing one raw column of API values, value by value: exact integers, booleans, timestamps, valid text."""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.records.schema import Column

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# A float holds every integer below this exactly; above it a float id may already be another id.
_FLOAT_EXACT = 2**53
_PLAIN_INT = re.compile(r"\s*[+-]?[0-9]{1,18}\s*")
_DECIMAL_INT = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\s*")

_BOOL_VALUES = {
    True: True, False: False, 1: True, 0: False,
    "true": True, "false": False, "1": True, "0": False, "t": True, "f": False,
}  # fmt: skip

# Why a value does not fit its column; "" when it does.
NOT_VALID, OUT_OF_RANGE, NOT_TEXT = "not_valid", "out_of_range", "not_text"


def source_values(records: Sequence[dict], column: Column) -> pd.Series:
    """The column's raw values as Python objects: from the first of its source keys a record has non-null."""
    keys = column.keys
    if len(keys) == 1:
        values = [record.get(keys[0]) for record in records]
    else:
        values = [next((record[k] for k in keys if not _missing(record.get(k))), None) for record in records]
    return pd.Series(values, index=pd.RangeIndex(len(values)), dtype=object)


def convert(source: pd.Series, column: Column) -> tuple[pd.Series, pd.Series | None]:
    """Cast one raw column to its declared kind; also return, per row, why a present value did not fit.

    The reasons are NOT_VALID, OUT_OF_RANGE or NOT_TEXT ("" where the value fit), or None when
    every value fit.

    Integers are exact (never through a float): ints, integral floats below 2**53, and text such
    as "8" or "51.0"; a boolean is not an integer, and a value outside BIGINT is out of range.
    Text that cannot be encoded (a lone surrogate) is kept escaped and marked ``not_text``.
    """
    present = source.notna()
    if column.kind == "int":
        digits = _digit_strings(source)
        if digits is not None:
            return digits, None
        pairs = [_int_of(value) if here else (None, "") for value, here in zip(source, present)]
        typed = pd.Series(pd.array([value for value, _ in pairs], dtype="Int64"), index=source.index)
        reasons = [why for _, why in pairs]
        return typed, pd.Series(reasons, index=source.index, dtype=object) if any(reasons) else None
    # Plain lists, not Series.map: pandas would infer an Arrow string column, which a lone surrogate breaks.
    if column.kind == "bool":
        keys = [v.strip().lower() if isinstance(v, str) else v for v in source]
        typed = pd.Series([_BOOL_VALUES.get(v) if _hashable(v) else None for v in keys], index=source.index,
                          dtype="boolean")
        return typed, _why(present & typed.isna(), NOT_VALID)
    if column.kind == "timestamp":
        # Only valid text is a timestamp: a number would silently become an instant in 1970.
        text = pd.Series([v if isinstance(v, str) and _encodes(v) else None for v in source], index=source.index,
                         dtype=object)
        typed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").astype("datetime64[us, UTC]")
        return typed, _why(present & typed.isna(), NOT_VALID)
    values = [None if _missing(v) else v if isinstance(v, str) else _text(v) for v in source]
    broken = [v is not None and not _encodes(v) for v in values]
    if any(broken):
        values = [escaped_text(v) if bad else v for v, bad in zip(values, broken)]
    return pd.Series(values, index=source.index, dtype="string"), _why(pd.Series(broken, index=source.index),
                                                                         NOT_TEXT)


def escaped_text(value: object) -> str:
    """``str(value)`` that always encodes as UTF-8: lone surrogates become backslash escapes."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def json_text(value: object) -> str:
    """JSON text a JSON column accepts: a lone surrogate (JSON escapes it, but DuckDB refuses it) is kept as text."""
    text = json.dumps(value, sort_keys=True, default=str)
    if "\\ud" not in text:  # every surrogate escape starts so; a false alarm only costs the walk below
        return text
    return json.dumps(_encodable(value), sort_keys=True, default=str)


def _encodable(value: object) -> object:
    # Records nest at most MAX_DEPTH containers (the client refuses deeper ones): recursion is bounded.
    if isinstance(value, str):
        return value if _encodes(value) else escaped_text(value)
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value


def _digit_strings(source: pd.Series) -> pd.Series | None:
    """Exact integers from a column of integer text (old APIs quote every number) in one Arrow cast.

    None when any value is not plain integer text: the per-value path then decides.
    """
    if pd.api.types.infer_dtype(source, skipna=True) != "string":
        return None
    try:
        text = pa.array(source.to_numpy(), type=pa.large_string(), from_pandas=True)
        numbers = pc.cast(text, pa.int64())  # refuses "51.0", " 8" and anything past BIGINT
    except (pa.ArrowException, UnicodeError):
        return None
    return pd.Series(numbers.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), index=source.index)


def _int_of(value: object) -> tuple[int | None, str]:
    if isinstance(value, bool):
        return None, NOT_VALID
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, float):
        if not value.is_integer():
            return None, NOT_VALID
        if abs(value) >= _FLOAT_EXACT:
            return None, OUT_OF_RANGE if not BIGINT_MIN <= value <= BIGINT_MAX else NOT_VALID
        number = int(value)
    elif isinstance(value, str) and _PLAIN_INT.fullmatch(value):
        number = int(value)
    elif isinstance(value, str) and len(value) <= 64 and _DECIMAL_INT.fullmatch(value):
        # "51.0" (old APIs) is exact in Decimal, and compared with BIGINT before any int is built.
        try:
            exact = Decimal(value.strip())
            if exact != exact.to_integral_value():
                return None, NOT_VALID
        except (InvalidOperation, ArithmeticError):
            return None, NOT_VALID
        if not BIGINT_MIN <= exact <= BIGINT_MAX:
            return None, OUT_OF_RANGE
        number = int(exact)
    else:
        return None, NOT_VALID
    if not BIGINT_MIN <= number <= BIGINT_MAX:
        return None, OUT_OF_RANGE
    return number, ""


def _why(mask: pd.Series, reason: str) -> pd.Series | None:
    mask = mask.fillna(False).astype(bool)
    return pd.Series(reason, index=mask.index, dtype=object).where(mask, "") if mask.any() else None


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _hashable(value: object) -> bool:
    return isinstance(value, (str, bool, int, float)) or value is None


def _encodes(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
