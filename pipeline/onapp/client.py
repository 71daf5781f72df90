"""HTTP client for the OnApp API: paged VM list, per-VM backup lists, retries, secrets stripped."""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from pipeline.onapp.rails_xml import parse_rails_xml

logger = logging.getLogger("pipeline.onapp.client")

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
RETRY_STATUSES = (429, 500, 502, 503, 504)
SECRET_KEY = re.compile(r"password|passwd|secret|api_key|token|private_key", re.IGNORECASE)
# Redacts secret values inside raw bodies quoted in errors (JSON and XML); a value
# cut off by truncation (no closing quote or tag) is redacted up to the end.
_SECRET_IN_JSON = re.compile(
    r'("[^"]*(?:password|passwd|secret|api_key|token|private_key)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I
)
_SECRET_IN_XML = re.compile(
    r"(<[\w-]*(?:password|passwd|secret|api_key|token|private_key)[\w-]*(?:\s[^>]*)?>)[^<]*", re.I
)


class ApiError(Exception):
    """The API answered with an error status (after retries) or an unusable body."""

    def __init__(self, status: int | None, snippet: str, url: str) -> None:
        self.status, self.snippet, self.url = status, snippet, url
        super().__init__(f"HTTP {status} from {url}: {snippet!r}")


class BadPayload(ApiError):
    """A response whose body is not the list asked for (HTML, truncated, not a list), after retries."""

    def __init__(self, status: int | None, snippet: str, url: str) -> None:
        super().__init__(status, snippet, url)
        self.args = (f"unusable body (HTTP {status}) from {url}: {snippet!r}",)


class CredentialsRefused(Exception):
    """The API refused the user/key (HTTP 401/403) on a data call; nothing else can work."""

    def __init__(self, status: int, url: str, user: str) -> None:
        self.status, self.url, self.user = status, url, user
        super().__init__(f"credentials refused (HTTP {status}) by {url} for user {user!r}")


class PaginationError(Exception):
    """The server's paging cannot be followed safely (ignores ``page``, or too many pages)."""


class VmVanished(Exception):
    """The VM answered 404: it was deleted after it was listed."""

    def __init__(self, vm_id: int) -> None:
        self.vm_id = vm_id
        super().__init__(f"virtual machine {vm_id} vanished (HTTP 404)")


def strip_secrets(record: Any) -> Any:
    """Return a copy of ``record`` without keys that look like secrets, at any depth.

    Args:
        record: A dict (or list/scalar) from the API.

    Returns:
        The same structure minus every key matching password/secret/token/... .
    """
    if isinstance(record, dict):
        return {
            k: strip_secrets(v) if isinstance(v, (dict, list)) else v
            for k, v in record.items()
            if not _is_secret_key(k)
        }
    if isinstance(record, list):
        return [strip_secrets(v) for v in record]
    return record


@functools.lru_cache(maxsize=4096, typed=True)
def _is_secret_key(key: Any) -> bool:
    # A regex search per key of every record was a sixth of the client's CPU; the keys repeat.
    return SECRET_KEY.search(str(key)) is not None


