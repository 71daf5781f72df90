"""A deadline on each HTTP request, body included: past it, a watchdog thread shuts the request's socket down.

Socket timeouts bound each read, not a request: a server sending one byte per second never
trips a 30 s read timeout. Here each try of a request has a clock; urllib3 connections made
through ``DeadlineAdapter`` hand their socket to the clock of the thread using them, and one
watchdog thread per session shuts that socket down when the clock runs out, which ends any
blocked read (headers, body, TLS handshake) at once.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class RequestClock:
    """The deadline of the try under way on one thread; ``fired`` tells whether the last try ran out."""

    def __init__(self, watchdog: Watchdog, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._watchdog = watchdog
        self._lock = threading.Lock()
        self._try = 0
        self._until: float | None = None
        self._socket: socket.socket | None = None

    def begin(self) -> None:
        """Start a try's clock, unless a try is under way (a redirect, a new connection: the same try)."""
        with self._lock:
            if self._until is not None:
                return
            self._try += 1
            self.fired = False
            self._until = time.monotonic() + self.seconds
            when, number = self._until, self._try
        self._watchdog.schedule(self, when, number)

    def attach(self, sock: socket.socket | None) -> None:
        """The socket the try now uses; shut down at once if the try has already run out."""
        with self._lock:
            self._socket = sock
            if self.fired and sock is not None:
                _shut(sock)

    def end(self) -> bool:
        """The try is over (answered, or about to be retried): its deadline no longer applies; True if it ran out."""
        with self._lock:
            self._until = None
            self._socket = None
            return self.fired

    def expire(self, number: int) -> None:
        """Called by the watchdog at the deadline of try ``number``; a try already over is left alone."""
        with self._lock:
            # Under the lock: once end() has returned, the connection may serve another
            # request, and its socket must not be shut down.
            if number != self._try or self._until is None:
                return
            self.fired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for TLS: it wakes a read blocked in another thread
        # without touching the SSL object that thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class Watchdog:
    """One daemon thread that expires each try at its deadline; ``close`` stops it."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, RequestClock, int]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, clock: RequestClock, when: float, number: int) -> None:
        """Expire try ``number`` of ``clock`` at monotonic time ``when``."""
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._heap, (when, next(self._order), clock, number))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="onapp-deadline", daemon=True)
                self._thread.start()
            if self._heap[0][2] is clock and self._heap[0][3] == number:
                self._wake.notify()

    def close(self) -> None:
        """Stop the thread; tries under way keep their socket timeouts only."""
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                _, _, clock, number = heapq.heappop(self._heap)
                clock.expire(number)


@contextmanager
def clock_of_thread(clock: RequestClock) -> Iterator[RequestClock]:
    """Make ``clock`` the one this thread's connections report to while the block runs."""
    previous = getattr(_current, "clock", None)
    _current.clock = clock
    try:
        yield clock
    finally:
        clock.end()
        _current.clock = previous


def current_clock() -> RequestClock | None:
    """The clock of the request this thread is making, if any."""
    return getattr(_current, "clock", None)


class _Watched:
    """Connection behaviour: each socket a request uses is handed to the thread's clock."""

    def _new_conn(self) -> socket.socket:
        clock = current_clock()
        if clock is not None:
            clock.begin()
        sock = super()._new_conn()  # type: ignore[misc]
        if clock is not None:
            clock.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        clock = current_clock()
        if clock is not None:
            clock.begin()
            clock.attach(self.sock)  # type: ignore[attr-defined]
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        clock = current_clock()
        if clock is not None:
            clock.begin()
            clock.attach(self.sock)  # type: ignore[attr-defined]
        try:
            return super().getresponse()  # type: ignore[misc]
        except Exception as error:
            if clock is not None and clock.fired:
                # A socket timeout to urllib3: retried as a read timeout, reported as one.
                raise TimeoutError(f"request deadline of {clock.seconds:g} s exceeded") from error
            raise


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections report their sockets to the calling thread's RequestClock."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have connection classes of their own
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager
