"""A process's memory over time: VmRSS and VmHWM read from /proc/<pid>/status on a thread, until stopped."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One reading: seconds since the sampler started, the resident set and its high-water mark (bytes)."""

    t: float
    rss: int
    hwm: int


@dataclass
class MemorySampler:
    """Reads a process's status every interval_s; samples ends once the process is gone or stop() is called."""

    pid: int
    interval_s: float = 0.05
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{self.pid}", daemon=True)
        self._started = time.perf_counter()

    def start(self, started: float | None = None) -> MemorySampler:
        """Begin sampling; started is the perf_counter() instant the samples' times count from."""
        if started is not None:
            self._started = started
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop and return the samples taken."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples

    def _run(self) -> None:
        path = f"/proc/{self.pid}/status"
        while not self._stop.is_set():
            try:
                with open(path) as status:
                    text = status.read()
            except OSError:
                return  # reaped
            rss, hwm = _field(text, "VmRSS"), _field(text, "VmHWM")
            if rss is None:
                return  # a zombie: its memory is gone, wait4 has its peak
            self.samples.append(Sample(time.perf_counter() - self._started, rss, hwm or rss))
            self._stop.wait(self.interval_s)


def _field(text: str, name: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    return None
