"""The reference lists (VMs, users, backup servers) as typed frames of the fields the warehouse keeps."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.records.schema import PANDAS_DTYPES, Column
from pipeline.records.values import convert, source_values

VM_FIELDS = (
    Column("id", "int"), Column("identifier", "str"), Column("label", "str"),
    Column("hostname", "str"), Column("user_id", "int"),
)  # fmt: skip
USER_FIELDS = (
    Column("id", "int"), Column("login", "str"), Column("email", "str"),
    Column("first_name", "str"), Column("last_name", "str"), Column("status", "str"),
)  # fmt: skip
BACKUP_SERVER_FIELDS = (
    Column("id", "int"), Column("label", "str"), Column("ip_address", "str"),
    Column("capacity", "int"), Column("enabled", "bool"), Column("backup_server_group_id", "int"),
)  # fmt: skip


def reference_frame(records: Sequence[dict], fields: Sequence[Column]) -> pd.DataFrame:
    """A typed frame of the named fields; records whose id is missing or malformed are dropped.

    Integers are exact (an id outside BIGINT or a boolean id counts as malformed); text that
    cannot be encoded keeps its lone surrogates as backslash escapes, since a label is shown,
    not trusted. A field that does not fit is left empty.
    """
    out = {}
    for column in fields:
        typed, _ = convert(source_values(records, column), column)
        out[column.name] = typed.astype(PANDAS_DTYPES[column.kind])
    frame = pd.DataFrame(out, columns=[c.name for c in fields])
    return frame.loc[frame["id"].notna()].drop_duplicates(subset=["id"]).reset_index(drop=True)


def vm_owners(vms: pd.DataFrame) -> dict[int, int | None]:
    """VM id -> its owner's user id (None when unknown), from a typed VM list."""
    return dict(zip(vms["id"].astype(int), vms["user_id"].astype(object).where(vms["user_id"].notna(), None)))
