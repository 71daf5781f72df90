"""A simulated OnApp cloud API (VMs, backups, users, backup servers) served over real HTTP on loopback."""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import logging
import math
import os
import random
import signal
import socket
import ssl
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pipeline.demo import render

log = logging.getLogger("pipeline.demo")


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
        for name, var, _flag, parse in _KNOBS:
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
_KNOBS: tuple[tuple[str, str, str, Callable[[str], object]], ...] = (
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

# A fixed "now": fleet content must never depend on the clock.
_BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Control panels report in their own zone; mixing the forms exercises the client's parser.
_ZONES = ("+03:00", "+00:00", "Z")
_FIRST_NAMES = ("Anna", "Boris", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia")
_LAST_NAMES = ("Novak", "Müller", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Ueda")
_VM_ROLES = ("web", "db", "mail", "app", "cache", "vpn", "build", "files")
_DISTROS = {"linux": ("ubuntu", "debian", "centos", "rhel", "almalinux"), "windows": ("2019", "2022")}
# Notes a spreadsheet would execute as formulas if an export does not neutralize them.
_NOTES = (
    "before kernel upgrade",
    '=HYPERLINK("http://x")',
    "+1 nightly dump",
    "@SUM(1+1)",
    "-keep until audit",
    "pre-migration snapshot",
)
_SECRET_ALPHABET = string.ascii_letters + string.digits + "!#%&*-_"


# Built once: a new timezone per timestamp was a fifth of building a large fleet.
_TZ = {zone: timezone(timedelta(hours=int(zone[:3]), minutes=int(zone[4:]))) for zone in _ZONES if zone != "Z"}


def _iso(moment: datetime, zone: str) -> str:
    if zone == "Z":
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.astimezone(_TZ[zone]).isoformat(timespec="seconds")


class Fleet:
    """The cloud's mutable state, built deterministically from a config; every method holds one lock."""

    def __init__(self, config: DemoCloudConfig = DemoCloudConfig()) -> None:
        self.lock = threading.RLock()
        # A private generator: the global one would make fleets depend on whatever else ran.
        self._rng = random.Random(config.seed)
        self.backup_servers: dict[int, dict] = {}
        self.users: dict[int, dict] = {}
        self.vms: dict[int, dict] = {}
        self.backups: dict[int, dict] = {}
        self.backup_vm: dict[int, int] = {}
        self._by_vm: dict[int, set[int]] = {}  # index so per-VM listings do not scan the cloud
        self._disks: dict[int, list[int]] = {}
        self._next_vm, self._next_disk, self._next_backup = 1, 5001, 1001
        for server_id in range(1, config.backup_servers + 1):
            self.backup_servers[server_id] = self._make_server(server_id)
        for user_id in range(1, config.users + 1):
            self.users[user_id] = self._make_user(user_id)
        for _ in range(config.vms):
            self._seed_backups(self.add_vm()["id"], config.backups_per_vm)
        self._size_capacities(random.Random(config.seed + 1))

    def _size_capacities(self, rng: random.Random) -> None:
        """Give each server a capacity (GB) 1.1 to 2.5 times what it holds, so reports look like a real cloud."""
        held_kb: dict[int, int] = {}
        for backup in self.backups.values():
            server = backup.get("backup_server_id")
            if server is not None:
                held_kb[server] = held_kb.get(server, 0) + int(backup["backup_size"])
        for server_id, server in self.backup_servers.items():
            held_gb = held_kb.get(server_id, 0) / 1024**2
            if held_gb:
                server["capacity"] = int(math.ceil(held_gb * rng.uniform(1.1, 2.5) / 500) * 500)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fleet):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _state(self) -> tuple:
        with self.lock:
            return (self.vms, self.backups, self.backup_vm, self.users, self.backup_servers)

    def _token(self, length: int = 14, alphabet: str = string.ascii_lowercase + string.digits) -> str:
        return "".join(self._rng.choices(alphabet, k=length))

    def _make_server(self, server_id: int) -> dict:
        return {
            "id": server_id,
            "label": f"backup-server-{server_id:02d}",
            "ip_address": f"10.20.0.{10 + server_id}",
            "capacity": self._rng.randrange(2000, 20001, 500),
            "enabled": True,
            "backup_server_group_id": 1 + (server_id - 1) % 2,
        }

    def _make_user(self, user_id: int) -> dict:
        first, last = self._rng.choice(_FIRST_NAMES), self._rng.choice(_LAST_NAMES)
        login = f"{first.lower()}.{user_id}"
        # Two users whose names a spreadsheet would read as formulas.
        if user_id == 2:
            first = '=HYPERLINK("http://evil.example","click")'
        if user_id == 3:
            login = "@ops-team"
        return {
            "id": user_id,
            "login": login,
            "email": f"user{user_id}@example.com",
            "first_name": first,
            "last_name": last,
            "status": "active",
        }

    def add_vm(self, user_id: int | None = None) -> dict:
        """Create a VM (owned by user_id, or by a seeded pick) with a fresh id; return its payload."""
        with self.lock:
            rng = self._rng
            vm_id, self._next_vm = self._next_vm, self._next_vm + 1
            disk_count = 2 if rng.random() < 0.3 else 1
            self._disks[vm_id] = list(range(self._next_disk, self._next_disk + disk_count))
            self._next_disk += disk_count
            os_name = "windows" if rng.random() < 0.15 else "linux"
            created = _BASE - timedelta(days=rng.uniform(30, 900))
            zone = rng.choice(_ZONES)
            label = f"{rng.choice(_VM_ROLES)}-{vm_id:03d}"
            owner = user_id if user_id is not None else rng.choice(sorted(self.users) or [None])
            vm = {
                "id": vm_id,
                "identifier": self._token(),
                "label": label,
                "hostname": f"{label}.example.net",
                "user_id": owner,
                "template_id": rng.randint(1, 40),
                "memory": rng.choice((1024, 2048, 4096, 8192, 16384)),
                "cpus": rng.choice((1, 2, 4, 8)),
                "total_disk_size": rng.choice((20, 40, 51, 80, 100, 200)),
                "booted": rng.random() < 0.85,
                "built": rng.random() < 0.97,
                "locked": rng.random() < 0.02,
                "created_at": _iso(created, zone),
                "updated_at": _iso(created + timedelta(days=rng.uniform(0, 20)), zone),
                "operating_system": os_name,
                "initial_root_password": self._token(16, _SECRET_ALPHABET),
                "remote_access_password": self._token(12, _SECRET_ALPHABET),
            }
            self.vms[vm_id] = vm
            self._by_vm[vm_id] = set()
            return dict(vm)

    def _seed_backups(self, vm_id: int, average: int) -> None:
        rng = self._rng
        count = rng.randint(0, 2 * average)
        uses_incremental = rng.random() < 0.25
        start = datetime.fromisoformat(self.vms[vm_id]["created_at"].replace("Z", "+00:00"))
        span = (_BASE - start).total_seconds()
        moments = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
        chain_started = False
        for moment in moments:
            # Incremental VMs still get the odd manual full backup, so one list mixes both kinds.
            incremental = uses_incremental and rng.random() < 0.8
            self._insert(vm_id, self._make_backup(vm_id, incremental, chain_started, moment))
            chain_started = chain_started or incremental

    def _make_backup(self, vm_id: int, incremental: bool, delta: bool, moment: datetime) -> dict:
        rng, vm, disks = self._rng, self.vms[vm_id], self._disks[vm_id]
        backup_id, self._next_backup = self._next_backup, self._next_backup + 1
        zone = rng.choice(_ZONES)
        built = rng.random() > 0.03
        built_moment = moment + timedelta(minutes=rng.randint(1, 90))
        servers = sorted(self.backup_servers)
        server = rng.choice(servers) if servers and rng.random() >= 0.10 else None
        initiated = "manual" if rng.random() < 0.3 else rng.choice(("days", "days", "weeks", "months", "years"))
        disk = disks[-1] if len(disks) > 1 and rng.random() < 0.15 else disks[0]
        # kB: full images are 200 MB..80 GB; an incremental after the chain's first is only a delta.
        size = rng.randint(5_000, 5_000_000) if delta else rng.randint(200_000, 80_000_000)
        backup = {
            "id": backup_id,
            "identifier": self._token(),
            "backup_size": size,
            "backup_server_id": server,
            "backup_type": "incremental" if incremental else "normal",
            "built": built,
            "built_at": _iso(built_moment, zone) if built else None,
            "created_at": _iso(moment, zone),
            "updated_at": _iso(built_moment if built else moment, zone),
            "disk_id": None if incremental else disk,
            "image_type": None if incremental else "tar",
            "initiated": initiated,
            "iqn": None,
            "locked": rng.random() < 0.02,
            "marked_for_delete": rng.random() < 0.05,
            "min_disk_size": vm["total_disk_size"],
            "min_memory_size": rng.choice((256, 512, 1024)),
            "note": rng.choice(_NOTES) if rng.random() < 0.08 else None,
            "operating_system": vm["operating_system"],
            "operating_system_distro": rng.choice(_DISTROS[vm["operating_system"]]),
            "target_id": vm_id if incremental else disk,
            "target_type": "VirtualMachine" if incremental else "Disk",
            "template_id": vm["template_id"],
            "user_id": vm["user_id"],
            "volume_id": None,
            "data_store_type": "lvm",
            "allowed_hot_migrate": rng.random() < 0.5,
            "allowed_swap": rng.random() < 0.9,
        }
        # Payloads spell it "allow_"; the docs' prose says "allowed_". Serve both.
        spelling = "allowed_resize_without_reboot" if rng.random() < 0.2 else "allow_resize_without_reboot"
        backup[spelling] = rng.random() < 0.5
        if rng.random() < 0.1:
            backup["compatible"] = True  # newer than the docs
        return backup

    def _insert(self, vm_id: int, backup: dict) -> None:
        self.backups[backup["id"]] = backup
        self.backup_vm[backup["id"]] = vm_id
        self._by_vm[vm_id].add(backup["id"])

    def backups_of(self, vm_id: int) -> list[dict]:
        """Return copies of a VM's backup payloads, sorted by id (empty for an unknown VM)."""
        with self.lock:
            ids = sorted(self._by_vm.get(vm_id, ()))
            return [dict(self.backups[i]) for i in ids if self.backup_vm.get(i) == vm_id and i in self.backups]

    def add_backup(self, vm_id: int, **overrides: object) -> dict:
        """Add a backup (normal unless overridden) to a VM with an id above all others; return it."""
        with self.lock:
            if vm_id not in self.vms:
                raise KeyError(vm_id)
            incremental = overrides.get("backup_type") == "incremental"
            moment = _BASE + timedelta(minutes=self._next_backup)  # later than every seeded backup
            backup = self._make_backup(vm_id, incremental, incremental, moment)
            backup.update(overrides)
            self._insert(vm_id, backup)
            return dict(backup)

    def update_backup(self, backup_id: int, **fields: object) -> None:
        """Change fields of an existing backup's payload."""
        with self.lock:
            self.backups[backup_id].update(fields)

    def delete_backup(self, backup_id: int) -> None:
        """Remove one backup."""
        with self.lock:
            del self.backups[backup_id]
            self._by_vm.get(self.backup_vm.pop(backup_id), set()).discard(backup_id)

    def delete_vm(self, vm_id: int) -> None:
        """Remove a VM and all its backups."""
        with self.lock:
            del self.vms[vm_id]
            for backup_id in self._by_vm.pop(vm_id, set()):
                self.backups.pop(backup_id, None)
                self.backup_vm.pop(backup_id, None)

    def vm_list(self, start: int = 0, stop: int | None = None) -> list[dict]:
        """Return copies of the VM payloads sorted by id, those at positions start..stop (all by default)."""
        with self.lock:
            # Only the page is copied: copying every VM for each page made listing quadratic.
            return [dict(self.vms[i]) for i in sorted(self.vms)[start:stop]]

    def secrets(self) -> set[str]:
        """Return every password string in the fleet, so tests can check none leaks."""
        with self.lock:
            return {
                vm[key]
                for vm in self.vms.values()
                for key in ("initial_root_password", "remote_access_password")
                if vm.get(key)
            }


class Stats(Mapping):
    """Thread-safe request counters: requests, status_<code>, truncated, html; missing ones read 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, key: str, amount: int = 1) -> None:
        """Increase a counter."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, int]:
        """Return a plain dict copy of the counters."""
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._counts

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def __repr__(self) -> str:
        return f"Stats({self.snapshot()!r})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections across thousands of calls
    server_version = "DemoOnApp/1.0"
    timeout = 120  # reap idle keep-alive connections eventually
    # Headers and body go out as two writes; with Nagle on, the body waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self.server.cloud._serve(self)

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one stderr line per request would drown a benchmark's output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a benchmark opens 32+ connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], cloud: DemoCloud) -> None:
        self.cloud = cloud
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._connections_lock:
            (self._connections.add if is_open else self._connections.discard)(connection)

    def close_connections(self) -> None:
        # Keep-alive handler threads would otherwise go on answering after stop().
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class DemoCloud:
    """The simulated OnApp API: a Fleet served over HTTP on a daemon thread; config is swappable live."""

    def __init__(
        self,
        config: DemoCloudConfig = DemoCloudConfig(),
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.tls = tls  # a server-side context: serve HTTPS, to test certificate verification
        self.fleet = Fleet(config)
        self.stats = Stats()
        self.host, self.port = host, port
        self._fault_rng = random.Random(config.seed)
        self._fault_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        if self._server is None:
            raise RuntimeError("DemoCloud is not started")
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"

    def start(self) -> DemoCloud:
        """Bind and serve on a daemon thread; return self."""
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            if self.tls is not None:
                self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits for one poll
                name=f"demo-cloud-{self._server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> DemoCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def vanished_vm_ids(self) -> set[int]:
        """Return the listed VMs that currently answer 404 on their backups."""
        with self.fleet.lock:
            return {vm_id for vm_id in self.fleet.vms if render.vanished(vm_id, self.config)}

    def _send(self, handler: _Handler, status: int, body: bytes, content_type: str = render.JSON_TYPE,
              headers: Mapping[str, str] = {}) -> None:
        self.stats.add(f"status_{status}")
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _authorized(self, handler: _Handler, config: DemoCloudConfig) -> bool:
        scheme, _, encoded = handler.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, f"{config.user}:{config.api_key}".encode())

    def _serve(self, handler: _Handler) -> None:
        config = self.config  # read once: a swap mid-request must not mix two configs
        self.stats.add("requests")
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        if not self._authorized(handler, config):
            body = render.render_errors(render.NOT_SIGNED_IN)
            return self._send(handler, 401, body, headers={"WWW-Authenticate": 'Basic realm="OnApp"'})
        parts = urlsplit(handler.path)
        found = render.route(parts.path)
        if found is None:
            return self._send(handler, 404, render.render_errors(render.NOT_FOUND))
        with self._fault_lock:
            rng = self._fault_rng
            too_many = config.fail_429_fraction > 0 and rng.random() < config.fail_429_fraction
            broken = config.fail_5xx_fraction > 0 and rng.random() < config.fail_5xx_fraction
            status_5xx = rng.choice(sorted(render.SERVER_ERRORS)) if broken else 0
            proxy_page = config.html_fraction > 0 and rng.random() < config.html_fraction
            truncate = config.truncated_fraction > 0 and rng.random() < config.truncated_fraction
        if too_many:
            body = render.render_errors("Too many requests, retry later")
            return self._send(handler, 429, body, headers={"Retry-After": config.retry_after})
        if status_5xx:
            return self._send(handler, status_5xx, render.render_errors(render.SERVER_ERRORS[status_5xx]))
        if proxy_page:
            self.stats.add("html")
            return self._send(handler, 200, render.PROXY_PAGE, "text/html; charset=utf-8")
        status, body, headers = render.answer(self.fleet, config, found, parse_qs(parts.query))
        if status == 200 and truncate:
            self.stats.add("truncated")
            body = body[: len(body) // 2]
        content_type = render.XML_TYPE if status == 200 and found[0] == "xml" else render.JSON_TYPE
        self._send(handler, status, body, content_type, headers)


def start_embedded_demo_cloud() -> DemoCloud:
    """Start a demo cloud configured from the environment on a free loopback port, and say so loudly."""
    cloud = DemoCloud(DemoCloudConfig.from_env(), host="127.0.0.1", port=0).start()
    log.warning(
        "ONAPP_API_URL is not set: syncing the EMBEDDED DEMO CLOUD at %s (simulated data, not a real cloud)",
        cloud.url,
    )
    return cloud


def main(argv: list[str] | None = None) -> int:
    """Run the demo cloud in the foreground until SIGINT or SIGTERM."""
    base = DemoCloudConfig.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.demo.cloud",
        description="Serve a simulated OnApp API. Defaults come from DEMO_CLOUD_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    for name, var, flag, parse in _KNOBS:
        default = getattr(base, name)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"env {var}")
        else:
            parser.add_argument(flag, dest=name, type=parse, default=default, help=f"env {var}")
    args = parser.parse_args(argv)
    try:
        config = DemoCloudConfig(**{name: getattr(args, name) for name, *_ in _KNOBS})
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with DemoCloud(config, host=args.host, port=args.port) as cloud:
        fleet = cloud.fleet
        print(f"Demo OnApp cloud serving {cloud.url}", flush=True)
        print(f"  login: {config.user}   API key: {config.api_key}   (demo credentials)")
        print(f"  {len(fleet.vms)} VMs, {len(fleet.backups)} backups, {len(fleet.users)} users, "
              f"{len(fleet.backup_servers)} backup servers. Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
