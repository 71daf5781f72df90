"""The fleet: every quirk the client must survive, built the same way every time."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.fleet import Fleet

SMALL = DemoCloudConfig(vms=40, backups_per_vm=4)


def test_default_fleet_has_every_quirk():
    fleet = Fleet(DemoCloudConfig())
    backups = list(fleet.backups.values())
    assert len(fleet.vms) == 300 and 900 <= len(backups) <= 1500
    assert min(fleet.backups) > max(fleet.vms)
    assert {b["backup_type"] for b in backups} == {"normal", "incremental"}
    assert any(b["backup_server_id"] is None for b in backups)
    assert any(b["marked_for_delete"] for b in backups) and any(not b["built"] for b in backups)
    assert any("allowed_resize_without_reboot" in b for b in backups)
    assert any(b.get("compatible") for b in backups)
    assert {n[0] for b in backups if (n := b["note"])} >= set("=+@-")
    assert {u["login"][0] for u in fleet.users.values()} & set("=@")
    assert {b["created_at"][19:] for b in backups} == {"+03:00", "+00:00", "Z"}
    assert any(not fleet.backups_of(v) for v in fleet.vms)


def test_determinism():
    assert Fleet(SMALL) == Fleet(SMALL)
    assert Fleet(SMALL) != Fleet(dataclasses.replace(SMALL, seed=8))
    code = ("import json; from pipeline.demo.config import DemoCloudConfig; from pipeline.demo.fleet import Fleet; "
            "print(json.dumps(Fleet(DemoCloudConfig(vms=5)).backups))")
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert json.loads(other.stdout) == {str(k): v for k, v in Fleet(DemoCloudConfig(vms=5)).backups.items()}
