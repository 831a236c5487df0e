"""A Bluesky PDS for the tests, written from the atproto lexicons (com.atproto.server
createSession/refreshSession/getSession/deleteSession, com.atproto.repo
uploadBlob/createRecord/getRecord, com.atproto.identity.resolveHandle, app.bsky.feed.post,
app.bsky.embed.images, app.bsky.richtext.facet) and specs/xrpc: it checks the bearer session,
the record key (a TID), the post's shape and limits and each image blob's size, and records
every post it stores. Failures on demand: "401", "429", "400", any 5xx (with `after=True`, the
record is stored first), "drop" (stored, then the connection closed unanswered), "page" (a
proxy's HTML page), "200" (a success without the record) and "json" (a 200 with `body`).

What comes back (issue 17), as the AppView behind a PDS answers it:
app.bsky.notification.listNotifications (`limit` 1–100, default 50; `reasons[]`; `cursor`),
newest first by `indexedAt` then CID, the cursor being the last item's "<indexedAt>::<cid>" (the
AppView's time-and-CID keyset) and pointing to older ones. Tests make people reply, mention,
quote and like (`add_reply`, `add_mention`, `add_quote`, `add_like`), delete a post (its
notification is dropped, as the AppView does), hide one with a `!hide` (or `!takedown`) label on
its notification and its postView, place a notification at a given time (one indexed late), and
make the server ignore `reasons[]`. getRecord on another person's repo answers from what the
AppView holds (as @atproto/pds asks the AppView for a repo it does not host): RecordNotFound
once the post is deleted.

Replies and figures (issue 17): createRecord checks a post's `reply` as the lexicon has it
(#replyRef: `root` and `parent`, each a com.atproto.repo.strongRef with `uri` and `cid`), and
indexes a reply as the reference AppView (@atproto/bsky's post indexer) does: it is flagged
invalidReplyRoot when its parent is unknown or flagged, when its root is its parent while the
parent is itself a reply, or when its root is not its parent's root (`invalid_replies`).
`thread(root)` lists the unflagged replies under a thread's top post (where a reply is seen to
have landed in the right thread); `replies_to(uri)` lists a post's direct replies, flagged or
not, which is what replyCount counts there. app.bsky.feed.getPosts (`uris[]`, at most 25, each
an at:// URI) answers a postView for each post it has, in the order asked, with likeCount,
repostCount, replyCount and quoteCount (posts embedding it with app.bsky.embed.record) counted
from what the tests made (`add_like`, `add_repost`, `add_reply`, `add_quote`, and North's own
replies and posts); a post it does not have (never made, or deleted with `delete_post`, ours as
well as others') is left out. Every getPosts call's URIs are kept in `get_posts_queries`.

Listening (issue 18), from the lexicons app.bsky.feed.searchPosts and app.bsky.feed.getAuthorFeed
and docs.bsky.app "Timestamps": tests add public posts by anyone (`add_public`, which returns the
post's postView, with the figures they give it) and reposts into an author's feed
(`add_public_repost`). Each post has its indexing time and its record's createdAt; both lists
order by sortAt, the earlier of the two, newest first (then by CID), and page to older ones with
an opaque cursor. searchPosts (`q` required; `limit` 1–100, default 25; `sort` latest or top,
both newest first here) matches every word of `q` case-insensitively against the words of the
text, and a `#word` of `q` against the post's hashtags; `tag` (repeated: all must match, case
aside) against its hashtags (the text's #tag facets and the record's `tags`); `lang` against its
`langs`; `since` (inclusive) and `until` (exclusive) against its sortAt, as a datetime or a date.
getAuthorFeed (`actor`, a handle or DID, required; `limit` 1–100, default 50; `filter`, whose
posts_no_replies leaves out replies) lists the author's posts and reposts, a repost as
{post, reason: #reasonRepost with `by` and `indexedAt`} placed at the repost's time; an unknown
actor is 400 InvalidRequest "Profile not found". Each call's query is kept in `search_queries`
or `author_feed_queries`; both routes fail on demand as the others do (`fail_next`)."""

import base64
import hashlib
import io
import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import regex
from PIL import Image

from .server import Answer, FakeNetwork, Request, answer_json

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
MAX_BLOB = 1_000_000
S32 = "234567abcdefghijklmnopqrstuvwxyz"
NOTIFICATIONS = "app.bsky.notification.listNotifications"
GET_POSTS = "app.bsky.feed.getPosts"
SEARCH_POSTS = "app.bsky.feed.searchPosts"
AUTHOR_FEED = "app.bsky.feed.getAuthorFeed"
AUTHOR_FEED_FILTERS = frozenset(
    {
        "posts_with_replies",
        "posts_no_replies",
        "posts_with_media",
        "posts_and_author_threads",
        "posts_with_video",
    }
)
# A hashtag as the tests write them in a post's text (social-app's rule is wider).
HASHTAG = re.compile(r"(?:^|(?<=\s))#(\w+)")
WORD = re.compile(r"\w+")
MAX_GET_POSTS = 25
# The people who answer North in the tests: handle → (DID, display name).
PEOPLE = {
    "friend.test": ("did:plc:friend7test", "A Friend"),
    "critic.test": ("did:plc:critic7test", "Dr. Critic"),
    "fan.test": ("did:plc:fan7test", ""),
}
FEATURES = {
    "app.bsky.richtext.facet#link": "uri",
    "app.bsky.richtext.facet#mention": "did",
    "app.bsky.richtext.facet#tag": "tag",
}


