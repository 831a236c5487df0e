"""What the web benchmarks share: the settings of the servers they start, the scratch database's
URL, and starting, waiting for and stopping a server on a free port of 127.0.0.1."""

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    from bench import scratch
except ImportError:  # run as a script: bench/ itself is first on sys.path
    import scratch

ROOT = Path(__file__).resolve().parents[1]
# Settings of the servers the benches start (never for anything real).
SERVER_ENV = {
    "SECRET_KEY": "bench-web-secret-key-" + "b" * 50,
    "CXHUB_TOKEN_KEYS": "YmVuY2gtd2ViLXRva2VuLWtleS0wMDAwMDAwMDAwMDA=",
    "CXHUB_HTTPS": "0",
    "CXHUB_MFA_REQUIRED_ROLES": "",
    "DJANGO_SETTINGS_MODULE": "cxhub.settings",
    "PYTHONUNBUFFERED": "1",
}
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:cxhub.gunicorn_conf"]


class Refused(Exception):
    """Why a bench will not run here: its main prints it and exits with status 2."""


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@contextlib.contextmanager
def scratch_database(url: str, name: str, *, why: str):
    """The database `name`, made afresh on the PostgreSQL server of `url` for the block and
    dropped after it; yields its URL. Refused when `url` is not PostgreSQL (the bench needs it
    because `why`) or the server will not make it."""
    if not is_postgres(url):
        raise Refused(
            f"it needs PostgreSQL ({why}): set DATABASE_URL=postgres://user@host:5432/dbname. "
            f"It creates and drops its own database, {name}, on that server and touches no other."
        )
    admin = conninfo(url)
    try:
        scratch.recreate(admin, name)
    except scratch.ScratchError as error:
        raise Refused(str(error)) from None
    try:
        yield database_url(url, name)
    finally:
        scratch.drop(admin, name)


def conninfo(url: str) -> str:
    """A libpq conninfo for the database a postgres:// URL names."""
    from psycopg.conninfo import make_conninfo

    parts = urlsplit(url)
    values = {
        "dbname": parts.path.lstrip("/") or "postgres",
        "user": parts.username,
        "password": parts.password,
        "host": parts.hostname,
        "port": parts.port,
    }
    return make_conninfo(**{key: str(value) for key, value in values.items() if value})


def database_url(url: str, name: str) -> str:
    """`url` naming the database `name` instead (no query string)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}", query=""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None, timeout: float = 30):
    """(status, body) of one GET on its own connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start(stack, command: list[str], env: dict[str, str], log=None) -> tuple[int, float]:
    """Start `command` (a runserver command gets the address appended) on a free port with
    `env` over this process's environment, its output to `log` (a file; else a temporary one);
    stopped when `stack` closes. Returns the port and the seconds from the start to its first
    answer on /healthz."""
    port = free_port()
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    if "runserver" in command:
        command = [*command, f"127.0.0.1:{port}"]
    if log is None:
        log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed with the stack)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    stack.callback(stop, process)
    return port, wait_for_first_answer(process, port, log)


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_first_answer(process, port: int, log) -> float:
    began = time.perf_counter()
    deadline = began + 120
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited:\n{log.read().decode()[-3000:]}")
        try:
            status, _ = get(port, "/healthz", timeout=5)
            if status in (200, 503):
                return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server did not answer within 120 s")


# A Mastodon server's notifications, for bench/ingest.py ------------------------------------------
#
# Written from docs.joinmastodon.org: methods/notifications (#get: `limit` 40 by default and at
# most 80, `types[]`, `exclude_types[]`, `max_id`, `since_id`, `min_id`, newest first, a Link
# header with rel="next" (max_id = the page's oldest) and rel="prev" (min_id = its newest)),
# entities/Notification, entities/Status, entities/Account, api/rate-limits (300 calls in 5
# minutes per account, told in X-RateLimit-Limit/-Remaining/-Reset) and client/authorized
# (`Authorization: Bearer`, 401 {"error": "The access token is invalid"}).
#
# Not the tests' MastodonServer (tests/publishing/networks/mastodon_server.py), for three
# reasons a bench cannot live with: it runs in the process that calls it, so its work would be
# counted as the worker's and contend for the same interpreter; it writes an answer's headers
# and body in two sends without TCP_NODELAY, so Nagle's algorithm and the client's delayed ACK
# can hold each page for 40 ms; and it serves one account, sorting every notification it holds
# on every call. This one runs in a process of its own, serves many accounts (one token each),
# answers from notifications encoded once at its start, and turns Nagle off.

