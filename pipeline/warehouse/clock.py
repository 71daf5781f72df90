"""The warehouse's one clock: every timestamp it records is an instant in UTC."""

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current instant in UTC."""
    return datetime.now(timezone.utc)
