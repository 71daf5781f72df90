"""Text from the API made safe for one log line or message: control characters are shown, never obeyed."""

from __future__ import annotations


def printable(text: object, limit: int | None = None) -> str:
    """``str(text)`` with non-printable characters escaped as repr() shows them, cut to ``limit`` characters.

    Newlines, carriage returns, ANSI escapes, bidi overrides and lone surrogates all become
    ``\\n``, ``\\x1b``, ``\\u202e``... so API text can neither start a forged log line nor
    recolour or reorder one, and always encodes as UTF-8.
    """
    text = str(text)
    if limit is not None:
        text = text[:limit]  # escaping only lengthens: no need to look further
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if limit is None else text[:limit]
