"""A Mastodon server for the tests, written from docs.joinmastodon.org (methods/media,
methods/statuses, methods/accounts, api/rate-limits, entities/Error): it checks the bearer
token, the multipart upload and its description length, the status's length and media, honours
Idempotency-Key, and records every status it makes.

Statuses are rendered as app/lib/text_formatter.rb renders them (simple_format paragraphs and
<br />, links with hidden spans, hashtags as links): a mention of an account the server knows
(`local_accounts`, `remote_accounts`) is a `u-url mention` link showing "@user" (or
"@user@domain" when two known accounts share the name); one it cannot resolve stays the plain
text "@user@domain", as `link_to_mention` leaves it.

`idempotency_supported = False` plays a server (a fork, or one behind a proxy) that ignores
the optional Idempotency-Key; with `fail_next("statuses", "drop")` the answer after creating a
status is lost, and with `fail_next("statuses", "502", after=True)` the server records the
status, then answers 502.

Its OAuth side follows methods/apps, methods/oauth, spec/oauth and methods/instance: POST
/api/v1/apps registers a client (client_name and absolute redirect_uris required, scopes "read"
when absent); GET /oauth/authorize checks the client, the redirect URI, the scopes (a subset of
the registered ones) and the PKCE method (S256 only), then approves as a person clicking
"Authorize" would (302 to redirect_uri?code=…&state=…), or refuses with error=access_denied
when told to; POST /oauth/token exchanges a code once, for its client (secret in the form or
HTTP Basic), its redirect URI and its code_verifier, answering a Token without expiry or
refresh token as Mastodon does; POST /oauth/revoke (RFC 7009) forgets a token of the calling
client; GET /api/v2/instance announces the server's limits.

`refresh_tokens_enabled` plays a Doorkeeper set up with `use_refresh_token` (Mastodon itself is
not): tokens then expire (`expires_in`) and come with a refresh token, which the refresh_token
grant spends once (a spent or revoked one is invalid_grant, RFC 6749 §5.2).

What comes back follows methods/notifications (#get), entities/Notification, entities/Status
and api/guidelines (#pagination): `add_mention`, `add_reply` (to one of our statuses or
another's), `add_quote` and `add_notification` (favourite, follow …) make what other people do;
GET /api/v1/notifications lists them newest first with `types[]`, `exclude_types[]`, `max_id`,
`since_id`, `min_id` (the page immediately newer than it) and `limit` (default 40, at most
`max_limit`: 80 since 4.1, 30 before), and a Link header (rel="next": max_id = the page's oldest,
rel="prev": min_id = its newest). Notification ids are sequential numbers, starting just below
1000 so that a client comparing them as strings goes wrong early. `types_supported = False`
plays a server before 3.5, which ignores `types[]`. `delete_status` removes a status with its
notifications, as Mastodon does, or with `keep_notification=True` leaves the notification listed
with `status: null`. `fail_next("notifications", "malformed", body=…)` answers 200 with a body
that is no list of notifications.

Replies and figures follow methods/statuses (#create, #get, #index), entities/Status and
Api::V1::StatusesController: POST /api/v1/statuses with `in_reply_to_id` records the status as a
reply to that status (its `in_reply_to_id` and `in_reply_to_account_id`; `replies_to` and
`thread_root` read the server's threads), 404 "The status you are trying to reply to does not
appear to exist" when it has no such status, and `mentions` the known people (`person`) the
text names; a public or unlisted reply counts in its parent's `replies_count`, as
Status#increment_counter_caches does. Every status carries `favourites_count`,
`reblogs_count`, `replies_count` and, from `version` 4.5, `quotes_count`; `favourite`,
`reblog` and `add_reply`/`add_quote` make them grow, `delete_status` removes one of ours too.
GET /api/v1/statuses/:id answers one status (404 "Record not found" once deleted); GET
/api/v1/statuses?id[]=… (from `version` 4.3; a 404 before) those asked for that exist, in the
order asked, 422 beyond 20 ids (check_statuses_limit). Both check a bearer token when one is
sent (authorize_if_got_token!). GET /api/v1/accounts/:id/statuses honours `exclude_replies`
("filter out statuses in reply to a different account") and records its queries.

Listening follows methods/search (#v2), methods/timelines (#tag), methods/accounts (#lookup,
#statuses), api/guidelines (#pagination) and Mastodon's own code where the docs say less:
`add_public` makes someone's public status (a snowflake id from its time, as
Mastodon::Snowflake makes them: milliseconds << 16, then a sequence), with its hashtags
(entities/Status `tags`), its figures and its author's `indexable` choice (4.2+). GET
/api/v1/timelines/tag/:hashtag and GET /api/v1/accounts/:id/statuses of other people page
with `max_id`, `since_id`, `min_id` (the page immediately newer than it, as Paginable's
paginate_by_min_id does) and `limit` (default 20, at most 40), newest first, with the Link
header; a hashtag nobody used is 404 "Record not found" (methods/timelines #tag). GET
/api/v2/search?type=statuses plays StatusesSearchService (4.2+): it finds the public statuses of
indexable authors whose text holds every word asked for (case-insensitive; a stand-in for the
search engine), newest id first, with `limit` (default 20, at most 40) and `offset` (refused
without a user token); `min_id` and `max_id` become `after:` and `before:` at the second of the
id (Mastodon::Snowflake.to_time), so min_id does not give the page just after it but the newest
page above it. `full_text_search = False` plays a server without Elasticsearch (no statuses
found), `paging_supported = False` a fork that ignores min_id, max_id and offset on these
listings. GET /api/v1/accounts/lookup finds a known person by `acct` (404 otherwise).
`public_queries` records each listening call as (route, query)."""

import base64
import email.parser
import email.policy
import hashlib
import html
import io
import itertools
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import regex
from PIL import Image

from networks.channels.mastodon import MastodonChannel

