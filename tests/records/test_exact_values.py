"""Integers stay exact, never through a float; values that cannot be stored are rejected with their reason."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.records.normalize import normalize_backups
from pipeline.records.reference import BACKUP_SERVER_FIELDS, VM_FIELDS, reference_frame

ABOVE_FLOAT = 2**53  # the first integer a float64 cannot tell from its neighbour


def normalized(records: list[dict], owner: int | None = None):
    return normalize_backups({1: records}, {1: owner})


def test_two_ids_above_2_53_stay_two_rows():
    result = normalized([{"id": ABOVE_FLOAT + 1, "backup_size": 1}, {"id": ABOVE_FLOAT + 2, "backup_size": 1}])
    assert result.rejects.empty
    assert result.frame["id"].tolist() == [ABOVE_FLOAT + 1, ABOVE_FLOAT + 2]


@pytest.mark.parametrize("other", [
    {"id": 7, "backup_size": "8"},              # text: the per-value path
    {"id": 7, "backup_size": 1.0},              # a float
    {"id": 7, "backup_size": 1, "built": "t"},  # the fast path gives way for one column only
])
def test_exact_beside_values_that_take_the_per_value_path(other):
    big = {"id": 2**62 + 1, "backup_size": 2**62 + 3, "user_id": ABOVE_FLOAT + 5}
    frame = normalized([big, other]).frame
    assert frame.loc[0, ["id", "backup_size", "owner_user_id"]].tolist() == [2**62 + 1, 2**62 + 3, ABOVE_FLOAT + 5]


@pytest.mark.parametrize(("sent", "stored"), [
    ("9007199254740993", ABOVE_FLOAT + 1), (" 8 ", 8), ("51.0", 51), ("5.1e1", 51), ("+3", 3), (2.0, 2),
    (-(2**63), -(2**63)), (2**63 - 1, 2**63 - 1), (str(2**63 - 1), 2**63 - 1),
])
def test_integers_in_any_spelling_are_exact(sent, stored):
    result = normalized([{"id": 1, "backup_size": 1, "disk_id": sent}])
    assert result.rejects.empty and result.frame["disk_id"].tolist() == [stored]


@pytest.mark.parametrize(("sent", "reason"), [
    (2**70, "disk_id is out of range (BIGINT)"),
    (2**63, "disk_id is out of range (BIGINT)"),
    (-(2**63) - 1, "disk_id is out of range (BIGINT)"),
    (str(2**70), "disk_id is out of range (BIGINT)"),
    ("1e30", "disk_id is out of range (BIGINT)"),
    (float(2**70), "disk_id is out of range (BIGINT)"),
    (True, "disk_id is not a valid int"),
    (False, "disk_id is not a valid int"),
    ("true", "disk_id is not a valid int"),
    (1.5, "disk_id is not a valid int"),
    (float(ABOVE_FLOAT + 2), "disk_id is not a valid int"),  # a float there may be a neighbour's id
    ("8.5", "disk_id is not a valid int"),
    ("0x10", "disk_id is not a valid int"),
    ("1_000", "disk_id is not a valid int"),
    ("9" * 5000, "disk_id is not a valid int"),
    ({"n": 1}, "disk_id is not a valid int"),
])
def test_integers_that_cannot_be_stored_exactly_are_rejected_never_rounded(sent, reason):
    result = normalized([{"id": 1, "backup_size": 1, "disk_id": sent}, {"id": 2, "backup_size": 1, "disk_id": 4}])
    assert result.rejects["reason"].tolist() == [reason]
    assert result.frame["disk_id"].tolist() == [4]


def test_a_boolean_is_not_an_id():
    result = normalized([{"id": True, "backup_size": 1}, {"id": 1, "backup_size": 2}])
    assert result.rejects["reason"].tolist() == ["id is not a valid int"]
    assert result.frame[["id", "backup_size"]].values.tolist() == [[1, 2]]


def test_a_lone_surrogate_rejects_its_record_with_the_reason():
    result = normalized([{"id": 1, "backup_size": 1, "note": "a\ud800b"}, {"id": 2, "backup_size": 1, "note": "ok"}])
    [reject] = result.rejects.to_dict("records")
    assert reject["reason"] == "note is not valid text (lone surrogate)"
    # Kept as visible text: a JSON column refuses the escape of a lone surrogate.
    assert json.loads(reject["raw_record"])["note"] == "a\\ud800b" and reject["raw_record"].isascii()
    assert result.frame["note"].tolist() == ["ok"]


@pytest.mark.parametrize(("field", "value"), [
    ("created_at", "2026-01-01T00:00:00\ud800"), ("built", "true\ud800"), ("id", "1\ud800"), ("backup_type", "\udfff"),
])
def test_a_lone_surrogate_anywhere_is_that_records_problem(field, value):
    result = normalized([{"id": 1, "backup_size": 1, field: value}, {"id": 2, "backup_size": 1}])
    assert len(result.rejects) == 1 and result.frame["id"].tolist() == [2]
    assert all(text.encode("utf-8") for text in result.rejects.astype(str).to_numpy().ravel())


def test_nested_values_and_unknown_keys_with_surrogates_stay_encodable():
    result = normalized([{"id": 1, "backup_size": 1, "weird\ud800": "x\udc00", "iqn": {"n": "\ud800"}}])
    assert result.rejects.empty
    assert result.frame["extra"][0].isascii() and result.frame["iqn"][0].isascii()


def test_a_timestamp_must_be_text():
    result = normalized([{"id": 1, "backup_size": 1, "created_at": 1700000000},
                         {"id": 2, "backup_size": 1, "created_at": {"at": "2026-01-01"}}])
    assert result.rejects["reason"].tolist() == ["created_at is not a valid timestamp"] * 2


def test_unknown_integer_fields_stay_exact_with_gaps():
    result = normalized([{"id": 1, "backup_size": 1, "chain_id": ABOVE_FLOAT + 1}, {"id": 2, "backup_size": 1}])
    assert json.loads(result.frame["extra"][0]) == {"chain_id": ABOVE_FLOAT + 1}
    assert pd.isna(result.frame["extra"][1])


def test_reference_lists_drop_unusable_ids_and_keep_labels_encodable():
    frame = reference_frame([{"id": True}, {"id": 2**70}, {"id": "x"}, {"id": ABOVE_FLOAT + 1, "label": "a\ud800"},
                             {"id": ABOVE_FLOAT + 2, "user_id": None}, {"id": "12"}], VM_FIELDS)
    assert frame["id"].tolist() == [ABOVE_FLOAT + 1, ABOVE_FLOAT + 2, 12]
    assert frame["label"].tolist()[0] == "a\\ud800"
    servers = reference_frame([{"id": 1, "capacity": 2**62 + 1, "enabled": "true"}], BACKUP_SERVER_FIELDS)
    assert servers["capacity"].tolist() == [2**62 + 1]
