"""One pooled, retrying HTTP session to the OnApp API: settings, counters, GET of one list, decoding."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError
from urllib3.util.retry import Retry

from pipeline.onapp.errors import ApiError, BadPayload, CredentialsRefused
from pipeline.onapp.rails_xml import parse_rails_xml
from pipeline.onapp.secrets import body_snippet, strip_secrets

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
RETRY_STATUSES = (429, 500, 502, 503, 504)


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

    def __post_init__(self) -> None:
        if self.api_format not in ("json", "xml"):
            raise ValueError(f"ONAPP_API_FORMAT must be json or xml, not {self.api_format!r}")
        if urlsplit(self.api_url).password is not None:
            # Credentials in the URL would leak into every error message.
            raise ValueError("put credentials in ONAPP_API_USER/ONAPP_API_KEY, not in ONAPP_API_URL")
        if self.per_page < 1 or self.max_pages < 1 or self.max_concurrency < 1:
            raise ValueError("per_page, max_pages and max_concurrency must be at least 1")



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


class _CountingRetry(Retry):
    """urllib3 Retry that tallies retries and never lets Retry-After stall or crash a run."""

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


def decode_list(body: bytes, fmt: str, wrapper: str) -> list[dict[str, Any]]:
    """Parse a list body in the format asked for, unwrapped and without secrets; anything else raises ValueError."""
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


class ApiSession:
    """A pooled ``requests.Session`` that GETs one list, retrying error statuses and unusable bodies alike."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.counters = Counters()
        self._base = settings.api_url.rstrip("/")
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._verify: bool | str = settings.ca_bundle or True
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
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=self._retry)
        self._session = requests.Session()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.auth = (settings.user, settings.api_key)
        self._session.headers["Accept"] = f"application/{settings.api_format}"

    @property
    def base(self) -> str:
        """The API's root URL, without a trailing slash."""
        return self._base

    def url(self, path: str) -> str:
        """The URL of a list, in the format asked for."""
        return f"{self._base}/{path}.{self.settings.api_format}"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

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
        """
        url = self.url(path)
        retry: Retry = self._retry
        while True:
            response = self._session.get(url, params=params, timeout=self._timeout, verify=self._verify, stream=True)
            self.counters.add(sent=1)
            status = response.status_code
            if status in (401, 403) and not admin:
                response.close()
                raise CredentialsRefused(status, url, self.settings.user)
            body = b""
            try:
                body = response.content
                if status >= 400:
                    raise ApiError(status, body_snippet(body), url)
                if "html" in response.headers.get("Content-Type", "").lower():
                    raise ValueError("HTML page instead of data (a proxy or login page)")
                return decode_list(body, self.settings.api_format, wrapper), response.headers
            except (ValueError, requests.RequestException) as exc:  # RailsXmlError, JSONDecodeError: ValueError
                # A 200 that is not the list (HTML, cut off, not a list) is as transient
                # as a 503: spend the same retry budget, with the same backoff.
                try:
                    retry = retry.increment("GET", url, error=_BodyUnusable(str(exc)[:200]))
                except MaxRetryError:
                    raise BadPayload(status, body_snippet(body), url) from None
                retry.sleep()
            finally:
                response.close()
