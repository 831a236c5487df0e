"""A Mastodon server on 127.0.0.1 for bench/chaos.py that records every status it makes, so the
bench can count what really went out against what cxhub believes.

It answers the calls cxhub makes (networks/channels/mastodon.py), as docs.joinmastodon.org
describes them:
- POST /api/v1/statuses (JSON or form; `status` required; bearer token) → 200 and the Status.
  `Idempotency-Key` is honoured per account, as Mastodon does: the same key again answers the
  status already made, 200, and makes nothing. Told to (`honour_idempotency=False`), it plays
  a server or proxy that drops the header: every request makes a new status.
- GET /api/v1/accounts/:id/statuses (newest first; `limit`, default 20, at most 40; `max_id`,
  `since_id`) and GET /api/v1/accounts/verify_credentials.
- Errors as entities/Error: `{"error": "…"}` with 401, 404, 422.

A status's `content` is HTML as Mastodon's TextFormatter renders plain text: the text escaped,
links as <a> with the scheme and the part past 30 characters in "invisible" spans, hashtags as
links to /tags/, paragraphs (blank lines) in <p>, single line breaks as <br />. Mentions are
left as text (a server that cannot resolve the account does the same); no length limit is
enforced and media are refused (the bench posts text only).

The fault: with `fail_every=k`, the k-th, 2k-th, … status made is stored (it is on the account
and its key is remembered) and then answered 502 Bad Gateway, as a proxy in front of a server
that timed out after the insert answers. `latency` is spent after the status is stored and
before the answer, as a server spends it rendering and fanning out: a worker killed meanwhile
leaves a post on the server whose answer nobody read.
"""

