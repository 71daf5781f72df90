"""The webhook's message: Slack-compatible `text` for people, and the `alerts` list for tools."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.alerts.conditions import KINDS

# Lines of `text` listing alerts: a chat shows a long message folded, and the full list is in `alerts`.
MAX_LINES = 20
TITLE = "OnApp backups"


def _plain(text: str) -> str:
    """One line that Slack shows as written: control characters and newlines become spaces, and &, <, >
    are escaped, so a VM label such as <!channel> never pings a channel or forges a link."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(alerts: pd.DataFrame) -> str:
    """'2 alerts firing, 1 resolved' for the alerts a message carries."""
    firing = int((alerts["state"] == "firing").sum())
    resolved = len(alerts) - firing
    parts = [f"{firing} alert{'s' if firing != 1 else ''} firing"] if firing else []
    parts += [f"{resolved} resolved"] if resolved else []
    return ", ".join(parts) or "nothing new"


def _order(alert: dict[str, str]) -> tuple:
    # Firing before resolved; a failed sync, then full servers, unprotected VMs, odd backups; ids as numbers.
    kind = KINDS.index(alert["kind"]) if alert["kind"] in KINDS else len(KINDS)
    key = alert["key"]
    return alert["state"] != "firing", kind, not key.isdigit(), int(key) if key.isdigit() else 0, key


def first_due(alerts: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The alerts one message carries: at most limit, firing ones first, in the order the message lists them."""
    if len(alerts) <= limit:
        return alerts
    ranked = sorted(range(len(alerts)), key=lambda i: _order({name: str(alerts[name].iloc[i])
                                                             for name in ("kind", "key", "state")}))
    return alerts.iloc[ranked[:limit]]


def payload(alerts: pd.DataFrame, *, left: int = 0) -> dict[str, Any]:
    """The JSON body of one POST: firing alerts first, then resolved ones, each with its kind and key.

    left: pending alerts this message does not carry (see first_due); the text says they follow.
    """
    listed = sorted(({"kind": str(row.kind), "key": str(row.key), "state": str(row.state), "message": str(row.message)}
                     for row in alerts.itertuples(index=False)), key=_order)
    lines = [f"{TITLE}: {summary(alerts)}" + (f" ({left} more to follow with the next runs)" if left else "")]
    for alert in listed[:MAX_LINES]:
        lines.append(_plain(f"{alert['state'].upper()} {alert['kind']} {alert['key']}: {alert['message']}"))
    if len(listed) > MAX_LINES:
        lines.append(f"... and {len(listed) - MAX_LINES} more (see the alerts list)")
    return {"text": "\n".join(lines), "alerts": listed}
