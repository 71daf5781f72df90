"""Following the OnApp VM list page by page, whatever paging the server does or does not do."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipeline.onapp.errors import PaginationError
from pipeline.onapp.escape import printable
from pipeline.onapp.session import ApiSession

logger = logging.getLogger("pipeline.onapp.paging")

BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def vm_id_of(value: Any) -> int | None:
    """A VM's id as an exact integer a URL may carry (an int, or digits as old APIs send), or None.

    Booleans are not ids (True is not VM 1), an id above BIGINT could not be stored, and OnApp
    ids are never negative.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if type(value) is not int or not 0 <= value <= BIGINT_MAX:
        return None
    return value


def _count(headers: Mapping[str, str], name: str, url: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw.strip()):
        raise PaginationError(f"malformed {name} header at {url}: {printable(raw, 40)!r} is not a count")
    return int(raw.strip())


def _honours_per_page(api: ApiSession, page_length: int) -> bool:
    """Whether the server cuts page 1 to a smaller per_page than the length its page 1 had.

    A one-VM page cannot be asked smaller: that list is taken as whole.
    """
    if page_length < 2:
        return False
    smaller = page_length // 2
    items, _ = api.get_list("virtual_machines", "virtual_machine", {"page": 1, "per_page": smaller})
    return len(items) <= smaller


Page = tuple[list[dict[str, Any]], Mapping[str, str]]


class _PageReader:
    """Pages of the VM list in order; once X-Total says how many there are, the next few are read ahead.

    The pages are still taken one by one in order, so the checks below see what a sequential read gives;
    reading ahead only overlaps their latencies (100 pages at 50 ms: 5 s one after the other). At most
    max_concurrency pages are requested past the one being taken, so a list that ends early wastes few.
    """

    def __init__(self, api: ApiSession, per_page: int) -> None:
        self._api, self._per_page = api, per_page
        self._ahead: dict[int, Future[Page]] = {}
        self._last = 1  # the last page the list is known to have
        self._pool: ThreadPoolExecutor | None = None

    def know_last(self, last: int) -> None:
        self._last = min(last, self._api.settings.max_pages)

    def get(self, page: int) -> Page:
        window = self._api.settings.max_concurrency
        if self._last > page and window > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="vm-list")
            # This page and the next ones: never more than window pages in flight.
            for ahead in range(page, min(page + window - 1, self._last) + 1):
                if ahead not in self._ahead:
                    self._ahead[ahead] = self._pool.submit(self._read, ahead)
        future = self._ahead.pop(page, None)
        return future.result() if future is not None else self._read(page)

    def _read(self, page: int) -> Page:
        return self._api.get_list("virtual_machines", "virtual_machine", {"page": page, "per_page": self._per_page})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _last_page(total: int, page_one: int, asked: int, limit: int | None) -> int:
    """The page that should end a list of total VMs, from page 1's length and the server's X-Limit."""
    page_size = min(asked, limit) if limit else page_one
    return math.ceil(total / page_size) if page_size > 0 else 1


def list_all_virtual_machines(api: ApiSession) -> list[dict[str, Any]]:
    """Every VM of the fleet, each once, following the server's paging.

    Args:
        api: The session to read pages with; its settings give ``per_page`` and ``max_pages``.

    Returns:
        Unwrapped VM records without secrets, each with an exact integer ``id``; entries
        whose id is not one (missing, boolean, outside BIGINT) are left out with a warning.

    Raises:
        PaginationError: The server ignores ``page``, exceeds ``max_pages`` or sends a malformed X-Total/X-Limit.
    """
    url = api.url("virtual_machines")
    pages = _PageReader(api, api.settings.per_page)
    try:
        vms, skipped = _follow(api, pages, url)
    finally:
        pages.close()
    if skipped:
        logger.warning("%s: %d VM entries without a usable id (an integer from 0 to 2**63-1) left out, the first "
                       "with id %s", url, len(skipped), printable(repr(skipped[0]), 60))
    return list(vms.values())


def _follow(api: ApiSession, pages: _PageReader, url: str) -> tuple[dict[int, dict[str, Any]], list[Any]]:
    asked = api.settings.per_page
    vms: dict[int, dict[str, Any]] = {}
    skipped: list[Any] = []
    previous: list[Any] = []
    page_size = asked  # the server's real page size, known after page 1
    for page in range(1, api.settings.max_pages + 1):
        items, headers = pages.get(page)
        total, limit = _count(headers, "X-Total", url), _count(headers, "X-Limit", url)
        if page == 1 and total is not None and total > len(items):
            pages.know_last(_last_page(total, len(items), asked, limit))
        ids = [vm_id_of(item.get("id")) for item in items]
        if ids and ids == previous:
            more_announced = (total is not None and len(vms) + len(skipped) < total) or (
                limit is not None and len(items) >= limit
            )
            repeated = f"server ignores the page parameter at {url}: page {page} repeats page {page - 1}"
            if page == 2 and len(items) < asked and not more_announced:
                # The short first page was fetched past only to tell a cap from the end. An unpaged
                # (pre-pagination) server repeats its whole list and ignores per_page too; one that
                # honours per_page but not page may have cut its list at a cap: not to be trusted.
                if _honours_per_page(api, len(items)):
                    raise PaginationError(f"{repeated}, yet honours per_page: page 1 may be cut at a cap")
                logger.warning("%s ignores paging; its %d VMs came in one page", url, len(items))
                break
            raise PaginationError(repeated)
        previous = ids
        for vm_id, item in zip(ids, items):
            if vm_id is None:
                skipped.append(item.get("id"))
            else:
                vms.setdefault(vm_id, item)  # first sighting wins: pages can overlap
        if not items or (total is not None and len(vms) + len(skipped) >= total):
            break
        if total is not None:
            continue  # a capped page is short without being the last: X-Total decides
        if page == 1:
            if len(items) > asked:
                break  # an unpaged server sent everything at once
            # Without X-Limit a short first page is either the end or the server's
            # cap: taking its length as the page size makes page 2 tell (empty: end).
            page_size = min(asked, limit) if limit is not None else len(items)
        if len(items) < page_size:
            break
    else:
        raise PaginationError(f"more than {api.settings.max_pages} pages at {url}")
    return vms, skipped
