"""The declared schema holds whatever the API omitted or spelled differently."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.records.normalize import normalize_backups
from pipeline.records.schema import column_names, frame_dtypes


def one(record: dict, owner: int | None = 9) -> pd.DataFrame:
    result = normalize_backups({1: [record]}, {1: owner})
    assert result.rejects.empty, result.rejects.to_dict("records")
    return result.frame


def test_an_empty_sync_still_has_every_column_and_dtype():
    frame = normalize_backups({}, {}).frame
    assert list(frame.columns) == column_names()
    assert frame.dtypes.astype(str).to_dict() == frame_dtypes()


def test_a_sparse_record_gets_the_declared_dtypes():
    # An API that sends only id and size must not change the frame's shape or types.
    frame = one({"id": 1, "backup_size": 2})
    assert frame.dtypes.astype(str).to_dict() == frame_dtypes()
    assert frame["marked_for_delete"].isna().all() and frame["owner_user_id"].tolist() == [9]


@pytest.mark.parametrize(
    ("field", "sent", "stored"),
    [
        # Old APIs send numbers as strings, sometimes with a decimal part.
        ("backup_size", "8", 8),
        ("min_disk_size", "51.0", 51),
        # Booleans as text (XML without type attributes).
        ("marked_for_delete", "true", True),
        ("locked", "0", False),
        # Timestamps with offsets are stored as the instant.
        ("created_at", "2013-12-24T14:34:06+03:00", pd.Timestamp("2013-12-24T11:34:06Z")),
        ("built_at", "2024-05-01T00:00:00Z", pd.Timestamp("2024-05-01T00:00:00Z")),
        # The docs' spelling and the payloads' spelling of one flag.
        ("allow_resize_without_reboot", True, True),
    ],
)
def test_quirky_values_are_typed(field, sent, stored):
    frame = one({"id": 1, "backup_size": 1, field: sent})
    column = "allowed_resize_without_reboot" if field.startswith("allow_") else field
    assert frame[column][0] == stored


def test_the_user_id_of_the_backup_wins_over_the_vm_owner():
    assert one({"id": 1, "backup_size": 1, "user_id": 5}, owner=9)["owner_user_id"].tolist() == [5]
    assert one({"id": 1, "backup_size": 1}, owner=9)["owner_user_id"].tolist() == [9]


@pytest.mark.parametrize(("sent", "backup_type", "initiated"), [
    ("days-autobackup", "normal", "days"),
    ("months-autobackup", "normal", "months"),
    ("incremental", "incremental", None),
])
def test_old_autobackup_types_split_into_type_and_period(sent, backup_type, initiated):
    frame = one({"id": 1, "backup_size": 1, "backup_type": sent})
    assert frame["backup_type"][0] == backup_type
    if initiated is None:
        assert pd.isna(frame["initiated"][0])
    else:
        assert frame["initiated"][0] == initiated


@pytest.mark.parametrize(("record", "reason"), [
    ({"id": 1, "backup_size": "8.5"}, "backup_size is not a valid int"),
    ({"id": 1, "backup_size": 1, "built": "maybe"}, "built is not a valid bool"),
    ({"id": 1}, "no backup_size"),
    ({"backup_size": -1}, "no id; negative backup_size"),
])
def test_untrustworthy_records_carry_every_reason(record, reason):
    result = normalize_backups({3: [record, {"id": 2, "backup_size": 1}]}, {3: None})
    assert result.rejects["reason"].tolist() == [reason]
    assert result.frame["id"].tolist() == [2]