MASTODON_DOMAIN = "bench-mastodon.test"
RATE_LIMIT_CALLS = 300  # api/rate-limits: per account, per 5 minutes
RATE_LIMIT_WINDOW = 300.0
_FIRST_ID = 113_000_000_000_000_000  # ids in Mastodon's snowflake range, as strings

# What people write to a public body's accounts: mostly English, some in the other languages of
# its residents; praise, complaints, questions; (text, language the client declares).
_SAYINGS = [
    ("Thank you for the quick answer yesterday, the new timetable is much clearer!", "en"),
    ("The bins on Elm Street have not been collected for two weeks. This is getting awful.", "en"),
    ("When does the consultation on the cycle lanes close? I could not find a date.", "en"),
    ("Great work by the team at the library this weekend, the kids loved it", "en"),
    ("Why is the ferry late AGAIN? Nobody tells us anything. Really disappointing.", "en"),
    ("Is the pool open on the bank holiday?", "en"),
    ("ok", "en"),
    ("Thanks! 🙏", "en"),
    ("The road works outside the school are dangerous, someone will get hurt.", "en"),
    ("Brilliant news about the park, well done everyone involved.", "en"),
    ("Merci pour l'information, mais le formulaire en ligne ne fonctionne toujours pas.", "fr"),
    ("Est-ce que la mairie est ouverte samedi matin ?", "fr"),
    ("Vielen Dank für die schnelle Hilfe, das hat super geklappt.", "de"),
    ("Wann wird die Straße endlich repariert? Das ist eine Katastrophe.", "de"),
    ("¿Dónde puedo renovar el permiso de aparcamiento para residentes?", "es"),
    ("Hoe laat gaat het zwembad morgen open?", "nl"),
    ("Grazie mille, servizio eccellente e personale gentilissimo.", "it"),
    ("Kiedy będzie dostępny nowy rozkład jazdy autobusów?", "pl"),
    ("Obrigado pela ajuda, tudo resolvido.", "pt"),
    ("The consultation page says 'closed' but the letter said it runs until Friday?", "fr"),
]
_TAGS = ["ferry", "bins", "roadworks", "library", "consultation"]


