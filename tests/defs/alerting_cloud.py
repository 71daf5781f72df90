"""A demo cloud whose alerts a test decides: tidy, nothing fires; troubled, exactly three alerts fire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pipeline.demo.server import DemoCloud

SIZE_KB = 1_000_000
BACKUPS_PER_VM = 4
SERVER = 1
ROOMY_GB = 100_000


def _add_fresh(cloud: DemoCloud, vm_id: int, size_kb: int = SIZE_KB) -> int:
    """A built backup of twelve hours ago on SERVER; its id."""
    moment = (datetime.now(timezone.utc) - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    backup = cloud.fleet.add_backup(vm_id, backup_size=size_kb, backup_type="normal", built=True, built_at=moment,
                                    created_at=moment, marked_for_delete=False, backup_server_id=SERVER)
    return int(backup["id"])


def tidy(cloud: DemoCloud) -> None:
    """Every VM gets BACKUPS_PER_VM fresh, built backups of one size, and every backup server room to spare."""
    fleet = cloud.fleet
    with fleet.lock:
        for vm_id in sorted(fleet.vms):
            for backup in fleet.backups_of(vm_id):
                fleet.delete_backup(backup["id"])
            for _ in range(BACKUPS_PER_VM):
                _add_fresh(cloud, vm_id)
        for server in fleet.backup_servers.values():
            server["capacity"] = ROOMY_GB


@dataclass(frozen=True)
class Trouble:
    """What make_trouble broke: a VM left without backups, a backup 50 times its VM's usual, a server 90% full."""

    vm_without_backups: int
    vm_with_huge_backup: int
    huge_backup: int
    full_server: int = SERVER

    def alerts(self, state: str) -> set[tuple[str, str, str]]:
        """The (kind, key, state) of the three alerts it raises."""
        return {("protection_gap", str(self.vm_without_backups), state),
                ("backup_anomaly", str(self.huge_backup), state),
                ("backup_server_full", str(self.full_server), state)}


def make_trouble(cloud: DemoCloud) -> Trouble:
    """On a tidy cloud: exactly one protection gap, one backup anomaly and one full backup server."""
    fleet = cloud.fleet
    with fleet.lock:
        bare, odd = sorted(fleet.vms)[:2]
        for backup in fleet.backups_of(bare):
            fleet.delete_backup(backup["id"])
        huge = _add_fresh(cloud, odd, 50 * SIZE_KB)
        held_gib = sum(int(b["backup_size"]) for vm in fleet.vms for b in fleet.backups_of(vm)) / 1024**2
        fleet.backup_servers[SERVER]["capacity"] = int(held_gib / 0.9)  # 90% and a little more
    return Trouble(vm_without_backups=bare, vm_with_huge_backup=odd, huge_backup=huge)


def fix_trouble(cloud: DemoCloud, trouble: Trouble) -> None:
    """The VM gets a backup again, the huge backup is deleted, and the server gets room."""
    fleet = cloud.fleet
    with fleet.lock:
        _add_fresh(cloud, trouble.vm_without_backups)
        fleet.delete_backup(trouble.huge_backup)
        fleet.backup_servers[SERVER]["capacity"] = ROOMY_GB
