"""What every materialization and check shows in the Dagster UI: markdown previews of frames."""

import dagster as dg
import pandas as pd


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows of a frame as a markdown table for the Dagster UI; missing values are blank."""
    if not len(frame):
        return dg.MetadataValue.md("(no rows)")
    head = frame.head(rows).astype(object)
    # tabulate blanks only None: NaN, NA and NaT would print as 'nan', '<NA>' and 'NaT'.
    cells = head.where(head.notna(), None)
    return dg.MetadataValue.md(cells.to_markdown(index=False, missingval=""))


def settings_table(settings: dict[str, object]) -> dg.MetadataValue:
    """Effective settings (never a secret: callers leave keys out) as a two-column markdown table."""
    rows = "\n".join(f"| {name} | {value} |" for name, value in sorted(settings.items()))
    return dg.MetadataValue.md(f"| setting | value |\n|---|---|\n{rows}")
