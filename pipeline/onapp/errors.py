"""What the OnApp API can fail with, as exceptions the pipeline tells apart."""

from __future__ import annotations


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
