"""The demo cloud's settings: fleet size, credentials and fault knobs, with their DEMO_CLOUD_* variables."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields


class _ConfigError(ValueError):
    """A config field out of range; carries the field so from_env can name its variable."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


@dataclass(frozen=True)
class DemoCloudConfig:
    """The simulated cloud's size (used once, to build the fleet) and its serving behaviour."""

    vms: int = 300
    backups_per_vm: int = 4
    backup_servers: int = 4
    users: int = 25
    seed: int = 7
    user: str = "demo"
    api_key: str = "demo-api-key"
    latency_ms: float = 0.0
    fail_429_fraction: float = 0.0
    retry_after: str = "0"
    fail_5xx_fraction: float = 0.0
    truncated_fraction: float = 0.0
    html_fraction: float = 0.0
    page_size_cap: int | None = None
    default_per_page: int = 100
    ignore_page: bool = False
    pagination_headers: bool = True
    vanish_fraction: float = 0.0
    failing_vm_ids: frozenset[int] = frozenset()
    admin_refused: bool = False
    legacy_api: bool = False

    def __post_init__(self) -> None:
        # Fail at construction rather than as a puzzling 500 in the middle of a sync.
        object.__setattr__(self, "failing_vm_ids", frozenset(int(i) for i in self.failing_vm_ids))
        for name in ("vms", "backups_per_vm", "backup_servers"):
            if getattr(self, name) < 0:
                raise _ConfigError(name, "must be >= 0")
        for name in ("users", "default_per_page"):
            if getattr(self, name) < 1:
                raise _ConfigError(name, "must be >= 1")
        if self.page_size_cap is not None and self.page_size_cap < 1:
            raise _ConfigError("page_size_cap", "must be >= 1 (or unset for no cap)")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise _ConfigError("latency_ms", "must be a finite number >= 0")
        for f in dataclass_fields(self):
            if f.name.endswith("_fraction") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise _ConfigError(f.name, "must be between 0 and 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DemoCloudConfig:
        """Build a config from DEMO_CLOUD_* variables (os.environ by default); unset or empty ones keep their default."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        raw_of: dict[str, tuple[str, str]] = {}
        for name, var, _flag, parse in KNOBS:
            raw = environ.get(var)
            if raw is None or not raw.strip():
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"{var}={raw!r} is malformed: {exc}") from None
            raw_of[name] = (var, raw)
        try:
            return cls(**values)
        except _ConfigError as exc:
            var, raw = raw_of[exc.field]
            raise ValueError(f"{var}={raw!r} is out of range: {exc}") from None


def _integer(text: str) -> int:
    return int(text.strip())


def _number(text: str) -> float:
    return float(text.strip())


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/true/yes/on or 0/false/no/off")


def _id_list(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


# field, environment variable, command-line flag, parser of the variable's text.
KNOBS: tuple[tuple[str, str, str, Callable[[str], object]], ...] = (
    ("vms", "DEMO_CLOUD_VMS", "--vms", _integer),
    ("backups_per_vm", "DEMO_CLOUD_BACKUPS_PER_VM", "--backups-per-vm", _integer),
    ("backup_servers", "DEMO_CLOUD_BACKUP_SERVERS", "--backup-servers", _integer),
    ("users", "DEMO_CLOUD_USERS", "--users", _integer),
    ("seed", "DEMO_CLOUD_SEED", "--seed", _integer),
    ("user", "DEMO_CLOUD_USER", "--user", str),
    ("api_key", "DEMO_CLOUD_API_KEY", "--api-key", str),
    ("latency_ms", "DEMO_CLOUD_LATENCY_MS", "--latency-ms", _number),
    ("fail_429_fraction", "DEMO_CLOUD_FAIL_429", "--fail-429", _number),
    ("retry_after", "DEMO_CLOUD_RETRY_AFTER", "--retry-after", str),
    ("fail_5xx_fraction", "DEMO_CLOUD_FAIL_5XX", "--fail-5xx", _number),
    ("truncated_fraction", "DEMO_CLOUD_TRUNCATED", "--truncated", _number),
    ("html_fraction", "DEMO_CLOUD_HTML", "--html", _number),
    ("page_size_cap", "DEMO_CLOUD_PAGE_CAP", "--page-cap", _integer),
    ("default_per_page", "DEMO_CLOUD_DEFAULT_PER_PAGE", "--default-per-page", _integer),
    ("ignore_page", "DEMO_CLOUD_IGNORE_PAGE", "--ignore-page", _flag),
    # The variable turns headers off, so its value is the negation of the field.
    ("pagination_headers", "DEMO_CLOUD_NO_PAGINATION_HEADERS", "--pagination-headers", lambda t: not _flag(t)),
    ("vanish_fraction", "DEMO_CLOUD_VANISH", "--vanish", _number),
    ("failing_vm_ids", "DEMO_CLOUD_FAILING_VMS", "--failing-vms", _id_list),
    ("admin_refused", "DEMO_CLOUD_ADMIN_REFUSED", "--admin-refused", _flag),
    ("legacy_api", "DEMO_CLOUD_LEGACY_API", "--legacy-api", _flag),
)
