"""The declared schema of a backup row: every column, its type and the API keys it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["int", "str", "bool", "timestamp"]

# pandas dtypes per kind: nullable ones, so a field the API omitted is <NA>, never a float NaN.
PANDAS_DTYPES: dict[str, str] = {
    "int": "Int64",
    "str": "string",
    "bool": "boolean",
    "timestamp": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class Column:
    """One column of the backups frame and table."""

    name: str
    kind: Kind
    # API keys read for this column, first present wins (payloads disagree on some spellings).
    sources: tuple[str, ...] = ()
    # A record whose value here is missing cannot be trusted and is set aside.
    required: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return self.sources or (self.name,)


# The fields of GET /virtual_machines/:id/backups/images, under their API names.
BACKUP_FIELDS: tuple[Column, ...] = (
    Column("id", "int", required=True),
    Column("identifier", "str"),
    Column("backup_size", "int", required=True),  # kB
    Column("backup_server_id", "int"),
    Column("backup_type", "str"),
    Column("target_type", "str"),
    Column("target_id", "int"),
    Column("disk_id", "int"),
    Column("initiated", "str"),
    Column("image_type", "str"),
    Column("marked_for_delete", "bool"),
    Column("built", "bool"),
    Column("built_at", "timestamp"),
    Column("created_at", "timestamp"),
    Column("updated_at", "timestamp"),
    Column("locked", "bool"),
    Column("user_id", "int"),
    Column("template_id", "int"),
    Column("volume_id", "int"),
    Column("iqn", "str"),
    Column("note", "str"),
    Column("data_store_type", "str"),
    Column("min_disk_size", "int"),  # GB
    Column("min_memory_size", "int"),  # MB
    Column("operating_system", "str"),
    Column("operating_system_distro", "str"),
    Column("allowed_hot_migrate", "bool"),
    Column("allowed_swap", "bool"),
    # The docs say allowed_resize_without_reboot, real payloads allow_resize_without_reboot.
    Column(
        "allowed_resize_without_reboot",
        "bool",
        sources=("allowed_resize_without_reboot", "allow_resize_without_reboot"),
    ),
)

# Columns the sync adds: where the backup was listed and who owns it.
DERIVED_FIELDS: tuple[Column, ...] = (
    Column("virtual_machine_id", "int", required=True),
    # user_id when the payload has it (API 4.2+), else the owner of the VM that lists it.
    Column("owner_user_id", "int"),
)

FRAME_COLUMNS: tuple[Column, ...] = BACKUP_FIELDS + DERIVED_FIELDS

# Unknown API fields are kept, as one JSON text, rather than dropped.
EXTRA_COLUMN = "extra"

KNOWN_SOURCE_KEYS: frozenset[str] = frozenset(k for c in BACKUP_FIELDS for k in c.keys)


def frame_dtypes() -> dict[str, str]:
    """The pandas dtype of every column of the normalized frame, in order."""
    dtypes = {c.name: PANDAS_DTYPES[c.kind] for c in FRAME_COLUMNS}
    dtypes[EXTRA_COLUMN] = "string"
    return dtypes


def column_names() -> list[str]:
    """The normalized frame's columns, in table order."""
    return [c.name for c in FRAME_COLUMNS] + [EXTRA_COLUMN]
