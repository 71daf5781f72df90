"""Reading many VMs' backup lists concurrently, with a bounded window, progress lines and a report."""

from __future__ import annotations

import logging
import queue
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

import requests
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from pipeline.onapp.errors import (
    ApiError,
    BadPayload,
    CredentialsRefused,
    RedirectRefused,
    ResponseTooLarge,
    VmVanished,
)
from pipeline.onapp.escape import printable
from pipeline.onapp.session import Counters

# VMs submitted but not yet consumed, per worker: enough queued work to keep every
# worker busy between two wake-ups of the consumer, few enough that a slow consumer
# holds only a handful of listings in memory.
AHEAD_PER_WORKER = 4
# A failed VM's message is one line of a log and a table.
MESSAGE_CHARS = 300

Records = list[dict[str, Any]]
ListingConsumer = Callable[[int, Records], None]


@dataclass
class VmOutcome:
    """What fetching one VM's backup list gave."""

    vm_id: int
    status: Literal["ok", "vanished", "failed"]
    backups: Records = field(default_factory=list)
    http_status: int | None = None
    error_kind: str | None = None  # http_500, bad_payload, too_large, redirect, timeout, connection, client_error
    message: str | None = None  # escaped: safe for one log line

    def __post_init__(self) -> None:
        if self.message is not None:
            self.message = printable(self.message, MESSAGE_CHARS)


@dataclass
class FetchReport:
    """Outcomes of a ``fetch_backups`` run, with request/retry counts and wall time."""

    outcomes: dict[int, VmOutcome]
    requests: int
    retries: int
    failed: int
    vanished: int
    seconds: float


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _error_kind(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    # With retries, requests reports an exhausted read timeout as ConnectionError(MaxRetryError).
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError) and isinstance(reason.reason, Urllib3Timeout):
        return "timeout"
    return "connection"


def fetch_outcome(list_backups: Callable[[int], Records], vm_id: int) -> VmOutcome:
    """Read one VM's backup list; any failure but refused credentials becomes the outcome's status."""
    try:
        return VmOutcome(vm_id, "ok", list_backups(vm_id), 200)
    except VmVanished:
        return VmOutcome(vm_id, "vanished", [], 404, None, "HTTP 404: deleted after it was listed")
    except ResponseTooLarge as exc:
        return VmOutcome(vm_id, "failed", [], exc.status, "too_large", exc.reason)
    except RedirectRefused as exc:
        return VmOutcome(vm_id, "failed", [], exc.status, "redirect", exc.reason)
    except BadPayload as exc:
        why = f"{exc.reason}: " if exc.reason else ""
        return VmOutcome(vm_id, "failed", [], exc.status, "bad_payload", f"HTTP {exc.status}: {why}{exc.snippet}")
    except ApiError as exc:
        return VmOutcome(vm_id, "failed", [], exc.status, f"http_{exc.status}", f"HTTP {exc.status}: {exc.snippet}")
    except requests.RequestException as exc:
        return VmOutcome(vm_id, "failed", [], None, _error_kind(exc), str(exc))
    except CredentialsRefused:
        raise
    except Exception as exc:  # noqa: BLE001
        # Whatever else one VM's answer provokes stays that VM's failure: the night goes on,
        # and the failed-fraction threshold still stops a sync where it happens everywhere.
        return VmOutcome(vm_id, "failed", [], None, "client_error", f"{type(exc).__name__}: {exc}")


def fan_out(
    list_backups: Callable[[int], Records],
    vm_ids: Iterable[int],
    *,
    counters: Counters,
    max_concurrency: int,
    progress_seconds: float,
    log: logging.Logger,
    on_listing: ListingConsumer | None = None,
) -> FetchReport:
    """Read the backup lists of many VMs on ``max_concurrency`` threads, consuming them on the calling thread.

    Args:
        list_backups: Reads one VM's list; raises VmVanished, ApiError or a requests error.
        vm_ids: The VMs to read (duplicates read once).
        counters: The session's request/retry tallies, for the rate and the report.
        max_concurrency: Worker threads; at most ``AHEAD_PER_WORKER`` times as many VMs are in flight.
        progress_seconds: How often a progress line goes to ``log``.
        log: Where progress and the summary go.
        on_listing: When given, gets each OK VM's records as it completes; outcomes then keep no records.

    Returns:
        A FetchReport with one VmOutcome per VM, in the order of ``vm_ids``.

    Raises:
        CredentialsRefused: The key was refused; the remaining VMs are cancelled.
        Exception: Whatever ``on_listing`` raised; the remaining VMs are cancelled.
    """
    ids = list(dict.fromkeys(vm_ids))
    start, last_log = time.monotonic(), time.monotonic()
    requests_before, retries_before = counters.requests, counters.retries
    outcomes: dict[int, VmOutcome] = {}
    statuses: Counter[str] = Counter()

    def line() -> str:
        elapsed = max(time.monotonic() - start, 1e-6)
        rate = (counters.requests - requests_before) / elapsed
        eta = _duration((len(ids) - len(outcomes)) * elapsed / len(outcomes)) if outcomes else "?"
        return f"backups: {len(outcomes)}/{len(ids)} VMs, {rate:.1f} req/s, {statuses['failed']} failed, ETA {eta}"

    # Finished futures arrive on a queue: concurrent.futures.wait() would re-register
    # on every pending future at each wake-up, quadratic for a fleet of 10,000 VMs.
    finished: queue.SimpleQueue[Future[VmOutcome]] = queue.SimpleQueue()
    waiting = iter(ids)
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:

        def submit(count: int) -> None:
            for vm_id in islice(waiting, count):
                pool.submit(fetch_outcome, list_backups, vm_id).add_done_callback(finished.put)

        try:
            submit(AHEAD_PER_WORKER * max_concurrency)
            while len(outcomes) < len(ids):
                try:
                    outcome = finished.get(timeout=progress_seconds).result()  # re-raises CredentialsRefused
                except queue.Empty:
                    outcome = None
                if outcome is not None:
                    # One in, one out: the window stays full while the consumer works.
                    submit(1)
                    outcomes[outcome.vm_id] = outcome
                    statuses[outcome.status] += 1
                    if on_listing is not None and outcome.status == "ok":
                        records, outcome.backups = outcome.backups, []
                        on_listing(outcome.vm_id, records)
                if time.monotonic() - last_log >= progress_seconds and len(outcomes) < len(ids):
                    log.info(line())
                    last_log = time.monotonic()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    report = FetchReport(
        outcomes={vm_id: outcomes[vm_id] for vm_id in ids},
        requests=counters.requests - requests_before,
        retries=counters.retries - retries_before,
        failed=statuses["failed"],
        vanished=statuses["vanished"],
        seconds=time.monotonic() - start,
    )
    log.info(
        "backups: %d/%d VMs in %s, %.1f req/s, %d failed, %d vanished, %d retries",
        len(outcomes), len(ids), _duration(report.seconds), report.requests / max(report.seconds, 1e-6),
        report.failed, report.vanished, report.retries,
    )  # fmt: skip
    return report
