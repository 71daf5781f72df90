"""`python -m pipeline.demo` as a real process: serving, the URL file, and ending with the process it watches."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.demo.cli import process_exists

ROOT = Path(__file__).resolve().parents[2]
# The caller's DEMO_CLOUD_* settings must not reach the process under test.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_CLOUD_")}
# Generous bounds on waits, for slow machines; they are limits, not measurements.
PATIENCE_S = 30


def demo(*args: str, **popen: object) -> subprocess.Popen:
    """Start the demo cloud on a free port with two VMs, plus args."""
    return subprocess.Popen([sys.executable, "-m", "pipeline.demo", "--port", "0", "--vms", "2", *args],
                            cwd=ROOT, env=CLEAN_ENV, **popen)


def read_when_written(path: Path, proc: subprocess.Popen) -> str:
    """Poll for path until it exists or proc exits, within PATIENCE_S."""
    deadline = time.monotonic() + PATIENCE_S
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the demo cloud exited with {proc.returncode} before writing {path}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {path} after {PATIENCE_S} s")
        time.sleep(0.05)
    return path.read_text(encoding="utf-8")


def test_command_line_serves_until_sigterm(http):
    proc = demo(stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        assert "demo-api-key" in proc.stdout.readline()
        assert len(http.get(url + "/virtual_machines.json", timeout=5).json()) == 2
    finally:
        proc.terminate()
    assert proc.wait(timeout=PATIENCE_S) == 0


def test_url_file_then_exit_with_the_watched_process(http, tmp_path):
    url_file = tmp_path / "demo.url"
    watched = subprocess.Popen(["sleep", "3600"])
    proc = demo("--url-file", str(url_file), "--exit-with-pid", str(watched.pid), stdout=subprocess.DEVNULL)
    try:
        url = read_when_written(url_file, proc)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert list(tmp_path.iterdir()) == [url_file]  # the write left no temporary file behind
        response = http.get(url + "/virtual_machines.json", timeout=5)
        assert response.status_code == 200 and len(response.json()) == 2
        assert proc.poll() is None  # still serving while the watched process lives
        watched.kill()
        watched.wait()
        assert proc.wait(timeout=PATIENCE_S) == 0
    finally:
        for child in (watched, proc):
            if child.poll() is None:
                child.kill()
                child.wait()


def test_exit_with_pid_refuses_process_groups():
    proc = demo("--exit-with-pid", "0", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=PATIENCE_S)
    assert proc.returncode == 2 and "not a process id" in err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are told apart through procfs")
def test_a_dead_unreaped_process_counts_as_gone():
    assert process_exists(os.getpid())
    child = subprocess.Popen(["sleep", "3600"])
    try:
        assert process_exists(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + PATIENCE_S
        while process_exists(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_exists(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_exists(child.pid)
