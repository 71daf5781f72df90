"""Profiles next to the figures: py-spy for processes with many threads, pyinstrument inside one step."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    """The py-spy executable of this environment (the bench extra installs it)."""
    found = Path(sys.executable).with_name("py-spy")
    if found.exists():
        return str(found)
    which = shutil.which("py-spy")
    if which is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return which


def record_cmd(out: Path, cmd: Sequence[str], rate: int = 200) -> list[str]:
    """cmd run under py-spy, collapsed stacks written to out."""
    # Only the GIL's holder is sampled: in a client of 32 threads that is where Python's one
    # core goes, and threads waiting on sockets would drown it.
    return [py_spy(), "record", "--gil", "--format", "raw", "--rate", str(rate), "--output", str(out), "--", *cmd]


def attach(out: Path, pid: int, rate: int = 200) -> subprocess.Popen:
    """py-spy sampling a running process (the GIL's holder) until stop() is called on what this returns."""
    return subprocess.Popen([py_spy(), "record", "--gil", "--format", "raw", "--rate", str(rate), "--output", str(out),
                             "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(recorder: subprocess.Popen) -> None:
    """End an attached py-spy; on SIGINT it writes what it sampled."""
    recorder.send_signal(signal.SIGINT)
    try:
        recorder.wait(timeout=30)
    except subprocess.TimeoutExpired:
        recorder.kill()
        recorder.wait()


def _function(frame: str) -> str:
    # "fn (/long/path/pkg/mod.py:123)" -> "fn (pkg/mod.py)": lines of one function add up.
    name, _, where = frame.partition(" (")
    where = _LINE.sub(")", "(" + where) if where else ""
    parts = where.strip("()").split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name


def summarize(raw: Path, top: int = 12) -> list[str]:
    """The functions that held the most samples, inclusive and self, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        total += samples
        for name in set(frames):
            inclusive[name] += samples
        own[frames[-1]] += samples
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples; inclusive %, self %, function"]
    for name, samples in inclusive.most_common(top):
        lines.append(f"{100 * samples / total:5.1f} {100 * own[name] / total:5.1f}  {name}")
    lines.append("top self time:")
    for name, samples in own.most_common(top):
        lines.append(f"{100 * inclusive[name] / total:5.1f} {100 * samples / total:5.1f}  {name}")
    return lines
