"""One list body (JSON or Rails XML) into records: unwrapped, bounded in depth, without secrets."""

from __future__ import annotations

import json
from typing import Any

from pipeline.onapp.rails_xml import parse_rails_xml
from pipeline.onapp.secrets import MAX_DEPTH, strip_secrets


def decode_list(body: bytes, fmt: str, wrapper: str) -> list[dict[str, Any]]:
    """Parse a list body in the format asked for, unwrapped and without secrets; anything else raises ValueError.

    A body nesting more than MAX_DEPTH containers per record is a ValueError too, however deep:
    the JSON parser's own recursion limit and the iterative walk of ``strip_secrets`` both end
    in the same reason.
    """
    if fmt == "xml":
        items = parse_rails_xml(body)
    else:
        try:
            items = json.loads(body)
        except RecursionError:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
        if not isinstance(items, list):
            raise ValueError(f"expected a JSON array, got {type(items).__name__}")
        items = [item.get(wrapper, item) if isinstance(item, dict) and len(item) == 1 else item for item in items]
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("list items are not records")
    return [strip_secrets(item) for item in items]
