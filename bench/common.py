"""What every benchmark shares: the machine's description, measured subprocesses, the demo cloud, tables."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.sampler import MemorySampler, Sample

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".tmp-bench"  # ignored by git (.tmp*/)
MIB = 1024**2
GIB = 1024**3


@dataclass
class Table:
    """One benchmark's result: a markdown table and the lines that say how to read it."""

    key: str  # the marker in BENCHMARKS.md: <!-- bench:key --> ... <!-- /bench:key -->
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def machine() -> str:
    """Cores, memory, load and versions, for the line printed beside every table."""
    import duckdb
    import pandas
    import pyarrow

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{len(os.sched_getaffinity(0))} cores ({model or 'unknown CPU'}), {memory_total() / GIB:.1f} GiB RAM, "
        f"load average {load} at the start; Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}"
    )


def memory_total() -> int:
    """Bytes of RAM the kernel reports."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def status_bytes(name: str) -> int:
    """A /proc/self/status figure (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU a running process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """A finished subprocess: its wall time, peak RSS (its own and its children's) and output."""

    returncode: int
    wall_s: float
    max_rss: int  # bytes
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system, its own and its waited-for children's
    # Each line of stderr with the seconds since the start at which the bench read it.
    stderr_lines: list[tuple[float, str]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def result(self) -> dict:
        """The JSON object the benchmark child printed last."""
        if self.returncode != 0:
            raise RuntimeError(f"benchmark child failed ({self.returncode}):\n{self.stderr[-3000:]}")
        return json.loads(self.stdout.strip().splitlines()[-1])


def measure(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout_s: float,
            cwd: Path = ROOT, sample_s: float | None = None) -> Measured:
    """Run cmd to the end (killed after timeout_s), read its peak RSS from wait4's rusage.

    With sample_s, its VmRSS and VmHWM are also read every sample_s seconds while it runs.
    """
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(list(cmd), stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(env) if env is not None else None, cwd=cwd, text=True)
    started = time.perf_counter()
    out: list[str] = []
    err: list[tuple[float, str]] = []

    def read_out() -> None:
        out.append(proc.stdout.read())

    def read_err() -> None:
        # Line by line, timed: Dagster's step events on stderr say when each step began and ended.
        for line in proc.stderr:
            err.append((time.perf_counter() - started, line))

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for reader in readers:
        reader.start()
    sampler = MemorySampler(proc.pid, sample_s).start(started) if sample_s else None
    timer = threading.Timer(timeout_s, lambda: os.kill(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        # wait4 rather than Popen.wait: only it hands back this child's own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - started
    samples = sampler.stop() if sampler is not None else []
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=10)
    if proc.returncode == -signal.SIGKILL:
        raise TimeoutError(f"{' '.join(cmd[:4])}... ran over {timeout_s:.0f} s and was killed")
    return Measured(proc.returncode, wall, usage.ru_maxrss * 1024, "".join(out), "".join(line for _, line in err),
                    usage.ru_utime + usage.ru_stime, err, samples)


@contextmanager
def demo_cloud(*, vms: int, backups_per_vm: int, latency_ms: float, seed: int = 7) -> Iterator[tuple[str, int]]:
    """The demo cloud in its own process on a free loopback port: yields (url, pid)."""
    cmd = [sys.executable, "-m", "pipeline.demo", "--host", "127.0.0.1", "--port", "0", "--vms", str(vms),
           "--backups-per-vm", str(backups_per_vm), "--latency-ms", str(latency_ms), "--seed", str(seed),
           # A bench killed half-way must not leave a cloud of a million backups running.
           "--exit-with-pid", str(os.getpid())]
    # Fault knobs set in the caller's environment (DEMO_CLOUD_FAIL_5XX, ...) must not reach the bench.
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEMO_CLOUD_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    try:
        line = proc.stdout.readline()  # "Demo OnApp cloud serving http://127.0.0.1:PORT"
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"the demo cloud did not start: {line!r}")
        yield match.group(1), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def shown(path: Path) -> str:
    """A path as the tables print it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def median(values: Sequence[float]) -> float:
    """The median of the runs' figures."""
    return statistics.median(values)


def seconds(value: float) -> str:
    """Seconds as a table cell: two decimals below 10 s, one above."""
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def gib(value: float) -> str:
    """Bytes as GiB with two decimals."""
    return f"{value / GIB:.2f} GiB"


def mib(value: float) -> str:
    """Bytes as whole MiB."""
    return f"{value / MIB:,.0f} MiB"


def write_tables(path: Path, tables: Sequence[Table]) -> None:
    """Replace each table's marked section in path (appended at the end when not there yet)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for table in tables:
        start, end = f"<!-- bench:{table.key} -->", f"<!-- /bench:{table.key} -->"
        block = f"{start}\n{table.markdown()}\n{end}"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text)
        else:
            text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")
