"""What the OnApp API can fail with, as exceptions the pipeline tells apart."""

from __future__ import annotations

import requests


class ApiError(Exception):
    """The API answered with an error status (after retries) or an unusable body."""

    def __init__(self, status: int | None, snippet: str, url: str) -> None:
        self.status, self.snippet, self.url = status, snippet, url
        super().__init__(f"HTTP {status} from {url}: {snippet!r}")


class BadPayload(ApiError):
    """A response whose body is not the list asked for (HTML, truncated, not a list, too deep), after retries."""

    def __init__(self, status: int | None, snippet: str, url: str, reason: str = "") -> None:
        super().__init__(status, snippet, url)
        self.reason = reason
        why = f" ({reason})" if reason else ""
        self.args = (f"unusable body{why} (HTTP {status}) from {url}: {snippet!r}",)


class ResponseTooLarge(ApiError):
    """A body larger, once decoded, than ONAPP_MAX_RESPONSE_MB; cut off there, and not retried."""

    def __init__(self, status: int, url: str, limit_bytes: int) -> None:
        super().__init__(status, "", url)
        self.reason = f"response too large: more than {limit_bytes / 2**20:g} MiB once decoded (ONAPP_MAX_RESPONSE_MB)"
        self.args = (f"{self.reason} from {url}",)


class RedirectRefused(ApiError):
    """A redirect away from the API's origin (scheme, host and port), or too many of them; not followed."""

    def __init__(self, status: int, url: str, reason: str) -> None:
        super().__init__(status, "", url)
        self.reason = reason
        self.args = (f"{reason} (HTTP {status} from {url})",)


class RequestDeadlineExceeded(requests.exceptions.Timeout):
    """No complete answer within ONAPP_REQUEST_DEADLINE, on every try; a timeout like any other."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        super().__init__(f"timed out: no complete answer within the request deadline of {seconds:g} s "
                         f"(ONAPP_REQUEST_DEADLINE) from {url}")


class CredentialsRefused(Exception):
    """The API refused the user/key (HTTP 401/403) on a data call; nothing else can work."""

    def __init__(self, status: int, url: str, user: str) -> None:
        self.status, self.url, self.user = status, url, user
        super().__init__(f"credentials refused (HTTP {status}) by {url} for user {user!r}")


class PaginationError(Exception):
    """The server's paging cannot be followed safely (ignores ``page``, too many pages, malformed headers)."""


class VmVanished(Exception):
    """The VM answered 404: it was deleted after it was listed."""

    def __init__(self, vm_id: int) -> None:
        self.vm_id = vm_id
        super().__init__(f"virtual machine {vm_id} vanished (HTTP 404)")