def _snippet(body: bytes | str) -> str:
    """First 200 characters of a body, with secret values redacted."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _SECRET_IN_XML.sub(r"\1[redacted]", _SECRET_IN_JSON.sub(r'\1"[redacted]"', text[:4000]))
    return text[:200]


@dataclass
class ClientSettings:
    """Every knob of the client; ``from_env()`` reads them from ``ONAPP_*`` variables."""

    api_url: str
    user: str = ""
    api_key: str = field(default="", repr=False)
    api_format: Literal["json", "xml"] = "json"
    per_page: int = 100
    max_pages: int = 10_000  # a broken server must not page forever
    max_concurrency: int = 8
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.25
    connect_timeout: float = DEFAULT_TIMEOUT[0]
    read_timeout: float = DEFAULT_TIMEOUT[1]
    ca_bundle: str | None = None  # private CA; TLS is always verified
    progress_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.api_format not in ("json", "xml"):
            raise ValueError(f"ONAPP_API_FORMAT must be json or xml, not {self.api_format!r}")
        if urlsplit(self.api_url).password is not None:
            # Credentials in the URL would leak into every error message.
            raise ValueError("put credentials in ONAPP_API_USER/ONAPP_API_KEY, not in ONAPP_API_URL")
        if self.per_page < 1 or self.max_pages < 1 or self.max_concurrency < 1:
            raise ValueError("per_page, max_pages and max_concurrency must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """Build settings from ``ONAPP_*`` variables of ``environ`` (default: the process's).

        Args:
            environ: The variables; ``ONAPP_API_URL`` is required, the rest have defaults.

        Returns:
            The settings.

        Raises:
            ValueError: A variable is missing or malformed.
        """
        env = os.environ if environ is None else environ
        if not env.get("ONAPP_API_URL"):
            raise ValueError("ONAPP_API_URL is not set")
        numbers: dict[str, Any] = {}
        for f in fields(cls):
            raw, kind = (env.get(f"ONAPP_{f.name.upper()}") or "").strip(), type(f.default)
            if raw and kind in (int, float):  # unset or empty: the field's default
                try:
                    numbers[f.name] = kind(raw)
                except ValueError:
                    expected = "a whole number" if kind is int else "a number"
                    raise ValueError(f"ONAPP_{f.name.upper()}={raw!r} is not {expected}") from None
        return cls(
            api_url=env["ONAPP_API_URL"],
            user=env.get("ONAPP_API_USER", ""),
            api_key=env.get("ONAPP_API_KEY", ""),
            api_format=(env.get("ONAPP_API_FORMAT") or "json").strip().lower(),  # type: ignore[arg-type]
            ca_bundle=env.get("ONAPP_CA_BUNDLE") or None,
            **numbers,
        )


class _Counters:
    """Thread-safe request/retry tallies shared by all worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def add(self, *, sent: int = 0, retried: int = 0) -> None:
        with self._lock:
            self.requests += sent
            self.retries += retried


class _BodyUnusable(ProtocolError):
    """Marks a retry caused by the body (counts against the read budget, like a cut connection)."""


class _CountingRetry(Retry):
    """urllib3 Retry that tallies retries and never lets Retry-After stall or crash a run."""

    def __init__(self, *args: Any, counters: _Counters | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counters = counters

    def new(self, **kw: Any) -> _CountingRetry:
        return super().new(counters=self.counters, **kw)

    def increment(self, *args: Any, **kwargs: Any) -> _CountingRetry:
        new = super().increment(*args, **kwargs)  # raises MaxRetryError when exhausted
        if self.counters is not None:
            # A transport retry sends another request inside urllib3; a body retry
            # goes back through our loop, which counts its own requests.
            transport = not isinstance(kwargs.get("error"), _BodyUnusable)
            self.counters.add(sent=int(transport), retried=1)
        return new

    def get_retry_after(self, response: Any) -> float | None:
        # urllib3 already falls back to backoff for "0" or a past date, but raises
        # InvalidHeader on a malformed or negative value (escaping as a raw urllib3
        # error) and honours up to 6 h: fall back to backoff, and cap at backoff_max.
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            return None
        return None if seconds is None else min(seconds, self.backoff_max)


@dataclass
class VmOutcome:
    """What fetching one VM's backup list gave."""

    vm_id: int
    status: Literal["ok", "vanished", "failed"]
    backups: list[dict[str, Any]] = field(default_factory=list)
    http_status: int | None = None
    error_kind: str | None = None  # http_500, bad_payload, timeout, connection
    message: str | None = None


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


class OnAppClient:
    """OnApp API client over one pooled, retrying ``requests.Session``."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._base = settings.api_url.rstrip("/")
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._verify: bool | str = settings.ca_bundle or True
        self._counters = _Counters()
        n = settings.retries
        # other=0: errors that are neither connect, read nor status (TLS verification
        # failures among them) are not transient, so they are not retried.
        self._retry = _CountingRetry(
            total=n, connect=n, read=n, status=n, other=0,
            backoff_factor=settings.backoff_factor, backoff_max=settings.backoff_max,
            backoff_jitter=settings.backoff_jitter, status_forcelist=RETRY_STATUSES,
            allowed_methods={"GET"}, respect_retry_after_header=True, raise_on_status=False,
            counters=self._counters,
        )  # fmt: skip
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=self._retry)
        self._session = requests.Session()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.auth = (settings.user, settings.api_key)
        self._session.headers["Accept"] = f"application/{settings.api_format}"

    def __repr__(self) -> str:
        return f"OnAppClient({self._base!r}, user={self.settings.user!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._counters.requests

    @property
    def retries(self) -> int:
        """Retries so far (error statuses, dropped connections, timeouts, unusable bodies)."""
        return self._counters.retries

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _get_list(
        self, path: str, wrapper: str, params: Mapping[str, Any] | None = None, *, admin: bool = False
    ) -> tuple[list[dict[str, Any]], Mapping[str, str]]:
        """GET one list; retry unusable bodies with the same Retry policy; unwrap and strip secrets."""
        url = f"{self._base}/{path}.{self.settings.api_format}"
        retry: Retry = self._retry
        while True:
            response = self._session.get(url, params=params, timeout=self._timeout, verify=self._verify, stream=True)
            self._counters.add(sent=1)
            status = response.status_code
            if status in (401, 403) and not admin:
                response.close()
                raise CredentialsRefused(status, url, self.settings.user)
            body = b""
            try:
                body = response.content
                if status >= 400:
                    raise ApiError(status, _snippet(body), url)
                if "html" in response.headers.get("Content-Type", "").lower():
                    raise ValueError("HTML page instead of data (a proxy or login page)")
                return self._decode(body, self.settings.api_format, wrapper), response.headers
            except (ValueError, requests.RequestException) as exc:  # RailsXmlError, JSONDecodeError: ValueError
                # A 200 that is not the list (HTML, cut off, not a list) is as transient
                # as a 503: spend the same retry budget, with the same backoff.
                try:
                    retry = retry.increment("GET", url, error=_BodyUnusable(str(exc)[:200]))
                except MaxRetryError:
                    raise BadPayload(status, _snippet(body), url) from None
                retry.sleep()
            finally:
                response.close()

    @staticmethod
    def _decode(body: bytes, fmt: str, wrapper: str) -> list[dict[str, Any]]:
        """Parse a list body in the format asked for; anything else raises ValueError."""
        if fmt == "xml":
            items = parse_rails_xml(body)
        else:
            items = json.loads(body)
            if not isinstance(items, list):
                raise ValueError(f"expected a JSON array, got {type(items).__name__}")
            items = [item.get(wrapper, item) if isinstance(item, dict) and len(item) == 1 else item for item in items]
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("list items are not records")
        return [strip_secrets(item) for item in items]

    def list_virtual_machines(self) -> list[dict[str, Any]]:
        """Every VM of the fleet, each once, following the server's paging.

        Returns:
            Unwrapped VM records without secrets.

        Raises:
            PaginationError: The server ignores ``page`` or exceeds ``max_pages``.
        """
        asked = self.settings.per_page
        vms: dict[Any, dict[str, Any]] = {}
        previous: list[Any] = []
        page_size = asked  # the server's real page size, known after page 1
        url = f"{self._base}/virtual_machines.{self.settings.api_format}"
        for page in range(1, self.settings.max_pages + 1):
            items, headers = self._get_list("virtual_machines", "virtual_machine", {"page": page, "per_page": asked})
            ids = [item.get("id") for item in items]
            if ids and ids == previous:
                total, limit = headers.get("X-Total"), headers.get("X-Limit")
                more_announced = (total is not None and len(vms) < int(total)) or (
                    limit is not None and len(items) >= int(limit)
                )
                if page == 2 and len(items) < asked and not more_announced:
                    # The short first page was fetched past only to tell a cap from the
                    # end; an unpaged (pre-pagination) server repeats its whole list.
                    logger.warning("%s ignores paging; its %d VMs came in one page", url, len(items))
                    break
                raise PaginationError(
                    f"server ignores the page parameter at {url}: page {page} repeats page {page - 1}"
                )
            previous = ids
            for item in items:
                vms.setdefault(item.get("id"), item)  # first sighting wins: pages can overlap
            total, limit = headers.get("X-Total"), headers.get("X-Limit")
            if not items or (total is not None and len(vms) >= int(total)):
                break
            if total is not None:
                continue  # a capped page is short without being the last: X-Total decides
            if page == 1:
                if len(items) > asked:
                    break  # an unpaged server sent everything at once
                # Without X-Limit a short first page is either the end or the server's
                # cap: taking its length as the page size makes page 2 tell (empty: end).
                page_size = min(asked, int(limit)) if limit is not None else len(items)
            if len(items) < page_size:
                break
        else:
            raise PaginationError(f"more than {self.settings.max_pages} pages at {url}")
        return list(vms.values())

    def list_backups(self, vm_id: int) -> list[dict[str, Any]]:
        """The backup images of one VM.

        Args:
            vm_id: The VM's id.

        Returns:
            Unwrapped backup records without secrets.

        Raises:
            VmVanished: The VM answered 404 (deleted after it was listed).
        """
        try:
            items, _ = self._get_list(f"virtual_machines/{vm_id}/backups/images", "backup")
        except ApiError as exc:
            if exc.status == 404 and not isinstance(exc, BadPayload):
                raise VmVanished(vm_id) from None
            raise
        return items

    def _admin_list(self, path: str, wrapper: str, what: str) -> list[dict[str, Any]] | None:
        try:
            return self._get_list(path, wrapper, admin=True)[0]
        except ApiError as exc:
            if exc.status in (401, 403, 404) and not isinstance(exc, BadPayload):
                logger.warning("%s not readable with this key (HTTP %s): %s stay empty", path, exc.status, what)
                return None
            raise

    def list_users(self) -> list[dict[str, Any]] | None:
        """All users (admin only), or None when this key may not read them."""
        return self._admin_list("users", "user", "logins")

    def list_backup_servers(self) -> list[dict[str, Any]] | None:
        """All backup servers (admin only), or None when this key may not read them."""
        return self._admin_list("settings/backup_servers", "backup_server", "labels")

    def _fetch_one(self, vm_id: int) -> VmOutcome:
        try:
            return VmOutcome(vm_id, "ok", self.list_backups(vm_id), 200)
        except VmVanished:
            return VmOutcome(vm_id, "vanished", [], 404, None, "HTTP 404: deleted after it was listed")
        except BadPayload as exc:
            return VmOutcome(vm_id, "failed", [], exc.status, "bad_payload", f"HTTP {exc.status}: {exc.snippet}")
        except ApiError as exc:
            return VmOutcome(vm_id, "failed", [], exc.status, f"http_{exc.status}", f"HTTP {exc.status}: {exc.snippet}")
        except requests.RequestException as exc:
            return VmOutcome(vm_id, "failed", [], None, _error_kind(exc), str(exc)[:200])

    def fetch_backups(self, vm_ids: Iterable[int], *, log: logging.Logger | None = None) -> FetchReport:
        """Fetch the backup lists of many VMs concurrently; one VM's failure never stops the others.

        Args:
            vm_ids: The VMs to read.
            log: Where progress goes (e.g. ``context.log``); the module logger by default.

        Returns:
            A FetchReport with one VmOutcome per VM.

        Raises:
            CredentialsRefused: The key was refused; the remaining VMs are cancelled.
        """
        log = log or logger
        ids = list(dict.fromkeys(vm_ids))
        start, last_log = time.monotonic(), time.monotonic()
        requests_before, retries_before = self.requests, self.retries
        outcomes: dict[int, VmOutcome] = {}

        def line() -> str:
            elapsed = max(time.monotonic() - start, 1e-6)
            failed = sum(o.status == "failed" for o in outcomes.values())
            rate = (self.requests - requests_before) / elapsed
            eta = _duration((len(ids) - len(outcomes)) * elapsed / len(outcomes)) if outcomes else "?"
            return f"backups: {len(outcomes)}/{len(ids)} VMs, {rate:.1f} req/s, {failed} failed, ETA {eta}"

        # Finished futures arrive on a queue: concurrent.futures.wait() would re-register
        # on every pending future at each wake-up, quadratic for a fleet of 10,000 VMs.
        finished: queue.SimpleQueue[Future[VmOutcome]] = queue.SimpleQueue()
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            for vm_id in ids:
                pool.submit(self._fetch_one, vm_id).add_done_callback(finished.put)
            try:
                while len(outcomes) < len(ids):
                    try:
                        outcome = finished.get(timeout=self.settings.progress_seconds).result()
                        outcomes[outcome.vm_id] = outcome  # result() re-raised CredentialsRefused
                    except queue.Empty:
                        pass
                    if time.monotonic() - last_log >= self.settings.progress_seconds and len(outcomes) < len(ids):
                        log.info(line())
                        last_log = time.monotonic()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        report = FetchReport(
            outcomes={vm_id: outcomes[vm_id] for vm_id in ids},
            requests=self.requests - requests_before,
            retries=self.retries - retries_before,
            failed=sum(o.status == "failed" for o in outcomes.values()),
            vanished=sum(o.status == "vanished" for o in outcomes.values()),
            seconds=time.monotonic() - start,
        )
        log.info(
            "backups: %d/%d VMs in %s, %.1f req/s, %d failed, %d vanished, %d retries",
            len(outcomes), len(ids), _duration(report.seconds), report.requests / max(report.seconds, 1e-6),
            report.failed, report.vanished, report.retries,
        )  # fmt: skip
        return report