class MastodonStandIn:
    """Mastodon's notifications API for `accounts` accounts on 127.0.0.1, in a process of its
    own: each account has `per_account` mention notifications (a third of them replies to one of
    its `our_statuses` statuses, a few direct), made at the start. `url`, and `accounts` (each:
    token, id, username, the notification ids oldest first, our status ids) once started.
    Answers after `delay_ms`."""

    def __init__(self, *, accounts: int, per_account: int, our_statuses: int = 5, delay_ms=0):
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self.process = context.Process(
            target=_mastodon_main,
            args=(child, accounts, per_account, our_statuses, delay_ms / 1000),
            daemon=True,
        )
        self.url = ""
        self.accounts: list[dict] = []

    def start(self) -> "MastodonStandIn":
        self.process.start()
        if not self._pipe.poll(120):
            self.stop()
            raise RuntimeError("the Mastodon stand-in did not start within 120 s")
        started = self._pipe.recv()
        self.url, self.accounts = started["url"], started["accounts"]
        return self

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the stand-in has used so far (its /proc stat)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def _mastodon_main(pipe, accounts: int, per_account: int, our_statuses: int, delay: float):
    import bisect
    import json
    import random
    import signal
    import threading
    from datetime import UTC, datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlencode, urlsplit

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # handler set below
    server.daemon_threads = True
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    chance = random.Random(17)
    ids = iter(range(_FIRST_ID, _FIRST_ID + 10**12))
    began = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def account_entity(username: str, domain: str, number: int) -> dict:
        home = f"https://{domain}"
        return {
            "id": str(next(ids)),
            "username": username,
            "acct": username if domain == MASTODON_DOMAIN else f"{username}@{domain}",
            "display_name": username.replace("_", " ").title(),
            "locked": False,
            "bot": False,
            "discoverable": True,
            "group": False,
            "created_at": f"2023-05-0{number % 9 + 1}T00:00:00.000Z",
            "note": f"<p>Resident, {number % 40 + 18}. Views my own.</p>",
            "url": f"{home}/@{username}",
            "uri": f"{home}/users/{username}",
            "avatar": f"{home}/system/accounts/avatars/{number:06d}/original/avatar.png",
            "avatar_static": f"{home}/system/accounts/avatars/{number:06d}/original/avatar.png",
            "header": f"{home}/headers/original/missing.png",
            "header_static": f"{home}/headers/original/missing.png",
            "followers_count": number * 7 % 900,
            "following_count": number * 3 % 400,
            "statuses_count": number * 11 % 5000,
            "last_status_at": "2026-03-01",
            "emojis": [],
            "fields": [],
        }

    def content(ours: dict, words: str, tag: str | None, link: bool) -> str:
        # app/lib/text_formatter.rb: a known mention is an h-card link, a link shows its host
        # and keeps the scheme and the tail in hidden spans, a hashtag links to its page.
        mention = (
            f'<span class="h-card" translate="no"><a href="{ours["url"]}" class="u-url mention">'
            f"@<span>{ours['username']}</span></a></span>"
        )
        html_words = words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out = f"<p>{mention} {html_words}"
        if link:
            out += (
                ' <a href="https://www.example.gov/services/waste-collection-calendar" '
                'rel="nofollow noopener" target="_blank"><span class="invisible">https://www.'
                '</span><span class="ellipsis">example.gov/services/waste-co</span><span '
                'class="invisible">llection-calendar</span></a>'
            )
        if tag:
            out += (
                f' <a href="https://{MASTODON_DOMAIN}/tags/{tag}" class="mention hashtag" '
                f'rel="tag">#<span>{tag}</span></a>'
            )
        return out + "</p>"

    people = [
        account_entity(f"resident_{n}", ("mastodon.social", "mas.to", "fosstodon.org")[n % 3], n)
        for n in range(500)
    ]
    ours = []
    for number in range(accounts):
        username = f"desk{number}"
        entity = account_entity(username, MASTODON_DOMAIN, 10_000 + number)
        entity["url"] = f"{origin}/@{username}"
        statuses = [str(next(ids)) for _ in range(our_statuses)]
        ours.append(
            {"token": f"bench-token-{number}", "entity": entity, "statuses": statuses, "log": []}
        )
    # Interleaved in time, as notifications of several accounts arrive: ids rise with time.
    for n in range(per_account):
        for number, account in enumerate(ours):
            moment = began + timedelta(seconds=n * accounts + number)
            author = people[chance.randrange(len(people))]
            words, language = _SAYINGS[chance.randrange(len(_SAYINGS))]
            answers = chance.random() < 1 / 3 and account["statuses"]
            visibility = "direct" if chance.random() < 0.05 else "public"
            status_id, notification_id = str(next(ids)), str(next(ids))
            stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            home = author["url"].rsplit("/@", 1)[0]
            status = {
                "id": status_id,
                "created_at": stamp,
                "in_reply_to_id": chance.choice(account["statuses"]) if answers else None,
                "in_reply_to_account_id": account["entity"]["id"] if answers else None,
                "sensitive": False,
                "spoiler_text": "",
                "visibility": visibility,
                "language": language,
                "uri": f"{home}/users/{author['username']}/statuses/{status_id}",
                "url": f"{home}/@{author['username']}/{status_id}",
                "replies_count": 0,
                "reblogs_count": 0,
                "favourites_count": chance.randrange(4),
                "edited_at": None,
                "content": content(
                    account["entity"],
                    words,
                    chance.choice(_TAGS) if chance.random() < 0.3 else None,
                    chance.random() < 0.2,
                ),
                "reblog": None,
                "application": {"name": "Web", "website": None},
                "account": author,
                "media_attachments": [],
                "mentions": [
                    {key: account["entity"][key] for key in ("id", "username", "url", "acct")}
                ],
                "tags": [],
                "emojis": [],
                "card": None,
                "poll": None,
            }
            notification = {
                "id": notification_id,
                "type": "mention",
                "created_at": stamp,
                "group_key": f"ungrouped-{notification_id}",
                "account": author,
                "status": status,
            }
            # Encoded once: the answers join these (the server's time is not what is measured).
            account["log"].append((int(notification_id), json.dumps(notification).encode()))
    for account in ours:
        account["keys"] = [number for number, _ in account["log"]]
    by_token = {account["token"]: account for account in ours}
    budget_lock = threading.Lock()
    budgets: dict[str, tuple[float, int]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            header = self.headers.get("Authorization") or ""
            account = by_token.get(header[7:]) if header.startswith("Bearer ") else None
            if delay:
                time.sleep(delay)
            if account is None:
                return self._answer(401, b'{"error":"The access token is invalid"}', {})
            limits = self._spend(account["token"])
            if limits is None:
                return self._answer(429, b'{"error":"Too many requests"}', {})
            if parts.path == "/api/v1/accounts/verify_credentials":
                return self._answer(200, json.dumps(account["entity"]).encode(), limits)
            if parts.path != "/api/v1/notifications":
                return self._answer(404, b'{"error":"Record not found"}', limits)
            types = set(query.get("types[]", [])) - set(query.get("exclude_types[]", []))
            if types and "mention" not in types:  # every notification here is a mention
                return self._answer(200, b"[]", limits)
            log, keys = account["log"], account["keys"]  # ascending ids
            low, high = 0, len(log)
            for name in ("since_id", "min_id"):
                if query.get(name):
                    low = max(low, bisect.bisect_right(keys, int(query[name][0])))
            if query.get("max_id"):
                high = min(high, bisect.bisect_left(keys, int(query["max_id"][0])))
            limit = max(1, min(int((query.get("limit") or ["40"])[0]), 80))
            if query.get("min_id"):  # the page immediately newer than min_id
                chosen = log[low : min(high, low + limit)]
            else:  # the newest page (below max_id, above since_id)
                chosen = log[max(low, high - limit) : high]
            chosen = chosen[::-1]
            headers = dict(limits)
            if chosen:
                kept = [(k, v) for k in ("limit", "types[]") for v in query.get(k, [])]
                base = f"{origin}/api/v1/notifications"
                older = f"{base}?{urlencode([*kept, ('max_id', chosen[-1][0])])}"
                newer = f"{base}?{urlencode([*kept, ('min_id', chosen[0][0])])}"
                headers["Link"] = f'<{older}>; rel="next", <{newer}>; rel="prev"'
            self._answer(200, b"[" + b",".join(body for _, body in chosen) + b"]", headers)

        def _spend(self, token: str) -> dict[str, str] | None:
            now = time.time()
            with budget_lock:
                start, used = budgets.get(token, (now, 0))
                if now >= start + RATE_LIMIT_WINDOW:
                    start, used = now, 0
                if used >= RATE_LIMIT_CALLS:
                    return None
                budgets[token] = (start, used + 1)
            reset = datetime.fromtimestamp(start + RATE_LIMIT_WINDOW, UTC)
            return {
                "X-RateLimit-Limit": str(RATE_LIMIT_CALLS),
                "X-RateLimit-Remaining": str(RATE_LIMIT_CALLS - used - 1),
                "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z"
                ),
            }

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipe.send(
        {
            "url": origin,
            "accounts": [
                {
                    "token": account["token"],
                    "id": account["entity"]["id"],
                    "username": account["entity"]["username"],
                    "notification_ids": [str(number) for number, _ in account["log"]],
                    "our_statuses": account["statuses"],
                }
                for account in ours
            ],
        }
    )
    while True:
        time.sleep(3600)


