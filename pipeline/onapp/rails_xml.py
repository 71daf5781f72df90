"""Parse Rails ``to_xml`` array documents (OnApp's XML format) into the dicts JSON would give."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from pipeline.onapp.escape import printable
from pipeline.onapp.secrets import MAX_DEPTH


class RailsXmlError(ValueError):
    """The body is not a well-formed, safe Rails XML array document."""


def _typed_leaf(kind: str, text: str) -> Any:
    """Convert a typed leaf's text, like ActiveSupport's XML parser does."""
    value = text.strip()
    if kind not in ("string", "") and not value:
        # Rails reads an empty typed leaf (no nil attribute) as nil too.
        return None
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        if value.lower() not in ("true", "false", "1", "0"):
            raise RailsXmlError(f"not a boolean: {value[:40]!r}")
        return value.lower() in ("true", "1")
    if kind in ("decimal", "float", "double"):
        return float(value)
    # datetime/date stay ISO strings: JSON gives strings and the normalizer
    # parses timestamps in one place for both formats.
    return text


def _key(element: Element) -> str:
    # Rails dasherizes tags by default (backup-size); JSON keys use underscores.
    return element.tag.replace("-", "_")


def _value(element: Element, depth: int) -> Any:
    """Turn one element into the value JSON would hold for it; ``depth`` counts the containers around it."""
    if element.get("nil") == "true":
        return None
    kind = element.get("type", "")
    children = list(element)
    if (kind in ("array", "hash") or children) and depth > MAX_DEPTH:
        # Bounded recursion: expat builds a tree of any depth, this walk must not follow it.
        raise RailsXmlError(f"nested deeper than {MAX_DEPTH} levels")
    if kind == "array":
        return [_value(child, depth + 1) for child in children]
    if kind == "hash" or children:
        return {_key(child): _value(child, depth + 1) for child in children}
    try:
        return _typed_leaf(kind, element.text or "")
    except ValueError as exc:
        raise RailsXmlError(f"bad <{printable(element.tag, 40)} type={kind!r}> value: {exc}") from None


def parse_rails_xml(body: bytes) -> list[dict[str, Any]]:
    """Parse an untrusted Rails XML array document into a list of unwrapped records.

    ``<backups type="array"><backup>...</backup></backups>`` becomes
    ``[{...}]``, equal to the JSON body with each ``{"backup": {...}}`` unwrapped.

    Args:
        body: The raw response body.

    Returns:
        One dict per array item, with Rails types applied (integer, boolean,
        decimal/float, nil; datetimes stay ISO strings).

    Raises:
        RailsXmlError: The document is malformed, uses a DTD or entities
            (refused: billion-laughs and external-entity attacks), its root is
            not a ``type="array"`` element, an item is not a record, or a record
            nests more than MAX_DEPTH containers.
    """
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise RailsXmlError(f"refused or malformed XML: {exc}") from None
    if root.get("type") != "array":
        raise RailsXmlError(f"root <{printable(root.tag, 40)}> is not a Rails array (type=\"array\")")
    records = []
    for item in root:
        # An item without children is an empty record, not an empty string.
        record = _value(item, 1) if len(item) or item.get("nil") == "true" else {}
        if not isinstance(record, dict):
            tags = f"<{printable(item.tag, 40)}> of <{printable(root.tag, 40)}>"
            raise RailsXmlError(f"array item {tags} is not a record")
        records.append(record)
    return records
