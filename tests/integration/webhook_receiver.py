"""A site that receives cxhub's signed webhook, for tests: a threaded HTTP server on 127.0.0.1.

It follows the protocol of networks/channels/webhook.py (checks each signature, stores each
idempotency key once, answers reconcile GETs) and can be told how to answer the next POSTs:
"ok", "500", ("429", seconds), "hang" (hold the request past the client's timeout and store
nothing), "store_and_hang" (store it, then hold the request until released), "400", "401".
It records every request, and counts by idempotency key every POST that reached its store.
"""

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    key: str
    at: float  # time.time() when the request arrived
    behaviour: str
    status: int | None = None
    text: str = ""
    signature_ok: bool = True
    handle: str = ""
    payload: dict | None = None


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        *,
        default: str = "ok",
        hang_seconds: float = 30.0,
        host: str = "127.0.0.1",
        answer_after: float = 0.0,
    ):
        # answer_after: seconds a stored post waits before its answer (a slow network), so a
        # client killed meanwhile leaves a post the site has and the client never heard of.
        self.answer_after = answer_after
        self.secret = secret
        self.default = default
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.script: list = []
        self.received: list[Received] = []
        # idempotency key → (id, text); and how many POSTs reached the store, per key
        self.published: dict[str, tuple[str, str]] = {}
        self.stored_posts = Counter()
        self.hanging = threading.Event()  # set while a request is being held
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format, *args):  # quiet
                pass

            def do_POST(self):
                receiver._post(self)

            def do_GET(self):
                receiver._get(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that was killed mid-request: expected here, not news

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hooks/cxhub"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def release(self):
        """Let held requests finish."""
        self._release.set()

    def then(self, *behaviours):
        """Answer the next POSTs this way, in order; afterwards, `default`."""
        with self.lock:
            self.script.extend(behaviours)

    # --- what it saw -------------------------------------------------------------------------
    def posts(self, key: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "POST" and key in (None, r.key)]

    def gets(self, key: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "GET" and key in (None, r.key)]

    def texts(self) -> list[str]:
        with self.lock:
            return [text for _id, text in self.published.values()]

    # --- handling ----------------------------------------------------------------------------
    def _signed(self, handler, payload: bytes) -> bool:
        timestamp = handler.headers.get("X-Cxhub-Timestamp", "")
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256
        ).hexdigest()
        given = handler.headers.get("X-Cxhub-Signature", "")
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        return fresh and hmac.compare_digest(given, f"sha256={expected}")

    def _answer(self, handler, status: int, body: dict | None = None, headers=None):
        data = json.dumps(body or {}).encode()
        try:
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout): what a real site sees too

    def _store(self, key: str, text: str) -> tuple[str, str]:
        with self.lock:
            self.stored_posts[key] += 1
            if key not in self.published:
                self.published[key] = (f"post-{len(self.published) + 1}", text)
            return self.published[key]

    def _post(self, handler):
        arrived = time.time()
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        key = handler.headers.get("Idempotency-Key", "")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        with self.lock:
            behaviour = self.script.pop(0) if self.script else self.default
        name = behaviour if isinstance(behaviour, str) else behaviour[0]
        record = Received(
            "POST",
            key,
            arrived,
            name,
            text=payload.get("text", ""),
            handle=(payload.get("account") or {}).get("handle", ""),
            payload=payload,
        )
        with self.lock:
            self.received.append(record)
        if not self._signed(handler, body) or payload.get("idempotency_key") != key:
            record.signature_ok = False
            record.status = 401
            return self._answer(handler, 401, {"error": "bad signature"})
        if name == "500":
            record.status = 500
            return self._answer(handler, 500, {"error": "boom"})
        if name == "429":
            record.status = 429
            return self._answer(
                handler, 429, {"error": "slow down"}, {"Retry-After": str(behaviour[1])}
            )
        if name in ("400", "401"):
            record.status = int(name)
            return self._answer(handler, int(name), {"error": name})
        if name == "hang":
            self.hanging.set()
            self._release.wait(self.hang_seconds)
            record.status = 504
            return self._answer(handler, 504, {"error": "too late"})
        post_id, _text = self._store(key, record.text)
        if self.answer_after:
            time.sleep(self.answer_after)
        if name == "store_and_hang":
            self.hanging.set()
            self._release.wait(self.hang_seconds)
        record.status = 201
        return self._answer(handler, 201, {"id": post_id, "url": f"https://site.example/{post_id}"})

    def _get(self, handler):
        key = parse_qs(urlsplit(handler.path).query).get("idempotency_key", [""])[0]
        record = Received("GET", key, time.time(), "reconcile")
        with self.lock:
            self.received.append(record)
            found = self.published.get(key)
        if not self._signed(handler, key.encode()):
            record.signature_ok = False
            record.status = 401
            return self._answer(handler, 401, {"error": "bad signature"})
        if found is None:
            record.status = 404
            return self._answer(handler, 404, {"error": "not found"})
        record.status = 200
        return self._answer(
            handler, 200, {"id": found[0], "url": f"https://site.example/{found[0]}"}
        )
