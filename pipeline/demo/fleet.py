"""The simulated cloud's content: a deterministic fleet of VMs, backups, users and backup servers."""

from __future__ import annotations

import math
import random
import string
import threading
from datetime import datetime, timedelta, timezone

from pipeline.demo.config import DemoCloudConfig


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


# Built once: a new timezone per timestamp would cost a fifth of building a large fleet.
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
            # Only the page is copied: copying every VM for each page would make listing quadratic.
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