from .server import Answer, FakeNetwork, Request, answer_json

MAX_DESCRIPTION = 1_500
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_MEDIA = 4
# Ruby's [[:word:]] (Mastodon's MENTION_RE and HASHTAG_RE) counts combining marks as word
# characters, as the regex module's \w does (the re module's does not).
_URL = regex.compile(r"https?://[^\s<]+")
_MENTION = regex.compile(r"(?<![=/\w])@([a-z0-9_]+)(?:@([\w.-]+\w))?", regex.IGNORECASE)
_HASHTAG = regex.compile(r"(?<![=/\w#])#(\w*[^\W\d_]\w*)")
_ENTITY = regex.compile(f"{_URL.pattern}|{_MENTION.pattern}|{_HASHTAG.pattern}", regex.IGNORECASE)


def _multipart(request: Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name → (filename, content type, bytes)."""
    head = f"Content-Type: {request.headers.get('Content-Type')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True) or b"",
        )
    return fields


def _link(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return (
        f'<a href="{html.escape(url)}" rel="nofollow noopener" target="_blank">'
        f'<span class="invisible">{scheme}://</span><span class="ellipsis">'
        f'{html.escape(rest[:30])}</span><span class="invisible">{html.escape(rest[30:])}'
        "</span></a>"
    )


def _mention(url: str, shown: str) -> str:
    return (
        f'<span class="h-card"><a href="{html.escape(url)}" class="u-url mention">'
        f"@<span>{html.escape(shown)}</span></a></span>"
    )


def _hashtag(tag: str, base: str) -> str:
    return (
        f'<a href="{base}/tags/{html.escape(tag.lower())}" class="mention hashtag" rel="tag">'
        f"#<span>{html.escape(tag)}</span></a>"
    )


class MastodonServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.account_id = "109"
        self.username = "north"
        self.tokens = {"good-token"}
        self.media: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.idempotency: dict[str, str] = {}
        # False: the server ignores Idempotency-Key (it is optional).
        self.idempotency_supported = True
        # Accounts a mention resolves to: local usernames, and remote "user@domain".
        self.local_accounts = {"north"}
        self.remote_accounts = {"friend@other.example"}
        # How many polls a new upload answers 206 for (0: processed at once, answered 200).
        self.processing_polls = 0
        self._ids = itertools.count(110_000_000_000_000_001)
        # OAuth: registered clients, codes given out, which client each token was issued to.
        self.domain = "mastodon.test"
        self.display_name = "North region"
        self.max_characters = 500
        self.apps: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_clients: dict[str, str] = {}
        self.revoked: list[str] = []
        # True: the person clicks "Deny" at the authorize page.
        self.deny_authorization = False
        self.refresh_tokens_enabled = False
        self.expires_in = 7200
        self.refresh_tokens: dict[str, dict[str, str]] = {}
        # What comes back: other people's accounts and statuses, and our notifications.
        self.people: dict[str, dict[str, Any]] = {}
        self.others: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self._notification_ids = itertools.count(998)
        # Each GET /api/v1/notifications's query, as parsed.
        self.notification_queries: list[dict[str, list[str]]] = []
        self.types_supported = True
        self.max_limit = 80
        # The Mastodon version played: batch reads from 4.3, quotes_count from 4.5.
        self.version = "4.5.0"
        # Each GET /api/v1/accounts/:id/statuses's query, as parsed.
        self.account_status_queries: list[dict[str, list[str]]] = []
        # Listening: other people's public statuses (add_public), newest id first, with the
        # words each one's text holds; each listening call's route and query.
        self.public: list[dict[str, Any]] = []
        self._public_words: dict[str, set[str]] = {}
        self._sequence = itertools.count(1)
        self.public_queries: list[tuple[str, dict[str, list[str]]]] = []
        # False: no Elasticsearch, so a search finds no statuses (SearchService).
        self.full_text_search = True
        # False: a fork that ignores min_id, max_id, since_id and offset on the listings.
        self.paging_supported = True

    # --- control ----------------------------------------------------------------------------
    def add_status(
        self,
        text: str,
        *,
        created_at: datetime | None = None,
        images: int = 0,
        in_reply_to: str | None = None,
        visibility: str = "public",
    ) -> dict[str, Any]:
        """A status made elsewhere (the web app, another tool), e.g. an hour ago; a reply to
        status `in_reply_to` when given."""
        with self.lock:
            attachments = []
            for number in range(images):
                media_id = str(next(self._ids))
                attachments.append(
                    {
                        "id": media_id,
                        "type": "image",
                        "url": f"{self.url}/files/{media_id}.png",
                        "preview_url": f"{self.url}/files/{media_id}.png",
                        "description": f"Picture {number + 1}",
                        "meta": {},
                    }
                )
            parent = self._status(in_reply_to) if in_reply_to else None
            return self._store_status(
                text,
                attachments,
                created_at or datetime.now(UTC),
                visibility=visibility,
                parent=parent,
            )

    def _store_status(
        self,
        text: str,
        attachments: list[dict[str, Any]],
        created_at: datetime,
        *,
        visibility: str | None = None,
        parent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        status_id = str(next(self._ids))
        status = {
            "id": status_id,
            "created_at": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "in_reply_to_id": parent["id"] if parent else None,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "uri": f"{self.url}/users/{self.username}/statuses/{status_id}",
            "url": f"{self.url}/@{self.username}/{status_id}",
            "visibility": visibility or "public",
            "content": self.render(text),
            "media_attachments": attachments,
            "mentions": self._mentioned(text),
            "account": {"id": self.account_id, "username": self.username, "acct": self.username},
            **_NO_FIGURES,
        }
        self._count_reply(status, parent)
        self.statuses.insert(0, status)
        self.statuses.sort(key=lambda s: s["created_at"], reverse=True)
        return status

    def person(self, acct: str, display_name: str = "") -> dict[str, Any]:
        """An Account on this server ("user") or another ("user@domain"), made on first use."""
        with self.lock:
            if acct not in self.people:
                username, _, domain = acct.partition("@")
                home = f"https://{domain}" if domain else self._origin()
                self.people[acct] = {
                    "id": str(next(self._ids)),
                    "username": username,
                    "acct": acct,
                    "display_name": display_name or username.title(),
                    "url": f"{home}/@{username}",
                }
            return self.people[acct]

    def add_mention(
        self,
        text: str,
        *,
        by: str = "friend@other.example",
        in_reply_to: str | None = None,
        visibility: str = "public",
        language: str | None = "en",
        created_at: datetime | None = None,
        kind: str = "mention",
        quote_of: str | None = None,
    ) -> dict[str, Any]:
        """Someone else's status that mentions us (`text` should name "@north"), with the
        notification Mastodon makes for it; answering `in_reply_to` (a status id) when given."""
        with self.lock:
            author = self.person(by)
            parent = self._status(in_reply_to) if in_reply_to else None
            quoted = self._status(quote_of) if quote_of else None
            status_id = str(next(self._ids))
            username, _, domain = by.partition("@")
            home = f"https://{domain}" if domain else self._origin()
            moment = created_at or datetime.now(UTC)
            status = {
                "id": status_id,
                "created_at": _stamp(moment),
                "in_reply_to_id": parent["id"] if parent else None,
                "in_reply_to_account_id": parent["account"]["id"] if parent else None,
                "sensitive": False,
                "spoiler_text": "",
                "visibility": visibility,
                "language": language,
                "uri": f"{home}/users/{username}/statuses/{status_id}",
                "url": f"{home}/@{username}/{status_id}",
                "content": self.render(text),
                "account": author,
                "mentions": [self._own_account()],
                "media_attachments": [],
                "quote": {"state": "accepted", "quoted_status": quoted} if quoted else None,
                **_NO_FIGURES,
            }
            self._count_reply(status, parent)
            if quoted is not None:
                quoted["quotes_count"] += 1
            self.others[status_id] = status
            self._notify(kind, author, status, moment)
            return status

    def add_reply(self, to: str, text: str, **options: Any) -> dict[str, Any]:
        """A reply to status `to`, written as a person's client writes it: "@north …"."""
        return self.add_mention(f"@{self.username} {text}", in_reply_to=to, **options)

    def add_quote(self, of: str, text: str, **options: Any) -> dict[str, Any]:
        """A quote of our status `of` (Mastodon 4.5's `quote` notification)."""
        return self.add_mention(text, kind="quote", quote_of=of, **options)

    def add_notification(
        self, kind: str, *, by: str = "friend@other.example", status: str | None = None
    ) -> dict[str, Any]:
        """A notification of another type (favourite, reblog, follow …)."""
        with self.lock:
            return self._notify(
                kind, self.person(by), self._status(status) if status else None, datetime.now(UTC)
            )

    def add_public(
        self,
        text: str,
        *,
        tags: tuple[str, ...] = (),
        acct: str = "someone@example.social",
        display_name: str = "",
        language: str | None = "en",
        favourites: int = 0,
        reblogs: int = 0,
        replies: int = 0,
        quotes: int = 0,
        spoiler_text: str = "",
        visibility: str = "public",
        indexable: bool = True,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Someone's status as it reached this server (public unless told otherwise), its id
        made from its time; `tags` are written at the end of its text as hashtags, as Mastodon
        takes a status's tags from its text. `indexable` is the author's choice that their
        public posts may be searched (Mastodon 4.2+)."""
        with self.lock:
            author = self.person(acct, display_name)
            author["indexable"] = indexable
            full = " ".join([text, *(f"#{tag}" for tag in tags)])
            moment = created_at or datetime.now(UTC)
            status_id = self._snowflake(moment)
            username, _, domain = acct.partition("@")
            home = f"https://{domain}" if domain else self._origin()
            names = dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(full))
            status = {
                "id": status_id,
                "created_at": _stamp(moment),
                "in_reply_to_id": None,
                "in_reply_to_account_id": None,
                "sensitive": bool(spoiler_text),
                "spoiler_text": spoiler_text,
                "visibility": visibility,
                "language": language,
                "uri": f"{home}/users/{username}/statuses/{status_id}",
                "url": f"{home}/@{username}/{status_id}",
                "content": self.render(full),
                "reblog": None,
                "account": author,
                "media_attachments": [],
                "mentions": self._mentioned(full),
                "tags": [{"name": name, "url": f"{self._origin()}/tags/{name}"} for name in names],
                "replies_count": replies,
                "reblogs_count": reblogs,
                "favourites_count": favourites,
                "quotes_count": quotes,
            }
            self._keep_public(status, f"{spoiler_text} {full}")
            return status

    def boost(self, status_id: str, *, by: str = "booster@example.social") -> dict[str, Any]:
        """`by` boosts status `status_id`: a status of theirs whose `reblog` is the original
        (entities/Status), listed among their statuses unless `exclude_reblogs`."""
        with self.lock:
            original = self._status(status_id)
            original["reblogs_count"] += 1
            author = self.person(by)
            moment = datetime.now(UTC)
            boost_id = self._snowflake(moment)
            username, _, domain = by.partition("@")
            home = f"https://{domain}" if domain else self._origin()
            boost = {
                "id": boost_id,
                "created_at": _stamp(moment),
                "in_reply_to_id": None,
                "in_reply_to_account_id": None,
                "sensitive": False,
                "spoiler_text": "",
                "visibility": "public",
                "language": None,
                "uri": f"{home}/users/{username}/statuses/{boost_id}/activity",
                "url": None,
                "content": "",
                "reblog": original,
                "account": author,
                "media_attachments": [],
                "mentions": [],
                "tags": [],
                **_NO_FIGURES,
            }
            self._keep_public(boost, "")
            return boost

    def _keep_public(self, status: dict[str, Any], text: str) -> None:
        self.public.append(status)
        self.public.sort(key=lambda s: int(s["id"]), reverse=True)
        self.others[status["id"]] = status
        self._public_words[status["id"]] = _words(text)

    def _snowflake(self, moment: datetime) -> str:
        """An id as Mastodon::Snowflake makes it: the time in milliseconds, shifted 16 bits,
        then a sequence that tells apart two ids of the same millisecond."""
        millis = (moment - _EPOCH) // timedelta(milliseconds=1)
        return str((millis << 16) | (next(self._sequence) & 0xFFFF))

    def favourite(self, status_id: str, times: int = 1) -> None:
        """`times` people favourite the status (its favourites_count)."""
        with self.lock:
            self._status(status_id)["favourites_count"] += times

    def reblog(self, status_id: str, times: int = 1) -> None:
        """`times` people boost the status (its reblogs_count)."""
        with self.lock:
            self._status(status_id)["reblogs_count"] += times

    def replies_to(self, status_id: str) -> list[dict[str, Any]]:
        """Our statuses that answer status `status_id`, newest first."""
        with self.lock:
            return [s for s in self.statuses if s["in_reply_to_id"] == status_id]

    def thread_root(self, status_id: str) -> str:
        """The status a thread starts from: `in_reply_to_id` followed up while the server has
        the status answered (Status#ancestors)."""
        with self.lock:
            status = self._status(status_id)
            while status.get("in_reply_to_id"):
                try:
                    status = self._status(status["in_reply_to_id"])
                except KeyError:
                    break
            return status["id"]

    def delete_status(self, status_id: str, *, keep_notification: bool = False) -> None:
        """Someone deletes their status (or we delete ours): Mastodon removes its notifications
        with it; kept, the notification is listed with `status: null`."""
        with self.lock:
            self.others.pop(status_id, None)
            self.statuses = [s for s in self.statuses if s["id"] != status_id]
            self.public = [s for s in self.public if s["id"] != status_id]
            for notification in list(self.notifications):
                status = notification["status"]
                if status is None or status["id"] != status_id:
                    continue
                if keep_notification:
                    notification["status"] = None
                else:
                    self.notifications.remove(notification)

    def _notify(
        self, kind: str, author: dict[str, Any], status: dict[str, Any] | None, moment: datetime
    ) -> dict[str, Any]:
        notification_id = str(next(self._notification_ids))
        notification = {
            "id": notification_id,
            "type": kind,
            "created_at": _stamp(moment),
            "group_key": f"ungrouped-{notification_id}",
            "account": author,
            "status": status,
        }
        self.notifications.append(notification)
        return notification

    def _status(self, status_id: str) -> dict[str, Any]:
        found = self.others.get(status_id) or next(
            (s for s in self.statuses if s["id"] == status_id), None
        )
        if found is None:
            raise KeyError(f"No status {status_id} on the test server")
        return found

    def _count_reply(self, status: dict[str, Any], parent: dict[str, Any] | None) -> None:
        # Status#increment_counter_caches: only a distributable reply counts.
        if parent is not None and status["visibility"] in ("public", "unlisted"):
            parent["replies_count"] += 1

    def _mentioned(self, text: str) -> list[dict[str, Any]]:
        """The known people `text` mentions (entities/Status `mentions`): "@user" is an account
        of this server, "@user@domain" one of another."""
        found = []
        for match in _MENTION.finditer(text):
            user, domain = match.group(1), match.group(2)
            acct = user if not domain or domain.lower() == self.domain else f"{user}@{domain}"
            person = self.people.get(acct)
            if person is not None and person not in found:
                found.append(person)
        return [{k: p[k] for k in ("id", "username", "acct", "url")} for p in found]

    def _version(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split(".")[:2])

    def _shown(self, status: dict[str, Any]) -> dict[str, Any]:
        """A status as this version's serializer shows it (quotes_count since 4.5)."""
        if self._version() >= (4, 5):
            return status
        return {k: v for k, v in status.items() if k != "quotes_count"}

    def _own_account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "username": self.username,
            "acct": self.username,
            "url": f"{self._origin()}/@{self.username}",
        }

    # --- rendering --------------------------------------------------------------------------
    def render(self, text: str) -> str:
        """A status's `content`, as TextFormatter renders it (see the module docstring)."""
        paragraphs = []
        for paragraph in text.split("\n\n"):
            out, last = [], 0
            for match in _ENTITY.finditer(paragraph):
                out.append(html.escape(paragraph[last : match.start()], quote=False))
                entity = match.group()
                if entity.startswith("@"):
                    out.append(self._mention(_MENTION.fullmatch(entity)))
                elif entity.startswith("#"):
                    out.append(_hashtag(entity[1:], self._origin()))
                else:
                    out.append(_link(entity))
                last = match.end()
            out.append(html.escape(paragraph[last:], quote=False))
            paragraphs.append("<p>" + "".join(out).replace("\n", "<br />") + "</p>")
        return "".join(paragraphs)

    def _mention(self, match: regex.Match) -> str:
        user, domain = match.group(1), match.group(2)
        if domain and domain.lower() == self.domain:
            domain = None
        known = {(name, None) for name in self.local_accounts} | {
            tuple(acct.split("@", 1)) for acct in self.remote_accounts
        }
        if (user, domain) not in known:
            return html.escape(match.group(), quote=False)
        namesakes = sum(1 for name, _ in known if name.lower() == user.lower())
        shown = f"{user}@{domain}" if domain and namesakes > 1 else user
        url = f"https://{domain}/@{user}" if domain else f"{self._origin()}/@{user}"
        return _mention(url, shown)

    def _origin(self) -> str:
        # Rendering also serves tests that never start the server.
        return self.url if self._server is not None else f"https://{self.domain}"

    def route(self, request: Request):
        path, method = request.path, request.method
        if method == "POST" and path == "/api/v2/media":
            return "media", self.upload
        if method == "GET" and path.startswith("/api/v1/media/"):
            return "media_get", self.media_get
        if method == "POST" and path == "/api/v1/statuses":
            return "statuses", self.create_status
        if method == "GET" and path == "/api/v1/statuses":
            return "statuses_index", self.statuses_index
        if method == "GET" and re.fullmatch(r"/api/v1/statuses/[^/]+", path):
            return "statuses_show", self.statuses_show
        if method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return "verify", self.verify
        if method == "GET" and path == "/api/v1/accounts/lookup":
            return "lookup", self.lookup
        if method == "GET" and re.fullmatch(r"/api/v1/accounts/[^/]+/statuses", path):
            return "account_statuses", self.account_statuses
        if method == "GET" and path == "/api/v2/search":
            return "search", self.search
        if method == "GET" and re.fullmatch(r"/api/v1/timelines/tag/[^/]+", path):
            return "tag_timeline", self.tag_timeline
        if method == "POST" and path == "/api/v1/apps":
            return "apps", self.create_app
        if method == "GET" and path == "/oauth/authorize":
            return "authorize", self.authorize
        if method == "POST" and path == "/oauth/token":
            return "token", self.token
        if method == "POST" and path == "/oauth/revoke":
            return "revoke", self.revoke
        if method == "GET" and path == "/api/v2/instance":
            return "instance", self.instance
        if method == "GET" and path == "/api/v1/notifications":
            return "notifications", self.list_notifications
        return "other", self.not_found

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return answer_json(401, {"error": "The access token is invalid"})
        if mode == "429":
            reset = datetime.now(UTC) + timedelta(seconds=options.get("reset_in", 120))
            return answer_json(
                429,
                {"error": "Too many requests"},
                {
                    "X-RateLimit-Limit": "300",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace(
                        "+00:00", "Z"
                    ),
                },
            )
        if mode == "422":
            return answer_json(422, {"error": options.get("error", "Validation failed")})
        if mode == "malformed":
            body = options.get("body", b'{"notifications": []}')
            return 200, {"Content-Type": "application/json"}, body
        return answer_json(int(mode), {"error": "We're sorry, but something went wrong"})

    def _authorised(self, request: Request) -> bool:
        return request.bearer() in self.tokens

    def _unauthorised(self) -> Answer:
        return answer_json(401, {"error": "The access token is invalid"})

    # --- media -----------------------------------------------------------------------------
    def upload(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        if not (request.headers.get("Content-Type") or "").startswith("multipart/form-data"):
            return answer_json(422, {"error": "Validation failed: File can't be blank"})
        fields = _multipart(request)
        if "file" not in fields or not fields["file"][2]:
            return answer_json(422, {"error": "Validation failed: File can't be blank"})
        _, mime, data = fields["file"]
        description = fields.get("description", (None, None, b""))[2].decode()
        if len(description) > MAX_DESCRIPTION:
            return answer_json(
                422,
                {
                    "error": "Validation failed: Description is too long (maximum is "
                    f"{MAX_DESCRIPTION} characters)"
                },
            )
        if len(data) > MAX_IMAGE_BYTES:
            return answer_json(422, {"error": "Validation failed: File file size must be less"})
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception:
            return answer_json(
                422,
                {
                    "error": "Validation failed: File has contents that are "
                    "not what they are reported to be"
                },
            )
        media_id = str(next(self._ids))
        with self.lock:
            item = {
                "id": media_id,
                "type": "image",
                "url": None if self.processing_polls else f"{self.url}/files/{media_id}.png",
                "description": description,
                "mime": mime,
                "bytes": len(data),
                "meta": {"original": {"width": image.width, "height": image.height}},
                "polls_left": self.processing_polls,
                "attached": False,
            }
            self.media[media_id] = item
        return answer_json(202 if self.processing_polls else 200, self._media_json(item))

    def _media_json(self, item: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "type", "url", "description", "meta")
        return {k: item[k] for k in keys} | {"preview_url": item["url"]}

    def media_get(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        item = self.media.get(request.path.rsplit("/", 1)[1])
        if item is None:
            return answer_json(404, {"error": "Record not found"})
        with self.lock:
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
                return answer_json(206, self._media_json(item))
            item["url"] = f"{self.url}/files/{item['id']}.png"
        return answer_json(200, self._media_json(item))

    # --- statuses --------------------------------------------------------------------------
    def create_status(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        body = request.json() or {}
        text = body.get("status") or ""
        media_ids = [str(m) for m in body.get("media_ids") or []]
        key = request.headers.get("Idempotency-Key") if self.idempotency_supported else None
        in_reply_to_id = body.get("in_reply_to_id")
        with self.lock:
            if key and key in self.idempotency:
                existing = next(s for s in self.statuses if s["id"] == self.idempotency[key])
                return answer_json(200, existing)
            try:
                parent = self._status(str(in_reply_to_id)) if in_reply_to_id else None
            except KeyError:
                return answer_json(
                    404,
                    {"error": "The status you are trying to reply to does not appear to exist."},
                )
            if not text.strip() and not media_ids:
                return answer_json(422, {"error": "Validation failed: Text can't be blank"})
            if MastodonChannel().count(text) > self.max_characters:
                return answer_json(
                    422,
                    {
                        "error": "Validation failed: Text character limit of "
                        f"{self.max_characters} exceeded"
                    },
                )
            if len(media_ids) > MAX_MEDIA:
                return answer_json(
                    422, {"error": "Validation failed: Media attachments too many (maximum 4)"}
                )
            attachments = []
            for media_id in media_ids:
                item = self.media.get(media_id)
                if item is None or item["attached"]:
                    return answer_json(422, {"error": "Validation failed: Media not found"})
                if item["url"] is None:
                    return answer_json(
                        422,
                        {
                            "error": "Cannot attach files that have not finished processing. "
                            "Try again in a moment!"
                        },
                    )
                attachments.append(item)
            for item in attachments:
                item["attached"] = True
            status = self._store_status(
                text,
                [self._media_json(item) for item in attachments],
                datetime.now(UTC),
                visibility=body.get("visibility"),
                parent=parent,
            )
            if key:
                self.idempotency[key] = status["id"]
        return answer_json(200, status)

    def verify(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        return answer_json(
            200,
            {
                "id": self.account_id,
                "username": self.username,
                "acct": self.username,
                "display_name": self.display_name,
                "url": f"{self.url}/@{self.username}",
            },
        )

    def account_statuses(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        account_id = request.path.split("/")[4]
        if account_id != self.account_id:
            return self._people_statuses(request, account_id)
        limit = min(int(request.param("limit") or 20), 40)
        with self.lock:
            self.account_status_queries.append({k: list(v) for k, v in request.query.items()})
            found = [s for s in self.statuses if s["account"]["id"] == account_id]
        if request.param("exclude_replies") in ("true", "1"):
            # Replies to the account itself (a thread of its own) are kept.
            found = [s for s in found if s["in_reply_to_account_id"] in (None, s["account"]["id"])]
        return answer_json(200, [self._shown(s) for s in found[:limit]])

    def _token_refused(self, request: Request) -> bool:
        """authorize_if_got_token!: no token reads public statuses, a bad one is refused."""
        return request.headers.get("Authorization") is not None and not self._authorised(request)

    def statuses_show(self, request: Request) -> Answer:
        if self._token_refused(request):
            return self._unauthorised()
        with self.lock:
            try:
                status = self._status(request.path.rsplit("/", 1)[1])
            except KeyError:
                return answer_json(404, {"error": "Record not found"})
            return answer_json(200, self._shown(status))

    def statuses_index(self, request: Request) -> Answer:
        if self._version() < (4, 3):
            return self.not_found(request)
        if self._token_refused(request):
            return self._unauthorised()
        ids = list(dict.fromkeys(request.query.get("id[]", [])))
        if len(ids) > STATUSES_LIMIT:
            return answer_json(422, {"error": "Mastodon::ValidationError"})
        with self.lock:
            found = []
            for status_id in ids:
                try:
                    found.append(self._shown(self._status(status_id)))
                except KeyError:
                    continue
        return answer_json(200, found)

    # --- notifications (methods/notifications) ----------------------------------------------
    def list_notifications(self, request: Request) -> Answer:
        if not self._authorised(request):
            return self._unauthorised()
        limit = max(1, min(_int(request.param("limit")) or 40, self.max_limit))
        types = request.query.get("types[]", []) if self.types_supported else []
        excluded = request.query.get("exclude_types[]", [])
        max_id, since_id, min_id = (_int(request.param(name)) for name in PAGING)
        with self.lock:
            self.notification_queries.append({k: list(v) for k, v in request.query.items()})
            found = sorted(
                (
                    n
                    for n in self.notifications
                    if (not types or n["type"] in types) and n["type"] not in excluded
                ),
                key=lambda n: int(n["id"]),
            )
        if max_id is not None:
            found = [n for n in found if int(n["id"]) < max_id]
        if since_id is not None:
            found = [n for n in found if int(n["id"]) > since_id]
        if min_id is not None:
            # The page immediately newer than min_id (paginating forward from it).
            page = [n for n in found if int(n["id"]) > min_id][:limit]
        else:
            page = found[-limit:]
        page.reverse()
        return answer_json(200, page, self._links(request, page))

    def _links(
        self,
        request: Request,
        page: list[dict[str, Any]],
        kept_names: tuple[str, ...] = ("limit", "types[]", "exclude_types[]"),
    ) -> dict[str, str]:
        """The Link header Mastodon sends with a page that is not empty."""
        if not page:
            return {}
        kept = [(name, value) for name in kept_names for value in request.query.get(name, [])]
        base = f"{self.url}{request.path}"
        older = f"{base}?{urlencode([*kept, ('max_id', page[-1]['id'])])}"
        newer = f"{base}?{urlencode([*kept, ('min_id', page[0]['id'])])}"
        return {"Link": f'<{older}>; rel="next", <{newer}>; rel="prev"'}

    # --- listening (methods/search, methods/timelines, methods/accounts) ------------------------
    def search(self, request: Request) -> Answer:
        if self._token_refused(request):
            return self._unauthorised()
        signed_in = self._authorised(request)
        if request.param("offset") and not signed_in:
            return answer_json(
                401, {"error": "Search queries pagination is not supported without authentication"}
            )
        words = _words(request.param("q") or "")
        with self.lock:
            self.public_queries.append(("search", _query(request)))
            found = []
            # SearchService searches statuses only with a search engine and a signed-in account.
            if request.param("type") in (None, "statuses") and signed_in and self.full_text_search:
                found = [
                    s
                    for s in self.public
                    if s["reblog"] is None
                    and s["visibility"] == "public"
                    and s["account"].get("indexable")
                    and words
                    and words <= self._public_words[s["id"]]
                ]
        offset = 0
        if self.paging_supported:
            # StatusesSearchService: min_id and max_id become after: and before: at the second
            # of the id (Mastodon::Snowflake.to_time), compared with each status's time.
            min_id, max_id = _int(request.param("min_id")), _int(request.param("max_id"))
            if min_id is not None:
                found = [s for s in found if _time(s) > _second_of(min_id)]
            if max_id is not None:
                found = [s for s in found if _time(s) < _second_of(max_id)]
            offset = max(0, _int(request.param("offset")) or 0)
        page = found[offset : offset + _page_limit(request)]
        return answer_json(
            200, {"accounts": [], "statuses": [self._shown(s) for s in page], "hashtags": []}
        )

    def tag_timeline(self, request: Request) -> Answer:
        if self._token_refused(request):
            return self._unauthorised()
        name = unquote(request.path.rsplit("/", 1)[1]).lower()
        with self.lock:
            self.public_queries.append(("tag_timeline", _query(request)))
            tagged = [s for s in self.public if any(t["name"] == name for t in s["tags"])]
        if not tagged:
            return answer_json(404, {"error": "Record not found"})
        found = [s for s in tagged if s["reblog"] is None and s["visibility"] == "public"]
        page = self._paginate(found, request)
        shown = [self._shown(s) for s in page]
        return answer_json(200, shown, self._links(request, page, ("limit", "only_media")))

    def lookup(self, request: Request) -> Answer:
        if self._token_refused(request):
            return self._unauthorised()
        user, _, domain = (request.param("acct") or "").lstrip("@").lower().partition("@")
        acct = user if not domain or domain == self.domain else f"{user}@{domain}"
        with self.lock:
            self.public_queries.append(("lookup", _query(request)))
            person = next((p for key, p in self.people.items() if key.lower() == acct), None)
        if person is None:
            return answer_json(404, {"error": "Record not found"})
        return answer_json(200, person)

    def _people_statuses(self, request: Request, account_id: str) -> Answer:
        """Another person's statuses (what reached this server), newest first."""
        with self.lock:
            self.public_queries.append(("account_statuses", _query(request)))
            if not any(p["id"] == account_id for p in self.people.values()):
                return answer_json(404, {"error": "Record not found"})
            found = [
                s
                for s in self.public
                if s["account"]["id"] == account_id and s["visibility"] in ("public", "unlisted")
            ]
        if request.param("exclude_reblogs") in ("true", "1"):
            found = [s for s in found if s["reblog"] is None]
        page = self._paginate(found, request)
        shown = [self._shown(s) for s in page]
        kept = ("limit", "exclude_reblogs", "exclude_replies", "only_media")
        return answer_json(200, shown, self._links(request, page, kept))

    def _paginate(self, found: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
        """Paginable#paginate_by_id on statuses listed newest first: with min_id, the `limit`
        statuses immediately newer than it (still answered newest first)."""
        limit = _page_limit(request)
        if not self.paging_supported:
            return found[:limit]
        max_id, since_id, min_id = (_int(request.param(name)) for name in PAGING)
        if max_id is not None:
            found = [s for s in found if int(s["id"]) < max_id]
        if since_id is not None:
            found = [s for s in found if int(s["id"]) > since_id]
        if min_id is not None:
            return [s for s in found if int(s["id"]) > min_id][-limit:]
        return found[:limit]

    # --- OAuth (methods/apps, methods/oauth) ---------------------------------------------------
    def create_app(self, request: Request) -> Answer:
        form = _params(request)
        name = _one(form, "client_name")
        if not name:
            return answer_json(422, {"error": "Validation failed: Name can't be blank"})
        uris = [u for v in form.get("redirect_uris", []) for u in str(v).split("\n") if u.strip()]
        if not uris or not all(_absolute(u) for u in uris):
            return answer_json(
                422, {"error": "Validation failed: Redirect URI must be an absolute URI."}
            )
        scopes = (_one(form, "scopes") or "read").split()
        if not all(_known_scope(scope) for scope in scopes):
            return answer_json(422, {"error": "Validation failed: Scopes are invalid"})
        client_id, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.lock:
            self.apps[client_id] = {
                "id": str(len(self.apps) + 1),
                "name": name,
                "secret": secret,
                "redirect_uris": uris,
                "scopes": scopes,
            }
        return answer_json(
            200,
            {
                "id": str(len(self.apps)),
                "name": name,
                "website": _one(form, "website") or None,
                "scopes": scopes,
                "redirect_uri": "\n".join(uris),
                "redirect_uris": uris,
                "client_id": client_id,
                "client_secret": secret,
                "client_secret_expires_at": 0,
            },
        )

    def authorize(self, request: Request) -> Answer:
        client_id = request.param("client_id") or ""
        app = self.apps.get(client_id)
        if app is None:
            return _page(401, "Client authentication failed due to unknown client.")
        redirect_uri = request.param("redirect_uri") or ""
        if redirect_uri not in app["redirect_uris"]:
            return _page(400, "The redirect uri included is not valid.")
        state = request.param("state")

        def back(**params: str) -> Answer:
            if state is not None:
                params["state"] = state
            separator = "&" if urlsplit(redirect_uri).query else "?"
            return 302, {"Location": f"{redirect_uri}{separator}{urlencode(params)}"}, b""

        if request.param("response_type") != "code":
            return back(
                error="unsupported_response_type",
                error_description="The authorization server does not support this response type.",
            )
        scope = (request.param("scope") or "read").replace("+", " ").split()
        if not set(scope) <= set(app["scopes"]):
            return back(
                error="invalid_scope",
                error_description="The requested scope is invalid, unknown, or malformed.",
            )
        challenge = request.param("code_challenge")
        if challenge and request.param("code_challenge_method") != "S256":
            return back(
                error="invalid_request", error_description="Only S256 code challenges are accepted."
            )
        if self.deny_authorization:
            return back(
                error="access_denied",
                error_description="The resource owner or authorization server denied the request.",
            )
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scope),
                "challenge": challenge,
                "used": False,
            }
        return back(code=code)

    def _client(self, request: Request, form: dict[str, list[str]]) -> str | None:
        """The client proving itself with its secret, in the form or with HTTP Basic."""
        client_id, secret = _one(form, "client_id"), _one(form, "client_secret")
        header = request.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
        app = self.apps.get(client_id or "")
        if app is None or not secret or not secrets.compare_digest(app["secret"], secret):
            return None
        return client_id

    def token(self, request: Request) -> Answer:
        form = _params(request)
        client_id = self._client(request, form)
        if client_id is None:
            return answer_json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown client, "
                    "no client authentication included, or unsupported authentication method.",
                },
            )
        grant = _one(form, "grant_type")
        if grant == "refresh_token" and self.refresh_tokens_enabled:
            return self._refresh(client_id, form)
        if grant != "authorization_code":
            return answer_json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported by the "
                    "authorization server.",
                },
            )
        invalid = answer_json(
            400,
            {
                "error": "invalid_grant",
                "error_description": "The provided authorization grant is invalid, expired, "
                "revoked, does not match the redirection URI used in the authorization "
                "request, or was issued to another client.",
            },
        )
        with self.lock:
            code = self.codes.get(_one(form, "code") or "")
            if code is None or code["used"] or code["client_id"] != client_id:
                return invalid
            if code["redirect_uri"] != _one(form, "redirect_uri"):
                return invalid
            if code["challenge"]:
                verifier = (_one(form, "code_verifier") or "").encode()
                digest = hashlib.sha256(verifier).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code["challenge"]:
                    return invalid
            code["used"] = True
            return answer_json(200, self._issue(client_id, code["scope"]))

    def _issue(self, client_id: str, scope: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        self.tokens.add(token)
        self.token_clients[token] = client_id
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": scope,
            "created_at": int(datetime.now(UTC).timestamp()),
        }
        if self.refresh_tokens_enabled:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = {"client_id": client_id, "scope": scope, "access": token}
            answer.update(expires_in=self.expires_in, refresh_token=refresh)
        return answer

    def _refresh(self, client_id: str, form: dict[str, list[str]]) -> Answer:
        with self.lock:
            grant = self.refresh_tokens.get(_one(form, "refresh_token") or "")
            if grant is None or grant["client_id"] != client_id:
                return answer_json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "The provided authorization grant is invalid, "
                        "expired, revoked, does not match the redirection URI used in the "
                        "authorization request, or was issued to another client.",
                    },
                )
            del self.refresh_tokens[_one(form, "refresh_token")]
            # The old access token goes with its refresh token (Doorkeeper revokes it).
            self.tokens.discard(grant["access"])
            return answer_json(200, self._issue(client_id, grant["scope"]))

    def revoke(self, request: Request) -> Answer:
        form = _params(request)
        client_id = self._client(request, form)
        token = _one(form, "token") or ""
        with self.lock:
            refresh = self.refresh_tokens.get(token)
            if refresh is not None and client_id == refresh["client_id"]:
                del self.refresh_tokens[token]
                self.revoked.append(token)
                return answer_json(200, {})
            owner = self.token_clients.get(token)
            if client_id is None or (owner is not None and owner != client_id):
                return answer_json(
                    403,
                    {
                        "error": "unauthorized_client",
                        "error_description": "You are not authorized to revoke this token",
                    },
                )
            if owner is not None:
                self.tokens.discard(token)
                del self.token_clients[token]
                self.revoked.append(token)
        return answer_json(200, {})

    def instance(self, request: Request) -> Answer:
        return answer_json(
            200,
            {
                "domain": self.domain,
                "title": "Mastodon test server",
                "version": self.version,
                "configuration": {
                    "statuses": {
                        "max_characters": self.max_characters,
                        "max_media_attachments": MAX_MEDIA,
                        "characters_reserved_per_url": 23,
                    },
                    "media_attachments": {
                        "supported_mime_types": ["image/jpeg", "image/png", "image/gif"],
                        "image_size_limit": MAX_IMAGE_BYTES,
                        "image_matrix_limit": 33_177_600,
                        "description_limit": MAX_DESCRIPTION,
                    },
                },
            },
        )