def _error(status: int, name: str, message: str, headers: dict | None = None) -> Answer:
    return answer_json(status, {"error": name, "message": message}, headers)


class BlueskyServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.handle = "north.test"
        self.did = "did:plc:north4test5pds6aaaaaaaaa"
        self.password = "abcd-efgh-ijkl-mnop"
        self.known_handles = {self.handle: self.did, "friend.test": "did:plc:friend7test"}
        self.access: dict[str, str] = {}
        self.expired: set[str] = set()
        self.refresh: dict[str, str] = {}
        self.blobs: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}  # rkey → {"uri", "cid", "value"}
        self.session_calls = 0
        self.refresh_calls = 0
        self.deleted_sessions = 0
        self._numbers = itertools.count(1)
        # North's notifications (listNotifications), the others' posts they point to, and the
        # query of every listNotifications call (for the tests to read).
        self.notifications: list[dict[str, Any]] = []
        self.others: dict[str, dict[str, Any]] = {}  # at:// URI → app.bsky.feed.post record
        self.notification_queries: list[dict[str, list[str]]] = []
        self.ignore_reasons = False
        # Likes and reposts of any post: the like's or repost's URI → the subject's URI.
        self.likes: dict[str, str] = {}
        self.reposts: dict[str, str] = {}
        # Replies the AppView files under no thread (invalidReplyRoot).
        self.invalid_replies: set[str] = set()
        self.get_posts_queries: list[list[str]] = []
        # The labels a moderation service put on posts (`hide`): at:// URI → labels.
        self.labels: dict[str, list[dict[str, str]]] = {}
        self._clock_ids = itertools.count(1)
        # The AppView's clock: each new notification a second after the last.
        self.clock = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        # Public posts (searchPosts, getAuthorFeed): at:// URI → the post as the AppView holds
        # it; reposts in authors' feeds; and the query of every call of each.
        self.public: dict[str, dict[str, Any]] = {}
        self.public_reposts: list[dict[str, Any]] = []
        self.search_queries: list[dict[str, list[str]]] = []
        self.author_feed_queries: list[dict[str, list[str]]] = []

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [r["value"] for r in self.records.values()]

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.expired |= set(self.access)
            self.access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh.clear()

    def route(self, request: Request):
        nsid = request.path.removeprefix("/xrpc/")
        handlers = {
            ("POST", "com.atproto.server.createSession"): self.create_session,
            ("POST", "com.atproto.server.refreshSession"): self.refresh_session,
            ("GET", "com.atproto.server.getSession"): self.get_session,
            ("POST", "com.atproto.server.deleteSession"): self.delete_session,
            ("POST", "com.atproto.repo.uploadBlob"): self.upload_blob,
            ("POST", "com.atproto.repo.createRecord"): self.create_record,
            ("GET", "com.atproto.repo.getRecord"): self.get_record,
            ("GET", "com.atproto.identity.resolveHandle"): self.resolve_handle,
            ("GET", NOTIFICATIONS): self.list_notifications,
            ("GET", GET_POSTS): self.get_posts,
            ("GET", SEARCH_POSTS): self.search_posts,
            ("GET", AUTHOR_FEED): self.get_author_feed,
        }
        handler = handlers.get((request.method, nsid))
        if handler is None:
            return "other", lambda r: _error(501, "MethodNotImplemented", "Method Not Implemented")
        return nsid, handler

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return _error(401, "AuthenticationRequired", "Authentication Required")
        if mode == "429":
            reset = int(time.time()) + options.get("reset_in", 300)
            return _error(
                429,
                "RateLimitExceeded",
                "Rate Limit Exceeded",
                {
                    "RateLimit-Limit": "5000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                    "RateLimit-Policy": "5000;w=3600",
                },
            )
        if mode == "400":
            return _error(400, options.get("error", "InvalidRequest"), options["message"])
        if mode == "page":  # a proxy's page, not the PDS's XRPC error
            body = b"<html><body><h1>Not Found</h1></body></html>"
            return options.get("status", 404), {"Content-Type": "text/html"}, body
        if mode == "200":  # a success without the record
            return answer_json(200, {})
        if mode == "json":  # a success of any shape
            return answer_json(200, options["body"])
        return _error(int(mode), "InternalServerError", "Internal Server Error")

    # --- sessions --------------------------------------------------------------------------
    def _new_session(self) -> dict[str, Any]:
        number = next(self._numbers)
        access, refresh = f"access-{number}", f"refresh-{number}"
        self.access[access] = self.did
        self.refresh[refresh] = self.did
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.handle,
            "did": self.did,
            "active": True,
        }

    def create_session(self, request: Request) -> Answer:
        body = request.json() or {}
        with self.lock:
            self.session_calls += 1
            if body.get("identifier") not in (self.handle, self.did) or (
                body.get("password") != self.password
            ):
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            return answer_json(200, self._new_session())

    def refresh_session(self, request: Request) -> Answer:
        token = request.bearer()
        with self.lock:
            self.refresh_calls += 1
            if token not in self.refresh:
                return _error(400, "ExpiredToken", "Token has been revoked")
            del self.refresh[token]
            return answer_json(200, self._new_session())

    def get_session(self, request: Request) -> Answer:
        did, refused = self._session(request)
        if refused:
            return refused
        return answer_json(200, {"handle": self.handle, "did": did, "active": True})

    def delete_session(self, request: Request) -> Answer:
        # "Requires auth using the 'refreshJwt' (not the 'accessJwt')".
        token = request.bearer()
        with self.lock:
            if token not in self.refresh:
                return _error(401, "InvalidToken", "Token could not be verified")
            del self.refresh[token]
            self.deleted_sessions += 1
        return 200, {}, b""

    def _session(self, request: Request) -> tuple[str | None, Answer | None]:
        token = request.bearer()
        if token is None:
            return None, _error(401, "AuthenticationRequired", "Authentication Required")
        if token in self.expired:
            return None, _error(400, "ExpiredToken", "Token has expired")
        if token not in self.access:
            return None, _error(401, "InvalidToken", "Token could not be verified")
        return self.access[token], None

    # --- repo ------------------------------------------------------------------------------
    def upload_blob(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        mime = request.headers.get("Content-Type") or ""
        if not request.body:
            return _error(400, "InvalidRequest", "Request body is empty")
        try:
            image = Image.open(io.BytesIO(request.body))
            sniffed = Image.MIME.get(image.format or "", "")
        except Exception:
            sniffed = "application/octet-stream"
        if mime != sniffed:
            return _error(400, "InvalidRequest", f"Blob is {sniffed}, not {mime}")
        cid = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:52]
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}
        with self.lock:
            self.blobs[cid] = blob
        return answer_json(200, {"blob": blob})

    def _invalid(self, record: Any) -> str | None:
        """What is wrong with an app.bsky.feed.post record, as the PDS's lexicon check says."""
        if not isinstance(record, dict) or record.get("$type") != "app.bsky.feed.post":
            return "Record/$type must be app.bsky.feed.post"
        text = record.get("text")
        if not isinstance(text, str):
            return 'Record must have the property "text"'
        if len(text.encode()) > 3000:
            return "Record/text must not be longer than 3000 characters"
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        try:
            created = datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
            assert created.tzinfo is not None
        except (ValueError, AssertionError):
            return "Record/createdAt must be an valid atproto datetime"
        size = len(text.encode())
        for n, facet in enumerate(record.get("facets") or []):
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                return f"Record/facets/{n}/index is out of the text's bytes"
            features = facet.get("features") or []
            if not features:
                return f"Record/facets/{n}/features must not be empty"
            for feature in features:
                field = FEATURES.get(feature.get("$type"))
                if field is None or not isinstance(feature.get(field), str):
                    return f"Record/facets/{n}/features has an invalid feature"
        reply = record.get("reply")
        if reply is not None:
            problem = _invalid_reply(reply)
            if problem:
                return problem
        embed = record.get("embed")
        if embed is not None:
            if embed.get("$type") != "app.bsky.embed.images":
                return "Record/embed has an unexpected type"
            images = embed.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                return "Record/embed/images must have 1 to 4 items"
            for n, image in enumerate(images):
                if not isinstance(image.get("alt"), str):
                    return f'Record/embed/images/{n} must have the property "alt"'
                blob = image.get("image") or {}
                stored = self.blobs.get((blob.get("ref") or {}).get("$link"))
                if stored is None:
                    return f"Record/embed/images/{n}/image: could not find blob"
                if not stored["mimeType"].startswith("image/"):
                    return f"Record/embed/images/{n}/image has a wrong mime type"
                if stored["size"] > MAX_BLOB:
                    return f"Record/embed/images/{n}/image file too big (max {MAX_BLOB} bytes)"
        return None

    def create_record(self, request: Request) -> Answer:
        did, refused = self._session(request)
        if refused:
            return refused
        body = request.json() or {}
        if body.get("repo") not in (did, self.handle):
            return _error(401, "AuthenticationRequired", "Invalid repo")
        if body.get("collection") != "app.bsky.feed.post":
            return _error(400, "InvalidRequest", "Unexpected collection")
        rkey = body.get("rkey")
        if not isinstance(rkey, str) or not TID.match(rkey):
            return _error(400, "InvalidRequest", f"Invalid record key: {rkey!r} is not a TID")
        problem = self._invalid(body.get("record"))
        if problem:
            return _error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        with self.lock:
            if rkey in self.records:
                # As @atproto/pds answers a taken record key (a unique-constraint failure).
                return _error(500, "InternalServerError", "Internal Server Error")
            cid = "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:52]
            self.records[rkey] = {"uri": uri, "cid": cid, "value": body["record"]}
            self._index_reply(uri, body["record"])
        return answer_json(200, {"uri": uri, "cid": cid, "validationStatus": "valid"})

    def get_record(self, request: Request) -> Answer:
        repo, rkey = request.param("repo"), request.param("rkey")
        uri = f"at://{repo}/{request.param('collection')}/{rkey}"
        if repo not in (self.did, self.handle):
            # Another person's repo: the PDS asks the AppView (@atproto/pds's getRecord).
            with self.lock:
                value = self.others.get(uri)
            if value is None:
                return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
            return answer_json(200, {**self._ref(uri), "value": value})
        record = self.records.get(rkey or "")
        if record is None:
            return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return answer_json(200, record)

    def resolve_handle(self, request: Request) -> Answer:
        did = self.known_handles.get(request.param("handle") or "")
        if did is None:
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return answer_json(200, {"did": did})

    # --- what comes back -------------------------------------------------------------------
    def _tid(self, when: datetime) -> str:
        """A record key (specs/tid) for a post made at `when`."""
        value = (int(when.timestamp() * 1_000_000) << 10) | (next(self._clock_ids) & 0x3FF)
        return "".join(S32[(value >> shift) & 31] for shift in range(60, -1, -5))

    @staticmethod
    def _stamp(when: datetime) -> str:
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _post(
        self, author: str, text: str, *, at: datetime | None, langs: tuple[str, ...], **extra: Any
    ) -> tuple[str, dict[str, Any], datetime]:
        """Another person's post: its URI and record, kept for threads; `at` is its indexing
        time (by default a second after the last notification)."""
        with self.lock:
            if at is None:
                self.clock += timedelta(seconds=1)
                at = self.clock
            did = PEOPLE[author][0]
            uri = f"at://{did}/app.bsky.feed.post/{self._tid(at)}"
            record = {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": self._stamp(at - timedelta(milliseconds=400)),
                **({"langs": list(langs)} if langs else {}),
                **extra,
            }
            self.others[uri] = record
        return uri, record, at

    def _notify(
        self, uri: str, record: dict[str, Any], at: datetime, author: str, reason: str, subject: str
    ) -> dict[str, Any]:
        did, name = PEOPLE[author]
        notification = {
            "uri": uri,
            "cid": "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:52],
            "author": {
                "did": did,
                "handle": author,
                **({"displayName": name} if name else {}),
                "viewer": {"muted": False, "blockedBy": False},
                "labels": [],
            },
            "reason": reason,
            **({"reasonSubject": subject} if subject else {}),
            "record": record,
            "isRead": False,
            "indexedAt": self._stamp(at),
            "labels": [],
        }
        with self.lock:
            self.notifications.append(notification)
        return notification

    def _ref(self, uri: str) -> dict[str, str]:
        return {"uri": uri, "cid": "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:52]}

    def add_reply(
        self,
        parent: str,
        text: str,
        *,
        author: str = "friend.test",
        at: datetime | None = None,
        langs: tuple[str, ...] = ("en",),
    ) -> str:
        """`author` replies to `parent` (North's post, or a reply in North's thread): North is
        notified with reason "reply". The thread's root is the parent's root, or the parent."""
        found = self.find(parent)
        parent_record = found[0]["value"] if found else {}
        root = ((parent_record.get("reply") or {}).get("root") or {}).get("uri") or parent
        reply = {"root": self._ref(root), "parent": self._ref(parent)}
        uri, record, at = self._post(author, text, at=at, langs=langs, reply=reply)
        with self.lock:
            self._index_reply(uri, record)
        self._notify(uri, record, at, author, "reply", parent)
        return uri

    def add_mention(
        self,
        text: str = "Hello @north.test",
        *,
        author: str = "friend.test",
        at: datetime | None = None,
        langs: tuple[str, ...] = ("en",),
    ) -> str:
        """A post of `author` mentioning North (a #mention facet on North's DID)."""
        start = text.encode().find(b"@north.test")
        facets = []
        if start >= 0:
            index = {"byteStart": start, "byteEnd": start + len(b"@north.test")}
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": self.did}
            facets = [{"index": index, "features": [feature]}]
        uri, record, at = self._post(
            author, text, at=at, langs=langs, **({"facets": facets} if facets else {})
        )
        self._notify(uri, record, at, author, "mention", "")
        return uri

    def add_quote(
        self,
        quoted: str,
        text: str,
        *,
        author: str = "critic.test",
        at: datetime | None = None,
        langs: tuple[str, ...] = ("en",),
    ) -> str:
        """A post of `author` quoting North's post `quoted` (app.bsky.embed.record)."""
        embed = {"$type": "app.bsky.embed.record", "record": self._ref(quoted)}
        uri, record, at = self._post(author, text, at=at, langs=langs, embed=embed)
        self._notify(uri, record, at, author, "quote", quoted)
        return uri

    def add_like(self, subject: str, *, author: str = "fan.test") -> str:
        """`author` likes North's post `subject` (a notification cxhub does not take; counted
        in the post's likeCount)."""
        return self._react("app.bsky.feed.like", "like", self.likes, subject, author)

    def add_repost(self, subject: str, *, author: str = "fan.test") -> str:
        """`author` reposts North's post `subject` (app.bsky.feed.repost: a notification cxhub
        does not take; counted in the post's repostCount)."""
        return self._react("app.bsky.feed.repost", "repost", self.reposts, subject, author)

    def _react(
        self, collection: str, reason: str, kept: dict[str, str], subject: str, author: str
    ) -> str:
        with self.lock:
            self.clock += timedelta(seconds=1)
            at = self.clock
        did = PEOPLE[author][0]
        uri = f"at://{did}/{collection}/{self._tid(at)}"
        record = {"$type": collection, "subject": self._ref(subject), "createdAt": self._stamp(at)}
        with self.lock:
            kept[uri] = self._canonical(subject)
        self._notify(uri, record, at, author, reason, subject)
        return uri

    def delete_post(self, uri: str) -> None:
        """The author deleted the post (another person's, or one of North's): it is gone from
        the repo and the AppView, which drops its notifications."""
        canonical = self._canonical(uri)
        with self.lock:
            self.others.pop(uri, None)
            self.others.pop(canonical, None)
            for rkey, record in list(self.records.items()):
                if record["uri"] == canonical:
                    del self.records[rkey]
            self.notifications = [n for n in self.notifications if n["uri"] != uri]
            self.public.pop(canonical, None)

    def hide(self, uri: str, label: str = "!hide") -> None:
        """A moderation service hides the post from everyone (the global `!hide` label, or
        `!takedown`): its notifications and its postView carry the label."""
        with self.lock:
            given = {
                "src": "did:plc:moderation7test",
                "uri": uri,
                "val": label,
                "cts": self._stamp(self.clock),
            }
            self.labels.setdefault(self._canonical(uri), []).append(given)
            for notification in self.notifications:
                if notification["uri"] == uri:
                    notification["labels"].append(dict(given))

    def list_notifications(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        with self.lock:
            self.notification_queries.append({k: list(v) for k, v in request.query.items()})
            listed = list(self.notifications)
        try:
            limit = int(request.param("limit") or 50)
        except ValueError:
            return _error(400, "InvalidRequest", "limit must be an integer")
        if not 1 <= limit <= 100:
            return _error(400, "InvalidRequest", "limit must be between 1 and 100")
        reasons = request.query.get("reasons") or []
        if reasons and not self.ignore_reasons:
            listed = [n for n in listed if n["reason"] in reasons]
        listed.sort(key=lambda n: (n["indexedAt"], n["cid"]), reverse=True)
        cursor = request.param("cursor")
        if cursor:
            at, sep, cid = cursor.partition("::")
            if not sep or not at or not cid:
                return _error(400, "InvalidRequest", "Malformed cursor")
            listed = [n for n in listed if (n["indexedAt"], n["cid"]) < (at, cid)]
        page = listed[:limit]
        body: dict[str, Any] = {"notifications": page, "priority": False}
        if page:
            body["cursor"] = f"{page[-1]['indexedAt']}::{page[-1]['cid']}"
        return answer_json(200, body)

    # --- threads and figures (the AppView's view) ------------------------------------------------
    def _canonical(self, uri: str) -> str:
        """`uri` with North's repo named by its DID (a client may write the handle)."""
        prefix = f"at://{self.handle}/"
        return f"at://{self.did}/" + uri[len(prefix) :] if uri.startswith(prefix) else uri

    def find(self, uri: str) -> tuple[dict[str, Any], str] | None:
        """A post the AppView has, by URI: ({uri, cid, value}, author DID), or None."""
        canonical = self._canonical(uri)
        with self.lock:
            if canonical in self.others:
                did = canonical.removeprefix("at://").split("/")[0]
                entry = {"uri": canonical, **self._ref(canonical), "value": self.others[canonical]}
                return entry, did
            for record in self.records.values():
                if record["uri"] == canonical:
                    return record, self.did
        return None

    def _index_reply(self, uri: str, record: dict[str, Any]) -> None:
        """Flag a reply whose root does not match its parent's thread, as the reference AppView
        does (called with the lock held)."""
        reply = record.get("reply")
        if not reply:
            return
        root, parent = (
            self._canonical(reply["root"]["uri"]),
            self._canonical(reply["parent"]["uri"]),
        )
        found = self.find(parent)
        if found is None:
            self.invalid_replies.add(self._canonical(uri))
            return
        parent_uri = found[0]["uri"]
        parent_reply = found[0]["value"].get("reply")
        parent_root = self._canonical(parent_reply["root"]["uri"]) if parent_reply else None
        if parent_uri in self.invalid_replies:
            invalid = True
        elif parent == root:
            invalid = parent_reply is not None
        else:
            invalid = parent_root != root
        if invalid:
            self.invalid_replies.add(self._canonical(uri))

    def _posts(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            ours = [(r["uri"], r["value"]) for r in self.records.values()]
            return ours + list(self.others.items())

    def replies_to(self, uri: str) -> list[str]:
        """The direct replies to the post `uri`, flagged or not (what its replyCount counts)."""
        target = self._canonical(uri)
        return [
            reply_uri
            for reply_uri, value in self._posts()
            if value.get("reply") and self._canonical(value["reply"]["parent"]["uri"]) == target
        ]

    def thread(self, root: str) -> list[str]:
        """The unflagged replies under the thread whose top post is `root`."""
        target = self._canonical(root)
        return [
            reply_uri
            for reply_uri, value in self._posts()
            if value.get("reply")
            and self._canonical(value["reply"]["root"]["uri"]) == target
            and reply_uri not in self.invalid_replies
        ]

    def _quotes(self, uri: str) -> int:
        target = self._canonical(uri)
        count = 0
        for _, value in self._posts():
            embed = value.get("embed") or {}
            if embed.get("$type") == "app.bsky.embed.recordWithMedia":
                embed = embed.get("record") or {}
            if embed.get("$type") == "app.bsky.embed.record":
                quoted = (embed.get("record") or {}).get("uri") or ""
                count += self._canonical(quoted) == target
        return count

    def post_view(self, uri: str) -> dict[str, Any] | None:
        """app.bsky.feed.defs#postView of the post `uri`, or None when the AppView lacks it."""
        found = self.find(uri)
        if found is None:
            return None
        entry, did = found
        handle = next((h for h, (d, _) in PEOPLE.items() if d == did), self.handle)
        target = entry["uri"]
        with self.lock:
            likes = sum(subject == target for subject in self.likes.values())
            reposts = sum(subject == target for subject in self.reposts.values())
            labels = [dict(label) for label in self.labels.get(target, [])]
        return {
            "uri": target,
            "cid": entry["cid"],
            "author": {"did": did, "handle": handle, "labels": []},
            "record": entry["value"],
            "replyCount": len(self.replies_to(target)),
            "repostCount": reposts,
            "likeCount": likes,
            "quoteCount": self._quotes(target),
            "bookmarkCount": 0,
            "indexedAt": entry["value"].get("createdAt"),
            "viewer": {},
            "labels": labels,
        }

    def get_posts(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        uris = request.query.get("uris") or []
        with self.lock:
            self.get_posts_queries.append(list(uris))
        if not uris:
            return _error(400, "InvalidRequest", 'Params must have the property "uris"')
        if len(uris) > MAX_GET_POSTS:
            return _error(
                400, "InvalidRequest", f"uris must not have more than {MAX_GET_POSTS} elements"
            )
        for n, uri in enumerate(uris):
            if not uri.startswith("at://"):
                return _error(400, "InvalidRequest", f"uris/{n} must be a valid at-uri")
        views = [self.post_view(uri) for uri in dict.fromkeys(uris)]
        return answer_json(200, {"posts": [view for view in views if view is not None]})

    # --- listening: public posts, searchPosts and getAuthorFeed -------------------------------
    @staticmethod
    def did_of(handle: str) -> str:
        """The DID of `handle`: a person of PEOPLE's, else one derived from the handle."""
        if handle in PEOPLE:
            return PEOPLE[handle][0]
        digest = hashlib.sha256(handle.encode()).digest()
        return "did:plc:" + "".join(S32[b % 32] for b in digest[:24])

    def add_public(
        self,
        text: str,
        *,
        handle: str = "someone.bsky.social",
        name: str = "",
        tags: tuple[str, ...] = (),
        langs: tuple[str, ...] = ("en",),
        likes: int = 0,
        reposts: int = 0,
        replies: int = 0,
        quotes: int = 0,
        at: datetime | None = None,
        created_at: datetime | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A public post of `handle` (shown as `name`) that searches and its author's feed find,
        with the figures given; returns its postView. `at` is when the AppView indexed it (a
        second after the last thing by default), `created_at` what its record says (400 ms
        before `at` by default; earlier: a post indexed late, or backdated). Its hashtags are
        the text's (as #tag facets) and `tags` (the record's own field)."""
        with self.lock:
            if at is None:
                self.clock += timedelta(seconds=1)
                at = self.clock
            created = created_at or at - timedelta(milliseconds=400)
            did = self.did_of(handle)
            uri = f"at://{did}/app.bsky.feed.post/{self._tid(created)}"
            facets = []
            for match in HASHTAG.finditer(text):
                start = len(text[: match.start()].encode())
                index = {"byteStart": start, "byteEnd": start + len(match.group(0).encode())}
                feature = {"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)}
                facets.append({"index": index, "features": [feature]})
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": self._stamp(created),
                **({"langs": list(langs)} if langs else {}),
                **({"facets": facets} if facets else {}),
                **({"tags": list(tags)} if tags else {}),
            }
            if reply_to:
                record["reply"] = {"root": self._ref(reply_to), "parent": self._ref(reply_to)}
            self.public[uri] = {
                "uri": uri,
                "cid": self._ref(uri)["cid"],
                "did": did,
                "handle": handle,
                "name": name,
                "record": record,
                "indexed_at": at,
                # docs.bsky.app "Timestamps": the earlier of createdAt and the indexing time.
                "sort_at": min(created, at),
                "figures": {
                    "likes": likes,
                    "reposts": reposts,
                    "replies": replies,
                    "quotes": quotes,
                },
            }
            return self.public_view(uri)

    def add_public_repost(
        self, uri: str, *, by: str = "reposter.bsky.social", at: datetime | None = None
    ) -> dict[str, Any]:
        """`by` reposts the public post `uri` (counted in its repostCount): an item of `by`'s
        author feed at the repost's time. Returns that feed item."""
        with self.lock:
            if at is None:
                self.clock += timedelta(seconds=1)
                at = self.clock
            did = self.did_of(by)
            repost_uri = f"at://{did}/app.bsky.feed.repost/{self._tid(at)}"
            self.public[uri]["figures"]["reposts"] += 1
            repost = {"uri": repost_uri, "subject": uri, "did": did, "handle": by, "at": at}
            self.public_reposts.append(repost)
            return self._repost_item(repost)

    def public_view(self, uri: str) -> dict[str, Any]:
        """app.bsky.feed.defs#postView of the public post `uri`, with its figures as they are."""
        with self.lock:
            post = self.public[uri]
            figures = post["figures"]
            labels = [dict(label) for label in self.labels.get(uri, [])]
            author = {"did": post["did"], "handle": post["handle"], "labels": []}
            if post["name"]:
                author["displayName"] = post["name"]
            return {
                "uri": uri,
                "cid": post["cid"],
                "author": author,
                "record": post["record"],
                "replyCount": figures["replies"],
                "repostCount": figures["reposts"],
                "likeCount": figures["likes"],
                "quoteCount": figures["quotes"],
                "bookmarkCount": 0,
                "indexedAt": self._stamp(post["indexed_at"]),
                "viewer": {},
                "labels": labels,
            }

    def _repost_item(self, repost: dict[str, Any]) -> dict[str, Any]:
        return {
            "post": self.public_view(repost["subject"]),
            "reason": {
                "$type": "app.bsky.feed.defs#reasonRepost",
                "by": {"did": repost["did"], "handle": repost["handle"], "labels": []},
                "uri": repost["uri"],
                "cid": self._ref(repost["uri"])["cid"],
                "indexedAt": self._stamp(repost["at"]),
            },
        }

    @staticmethod
    def _hashtags(record: dict[str, Any]) -> set[str]:
        tags = {str(tag).lower() for tag in record.get("tags") or []}
        for facet in record.get("facets") or []:
            for feature in facet.get("features") or []:
                if feature.get("$type") == "app.bsky.richtext.facet#tag":
                    tags.add(str(feature["tag"]).lower())
        return tags

    @staticmethod
    def _matches(q: str, record: dict[str, Any], tags: set[str]) -> bool:
        words = set(WORD.findall(str(record.get("text") or "").lower()))
        for term in q.lower().split():
            if term.startswith("#"):
                if term[1:] not in tags:
                    return False
            elif not set(WORD.findall(term)) <= words:
                return False
        return True

    @staticmethod
    def _time_param(value: str) -> datetime:
        """An atproto datetime, or an ISO date (midnight UTC); ValueError for anything else."""
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    @staticmethod
    def _limit(request: Request, default: int) -> tuple[int, Answer | None]:
        try:
            limit = int(request.param("limit") or default)
        except ValueError:
            return 0, _error(400, "InvalidRequest", "limit must be an integer")
        if not 1 <= limit <= 100:
            return 0, _error(400, "InvalidRequest", "limit must be between 1 and 100")
        return limit, None

    @staticmethod
    def _page(
        request: Request, keyed: list[tuple[tuple[str, str], Any]], limit: int
    ) -> tuple[list[Any], str, Answer | None]:
        """The items older than the request's cursor, newest first: a page of `limit`, the
        opaque cursor to the rest ("" at the end), and the refusal of a cursor not ours."""
        keyed = sorted(keyed, key=lambda pair: pair[0], reverse=True)
        cursor = request.param("cursor")
        if cursor:
            try:
                at, sep, cid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("::")
            except ValueError:
                at, sep, cid = "", "", ""
            if not sep or not at or not cid:
                return [], "", _error(400, "InvalidRequest", "Malformed cursor")
            keyed = [pair for pair in keyed if pair[0] < (at, cid)]
        page = keyed[:limit]
        following = ""
        if len(keyed) > limit:
            at, cid = page[-1][0]
            following = base64.urlsafe_b64encode(f"{at}::{cid}".encode()).decode()
        return [item for _, item in page], following, None

    def search_posts(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        with self.lock:
            self.search_queries.append({k: list(v) for k, v in request.query.items()})
        q = request.param("q")
        if not q:
            return _error(400, "InvalidRequest", 'Params must have the property "q"')
        limit, refused = self._limit(request, 25)
        if refused:
            return refused
        if (request.param("sort") or "latest") not in ("latest", "top"):
            return _error(400, "InvalidRequest", "sort must be latest or top")
        try:
            since = self._time_param(request.param("since") or "0001-01-01")
            until = self._time_param(request.param("until") or "9999-12-31")
        except ValueError:
            return _error(400, "InvalidRequest", "since and until must be datetimes or dates")
        lang = request.param("lang")
        wanted_tags = {tag.lower() for tag in request.query.get("tag") or []}
        with self.lock:
            posts = list(self.public.values())
        keyed = []
        for post in posts:
            record, tags = post["record"], self._hashtags(post["record"])
            if not since <= post["sort_at"] < until or not wanted_tags <= tags:
                continue
            if lang and lang not in (record.get("langs") or []):
                continue
            if self._matches(q, record, tags):
                keyed.append(((self._stamp(post["sort_at"]), post["cid"]), post["uri"]))
        uris, following, refused = self._page(request, keyed, limit)
        if refused:
            return refused
        body: dict[str, Any] = {
            "posts": [self.public_view(uri) for uri in uris],
            "hitsTotal": len(keyed),
        }
        if following:
            body["cursor"] = following
        return answer_json(200, body)

    def get_author_feed(self, request: Request) -> Answer:
        _, refused = self._session(request)
        if refused:
            return refused
        with self.lock:
            self.author_feed_queries.append({k: list(v) for k, v in request.query.items()})
        actor = request.param("actor")
        if not actor:
            return _error(400, "InvalidRequest", 'Params must have the property "actor"')
        limit, refused = self._limit(request, 50)
        if refused:
            return refused
        feed_filter = request.param("filter") or "posts_with_replies"
        if feed_filter not in AUTHOR_FEED_FILTERS:
            return _error(400, "InvalidRequest", f"Invalid filter: {feed_filter}")
        with self.lock:
            posts = list(self.public.values())
            reposts = list(self.public_reposts)
        known = {post["handle"]: post["did"] for post in posts}
        known |= {repost["handle"]: repost["did"] for repost in reposts}
        did = actor if actor in known.values() else known.get(actor)
        if did is None:
            return _error(400, "InvalidRequest", "Profile not found")
        keyed: list[tuple[tuple[str, str], Any]] = [
            ((self._stamp(post["sort_at"]), post["cid"]), ("post", post["uri"]))
            for post in posts
            if post["did"] == did
            and not (feed_filter == "posts_no_replies" and post["record"].get("reply"))
        ]
        keyed += [
            ((self._stamp(repost["at"]), self._ref(repost["uri"])["cid"]), ("repost", repost))
            for repost in reposts
            if repost["did"] == did
        ]
        items, following, refused = self._page(request, keyed, limit)
        if refused:
            return refused
        feed = [
            {"post": self.public_view(item)} if kind == "post" else self._repost_item(item)
            for kind, item in items
        ]
        body: dict[str, Any] = {"feed": feed}
        if following:
            body["cursor"] = following
        return answer_json(200, body)


def _invalid_reply(reply: Any) -> str | None:
    """What is wrong with a post's `reply` (app.bsky.feed.post#replyRef), as the PDS says."""
    if not isinstance(reply, dict):
        return "Record/reply must be an object"
    for name in ("root", "parent"):
        ref = reply.get(name)
        if not isinstance(ref, dict):
            return f'Record/reply must have the property "{name}"'
        if not isinstance(ref.get("uri"), str) or not ref["uri"].startswith("at://"):
            return f"Record/reply/{name}/uri must be a valid at-uri"
        if not isinstance(ref.get("cid"), str) or not ref["cid"]:
            return f'Record/reply/{name} must have the property "cid"'
    return None
