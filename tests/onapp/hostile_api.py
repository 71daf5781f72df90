"""A loopback API that answers chosen paths with crafted, hostile responses and forwards the rest to a demo cloud."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from pipeline.demo.server import DemoCloud
from tests.loopback import LoopbackServer

# Headers of the demo cloud's answers that the client reads.
_RELAYED = ("Content-Type", "Content-Encoding", "X-Total", "X-Limit", "X-Page", "Retry-After", "WWW-Authenticate")


@dataclass
class Crafted:
    """One crafted answer: status, headers, body; ``trickle`` sends the body (or the headers) a byte at a time."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json; charset=utf-8"})
    body: bytes = b"[]"
    trickle: float | None = None  # seconds between two bytes of the body
    trickle_headers: bool = False  # trickle an endless header line instead of the body


# A function of the query may also answer None: forward that request upstream.
Answer = Crafted | Callable[[dict[str, list[str]]], Crafted | None]


def gzip_bomb(decoded_bytes: int, member_bytes: int = 16 * 2**20) -> bytes:
    """A gzip body of about decoded_bytes / 1000 that inflates to ``decoded_bytes`` zeros (concatenated members)."""
    member = gzip.compress(b"\0" * member_bytes, compresslevel=9)
    return member * (decoded_bytes // member_bytes)


def json_list(wrapper: str, records: list[dict]) -> bytes:
    """A list body as OnApp renders it (lone surrogates stay escaped, as a hostile server may send them)."""
    return json.dumps([{wrapper: record} for record in records]).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        api: HostileApi = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        api.seen[parts.path] += 1
        answer = api.answers.get(parts.path)
        crafted = answer(parse_qs(parts.query)) if callable(answer) else answer
        if crafted is None:
            return self._forward(api)
        self.close_connection = True
        try:
            self._send(crafted, api.stopping)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, crafted: Crafted, stopping: threading.Event) -> None:
        if crafted.trickle_headers:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stopping.wait(crafted.trickle or 0.2):
                self.wfile.write(b"a")
                self.wfile.flush()
            return
        self.send_response(crafted.status)
        for name, value in crafted.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(crafted.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if crafted.trickle is None:
            self.wfile.write(crafted.body)
            return
        for position in range(len(crafted.body)):
            if stopping.wait(crafted.trickle):
                return
            self.wfile.write(crafted.body[position : position + 1])
            self.wfile.flush()

    def _forward(self, api: HostileApi) -> None:
        if api.upstream is None:
            body = b'{"errors":["Resource not found"]}'
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        host, port = urlsplit(api.upstream.url).hostname, urlsplit(api.upstream.url).port
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            headers = {name: self.headers[name] for name in ("Authorization", "Accept") if self.headers[name]}
            connection.request("GET", self.path, headers=headers)
            upstream = connection.getresponse()
            body = upstream.read()
            self.send_response(upstream.status)
            for name in _RELAYED:
                if upstream.getheader(name) is not None:
                    self.send_header(name, upstream.getheader(name))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            connection.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class HostileApi(LoopbackServer):
    """Serves ``answers`` (path -> Crafted, or a function of the query giving one); forwards other paths upstream."""

    def __init__(self, upstream: DemoCloud | None = None) -> None:
        self.upstream = upstream
        self.answers: dict[str, Answer] = {}
        self.seen: Counter[str] = Counter()
        self.stopping = threading.Event()
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return self.base_url

    def stop(self) -> None:
        """Stop serving; trickling answers end at their next byte."""
        self.stopping.set()
        super().stop()
