"""A loopback webhook receiver: records every POST and answers each with the next planned status."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer

# A planned answer that is no answer: the connection closes as soon as the request is read.
DROP = 0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        receiver: Receiver = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = receiver.next_status()
        with receiver.lock:
            receiver.tries += 1
        if receiver.delay_s:
            time.sleep(receiver.delay_s)
        with receiver.lock:
            if 200 <= status < 300:
                receiver.posts.append(Received(self.path, dict(self.headers), json.loads(raw)))
        self.close_connection = True
        if status == DROP:
            return
        # An error page that quotes the request, as some servers' do: the token must not travel on from it.
        body = b"ok" if 200 <= status < 300 else f"no such hook: {self.path}".encode()
        try:
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting, as it should

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class Receiver(LoopbackServer):
    """Serves on 127.0.0.1; ``plan`` holds the statuses of the next answers (then 200), DROP to hang up."""

    def __init__(self) -> None:
        self.token = f"T0KEN{secrets.token_hex(12)}"
        self.posts: list[Received] = []  # the messages it accepted
        self.tries = 0  # every request, accepted or not
        self.plan: deque[int] = deque()
        self.always: int | None = None  # answer this to every request, whatever the plan
        self.delay_s = 0.0  # seconds to wait before answering
        self.lock = threading.Lock()
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        """The webhook's URL, with its token in the path as Slack's have it."""
        return f"{self.base_url}/services/{self.token}"

    def next_status(self) -> int:
        with self.lock:
            if self.always is not None:
                return self.always
            return self.plan.popleft() if self.plan else 200

    def alerts(self, index: int = -1) -> set[tuple[str, str, str]]:
        """The (kind, key, state) of the alerts one accepted message carried."""
        return {(a["kind"], a["key"], a["state"]) for a in self.posts[index].body["alerts"]}
