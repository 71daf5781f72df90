"""The markdown preview in the Dagster UI: missing values are blank cells, never 'nan', '<NA>' or 'NaT'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.defs.metadata import preview
from pipeline.reports.export import REPORTS
from tests.conftest import run_failure_text

MISSING_WORDS = {"nan", "<NA>", "NaT", "None"}


def table(markdown: str) -> list[list[str]]:
    """The cells of a markdown table, header first, without the rule under the header."""
    lines = markdown.splitlines()
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in [lines[0], *lines[2:]]]


def test_missing_values_of_every_kind_are_blank_and_present_ones_unchanged():
    frame = pd.DataFrame({
        "id": pd.array([3, None], dtype="Int64"),
        "label": pd.array(["backup-server-03", None], dtype="string"),
        "capacity_gib": [1500.0, np.nan],
        "note": ["x", None],
        "day": pd.to_datetime(["2026-03-09", None]),
        "backups": [35, 13],
    })
    assert table(preview(frame).value) == [
        ["id", "label", "capacity_gib", "note", "day", "backups"],
        ["3", "backup-server-03", "1500", "x", "2026-03-09 00:00:00", "35"],
        ["", "", "", "", "", "13"],
    ]


def test_an_empty_frame_says_so():
    assert preview(pd.DataFrame({"id": []})).value == "(no rows)"


def test_the_no_backup_server_row_previews_with_blanks(harness):
    result = harness.run()
    assert result.success, run_failure_text(result)
    previews = {event.asset_key.to_user_string(): event.materialization.metadata["preview"].value
                for event in result.get_asset_materialization_events()
                if event.asset_key.to_user_string() in REPORTS}
    for name, markdown in previews.items():
        cells = {cell for row in table(markdown) for cell in row} if markdown != "(no rows)" else set()
        assert not cells & MISSING_WORDS, name
    [header, *rows] = table(previews["storage_by_backup_server"])
    [nobody] = [cells for cells in (dict(zip(header, row)) for row in rows) if cells["backup_server_id"] == ""]
    assert (nobody["backup_server_label"], nobody["capacity_gib"], nobody["used_pct"]) == ("", "", "")
    assert int(nobody["backups"]) > 0 and float(nobody["storage_gib"]) > 0
