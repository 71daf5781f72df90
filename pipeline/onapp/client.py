"""The OnApp API client: paged VM list, per-VM backup lists, admin lists, concurrent fetches."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable
from typing import Any

from pipeline.onapp.errors import (
    ApiError,
    BadPayload,
    CredentialsRefused,
    PaginationError,
    RedirectRefused,
    RequestDeadlineExceeded,
    ResponseTooLarge,
    VmVanished,
)
from pipeline.onapp.escape import printable
from pipeline.onapp.fanout import FetchReport, ListingConsumer, fan_out
from pipeline.onapp.paging import BIGINT_MAX, list_all_virtual_machines
from pipeline.onapp.session import ApiSession, ClientSettings

# The pipeline's wiring imports the client and what it raises and returns from this one module.
__all__ = [
    "ApiError", "ClientSettings", "CredentialsRefused", "FetchReport", "OnAppClient", "PaginationError",
    "RedirectRefused", "RequestDeadlineExceeded", "ResponseTooLarge", "printable",
]  # fmt: skip

logger = logging.getLogger("pipeline.onapp.client")


class OnAppClient:
    """OnApp API client over one pooled, retrying ``requests.Session``."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._api = ApiSession(settings)

    def __repr__(self) -> str:
        return f"OnAppClient({self._api.base!r}, user={self.settings.user!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._api.counters.requests

    @property
    def retries(self) -> int:
        """Retries so far (error statuses, dropped connections, timeouts, unusable bodies)."""
        return self._api.counters.retries

    def close(self) -> None:
        """Close the pooled connections."""
        self._api.close()

    def list_virtual_machines(self) -> list[dict[str, Any]]:
        """Every VM of the fleet, each once, following the server's paging.

        Returns:
            Unwrapped VM records without secrets.

        Raises:
            PaginationError: The server ignores ``page`` or exceeds ``max_pages``.
        """
        return list_all_virtual_machines(self._api)

    def list_backups(self, vm_id: int) -> list[dict[str, Any]]:
        """The backup images of one VM.

        Args:
            vm_id: The VM's id.

        Returns:
            Unwrapped backup records without secrets.

        Raises:
            VmVanished: The VM answered 404 (deleted after it was listed).
            ValueError: ``vm_id`` is not an integer from 0 to 2**63-1 (a boolean is not an id).
        """
        if isinstance(vm_id, bool) or not isinstance(vm_id, numbers.Integral) or not 0 <= vm_id <= BIGINT_MAX:
            raise ValueError(f"not a VM id: {printable(repr(vm_id), 60)}")
        try:
            items, _ = self._api.get_list(f"virtual_machines/{int(vm_id)}/backups/images", "backup")
        except ApiError as exc:
            if exc.status == 404 and not isinstance(exc, BadPayload):
                raise VmVanished(vm_id) from None
            raise
        return items

    def _admin_list(self, path: str, wrapper: str, what: str) -> list[dict[str, Any]] | None:
        try:
            return self._api.get_list(path, wrapper, admin=True)[0]
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

    def fetch_backups(
        self,
        vm_ids: Iterable[int],
        *,
        log: logging.Logger | None = None,
        on_listing: ListingConsumer | None = None,
    ) -> FetchReport:
        """Fetch the backup lists of many VMs concurrently; one VM's failure never stops the others.

        Args:
            vm_ids: The VMs to read.
            log: Where progress goes (e.g. ``context.log``); the module logger by default.
            on_listing: Called as ``on_listing(vm_id, records)`` on the calling thread for each VM read
                OK, as soon as it completes; the report's outcomes then keep no records, so a fleet's
                listings never sit in memory together.

        Returns:
            A FetchReport with one VmOutcome per VM.

        Raises:
            CredentialsRefused: The key was refused; the remaining VMs are cancelled.
            Exception: Whatever ``on_listing`` raised; the remaining VMs are cancelled.
        """
        return fan_out(
            self.list_backups,
            vm_ids,
            counters=self._api.counters,
            max_concurrency=self.settings.max_concurrency,
            progress_seconds=self.settings.progress_seconds,
            log=log or logger,
            on_listing=on_listing,
        )
