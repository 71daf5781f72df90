"""Secrets never leave the client: secret keys are dropped from records, secret values redacted from error text."""

from __future__ import annotations

import functools
import re
from typing import Any

SECRET_KEY = re.compile(r"password|passwd|secret|api_key|token|private_key", re.IGNORECASE)
# Redacts secret values inside raw bodies quoted in errors (JSON and XML); a value
# cut off by truncation (no closing quote or tag) is redacted up to the end.
_SECRET_IN_JSON = re.compile(
    r'("[^"]*(?:password|passwd|secret|api_key|token|private_key)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I
)
_SECRET_IN_XML = re.compile(
    r"(<[\w-]*(?:password|passwd|secret|api_key|token|private_key)[\w-]*(?:\s[^>]*)?>)[^<]*", re.I
)


def strip_secrets(record: Any) -> Any:
    """Return a copy of ``record`` without keys that look like secrets, at any depth.

    Args:
        record: A dict (or list/scalar) from the API.

    Returns:
        The same structure minus every key matching password/secret/token/... .
    """
    if isinstance(record, dict):
        return {
            k: strip_secrets(v) if isinstance(v, (dict, list)) else v
            for k, v in record.items()
            if not _is_secret_key(k)
        }
    if isinstance(record, list):
        return [strip_secrets(v) for v in record]
    return record


@functools.lru_cache(maxsize=4096, typed=True)
def _is_secret_key(key: Any) -> bool:
    # A regex search per key of every record was a sixth of the client's CPU; the keys repeat.
    return SECRET_KEY.search(str(key)) is not None


def body_snippet(body: bytes | str) -> str:
    """First 200 characters of a body, with secret values redacted."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _SECRET_IN_XML.sub(r"\1[redacted]", _SECRET_IN_JSON.sub(r'\1"[redacted]"', text[:4000]))
    return text[:200]
