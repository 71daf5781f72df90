"""Reading a response body within a cap on its decoded size, as it streams."""

from __future__ import annotations

import requests

# Decoded bytes per read: urllib3 inflates gzip/deflate at most this much at a time.
CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The decoded body passed the cap; reading stopped there."""


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The decoded body of a streamed response, or BodyTooLarge once more than ``limit`` bytes have been decoded.

    urllib3 decodes Content-Encoding (gzip, deflate, and br/zstd when installed) chunk by chunk
    with a bound on each chunk's output, so a small compressed body that would inflate to
    gigabytes is cut at the cap, having inflated no more than the cap and one chunk.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def read_prefix(response: requests.Response, limit: int) -> bytes:
    """At most the first ``limit`` decoded bytes of a streamed response (enough to quote it in an error)."""
    return next(response.iter_content(limit), b"")
