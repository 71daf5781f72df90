"""One POST to the alert webhook: a short timeout, a few retries, and an outcome that is returned, never raised.

The URL may carry a token (Slack's carry it in the path), so it is a secret: it never reaches a log line,
an exception, a reason or a return value. urllib3 logs request paths (at DEBUG, and a WARNING when it
retries a dropped connection); a filter on its loggers hides the URL's path and query while a POST runs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError

from pipeline.onapp.session import CappedRetry

TIMEOUT = (5.0, 10.0)  # (connect, read) seconds of each try
RETRIES = 3
BACKOFF_FACTOR = 0.5  # seconds: 0, 1, 2 between the tries
BACKOFF_MAX = 10.0  # and the cap on a receiver's Retry-After
RETRY_STATUSES = (429, 500, 502, 503, 504)
# Bytes of an error answer kept as its reason (Slack answers e.g. "invalid_payload").
REASON_BYTES = 200
HIDDEN = "(hidden)"
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection", "urllib3.response")


@dataclass(frozen=True)
class Delivery:
    """What became of one message: sent (a 2xx answer) or failed, with the last status, the tries and why."""

    ok: bool
    http_status: int | None
    tries: int
    reason: str | None = None

    @property
    def status(self) -> str:
        return "sent" if self.ok else "failed"


class _HideSecrets(logging.Filter):
    """Rewrites urllib3's log records so that no registered secret text survives in them."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: dict[str, int] = {}

    @contextmanager
    def hiding(self, secrets: list[str]) -> Iterator[None]:
        with self._lock:
            for secret in secrets:
                self._secrets[secret] = self._secrets.get(secret, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for secret in secrets:
                    self._secrets[secret] -= 1
                    if not self._secrets[secret]:
                        del self._secrets[secret]

    def hide(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)  # the whole URL before its path
        for secret in secrets:
            text = text.replace(secret, HIDDEN)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg, record.args = self.hide(record.getMessage()), None
        return True


_FILTER = _HideSecrets()
for _name in _URLLIB3_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def secret_parts(url: str) -> list[str]:
    """The texts of a webhook URL that may carry its token: the URL, its path and its query."""
    parts = urlsplit(url)
    found = [url, parts.path if len(parts.path) > 1 else "", parts.query, parts.fragment]
    return [part for part in found if part]


class _Tally:
    def __init__(self) -> None:
        self.failed_tries = 0
        self.gave_up = False


class _TallyingRetry(CappedRetry):
    """urllib3 Retry that counts the tries that failed and whether it gave up, and caps Retry-After."""

    def __init__(self, *args: Any, tally: _Tally | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tally = tally or _Tally()

    def new(self, **kw: Any) -> _TallyingRetry:
        return super().new(tally=self.tally, **kw)

    def increment(self, *args: Any, **kwargs: Any) -> _TallyingRetry:
        # Called once per failed try; it raises when the budget is spent.
        self.tally.failed_tries += 1
        try:
            return super().increment(*args, **kwargs)
        except MaxRetryError:
            self.tally.gave_up = True
            raise


def _why(error: Exception) -> str:
    """Why a POST got no answer, in words that never quote the request (its URL) the way exceptions do."""
    cause = error.args[0] if error.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    # NewConnectionError is a ConnectTimeoutError to urllib3: it is told apart first.
    if isinstance(reason, NewConnectionError):
        return "could not connect (refused, unreachable or unknown host)"
    if isinstance(error, requests.exceptions.ConnectTimeout) or isinstance(reason, ConnectTimeoutError):
        return "connect timeout"
    if isinstance(error, requests.exceptions.ReadTimeout) or isinstance(reason, ReadTimeoutError):
        return "no answer within the read timeout"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate not trusted?)"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "the connection closed without an answer"
    return f"request failed ({type(error).__name__})"


def _answer_reason(response: requests.Response, hide: _HideSecrets) -> str:
    body = response.raw.read(REASON_BYTES, decode_content=True) or b""
    text = " ".join(body.decode("utf-8", "replace").split())
    # An error page may quote the request's path: the token in it stays hidden.
    text = hide.hide(text)
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def post(url: str, payload: dict[str, Any], *, retries: int = RETRIES, backoff_factor: float = BACKOFF_FACTOR,
         timeout: tuple[float, float] = TIMEOUT) -> Delivery:
    """POST payload as JSON; retry connection failures, timeouts, 429 and 5xx; never follow a redirect.

    Returns:
        The delivery: ok on a 2xx answer. Nothing is raised, whatever happens to the request.
    """
    tally = _Tally()
    retry = _TallyingRetry(
        total=retries, connect=retries, read=retries, status=retries, other=0,
        backoff_factor=backoff_factor, backoff_max=BACKOFF_MAX, status_forcelist=RETRY_STATUSES,
        # POST is not idempotent, but a message told twice beats an alert never told.
        allowed_methods={"POST"}, respect_retry_after_header=True, raise_on_status=False, tally=tally,
    )  # fmt: skip
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    with _FILTER.hiding(secret_parts(url)), requests.Session() as session:
        session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
        try:
            # Redirects are not followed: a 3xx would re-send (or drop) the message somewhere not configured.
            with session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout,
                              allow_redirects=False, stream=True) as response:
                tries = tally.failed_tries + (0 if tally.gave_up else 1)
                if 200 <= response.status_code < 300:
                    return Delivery(ok=True, http_status=response.status_code, tries=tries)
                return Delivery(ok=False, http_status=response.status_code, tries=tries,
                                reason=_answer_reason(response, _FILTER))
        except Exception as error:  # noqa: BLE001 - a webhook never fails the sync; the reason is recorded
            return Delivery(ok=False, http_status=None, tries=max(tally.failed_tries, 1), reason=_why(error))
