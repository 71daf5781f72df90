"""The simulated OnApp API served over real HTTP on loopback: request handling, faults and counters."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import random
import socket
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pipeline.demo import render
from pipeline.demo.config import DemoCloudConfig
from pipeline.demo.fleet import Fleet

log = logging.getLogger("pipeline.demo")


class Stats:
    """Thread-safe request counters: requests, status_<code>, truncated, html; missing ones read 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, key: str) -> None:
        """Count one more of key."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """Return a plain dict copy of the counters."""
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def __repr__(self) -> str:
        return f"Stats({self.snapshot()!r})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections across thousands of calls
    server_version = "DemoOnApp/1.0"
    timeout = 120  # reap idle keep-alive connections eventually
    # Headers and body go out as two writes; with Nagle on, the body waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self.server.cloud._serve(self)

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one stderr line per request would drown a benchmark's output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a benchmark opens 32+ connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], cloud: DemoCloud) -> None:
        self.cloud = cloud
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._connections_lock:
            (self._connections.add if is_open else self._connections.discard)(connection)

    def close_connections(self) -> None:
        # Keep-alive handler threads would otherwise go on answering after stop().
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class DemoCloud:
    """The simulated OnApp API: a Fleet served over HTTP on a daemon thread; config is swappable live."""

    def __init__(
        self,
        config: DemoCloudConfig = DemoCloudConfig(),
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.tls = tls  # a server-side context: serve HTTPS, to test certificate verification
        self.fleet = Fleet(config)
        self.stats = Stats()
        self.host, self.port = host, port
        self._fault_rng = random.Random(config.seed)
        self._fault_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        if self._server is None:
            raise RuntimeError("DemoCloud is not started")
        host, port = self._server.server_address[:2]
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"

    def start(self) -> DemoCloud:
        """Bind and serve on a daemon thread; return self."""
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            if self.tls is not None:
                self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits for one poll
                name=f"demo-cloud-{self._server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> DemoCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def vanished_vm_ids(self) -> set[int]:
        """Return the listed VMs that currently answer 404 on their backups."""
        with self.fleet.lock:
            return {vm_id for vm_id in self.fleet.vms if render.vanished(vm_id, self.config)}

    def _send(self, handler: _Handler, status: int, body: bytes, content_type: str = render.JSON_TYPE,
              headers: Mapping[str, str] = {}) -> None:
        self.stats.add(f"status_{status}")
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _authorized(self, handler: _Handler, config: DemoCloudConfig) -> bool:
        scheme, _, encoded = handler.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, f"{config.user}:{config.api_key}".encode())

    def _serve(self, handler: _Handler) -> None:
        config = self.config  # read once: a swap mid-request must not mix two configs
        self.stats.add("requests")
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        if not self._authorized(handler, config):
            body = render.render_errors(render.NOT_SIGNED_IN)
            return self._send(handler, 401, body, headers={"WWW-Authenticate": 'Basic realm="OnApp"'})
        parts = urlsplit(handler.path)
        found = render.route(parts.path)
        if found is None:
            return self._send(handler, 404, render.render_errors(render.NOT_FOUND))
        with self._fault_lock:
            rng = self._fault_rng
            too_many = config.fail_429_fraction > 0 and rng.random() < config.fail_429_fraction
            broken = config.fail_5xx_fraction > 0 and rng.random() < config.fail_5xx_fraction
            status_5xx = rng.choice(sorted(render.SERVER_ERRORS)) if broken else 0
            proxy_page = config.html_fraction > 0 and rng.random() < config.html_fraction
            truncate = config.truncated_fraction > 0 and rng.random() < config.truncated_fraction
        if too_many:
            body = render.render_errors("Too many requests, retry later")
            return self._send(handler, 429, body, headers={"Retry-After": config.retry_after})
        if status_5xx:
            return self._send(handler, status_5xx, render.render_errors(render.SERVER_ERRORS[status_5xx]))
        if proxy_page:
            self.stats.add("html")
            return self._send(handler, 200, render.PROXY_PAGE, "text/html; charset=utf-8")
        status, body, headers = render.answer(self.fleet, config, found, parse_qs(parts.query))
        if status == 200 and truncate:
            self.stats.add("truncated")
            body = body[: len(body) // 2]
        content_type = render.XML_TYPE if status == 200 and found[0] == "xml" else render.JSON_TYPE
        self._send(handler, status, body, content_type, headers)


def start_embedded_demo_cloud(config: DemoCloudConfig) -> DemoCloud:
    """Start a demo cloud on a free loopback port, and say so loudly."""
    cloud = DemoCloud(config, host="127.0.0.1", port=0).start()
    log.info(
        "ONAPP_API_URL is not set: syncing the EMBEDDED DEMO CLOUD at %s (simulated data, not a real cloud)",
        cloud.url,
    )
    return cloud
