"""One pooled, retrying HTTP session to the OnApp API: settings, counters, GET of one list within bounds."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from pipeline.onapp.body import BodyTooLarge, read_capped, read_prefix
from pipeline.onapp.deadline import DeadlineAdapter, RequestClock, Watchdog, clock_of_thread, current_clock
from pipeline.onapp.decode import decode_list
from pipeline.onapp.errors import (
    ApiError,
    BadPayload,
    CredentialsRefused,
    RedirectRefused,
    RequestDeadlineExceeded,
    ResponseTooLarge,
)
from pipeline.onapp.escape import printable
from pipeline.onapp.redirects import MAX_REDIRECTS, origin, redirect_target, shown_origin
from pipeline.onapp.secrets import body_snippet

__all__ = ["ApiSession", "CappedRetry", "ClientSettings", "Counters", "decode_list"]

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
RETRY_STATUSES = (429, 500, 502, 503, 504)
# Decoded bytes of an error body read to quote it: the rest is never read.
ERROR_BODY_BYTES = 4000


@dataclass
class ClientSettings:
    """Every knob of the client (pipeline.defs.settings fills them from the ONAPP_* variables)."""

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
    max_response_mb: float = 64.0  # decoded size of one response, MiB
    request_deadline: float = 120.0  # seconds one request may take, body included

    def __post_init__(self) -> None:
        if self.api_format not in ("json", "xml"):
            raise ValueError(f"ONAPP_API_FORMAT must be json or xml, not {self.api_format!r}")
        if urlsplit(self.api_url).password is not None:
            # Credentials in the URL would leak into every error message.
            raise ValueError("put credentials in ONAPP_API_USER/ONAPP_API_KEY, not in ONAPP_API_URL")
        if self.per_page < 1 or self.max_pages < 1 or self.max_concurrency < 1:
            raise ValueError("per_page, max_pages and max_concurrency must be at least 1")
        for name in ("max_response_mb", "request_deadline"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")


class Counters:
    """Thread-safe request/retry tallies shared by all worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def add(self, *, sent: int = 0, retried: int = 0) -> None:
        """Count requests sent and retries made."""
        with self._lock:
            self.requests += sent
            self.retries += retried


class _BodyUnusable(ProtocolError):
    """Marks a retry caused by the body (counts against the read budget, like a cut connection)."""


class _BodyTimedOut(ReadTimeoutError):
    """Marks a retry caused by the deadline passing while the body was read (the read budget too)."""


class CappedRetry(Retry):
    """urllib3 Retry that never lets Retry-After stall or crash a run."""

    def get_retry_after(self, response: Any) -> float | None:
        # urllib3 already falls back to backoff for "0" or a past date, but raises
        # InvalidHeader on a malformed or negative value (escaping as a raw urllib3
        # error) and honours up to 6 h: fall back to backoff, and cap at backoff_max.
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            return None
        return None if seconds is None else min(seconds, self.backoff_max)