# A Mastodon server's hashtag timelines, for bench/listening.py -----------------------------------
#
# Written from docs.joinmastodon.org: methods/timelines (#tag: GET /api/v1/timelines/tag/:hashtag,
# `limit` 20 by default and at most 40, `max_id`, `since_id`, `min_id` (the page immediately
# newer than it), newest first, the Link header as the notifications'), entities/Status,
# entities/Account, and api/guidelines' ids (Mastodon::Snowflake: the milliseconds of the status's
# time above 16 low bits, so ids rise with time).
#
# Posts appear in real time: each has a moment and is listed from that moment on (the server's
# clock is the bench's: same machine). Each tag has a steady stream from `history_seconds` before
# the start to `horizon_seconds` after it; the bench adds surges while it runs (`surge`). No rate
# limit is told or enforced: the bench reads every tag every few seconds through one account,
# twelve times as often as production, which Mastodon's 300 calls in 5 minutes would stop (at
# production's pace the same sources use a third of it).

# A steady stream about a topic a public body is watched on: questions, praise, complaints;
# (words, language). The surge's are angry posts about a made-up scam using that topic.
_TAG_STEADY = [
    ("Filled in the census form online tonight, took ten minutes.", "en"),
    ("Does anyone know when the census deadline is?", "en"),
    ("The census helpline was friendly and quick, thanks!", "en"),
    ("Still waiting for my census access code in the post.", "en"),
    ("Census volunteers came round today, very polite.", "en"),
    ("Why does the census form ask about my commute? Odd question.", "en"),
    ("Annoyed that the census site logged me out twice. Started again from scratch.", "en"),
    ("Good to see the census results will be used for bus routes.", "en"),
    ("Formulaire du recensement rempli en ligne, très simple.", "fr"),
    ("Zensus-Fragebogen heute ausgefüllt, ging schnell.", "de"),
    ("¿Hasta cuándo se puede responder al censo?", "es"),
]
_TAG_SURGE = [
    ("Got a text saying I owe a census fine and must pay by link today. Scam? Furious.", "en"),
    ("WARNING: fake census texts asking for bank details. My dad nearly paid, disgusting.", "en"),
    ("A census 'penalty notice' by SMS demanding payment within 24 hours. Fraud!", "en"),
    ("Another fake census fine text. Terrible that scammers get away with this.", "en"),
    ("The census never fines you by text. Angry that so many people are falling for it.", "en"),
    ("Horrible census scam going round, my neighbour lost money. Awful.", "en"),
    ("Arnaque au recensement par SMS : on me demande de payer une amende. Scandaleux.", "fr"),
]


