"""Secrets never leave the client: secret keys are dropped from records, secret values redacted from error text."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from pipeline.onapp.escape import printable

# A key is secret when one of its words (split on case changes, "_", "-" and any other separator)
# is one of these, plural included: apiKey, ssh_keys, otp_seed and Remote-Access-Password are
# secret; monkey, keyboard and bypass are not, since it is the word that matters.
SECRET_WORDS = frozenset(
    {"password", "passwd", "pass", "pwd", "passphrase", "secret", "token", "key", "otp", "credential"}
)
# Unambiguous enough to be secret inside any key, words run together or not (rootpassword, APIKEY).
SECRET_PARTS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "privatekey",
                "sshkey", "accesskey")
# Nested containers one record may hold: OnApp records nest two or three levels; a body nesting
# hundreds is hostile, and bounding it keeps every later step (JSON text, Arrow) off deep recursion.
MAX_DEPTH = 32
REDACTED = "[redacted]"
SNIPPET_CHARS = 200
_SCANNED_CHARS = 4000

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')
_JSON_SCALAR = re.compile(r"[^,}\]\s]*")
_XML_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)((?:\s[^<>]*?)?)(/?)>")
_XML_ATTRIBUTE = re.compile(r"""([\w.:-]+)(\s*=\s*)("[^"]*"?|'[^']*'?)""")


class TooDeep(ValueError):
    """A record nests more containers than it may (MAX_DEPTH)."""


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a record key names a secret (see SECRET_WORDS and SECRET_PARTS)."""
    # Keys repeat across records: the cache keeps this off the client's profile.
    compact = _NOT_ALNUM.sub("", key.lower())
    if any(part in compact for part in SECRET_PARTS):
        return True
    for word in _WORD.findall(key):
        word = word.lower()
        if word in SECRET_WORDS or (word.endswith("s") and word[:-1] in SECRET_WORDS):
            return True
    return False


def strip_secrets(record: Any, max_depth: int = MAX_DEPTH) -> Any:
    """Return a copy of ``record`` without secret keys at any depth.

    Args:
        record: A dict (or list/scalar) from the API.
        max_depth: How many containers may nest; the walk is iterative, so depth costs no stack.

    Returns:
        The same structure minus every key ``is_secret_key`` names.

    Raises:
        TooDeep: The record nests more than ``max_depth`` containers.
    """
    if not isinstance(record, (dict, list)):
        return record
    root: Any = {} if isinstance(record, dict) else []
    pending = [(record, root, 1)]
    while pending:
        source, target, depth = pending.pop()
        if depth > max_depth:
            raise TooDeep(f"nested deeper than {max_depth} levels")
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in pairs:
            if target.__class__ is dict and is_secret_key(str(key)):
                continue
            if isinstance(value, (dict, list)):
                copy: Any = {} if isinstance(value, dict) else []
                pending.append((value, copy, depth + 1))
                value = copy
            if target.__class__ is dict:
                target[key] = value
            else:
                target.append(value)
    return root


def body_snippet(body: bytes | str) -> str:
    """The first 200 characters of a body for a message: secret values redacted, control characters escaped.

    Values of secret keys are redacted whatever their type (string, number, object, array) in
    JSON, and as element text, CDATA or attribute in XML; a value cut off by truncation is
    redacted up to the end.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _redact_xml(_redact_json(text[:_SCANNED_CHARS]))
    return printable(text, SNIPPET_CHARS)


def _redact_json(text: str) -> str:
    out, pos = [], 0
    while (match := _JSON_KEY.search(text, pos)) is not None:
        out.append(text[pos : match.end()])
        pos = match.end()
        if is_secret_key(_json_key(match.group(1))):
            out.append(f'"{REDACTED}"')
            pos = _json_value_end(text, pos)
    out.append(text[pos:])
    return "".join(out)


def _json_key(raw: str) -> str:
    # "pass\u0077ord" is "password": decode escapes before judging the key.
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw


def _json_value_end(text: str, start: int) -> int:
    """Where the JSON value starting at ``start`` ends (the end of the text when it is cut off)."""
    if start >= len(text):
        return start
    if text[start] not in '"{[':
        match = _JSON_SCALAR.match(text, start)
        return match.end() if match else start
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                if depth == 0:
                    return index + 1
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


def _redact_xml(text: str) -> str:
    out, pos = [], 0
    while (match := _XML_TAG.search(text, pos)) is not None:
        out.append(text[pos : match.start()])
        out.append(f"<{match.group(1)}{_XML_ATTRIBUTE.sub(_redact_attribute, match.group(2))}{match.group(3)}>")
        pos = match.end()
        if not match.group(3) and is_secret_key(match.group(1)):
            if text.startswith("<![CDATA[", pos):
                end = text.find("]]>", pos)
                pos = len(text) if end < 0 else end + 3
            else:
                end = text.find("<", pos)
                pos = len(text) if end < 0 else end
            out.append(REDACTED)
    out.append(text[pos:])
    return "".join(out)


def _redact_attribute(match: re.Match[str]) -> str:
    if not is_secret_key(match.group(1)):
        return match.group(0)
    return f'{match.group(1)}{match.group(2)}"{REDACTED}"'
