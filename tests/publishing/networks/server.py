"""A small threaded HTTP server on 127.0.0.1 for the network test servers: each request goes to
the fake network's `handle`, which answers (status, headers, body). Failures are queued per
route with `fail_next`: a "slow" failure does the work first, then answers too late; "drop"
does the work, then closes the connection without answering (the answer lost on the way); and
any failure given `after=True` does the work first, then answers the failure (a server that
records a post, then answers 502)."""

import json
import select
import socket
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Request:
    def __init__(self, method: str, path: str, query: dict, headers: Any, body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:] if value.startswith("Bearer ") else None


Answer = tuple[int, dict[str, str], bytes]
# Answered by `dispatch` for a "drop": the connection is closed without an answer.
DROP: Answer = (0, {}, b"")
# Answered by `dispatch` for a "slow": the work is done, and no answer is sent until the client
# has given up and closed the connection (waiting on that event, not on a number of seconds, so
# the client's timeout fires however slow the machine is).
HOLD: Answer = (0, {}, b"")
# A client that never hangs up is let go after this long (a broken test, not a slow machine).
HOLD_LIMIT_SECONDS = 120.0


def _wait_for_hangup(sock: socket.socket, limit: float = HOLD_LIMIT_SECONDS) -> None:
    """Return when the peer closed its end of `sock` (or after `limit`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if not readable:
            continue
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return
        except OSError:
            return
        # The client sent more (a pipelined request): keep holding; it is read after.
        time.sleep(0.05)


def answer_json(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


class FakeNetwork:
    """Subclasses implement `route(request) -> (route name, handler)` and the handlers."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.failures: dict[str, deque] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    # --- control ---------------------------------------------------------------------------
    def fail_next(self, route: str, mode: str, *, times: int = 1, **options: Any) -> None:
        """Make the next `times` calls of `route` fail: "401", "429", "500", "slow" (store,
        then answer nothing until the client gave up and hung up), "drop" (store, then close
        the connection without answering), or another status code; with `after=True`, the call
        is served first and its answer replaced by the failure."""
        with self.lock:
            for _ in range(times):
                self.failures[route].append((mode, options))

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeNetwork":
        network = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command, parts.path, parse_qs(parts.query), self.headers, body
                )
                answer = network.dispatch(request)
                if answer is DROP:
                    self.close_connection = True
                    return
                if answer is HOLD:
                    _wait_for_hangup(self.connection)
                    self.close_connection = True
                    return
                status, headers, payload = answer
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        # A short poll: stopping waits for the loop to notice (0.5 s by default, per server).
        threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- serving ---------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Answer:
        route, handler = self.route(request)
        with self.lock:
            self.requests.append((request.method, request.path))
            failure = self.failures[route].popleft() if self.failures[route] else None
        if failure is not None:
            mode, options = failure
            if mode == "slow":
                handler(request)
                return HOLD
            if mode == "drop":
                handler(request)
                return DROP
            if options.get("after"):
                handler(request)
            return self.failure(mode, {k: v for k, v in options.items() if k != "after"})
        return handler(request)

    def route(self, request: Request) -> tuple[str, Any]:
        raise NotImplementedError

    def failure(self, mode: str, options: dict) -> Answer:
        raise NotImplementedError

    def not_found(self, request: Request) -> Answer:
        return answer_json(404, {"error": "Not found"})
