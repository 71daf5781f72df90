"""Analysts and the sync never stop each other: readers of BACKUPS_DB read a whole published state, old or new."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import duckdb

from pipeline.defs.checks import asset_checks
from tests.conftest import ROOT, materialize_with_checks, run_failure_text, served_backups

# What a reader sees of the warehouse: how many syncs the ledger holds, how many backups are current.
STATE = "SELECT (SELECT count(*) FROM sync_runs), (SELECT count(*) FROM backups WHERE deleted_at IS NULL)"

# An analyst's session: open read-only once, say so, and query until a line comes on stdin.
_HOLDER = textwrap.dedent(
    f"""
    import json, select, sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(json.dumps(con.execute({STATE!r}).fetchone()), flush=True)
    seen, queries = set(), 0
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        seen.add(tuple(con.execute({STATE!r}).fetchone()))
        queries += 1
    print(json.dumps({{"seen": sorted(seen), "queries": queries, "last": con.execute({STATE!r}).fetchone()}}))
    """
)

# Someone who opens the file anew, again and again, without waiting: a lock would fail the open at once.
_OPENER = textwrap.dedent(
    f"""
    import json, select, sys, duckdb
    seen, opened, errors = set(), 0, []
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0.01)[0]:
        try:
            with duckdb.connect(sys.argv[1], read_only=True) as con:
                seen.add(tuple(con.execute({STATE!r}).fetchone()))
            opened += 1
        except duckdb.Error as error:
            errors.append(str(error))
    print(json.dumps({{"seen": sorted(seen), "opened": opened, "errors": errors[:3]}}))
    """
)


def _start(script: str, db) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen) -> dict:
    output, _ = process.communicate("stop\n", timeout=60)
    assert process.returncode == 0
    return json.loads(output.strip().splitlines()[-1])


def test_a_reader_open_all_night_neither_stops_the_sync_nor_sees_it(harness):
    cloud = harness.cloud
    assert harness.run().success
    old = (1, len(served_backups(cloud)))
    vm_id = next(vm for vm in sorted(cloud.fleet.vms) if cloud.fleet.backups_of(vm))
    cloud.fleet.delete_backup(cloud.fleet.backups_of(vm_id)[0]["id"])
    new = (2, len(served_backups(cloud)))

    holder = _start(_HOLDER, harness.db_path)
    opener = _start(_OPENER, harness.db_path)
    try:
        assert tuple(json.loads(holder.stdout.readline())) == old
        assert opener.stdout.readline().strip() == "ready"
        # A short lock wait: a sync that had to wait for the reader would fail, not just be slow.
        result = harness.run(lock_timeout_s=0.5)
        assert result.success, run_failure_text(result)
        held, reopened = _stop(holder), _stop(opener)
    finally:
        for process in (holder, opener):
            if process.poll() is None:
                process.kill()
    # The analyst's connection went on answering, from the state it opened, the whole time.
    assert held["queries"] > 0 and [tuple(s) for s in held["seen"]] == [old] and tuple(held["last"]) == old
    # Whoever opened the file during the sync got a whole state at once: the old one or the new one.
    assert reopened["errors"] == [] and reopened["opened"] > 0
    assert {tuple(s) for s in reopened["seen"]} <= {old, new}
    # A connection opened after the sync reads the new state.
    with duckdb.connect(str(harness.db_path), read_only=True) as con:
        assert con.execute(STATE).fetchone() == new


def test_the_checks_and_reports_of_a_run_read_while_an_analyst_holds_the_file(harness):
    assert harness.run().success
    holder = _start(_HOLDER, harness.db_path)
    try:
        holder.stdout.readline()
        result = materialize_with_checks(harness, lock_timeout_s=0.5)
        assert result.success, run_failure_text(result)
        assert len(result.get_asset_check_evaluations()) == sum(len(checks.check_keys) for checks in asset_checks)
        _stop(holder)
    finally:
        if holder.poll() is None:
            holder.kill()