PAGING = ("max_id", "since_id", "min_id")
# Api::BaseController::DEFAULT_STATUSES_LIMIT: the most ids GET /api/v1/statuses takes.
STATUSES_LIMIT = 20
_NO_FIGURES = {"replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "quotes_count": 0}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# DEFAULT_STATUSES_LIMIT, and limit_param's ceiling of twice it (methods/timelines, methods/search).
DEFAULT_STATUSES = 20
MAX_STATUSES = 40
_WORD = regex.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def _query(request: Request) -> dict[str, list[str]]:
    return {k: list(v) for k, v in request.query.items()}


def _page_limit(request: Request) -> int:
    return max(1, min(_int(request.param("limit")) or DEFAULT_STATUSES, MAX_STATUSES))


def _time(status: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))


def _second_of(snowflake: int) -> datetime:
    """Mastodon::Snowflake.to_time: the id's time, in whole seconds."""
    return datetime.fromtimestamp((snowflake >> 16) // 1000, UTC)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _params(request: Request) -> dict[str, list[str]]:
    """A form (urlencoded) or JSON body as name → values."""
    kind = (request.headers.get("Content-Type") or "").split(";")[0].strip()
    if kind == "application/json":
        data = request.json()
        if not isinstance(data, dict):
            return {}
        return {k: v if isinstance(v, list) else [v] for k, v in data.items() if v is not None}
    if kind == "multipart/form-data":
        return {k: [v[2].decode()] for k, v in _multipart(request).items()}
    return parse_qs(request.body.decode(), keep_blank_values=True)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return str(values[0]) if values else None


def _absolute(uri: str) -> bool:
    if uri == "urn:ietf:wg:oauth:2.0:oob":
        return True
    parts = urlsplit(uri)
    return bool(parts.scheme and parts.netloc)


def _known_scope(scope: str) -> bool:
    return scope in {"read", "write", "follow", "push", "profile"} or scope.split(":")[0] in {
        "read",
        "write",
        "admin",
    }


def _page(status: int, message: str) -> Answer:
    body = f"<!doctype html><title>Error</title><p>{html.escape(message)}</p>".encode()
    return status, {"Content-Type": "text/html; charset=utf-8"}, body
