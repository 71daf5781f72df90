"""Following the OnApp VM list page by page, whatever paging the server does or does not do."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.onapp.errors import PaginationError
from pipeline.onapp.session import ApiSession

logger = logging.getLogger("pipeline.onapp.paging")


def list_all_virtual_machines(api: ApiSession) -> list[dict[str, Any]]:
    """Every VM of the fleet, each once, following the server's paging.

    Args:
        api: The session to read pages with; its settings give ``per_page`` and ``max_pages``.

    Returns:
        Unwrapped VM records without secrets.

    Raises:
        PaginationError: The server ignores ``page`` or exceeds ``max_pages``.
    """
    asked = api.settings.per_page
    vms: dict[Any, dict[str, Any]] = {}
    previous: list[Any] = []
    page_size = asked  # the server's real page size, known after page 1
    url = api.url("virtual_machines")
    for page in range(1, api.settings.max_pages + 1):
        items, headers = api.get_list("virtual_machines", "virtual_machine", {"page": page, "per_page": asked})
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
            raise PaginationError(f"server ignores the page parameter at {url}: page {page} repeats page {page - 1}")
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
        raise PaginationError(f"more than {api.settings.max_pages} pages at {url}")
    return list(vms.values())
