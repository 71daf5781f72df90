"""The webhook's message: Slack-compatible `text` for people, and the `alerts` list for tools.

Ids are unique only within a cloud: each alert in `alerts` carries its cloud, and `text` names it before the
alert's message ("[eu] backup server 3 ..."), except for the default cloud, whose lines read as they did with
one cloud.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.alerts.conditions import KINDS
from pipeline.warehouse.connection import DEFAULT_CLOUD

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
    # Firing before resolved; a failed sync, then full servers, unprotected VMs, odd backups, whatever their
    # cloud (a message that cannot carry all carries the most urgent); then by cloud; ids as numbers.
    kind = KINDS.index(alert["kind"]) if alert["kind"] in KINDS else len(KINDS)
    key = alert["key"]
    return (alert["state"] != "firing", kind, alert["cloud"], not key.isdigit(), int(key) if key.isdigit() else 0,
            key)


def first_due(alerts: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The alerts one message carries: at most limit, firing ones first, in the order the message lists them."""
    if len(alerts) <= limit:
        return alerts
    ranked = sorted(range(len(alerts)), key=lambda i: _order({name: str(alerts[name].iloc[i])
                                                             for name in ("cloud", "kind", "key", "state")}))
    return alerts.iloc[ranked[:limit]]


def _line(alert: dict[str, str]) -> str:
    """One alert in `text`; the cloud named unless it is the default one."""
    cloud = "" if alert["cloud"] == DEFAULT_CLOUD else f"[{alert['cloud']}] "
    return _plain(f"{alert['state'].upper()} {alert['kind']} {alert['key']}: {cloud}{alert['message']}")


def payload(alerts: pd.DataFrame, *, left: int = 0) -> dict[str, Any]:
    """The JSON body of one POST: firing alerts first, then resolved ones, each with its cloud, kind and key.

    left: pending alerts this message does not carry (see first_due); the text says they follow.
    """
    listed = sorted(({"cloud": str(row.cloud), "kind": str(row.kind), "key": str(row.key), "state": str(row.state),
                      "message": str(row.message)} for row in alerts.itertuples(index=False)), key=_order)
    lines = [f"{TITLE}: {summary(alerts)}" + (f" ({left} more to follow with the next runs)" if left else "")]
    for alert in listed[:MAX_LINES]:
        lines.append(_line(alert))
    if len(listed) > MAX_LINES:
        lines.append(f"... and {len(listed) - MAX_LINES} more (see the alerts list)")
    return {"text": "\n".join(lines), "alerts": listed}
