"""What every materialization and check shows in the Dagster UI: markdown previews of frames."""

import dagster as dg
import pandas as pd


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows of a frame as a markdown table for the Dagster UI."""
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "(no rows)")