import html
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Snowflake-sized ids, as strings (Mastodon's are), growing with each status.
FIRST_ID = 113_000_000_000_000_000
MAX_LIMIT = 40
BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w/#])#(\w*[^\W\d_]\w*)")
# Punctuation that ends a sentence rather than a link.
_URL_TRAILING = ".,:;!?)]}'\""


@dataclass(frozen=True)
class Status:
    """One status the server made, with what the bench needs to attribute it."""

    id: str
    account_id: str
    text: str
    content: str
    idempotency_key: str
    created_at: float
    answered: int  # 200, or 502 when this was the fault


@dataclass
class Counters:
    posts: int = 0  # POST /api/v1/statuses received
    replayed: int = 0  # answered with the status an earlier request made (Idempotency-Key)
    bad_gateway: int = 0  # statuses made and answered 502
    refused: int = 0  # 4xx answers
    reads: int = 0  # GET of an account's statuses
    whoami: int = 0  # GET verify_credentials


class MastodonServer:
    """Accounts (one per access token), the statuses they have, and the HTTP server."""

    def __init__(
        self, *, fail_every: int = 0, honour_idempotency: bool = True, latency: float = 0.0
    ):
        self.fail_every = fail_every
        self.honour_idempotency = honour_idempotency
        self.latency = latency
        self.counters = Counters()
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # token → account id
        self._usernames: dict[str, str] = {}  # account id → username
        self._timelines: dict[str, list[Status]] = {}  # account id → statuses, oldest first
        self._by_key: dict[tuple[str, str], Status] = {}
        self._made: list[Status] = []
        self._http: ThreadingHTTPServer | None = None
        self.url = ""

    # --- set-up and what the bench reads ----------------------------------------------------------
    def add_account(self, *, token: str, username: str) -> str:
        """An account reached with `token`; its id."""
        with self._lock:
            account_id = str(len(self._usernames) + 1)
            self._tokens[token] = account_id
            self._usernames[account_id] = username
            self._timelines[account_id] = []
            return account_id

    def start(self) -> "MastodonServer":
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._http.network = self
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, name="mastodon", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def statuses(self) -> list[Status]:
        """Every status made so far, in the order they were made."""
        with self._lock:
            return list(self._made)

    def made(self) -> int:
        with self._lock:
            return len(self._made)

    # --- the API --------------------------------------------------------------------------------
    def answer(self, method: str, target: str, headers, body: bytes) -> tuple[int, Any, float]:
        """(HTTP status, JSON-able body or raw bytes, seconds to wait before answering)."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        if method == "POST" and path == "/api/v1/statuses":
            return self._create(headers, body)
        if method == "GET" and path == "/api/v1/accounts/verify_credentials":
            account_id = self._account_for(headers)
            if account_id is None:
                return self._refuse(401, "The access token is invalid")
            with self._lock:
                self.counters.whoami += 1
            return 200, self._account_json(account_id), 0.0
        match = re.fullmatch(r"/api/v1/accounts/([^/]+)/statuses", path)
        if method == "GET" and match:
            return self._timeline(match.group(1), query)
        return self._refuse(404, "Record not found")

    def _account_for(self, headers) -> str | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def _refuse(self, status: int, message: str) -> tuple[int, Any, float]:
        with self._lock:
            self.counters.refused += 1
        return status, {"error": message}, 0.0

    def _create(self, headers, body: bytes) -> tuple[int, Any, float]:
        account_id = self._account_for(headers)
        with self._lock:
            self.counters.posts += 1
        if account_id is None:
            return self._refuse(401, "The access token is invalid")
        form = _form(headers.get("Content-Type") or "", body)
        text = str(form.get("status") or "")
        if form.get("media_ids") or form.get("media_ids[]"):
            return self._refuse(422, "Validation failed: this server takes no media")
        if not text.strip():
            return self._refuse(422, "Validation failed: Text can't be blank")
        key = (headers.get("Idempotency-Key") or "").strip()
        with self._lock:
            if self.honour_idempotency and key and (account_id, key) in self._by_key:
                self.counters.replayed += 1
                return 200, self._status_json(self._by_key[(account_id, key)]), self.latency
            number = len(self._made) + 1
            failing = bool(self.fail_every) and number % self.fail_every == 0
            status = Status(
                id=str(FIRST_ID + number),
                account_id=account_id,
                text=text,
                content=render_content(text, base_url=self.url),
                idempotency_key=key,
                created_at=time.time(),
                answered=502 if failing else 200,
            )
            self._made.append(status)
            self._timelines[account_id].append(status)
            if self.honour_idempotency and key:
                self._by_key[(account_id, key)] = status
            if failing:
                self.counters.bad_gateway += 1
                return 502, BAD_GATEWAY, self.latency
            return 200, self._status_json(status), self.latency

    def _timeline(self, account_id: str, query: dict[str, str]) -> tuple[int, Any, float]:
        try:
            limit = min(MAX_LIMIT, max(1, int(query.get("limit") or 20)))
        except ValueError:
            limit = 20
        with self._lock:
            if account_id not in self._timelines:
                self.counters.refused += 1
                return 404, {"error": "Record not found"}, 0.0
            self.counters.reads += 1
            newest_first = list(reversed(self._timelines[account_id]))
        if query.get("max_id", "").isdigit():
            newest_first = [s for s in newest_first if int(s.id) < int(query["max_id"])]
        if query.get("since_id", "").isdigit():
            newest_first = [s for s in newest_first if int(s.id) > int(query["since_id"])]
        return 200, [self._status_json(s) for s in newest_first[:limit]], 0.0

    # --- entities -------------------------------------------------------------------------------
    def _account_json(self, account_id: str) -> dict[str, Any]:
        username = self._usernames[account_id]
        return {
            "id": account_id,
            "username": username,
            "acct": username,
            "display_name": username,
            "locked": False,
            "bot": False,
            "url": f"{self.url}/@{username}",
        }

    def _status_json(self, status: Status) -> dict[str, Any]:
        username = self._usernames[status.account_id]
        return {
            "id": status.id,
            "created_at": datetime.fromtimestamp(status.created_at, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": f"{self.url}/users/{username}/statuses/{status.id}",
            "url": f"{self.url}/@{username}/{status.id}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": status.content,
            "reblog": None,
            "account": self._account_json(status.account_id),
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }


def render_content(text: str, *, base_url: str) -> str:
    """Plain text as Mastodon shows it: escaped, links and hashtags as <a>, paragraphs."""
    pieces, last = [], 0
    for start, end, kind in _entities(text):
        pieces.append(_escape(text[last:start]))
        value = text[start:end]
        pieces.append(_link(value) if kind == "url" else _hashtag(value, base_url))
        last = end
    pieces.append(_escape(text[last:]))
    escaped = "".join(pieces).replace("\r\n", "\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", escaped.strip("\n")) if p.strip()]
    return "".join("<p>" + p.strip("\n").replace("\n", "<br />") + "</p>" for p in paragraphs)


def _escape(text: str) -> str:
    # Rails' h(), which writes the apostrophe as &#39;.
    return html.escape(text).replace("&#x27;", "&#39;")


def _entities(text: str) -> list[tuple[int, int, str]]:
    found = []
    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _URL_TRAILING:
            end -= 1
        found.append((match.start(), end, "url"))
    for match in _HASHTAG.finditer(text):
        if not any(start <= match.start() < end for start, end, _ in found):
            found.append((match.start(), match.end(), "tag"))
    return sorted(found)


def _link(url: str) -> str:
    scheme, rest = url.split("://", 1)
    shown, hidden = rest[:30], rest[30:]
    return (
        f'<a href="{_escape(url)}" target="_blank" rel="nofollow noopener" '
        f'translate="no"><span class="invisible">{_escape(scheme)}://</span>'
        f'<span class="{"ellipsis" if hidden else ""}">{_escape(shown)}</span>'
        f'<span class="invisible">{_escape(hidden)}</span></a>'
    )


def _hashtag(tag: str, base_url: str) -> str:
    name = tag[1:]
    return (
        f'<a href="{_escape(base_url)}/tags/{_escape(name.lower())}" '
        f'class="mention hashtag" rel="tag">#<span>{_escape(name)}</span></a>'
    )


def _form(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {name: values[-1] for name, values in parse_qs(body.decode(errors="replace")).items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    network: MastodonServer

    def handle_error(self, request, client_address):
        pass  # a worker killed mid-request: its socket is gone, the status stays made


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as cxhub's pooled session expects
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload, wait = self.server.network.answer(method, self.path, self.headers, body)
        if wait:
            time.sleep(wait)
        if isinstance(payload, bytes):
            data, kind = payload, "text/html"
        else:
            data, kind = json.dumps(payload).encode(), "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