class MastodonTagsStandIn:
    """Mastodon's hashtag timelines for `tags` on 127.0.0.1, in a process of its own: each tag
    has a steady stream of public posts, `per_minute` on average at random moments, from
    `history_seconds` before the start to `horizon_seconds` after it. `url`, `token` and
    `first_ids` (each tag's oldest id) once started; `surge` adds posts while it runs."""

    def __init__(
        self,
        *,
        tags: list[str],
        per_minute: float,
        history_seconds: float,
        horizon_seconds: float = 3600.0,
    ):
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self.process = context.Process(
            target=_mastodon_tags_main,
            args=(child, list(tags), per_minute, history_seconds, horizon_seconds),
            daemon=True,
        )
        self.url = ""
        self.token = ""
        self.first_ids: dict[str, str] = {}

    def start(self) -> "MastodonTagsStandIn":
        self.process.start()
        if not self._pipe.poll(120):
            self.stop()
            raise RuntimeError("the Mastodon tags stand-in did not start within 120 s")
        started = self._pipe.recv()
        self.url, self.token, self.first_ids = started["url"], started["token"], started["first"]
        return self

    def surge(self, tag: str, *, at: float, posts: int, seconds: float) -> float:
        """`posts` angry posts tagged `tag`, evenly over `seconds` from the Unix time `at`
        (which should be ahead: a post is listed from its moment on); the moment (Unix time)
        the first is listed from."""
        self._pipe.send(("surge", tag, at, posts, seconds))
        if not self._pipe.poll(30):
            raise RuntimeError("the Mastodon tags stand-in did not take the surge within 30 s")
        return self._pipe.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def _mastodon_tags_main(
    pipe, tags: list[str], per_minute: float, history: float, horizon: float
) -> None:
    import bisect
    import itertools
    import json
    import random
    import signal
    import threading
    from datetime import UTC, datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlencode, urlsplit

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # handler set below
    server.daemon_threads = True
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    token = "bench-tags-token"
    chance = random.Random(18)
    sequence = itertools.count()
    domains = ("mastodon.social", "mas.to", "fosstodon.org", "social.example.gov")
    people = [
        {
            "id": str(100_000 + n),
            "username": f"resident_{n}",
            "acct": f"resident_{n}@{domains[n % len(domains)]}",
            "display_name": f"Resident {n}",
            "url": f"https://{domains[n % len(domains)]}/@resident_{n}",
            "bot": False,
            "created_at": "2023-05-01T00:00:00.000Z",
        }
        for n in range(600)
    ]

    def status(tag: str, millis: int, words: str, language: str, loud: bool) -> tuple[int, bytes]:
        # Mastodon::Snowflake: the time in milliseconds above 16 bits of sequence.
        number = (millis << 16) | (next(sequence) & 0xFFFF)
        author = people[chance.randrange(len(people))]
        stamp = datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")
        home = author["url"].rsplit("/@", 1)[0]
        html = words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = {
            "id": str(number),
            "created_at": stamp.replace("+00:00", "Z"),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": language,
            "uri": f"{home}/users/{author['username']}/statuses/{number}",
            "url": f"{author['url']}/{number}",
            "replies_count": chance.randrange(3),
            "reblogs_count": chance.randrange(40 if loud else 4),
            "favourites_count": chance.randrange(60 if loud else 8),
            "edited_at": None,
            # app/lib/text_formatter.rb: a hashtag links to its page on the author's server.
            "content": (
                f'<p>{html} <a href="{home}/tags/{tag}" class="mention hashtag" rel="tag">'
                f"#<span>{tag}</span></a></p>"
            ),
            "reblog": None,
            "application": {"name": "Web", "website": None},
            "account": author,
            "media_attachments": [],
            "mentions": [],
            "tags": [{"name": tag, "url": f"{home}/tags/{tag}"}],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        return number, json.dumps(body).encode()

    began = time.time()
    # Per tag: (id, encoded status) in ascending ids, and the ids alone (for bisect); a surge
    # replaces both lists whole, under the lock, so a request reads one consistent pair.
    timelines: dict[str, tuple[list, list]] = {}
    for tag in tags:
        log, at = [], began - history
        while at < began + horizon:
            at += chance.expovariate(per_minute / 60)
            words, language = _TAG_STEADY[chance.randrange(len(_TAG_STEADY))]
            log.append(status(tag, int(at * 1000), words, language, loud=False))
        log.sort()
        timelines[tag] = (log, [number for number, _ in log])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._answer(401, b'{"error":"The access token is invalid"}', {})
            prefix = "/api/v1/timelines/tag/"
            if not parts.path.startswith(prefix):
                return self._answer(404, b'{"error":"Record not found"}', {})
            with lock:
                log, keys = timelines.get(parts.path[len(prefix) :].lower(), ([], []))
            # Listed from its moment on: every id of a millisecond up to now's.
            high = bisect.bisect_left(keys, (int(time.time() * 1000) + 1) << 16)
            low = 0
            for name in ("since_id", "min_id"):
                if query.get(name):
                    low = max(low, bisect.bisect_right(keys, int(query[name][0])))
            if query.get("max_id"):
                high = min(high, bisect.bisect_left(keys, int(query["max_id"][0])))
            limit = max(1, min(int((query.get("limit") or ["20"])[0]), 40))
            if query.get("min_id"):  # the page immediately newer than min_id
                chosen = log[low : min(high, low + limit)]
            else:  # the newest page (below max_id, above since_id)
                chosen = log[max(low, high - limit) : high]
            chosen = chosen[::-1]
            headers = {}
            if chosen:
                base = f"{origin}{parts.path}"
                kept = [("limit", value) for value in query.get("limit", [])]
                older = f"{base}?{urlencode([*kept, ('max_id', chosen[-1][0])])}"
                newer = f"{base}?{urlencode([*kept, ('min_id', chosen[0][0])])}"
                headers["Link"] = f'<{older}>; rel="next", <{newer}>; rel="prev"'
            self._answer(200, b"[" + b",".join(body for _, body in chosen) + b"]", headers)

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipe.send(
        {
            "url": origin,
            "token": token,
            "first": {tag: str(timelines[tag][1][0]) for tag in tags if timelines[tag][1]},
        }
    )
    while True:
        try:
            _, tag, at, posts, seconds = pipe.recv()
        except EOFError:  # the bench has gone
            os._exit(0)
        first = int(at * 1000)
        added = []
        for n in range(posts):
            words, language = _TAG_SURGE[chance.randrange(len(_TAG_SURGE))]
            millis = first + int(1000 * seconds * n / max(1, posts))
            added.append(status(tag, millis, words, language, loud=True))
        with lock:
            log = sorted(timelines.get(tag, ([], []))[0] + added)
            timelines[tag] = (log, [number for number, _ in log])
        pipe.send(first / 1000)