class _CountingRetry(CappedRetry):
    """urllib3 Retry that tallies retries, ends each try's deadline, and caps Retry-After."""

    def __init__(self, *args: Any, counters: Counters | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counters = counters

    def new(self, **kw: Any) -> _CountingRetry:
        return super().new(counters=self.counters, **kw)

    def increment(self, *args: Any, **kwargs: Any) -> _CountingRetry:
        new = super().increment(*args, **kwargs)  # raises MaxRetryError when exhausted
        if self.counters is not None:
            # A transport retry sends another request inside urllib3; a body retry
            # goes back through our loop, which counts its own requests.
            transport = not isinstance(kwargs.get("error"), (_BodyUnusable, _BodyTimedOut))
            self.counters.add(sent=int(transport), retried=1)
        return new

    def sleep(self, response: Any = None) -> None:
        # urllib3 drains a retried response's body before sleeping: the try (and its deadline)
        # ends here, so the drain stays bounded and the backoff does not eat the next try's time.
        clock = current_clock()
        if clock is not None:
            clock.end()
        super().sleep(response)


class _TryFailed(Exception):
    """One try of a list went wrong in a way the Retry budget covers; ``final`` is raised once it is spent."""

    def __init__(self, marker: Exception, final: Exception) -> None:
        super().__init__(str(marker))
        self.marker, self.final = marker, final


class ApiSession:
    """A pooled ``requests.Session`` that GETs one list within bounds, retrying error statuses and bad bodies alike."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.counters = Counters()
        self._base = settings.api_url.rstrip("/")
        self._origin = origin(self._base)
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._verify: bool | str = settings.ca_bundle or True
        self._max_bytes = max(1, int(settings.max_response_mb * 2**20))
        self._watchdog = Watchdog()
        self._clocks = threading.local()
        n = settings.retries
        # other=0: errors that are neither connect, read nor status (TLS verification
        # failures among them) are not transient, so they are not retried.
        self._retry = _CountingRetry(
            total=n, connect=n, read=n, status=n, other=0,
            backoff_factor=settings.backoff_factor, backoff_max=settings.backoff_max,
            backoff_jitter=settings.backoff_jitter, status_forcelist=RETRY_STATUSES,
            allowed_methods={"GET"}, respect_retry_after_header=True, raise_on_status=False,
            counters=self.counters,
        )  # fmt: skip
        adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=self._retry)
        self._session = requests.Session()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.auth = (settings.user, settings.api_key)
        self._session.headers["Accept"] = f"application/{settings.api_format}"
        # Every request goes to one origin, so the proxy and CA bundle the environment gives it are read
        # once, here: requests would scan os.environ on each request, a tenth of the fetch's CPU.
        environment = self._session.merge_environment_settings(self._base, {}, None, self._verify, None)
        self._session.proxies, self._verify = environment["proxies"], environment["verify"]
        self._session.trust_env = False

    @property
    def base(self) -> str:
        """The API's root URL, without a trailing slash."""
        return self._base

    def url(self, path: str) -> str:
        """The URL of a list, in the format asked for."""
        return f"{self._base}/{path}.{self.settings.api_format}"

    def close(self) -> None:
        """Close the pooled connections and stop the deadline's watchdog."""
        self._session.close()
        self._watchdog.close()

    def get_list(
        self, path: str, wrapper: str, params: Mapping[str, Any] | None = None, *, admin: bool = False
    ) -> tuple[list[dict[str, Any]], Mapping[str, str]]:
        """GET one list; retry unusable bodies with the same Retry policy; unwrap and strip secrets.

        Args:
            path: The list's path below the API root, without the format suffix.
            wrapper: The key each item is wrapped in (JSON), e.g. ``"backup"``.
            params: Query parameters.
            admin: A refusal (401/403) is an ApiError the caller may tolerate, not CredentialsRefused.

        Returns:
            The records and the response headers.

        Raises:
            CredentialsRefused: The key was refused on a data call.
            ApiError: An error status after retries.
            BadPayload: An unusable body after retries.
            ResponseTooLarge: The decoded body passed ``max_response_mb`` (not retried).
            RedirectRefused: A redirect off the API's origin, or too many (not retried).
            RequestDeadlineExceeded: No complete answer within ``request_deadline``, after retries.
        """
        url = self.url(path)
        retry: Retry = self._retry
        with clock_of_thread(self._clock()) as clock:
            while True:
                try:
                    return self._try(url, params, wrapper, admin, clock)
                except _TryFailed as failed:
                    # A 200 that is not the list (HTML, cut off, not a list) is as transient
                    # as a 503: spend the same retry budget, with the same backoff.
                    try:
                        retry = retry.increment("GET", url, error=failed.marker)
                    except MaxRetryError:
                        raise failed.final from None
                    retry.sleep()

    def _clock(self) -> RequestClock:
        # One per thread, reused: the watchdog's queue holds few distinct clocks.
        clock = getattr(self._clocks, "clock", None)
        if clock is None:
            clock = self._clocks.clock = RequestClock(self._watchdog, self.settings.request_deadline)
        return clock

    def _try(
        self, url: str, params: Mapping[str, Any] | None, wrapper: str, admin: bool, clock: RequestClock
    ) -> tuple[list[dict[str, Any]], Mapping[str, str]]:
        try:
            response = self._get(url, params)
        except requests.RequestException:
            if clock.fired:
                raise RequestDeadlineExceeded(url, clock.seconds) from None
            raise
        status = response.status_code
        cut: requests.RequestException | None = None
        try:
            if status in (401, 403) and not admin:
                raise CredentialsRefused(status, url, self.settings.user)
            try:
                if status >= 400:
                    body = read_prefix(response, ERROR_BODY_BYTES)
                else:
                    body = read_capped(response, self._max_bytes)
            except BodyTooLarge:
                raise ResponseTooLarge(status, url, self._max_bytes) from None
            except requests.RequestException as exc:  # cut connection, broken gzip
                body, cut = b"", exc
            # A body read to its end has put the connection back in the pool, where another thread may
            # take it: the try's clock lets go of the socket now, not after decoding.
            if clock.end():
                deadline = RequestDeadlineExceeded(url, clock.seconds)
                raise _TryFailed(_BodyTimedOut(None, url, str(deadline)), deadline)
            if status >= 400:
                raise ApiError(status, body_snippet(body), url)
            try:
                if cut is not None:
                    raise ValueError(f"body cut off ({type(cut).__name__})")
                if "html" in response.headers.get("Content-Type", "").lower():
                    raise ValueError("HTML page instead of data (a proxy or login page)")
                return decode_list(body, self.settings.api_format, wrapper), response.headers
            except ValueError as exc:  # RailsXmlError, JSONDecodeError, TooDeep: ValueError
                reason = printable(exc, 200)
                raise _TryFailed(_BodyUnusable(reason), BadPayload(status, body_snippet(body), url, reason)) from None
        finally:
            response.close()
            clock.end()

    def _get(self, url: str, params: Mapping[str, Any] | None) -> requests.Response:
        """GET, following redirects that stay on the API's origin; any other redirect raises RedirectRefused."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._session.get(
                url, params=params, timeout=self._timeout, verify=self._verify, stream=True, allow_redirects=False
            )
            self.counters.add(sent=1)
            target = redirect_target(response)
            if target is None:
                return response
            response.close()
            if origin(target) != self._origin:
                raise RedirectRefused(response.status_code, url, f"redirect to another origin ({shown_origin(target)})")
            url, params = target, None  # the target carries its own query
        raise RedirectRefused(response.status_code, url, f"more than {MAX_REDIRECTS} redirects")
