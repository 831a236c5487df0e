"""Bluesky: a post's text may have at most 300 grapheme clusters AND 3,000 UTF-8 bytes; links
count as written (facets point into the text, they do not shorten it).

Sources (checked 2025/2026):
- bluesky-social/atproto lexicons/app/bsky/feed/post.json: "text": {"type": "string",
  "maxLength": 3000, "maxGraphemes": 300} (lexicon string maxLength is in UTF-8 bytes).
- lexicons/app/bsky/embed/images.json: "images" maxLength 4; each image blob accept "image/*",
  "maxSize": 1000000 (bytes); "alt" is required (may be empty, but cxhub asks for a description).
  The lexicon sets no length for "alt".
- Alt-text length: the official app's limit, bluesky-social/social-app src/lib/constants.ts
  MAX_ALT_TEXT = 2000 (graphemes; it was 1000 before), since the lexicon has none.
- Formats: the app uploads JPEG, PNG and WEBP as images; an animated GIF goes as a video, which
  cxhub does not send yet, so GIF is left out.

Publishing, spoken as XRPC over requests (atproto.com, checked 2026):
- specs/xrpc: `POST /xrpc/<nsid>` with JSON, `GET` with query parameters; errors are
  `{"error": "<Name>", "message": "…"}`; 429 with `RateLimit-Limit`, `RateLimit-Remaining`,
  `RateLimit-Reset` (a Unix time in seconds) and `RateLimit-Policy` (docs.bsky.app
  "Rate Limits": 5,000 points an hour, a create costs 3; createSession 30 per 5 minutes).
- lexicons com.atproto.server.createSession (identifier + app password → accessJwt, refreshJwt,
  did, handle) and refreshSession (called with the refreshJwt as the bearer token; answers a new
  pair and retires the old refresh token). An expired access token is the error `ExpiredToken`.
  Design: the app password is used once, at connect (`sign_in`, kept by
  networks.services.social_account_connect), and never stored; the account keeps
  accessJwt/refreshJwt as its access/refresh tokens and its DID as external_id. ExpiredToken →
  refreshSession once → the call again; a refused refresh is AuthExpired (the account needs its
  app password typed again).
- com.atproto.repo.uploadBlob: the raw bytes with their Content-Type → `{"blob": …}`. A blob
  no record points to is removed by the server, so an upload is retried freely.
- com.atproto.repo.createRecord: `repo`, `collection` app.bsky.feed.post, `rkey`, `record`.
  app.bsky.feed.post's key is `tid` (specs/record-key, specs/tid: 13 characters of base32
  "sortable" encoding a 53-bit microsecond time and a 10-bit clock id). We derive the TID from
  the target's idempotency key (a hash mapped into 2023–2024, a time in the past), so every
  try of one target writes the same record key and a second create cannot make a second post.
- app.bsky.feed.post: `text`, `createdAt`, `facets` (app.bsky.richtext.facet: byte offsets
  into the UTF-8 text; #link, #mention with a DID from com.atproto.identity.resolveHandle, and
  #tag), `embed` app.bsky.embed.images with `image`, `alt` (required) and `aspectRatio`.
- Reconcile: com.atproto.repo.getRecord with the same rkey (public, no token): the record, or
  the error `RecordNotFound`. A create refused because the key is taken (the reference PDS,
  @atproto/pds 0.5, answers 500 InternalServerError for it; other servers 400) is checked the
  same way: if the record is there, the post already landed and its URI is returned. The text
  is not compared (no matcher is needed): no other post can hold the key, which is derived from
  the target's idempotency key alone. Only two answers are taken as an answer: the record (200
  with our at:// URI and a `value`), or RecordNotFound (400, or 404, with that XRPC error);
  anything else (a 5xx, a 4xx without that error, a proxy's page, a 200 without the record)
  says nothing either way and is RetryableError: asked again later, never sent blind. A create
  answered 5xx, or 400, whose record cannot be checked at once, is UnknownOutcome (issue 11).
- Links for people: https://bsky.app/profile/<handle>/post/<rkey>.

Connecting (atproto.com lexicons, docs.bsky.app "App passwords", checked 2026): Bluesky has no
OAuth client registration for cxhub to use here; a person creates an app password in the app
(Settings → Privacy and security → App passwords) and types it once.
- com.atproto.server.createSession: `identifier` (a handle or DID) + `password` → accessJwt,
  refreshJwt, `handle`, `did` (the account's permanent id: our external_id); errors
  AuthenticationRequired (wrong identifier or password), AuthFactorTokenRequired (a main
  password with two-factor sign-in: an app password avoids it), AccountTakedown.
- com.atproto.server.getSession: the session's `handle` and `did`, from the access token.
- com.atproto.server.deleteSession: "Delete the current session. Requires auth using the
  'refreshJwt' (not the 'accessJwt')": what disconnect calls.
- The PDS is the account's server: https://bsky.social for accounts hosted by Bluesky, or the
  address of a self-hosted PDS.

What comes back (issue 17; docs.bsky.app API reference and the atproto lexicons, checked 2026):
- app.bsky.notification.listNotifications (a query the PDS proxies to the AppView; "Requires
  auth"): parameters `limit` (1–100, default 50), `cursor`, `reasons[]` ("Notification reasons
  to include in response"; an array parameter is the name repeated in the query string),
  `priority`, `seenAt`; answer `{notifications: [{uri, cid, author (profileView: did, handle,
  displayName), reason, reasonSubject, record, isRead, indexedAt, labels}], cursor, seenAt}`.
  Reasons: like, repost, follow, mention, reply, quote, starterpack-joined, verified, … ; cxhub
  takes mention, reply and quote (asked for with reasons[], and filtered again here, since a
  server may ignore the filter). Notifications come newest first; the cursor pages to OLDER ones
  (the AppView's keyset of sort time and CID), and there is no "since" parameter.
- The items: `uri` is the post's at:// URI (our network_id; the same form createRecord answers
  and publish() keeps as external_id); `record` is the app.bsky.feed.post with `text`, `langs`,
  `createdAt` and `reply: {root, parent}` (com.atproto.repo.strongRef: uri + cid).
- Deleted and hidden: the AppView drops the notification of a post that was deleted, so a
  deleted item is simply no longer listed (and one already taken is not told again: the inbox
  keeps it, and items_gone, below, asks later). A notification carrying a global `!hide` or
  `!takedown` label (com.atproto.label.defs) is marked deleted. app.bsky.feed.getPostThread
  (notFoundPost for a deleted parent) is not called here.
- Reading incrementally: our cursor (JSON, ours alone) keeps the newest `indexedAt` taken and
  the URIs taken near it; each call reads from the newest down to that point, less LATE_MARGIN
  (docs.bsky.app "Timestamps": the AppView sorts by the earlier of a record's createdAt and its
  indexing time, so a post indexed late lands below newer ones; up to LATE_MARGIN late, it is
  still found) and returns what it had not taken. A gap longer than `limit` is walked across
  calls (`more`) with the network's cursor kept in ours; the top of the gap becomes the new mark
  only once its bottom is reached, so what arrives meanwhile is read by the call after the walk.
  The cursor stays small: a few hundred bytes usually, at most MAX_SEEN URIs (about 12 KB),
  twice that during a walk.

Answering an item (issue 17; lexicon app.bsky.feed.post #replyRef, com.atproto.repo.strongRef,
docs.bsky.app "Posts" guide, section "Replies, quote posts & embeds", checked 2026):
- A reply is an app.bsky.feed.post whose `reply` is {root, parent}, each a strongRef (`uri` and
  `cid`, both required). `parent` is the post answered; `root` is the top of its thread: the
  parent's own `reply.root` when the parent is itself a reply, else the parent. Both come from
  the item as listNotifications gave it (ReplyTo.raw: the notification's `uri` and `cid`, and
  its `record.reply.root`), so no call is made to look them up. The reference AppView
  (@atproto/bsky's post indexer) flags a reply whose root does not match its parent's thread
  (invalidReplyRoot), which is why root is taken from the parent and never guessed.
- It is created as any post is: com.atproto.repo.createRecord with the record key derived from
  the target's idempotency key (above), so a retry cannot make a second reply.
- Reconcile of a reply reads the same record key (getRecord, above); the record counts as our
  reply only when its `reply.parent.uri` is the item's URI. A record under our key that is not
  a reply to that item (a top-level post, or a reply to another item) is AmbiguousMatch: only a
  reused idempotency key could put it there, and a person decides.

Engagement of our posts (issue 17; lexicons app.bsky.feed.getPosts and app.bsky.feed.defs
#postView, checked 2026):
- app.bsky.feed.getPosts (a query the PDS proxies to the AppView, as listNotifications): `uris`
  (at-uri, at most 25 a call: the lexicon's maxLength; repeated in the query string) → `{posts:
  [postView]}`, each with `uri`, `likeCount`, `repostCount`, `replyCount`, `quoteCount`
  (integers, each optional in the lexicon: an absent one is None here). Bluesky gives no
  impressions or clicks to an API client: both are None.
- "Gets post views for a specified list of posts": a post it does not have is left out of the
  answer. One left out is checked once against our own repo with com.atproto.repo.getRecord (as
  reconcile does): RecordNotFound → deleted; the record still there → no figures this time (an
  AppView that has not indexed it yet, or hides it) and no entry, so a passing gap in the
  AppView never marks a post deleted for good.

Items gone (issue 17; the same lexicons, com.atproto.repo.getRecord, and @atproto/pds's
getRecord, which serves a repo it hosts and asks the AppView for any other): items are others'
posts, by their at:// URI. getPosts, 25 a call as above; a postView carrying a global `!hide`
or `!takedown` label (#postView `labels`, com.atproto.label.defs) is gone; a URI left out is
checked once with getRecord on the repo the URI names (its author's DID), through the account's
PDS, no token needed: RecordNotFound → gone, the record there → not gone, any other answer
RetryableError (nothing named gone). A call answered otherwise raises as fetch_engagement does.

Listening (issue 18; docs.bsky.app API reference for app.bsky.feed.searchPosts and
app.bsky.feed.getAuthorFeed, their lexicons, app.bsky.feed.defs #postView, #feedViewPost and
#reasonRepost, and docs.bsky.app "Timestamps", checked 2026):
- app.bsky.feed.searchPosts, "Find posts matching search criteria, returning views of those
  posts. Note that this API endpoint may require authentication": a query the PDS proxies to the
  AppView, called with the account's session as every read here. Parameters: `q` (required;
  "syntax, phrase, boolean, and faceting is unspecified, but Lucene query syntax is
  recommended"), `sort` ("top" or "latest", newest first), `since` ("Filter results for posts
  after the indicated datetime (inclusive). Expected to use 'sortAt' timestamp, which may not
  match 'createdAt'"), `until`, `lang` ("Expected to be based on post language field, though
  server may override language detection"), `tag` (a hashtag without its #, "based on rich-text
  facet or tag field"; several must all match), `limit` (1–100, default 25) and `cursor`
  ("may not necessarily allow scrolling through entire result set") → `{posts: [postView],
  cursor, hitsTotal}`. A "search" sends its words as typed; a "hashtag" sends `tag` and, since
  `q` is required, `q` "#<tag>". `lang` goes with a query of exactly one language; with more,
  every language is read and listening sieves the posts itself.
- app.bsky.feed.getAuthorFeed, "Get a view of an actor's 'author feed' (post and reposts by the
  author)": `actor` (a handle or DID), `limit` (1–100, default 50), `cursor`, `filter`
  posts_no_replies (posts and reposts, no replies) → `{feed: [feedViewPost: {post, reply,
  reason}], cursor}`; errors BlockedActor and BlockedByActor. An item with a `reason` is not the
  author's post: #reasonRepost (another's post, placed in the feed at the repost's `indexedAt`)
  is read past and not taken; #reasonPin comes only with `includePins`, which is not sent.
- Both lists place a post by its sortAt, the earlier of its createdAt and the time the AppView
  indexed it (docs.bsky.app "Timestamps"; a postView's `indexedAt` is the latter). A post the
  AppView shows with a global !hide or !takedown label is not taken.
- A PublicPost: network_id the postView's at:// `uri`; text, language (the first of `langs`)
  and created_at from its `record`; the author's `handle`, `displayName` and `did`; url the
  post's page in the app; figures likeCount, repostCount, replyCount and quoteCount (None when
  absent); raw the postView.
- Reading incrementally is fetch_inbound's, above: the cursor keeps the newest sortAt taken and
  the URIs given near it; each call reads from the newest post down to it less LATE_MARGIN (a
  search also sends that floor as `since`, so the AppView stops there too) and gives what it
  had not given; a gap longer than `limit` is walked across calls (`more`) with the network's
  cursor kept in ours. Up to MAX_SEEN_PUBLIC URIs are kept (about 35 KB of cursor, twice that
  during a walk): past that many posts within the margin, the oldest may be given again (the
  listening app keeps a post once per network), never skipped.
"""

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from ..tokens import social_account_tokens_refresh
from . import text as textutil
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundKind,
    InboundPage,
    Limits,
    PublicPage,
    PublicPost,
    PublicQuery,
    ReconcileHints,
    ReplyTo,
    TokenSet,
)
from .errors import (
    AmbiguousMatch,
    AuthExpired,
    Candidate,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from .http import (
    Published,
    check_server,
    error_for_status,
    json_or_empty,
    rate_limit_wait,
    request,
    with_status,
)
from .media_files import MediaFile, load_media

POST_COLLECTION = "app.bsky.feed.post"
MAX_BLOB_BYTES = 1_000_000
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired"})
S32 = "234567abcdefghijklmnopqrstuvwxyz"
# Derived record keys fall in [2023-01-01, 2025-01-01): a time in the past, as for a backdated
# import, never one in the future.
_TID_START_US = 1_672_531_200_000_000
_TID_SPAN_US = 2 * 365 * 24 * 3600 * 1_000_000
# social-app's mention rule: "@" after a start, space or "(", a handle with at least one dot.
_MENTION = re.compile(
    r"(?:^|(?<=[\s(]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_TAG = re.compile(r"(?:^|(?<=\s))#([^\s#\d.,;:!?'\"()][^\s#.,;:!?'\"()]{0,63})")

NOTIFICATIONS = "app.bsky.notification.listNotifications"
# The notification reasons the inbox takes, and the kind each becomes (a quote is a mention).
INBOUND_REASONS: dict[str, InboundKind] = {
    "reply": "reply",
    "mention": "mention",
    "quote": "mention",
}
# listNotifications' `limit` maximum (lexicon).
MAX_NOTIFICATIONS_PAGE = 100
# The AppView sorts a notification by the post's creation time (no later than its indexing
# time), so a post indexed late lands below newer ones already read: each call reads this far
# below the newest one taken, so one up to this late is still found.
LATE_MARGIN = timedelta(minutes=5)
# Pages one call may read when they hold nothing to take (a server that ignores reasons[]).
MAX_PAGES_PER_CALL = 10
# URIs kept in our cursor to recognise what was taken within LATE_MARGIN; beyond this many, the
# oldest may be returned again (the inbox deduplicates: a repeat is harmless, a skip is not).
MAX_SEEN = 100
# Global labels (com.atproto.label.defs) that hide a post from everyone.
HIDING_LABELS = frozenset({"!hide", "!takedown"})

GET_POSTS = "app.bsky.feed.getPosts"
# getPosts' `uris` maximum (lexicon).
MAX_GET_POSTS = 25

SEARCH_POSTS = "app.bsky.feed.searchPosts"
AUTHOR_FEED = "app.bsky.feed.getAuthorFeed"
# searchPosts' and getAuthorFeed's `limit` maximum (lexicons).
MAX_PUBLIC_PAGE = 100
# URIs a listening cursor keeps to recognise what it gave within LATE_MARGIN (about 110 bytes
# each): a busy search finds far more in five minutes than an account's inbox receives.
MAX_SEEN_PUBLIC = 300


def record_key(idempotency_key: str) -> str:
    """The TID every try of one target writes: derived from its idempotency key alone."""
    digest = int.from_bytes(hashlib.sha256(str(idempotency_key).encode()).digest()[:8], "big")
    micros = _TID_START_US + (digest >> 10) % _TID_SPAN_US
    value = (micros << 10) | (digest & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(S32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class BlueskyChannel(Channel):
    name = "bluesky"
    label = "Bluesky"
    limits = Limits(
        max_text=300,
        text_unit="graphemes",
        max_text_bytes=3_000,
        max_media=4,
        media_formats=frozenset({"JPEG", "PNG", "WEBP"}),
        max_image_bytes=1_000_000,
        max_alt_text=2_000,
    )
    counting = "graphemes"
    alt_text_unit = "graphemes"
    # Connected with an app password on the account's PDS, not by OAuth.
    connect_method = "app_password"
    needs_server = True
    default_base_url = "https://bsky.social"

    def count(self, text: str) -> int:
        return textutil.grapheme_count(text)

    def alt_text_length(self, alt_text: str) -> int:
        return textutil.grapheme_count(alt_text)

    # --- publishing ---------------------------------------------------------------------------

    def create_session(self, account: Any, *, password: str) -> None:
        """Sign an existing account in again with an app password and keep the session's tokens,
        never the password (the tests' and operators' shortcut; people connect through the
        connect pages: `sign_in` and the audited service)."""
        base = _base(account)
        response = request(
            "POST",
            f"{base}/xrpc/com.atproto.server.createSession",
            changes=False,
            what="Signing in to Bluesky",
            json={"identifier": account.handle.lstrip("@"), "password": password},
        )
        data = json_or_empty(response)
        if response.status_code != 200:
            if response.status_code in (400, 401):
                raise with_status(
                    AuthExpired(f"Bluesky refused the sign-in: {_message(response)}"),
                    response.status_code,
                )
            raise _refusal(response, "Bluesky did not sign in")
        self._keep_session(account, data)

    def refresh_token(self, account: Any) -> None:
        """A new session from the refresh token (com.atproto.server.refreshSession, which
        retires the old one), stored under the account's row lock through the audited service,
        so two workers never spend the same refresh token; AuthExpired when Bluesky refuses."""
        base = _base(account)

        def renew(refresh: str) -> TokenSet:
            if not refresh:
                raise AuthExpired("The Bluesky session cannot be renewed; sign in again.")
            response = request(
                "POST",
                f"{base}/xrpc/com.atproto.server.refreshSession",
                changes=False,
                what="Renewing the Bluesky session",
                headers={"Authorization": f"Bearer {refresh}"},
            )
            if response.status_code != 200:
                if response.status_code in (400, 401):
                    raise with_status(
                        AuthExpired(
                            f"Bluesky refused to renew the session ({_message(response)}); "
                            "sign in again with an app password."
                        ),
                        response.status_code,
                    )
                raise _refusal(response, "Bluesky did not renew the session")
            data = json_or_empty(response)
            access, new_refresh = data.get("accessJwt"), data.get("refreshJwt")
            if not access or not new_refresh:
                raise RetryableError("Bluesky answered a session without its tokens")
            return TokenSet(
                access_token=str(access),
                refresh_token=str(new_refresh),
                expires_at=access_token_expiry(str(access)),
            )

        social_account_tokens_refresh(account=account, renew=renew)

    # --- connecting ---------------------------------------------------------------------------

    def sign_in(
        self, base_url: str, *, identifier: str, password: str
    ) -> tuple[TokenSet, list[Identity]]:
        """At connect: a session from an app password (used once, never stored), and the
        account it belongs to, as createSession names it."""
        base = base_url.rstrip("/")
        check_server(base, what="Bluesky server")
        response = request(
            "POST",
            f"{base}/xrpc/com.atproto.server.createSession",
            changes=False,
            what="Signing in to Bluesky",
            json={"identifier": identifier.strip().lstrip("@"), "password": password},
        )
        data = json_or_empty(response)
        if response.status_code != 200:
            if _error(response) == "AuthFactorTokenRequired":
                raise PermanentError(
                    "Bluesky asks for a sign-in code: that is the account's main password. Use "
                    "an app password (Settings → Privacy and security → App passwords)."
                )
            if response.status_code in (400, 401):
                raise with_status(
                    PermanentError(
                        f"Bluesky refused the sign-in ({_message(response)}). Check the handle "
                        "and the app password."
                    ),
                    response.status_code,
                )
            raise _refusal(response, "Bluesky did not sign in")
        access, refresh = data.get("accessJwt"), data.get("refreshJwt")
        if not access or not refresh or not data.get("did"):
            raise RetryableError("Bluesky answered a session without its tokens")
        tokens = TokenSet(
            access_token=str(access),
            refresh_token=str(refresh),
            expires_at=access_token_expiry(str(access)),
        )
        return tokens, [_identity(data)]

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        base = base_url.rstrip("/")
        check_server(base, what="Bluesky server")
        response = request(
            "GET",
            f"{base}/xrpc/com.atproto.server.getSession",
            changes=False,
            what="Reading the Bluesky session",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        if response.status_code != 200:
            raise _refusal(response, "Bluesky did not say which account this is")
        data = json_or_empty(response)
        if not data.get("did"):
            raise PermanentError("Bluesky answered getSession without a DID")
        return [_identity(data)]

    def revoke(self, account: Any) -> bool:
        """End the session at the PDS (deleteSession, with the refresh token)."""
        refresh = account.refresh_token
        if not refresh:
            return False
        response = request(
            "POST",
            f"{_base(account)}/xrpc/com.atproto.server.deleteSession",
            changes=False,
            what="Ending the Bluesky session",
            headers={"Authorization": f"Bearer {refresh}"},
        )
        return response.status_code == 200

    def _keep_session(self, account: Any, data: dict[str, Any]) -> None:
        """Store a new session through the audited, row-locked token service; a session of
        another account (another DID) than the one connected is refused, never kept."""
        access, refresh = data.get("accessJwt"), data.get("refreshJwt")
        if not access or not refresh:
            raise RetryableError("Bluesky answered a session without its tokens")
        did = str(data.get("did") or "")
        if account.external_id and did and did != account.external_id:
            raise PermanentError(
                f"This app password signs in {did}, not the connected account "
                f"{account.external_id}; nothing was changed."
            )
        tokens = TokenSet(
            access_token=str(access),
            refresh_token=str(refresh),
            expires_at=access_token_expiry(str(access)),
        )
        social_account_tokens_refresh(account=account, renew=lambda _old: tokens)

    def _call(self, account: Any, method: str, nsid: str, *, changes: bool, **kwargs: Any):
        """One authenticated XRPC call; an expired session is renewed once and the call made
        again."""
        base = _base(account)
        headers = kwargs.pop("headers", {})
        for renewed in (False, True):
            token = account.access_token
            if not token:
                raise AuthExpired("The Bluesky account has no session; sign in again.")
            response = request(
                method,
                f"{base}/xrpc/{nsid}",
                changes=changes,
                what=nsid,
                headers={**headers, "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code in (400, 401) and _error(response) in AUTH_ERRORS:
                if renewed:
                    raise with_status(
                        AuthExpired(f"Bluesky refused the new session: {_message(response)}"),
                        response.status_code,
                    )
                self.refresh_token(account)
                continue
            return response
        raise AssertionError("unreachable")

    replies = True

    def publish(
        self,
        account: Any,
        text: str,
        media: Sequence[Any],
        *,
        idempotency_key: str,
        reply_to: ReplyTo | None = None,
    ) -> Published:
        rkey = record_key(idempotency_key)
        repo = account.external_id or account.handle.lstrip("@")
        # Read before anything is sent: an item without its references cannot be answered.
        reply = reply_refs(reply_to) if reply_to is not None else None
        images = [self._upload(account, item) for item in load_media(media, channel=self.name)]
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        if reply is not None:
            record["reply"] = reply
        facets = self._facets(account, text)
        if facets:
            record["facets"] = facets
        if images:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        response = self._call(
            account,
            "POST",
            "com.atproto.repo.createRecord",
            changes=True,
            json={"repo": repo, "collection": POST_COLLECTION, "rkey": rkey, "record": record},
        )
        uri = str(json_or_empty(response).get("uri") or "")
        if response.status_code == 200 and uri:
            return self._published(account, uri, rkey, 200)
        if response.status_code == 400 or response.status_code >= 500:
            # The key may be taken because an earlier try landed (a real PDS answers a taken
            # record key with 500 InternalServerError): then that is our post.
            try:
                found = self.reconcile(
                    account, text, idempotency_key=idempotency_key, reply_to=reply_to
                )
            except (RetryableError, PermanentError) as exc:
                raise with_status(
                    UnknownOutcome(
                        f"Bluesky answered the post with HTTP {response.status_code} "
                        f"({_message(response)}), and whether it exists could not be checked: "
                        f"{exc}"
                    ),
                    response.status_code,
                ) from exc
            if found is not None:
                return found
        raise _refusal(response, "Bluesky refused the post", changes=True)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
        reply_to: ReplyTo | None = None,
    ) -> Published | None:
        """The post (or the reply to `reply_to`) under the record key every try of this target
        writes; None when that key holds nothing."""
        base = _base(account)
        rkey = record_key(idempotency_key)
        repo = account.external_id or account.handle.lstrip("@")
        response = request(
            "GET",
            f"{base}/xrpc/com.atproto.repo.getRecord",
            changes=False,
            what="Looking for the post",
            params={"repo": repo, "collection": POST_COLLECTION, "rkey": rkey},
        )
        data = json_or_empty(response)
        uri = str(data.get("uri") or "")
        if (
            response.status_code == 200
            and uri.endswith(f"/{POST_COLLECTION}/{rkey}")
            and isinstance(data.get("value"), dict)
        ):
            found = self._published(account, uri, rkey, 200)
            if reply_to is not None:
                self._check_answers(found, data["value"], reply_to)
            if hints is not None and found.external_id in hints.known_ids:
                # Another target of the account holds this record: two keys met (it cannot
                # happen short of a hash collision); a person decides.
                raise AmbiguousMatch(
                    "Bluesky: the post's record is already another target's.",
                    candidates=[
                        Candidate(
                            found.external_id,
                            external_url=found.external_url,
                            text=str(data["value"].get("text") or ""),
                            created_at=str(data["value"].get("createdAt") or ""),
                            why="held by another target",
                        )
                    ],
                )
            return found
        if response.status_code in (400, 404) and _error(response) == "RecordNotFound":
            return None
        refusal = _refusal(response, "Bluesky did not say whether the post exists")
        if isinstance(refusal, RetryableError):
            raise refusal
        # Neither the record nor RecordNotFound: nothing can be concluded; ask again later.
        raise with_status(
            RetryableError(str(refusal) or "Bluesky answered getRecord without the record"),
            response.status_code,
        )

    @staticmethod
    def _check_answers(found: Published, value: dict[str, Any], reply_to: ReplyTo) -> None:
        """AmbiguousMatch unless the record under our key answers `reply_to` (its
        reply.parent.uri is the item's URI)."""
        parent = _mapping(_mapping(value.get("reply")).get("parent")).get("uri")
        item = _text(reply_to.raw.get("uri")) or reply_to.network_id
        if parent == item:
            return
        why = f"a reply to {parent}" if isinstance(parent, str) and parent else "not a reply"
        raise AmbiguousMatch(
            f"Bluesky: the record under this reply's key does not answer {item} ({why}).",
            candidates=[
                Candidate(
                    found.external_id,
                    external_url=found.external_url,
                    text=_text(value.get("text")),
                    created_at=_text(value.get("createdAt")),
                    why=why,
                )
            ],
        )

    def _published(self, account: Any, uri: str, rkey: str, status: int) -> Published:
        handle = account.handle.lstrip("@")
        return Published(
            external_id=(uri or f"at://{account.external_id or handle}/{POST_COLLECTION}/{rkey}")[
                :255
            ],
            external_url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            http_status=status,
        )

    def _upload(self, account: Any, item: MediaFile) -> dict[str, Any]:
        if len(item.data) > MAX_BLOB_BYTES:
            raise PermanentError(
                f"Image {item.position + 1} is {len(item.data):,} bytes; Bluesky takes "
                f"{MAX_BLOB_BYTES:,} at most and no smaller rendition is stored."
            )
        # An unused blob is removed by the server: an upload that timed out posted nothing.
        response = self._call(
            account,
            "POST",
            "com.atproto.repo.uploadBlob",
            changes=False,
            data=item.data,
            headers={"Content-Type": item.mime},
        )
        if response.status_code != 200:
            raise _refusal(response, "Bluesky refused an image")
        blob = json_or_empty(response).get("blob")
        if not isinstance(blob, dict):
            raise RetryableError("Bluesky answered the upload without a blob")
        image: dict[str, Any] = {"image": blob, "alt": item.alt_text}
        if item.width and item.height:
            image["aspectRatio"] = {"width": item.width, "height": item.height}
        return image

    def _facets(self, account: Any, text: str) -> list[dict[str, Any]]:
        """Links, mentions and hashtags as facets, with UTF-8 byte offsets."""
        facets: list[dict[str, Any]] = []
        taken: list[tuple[int, int]] = []

        def add(start: int, end: int, feature: dict[str, Any]) -> None:
            if any(s < end and start < e for s, e in taken):
                return
            taken.append((start, end))
            facets.append(
                {
                    "index": {
                        "byteStart": _utf8_offset(text, start),
                        "byteEnd": _utf8_offset(text, end),
                    },
                    "features": [feature],
                }
            )

        for span in textutil.find_urls(text, bare_domains=True):
            uri = span.text if "://" in span.text else f"https://{span.text}"
            add(span.start, span.end, {"$type": "app.bsky.richtext.facet#link", "uri": uri})
        for match in _MENTION.finditer(text):
            did = self._resolve_handle(account, match.group(1))
            if did:
                add(
                    match.start(),
                    match.end(),
                    {"$type": "app.bsky.richtext.facet#mention", "did": did},
                )
        for match in _TAG.finditer(text):
            add(
                match.start(),
                match.end(),
                {"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)},
            )
        facets.sort(key=lambda f: f["index"]["byteStart"])
        return facets

    def _resolve_handle(self, account: Any, handle: str) -> str | None:
        """A mention's DID, or None (the text stays, without a link) when it cannot be found."""
        try:
            response = request(
                "GET",
                f"{_base(account)}/xrpc/com.atproto.identity.resolveHandle",
                changes=False,
                what="Resolving a mention",
                params={"handle": handle.lower()},
            )
        except RetryableError:
            return None
        did = json_or_empty(response).get("did") if response.status_code == 200 else None
        return str(did) if did else None

    # --- what comes back ----------------------------------------------------------------------

    hears_back = True

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """The mentions, replies and quotes listNotifications holds for the account since
        `cursor`, at most `limit` a call (the module's docstring says how the cursor keeps its
        place). Nothing here changes anything at the network: notifications are not marked
        seen (updateSeen), so the people's own app still shows them as new."""
        budget = max(1, int(limit))
        place = _Place.decode(cursor, what="inbound")

        def read(network_cursor: str, count: int, floor: datetime | None):
            # listNotifications has no "since": the floor is applied here only.
            return self._notifications(account, limit=count, cursor=network_cursor)

        if place is None:
            notes, after = _read_first(read, budget, page_max=MAX_NOTIFICATIONS_PAGE)
            return InboundPage(
                items=[self._inbound(account, note) for note in notes], cursor=after.encode()
            )
        notes, after = _read_down(read, place, budget, page_max=MAX_NOTIFICATIONS_PAGE)
        return InboundPage(
            items=[self._inbound(account, note) for note in notes],
            cursor=cursor if after == place else after.encode(),
            more=after.walk is not None,
        )

    def _notifications(self, account: Any, *, limit: int, cursor: str) -> tuple[list["_Note"], str]:
        """One page of listNotifications, newest first, and the cursor to the older ones ("" at
        the end)."""
        params: dict[str, Any] = {"limit": limit, "reasons": list(INBOUND_REASONS)}
        if cursor:
            params["cursor"] = cursor
        response = self._call(account, "GET", NOTIFICATIONS, changes=False, params=params)
        if response.status_code != 200:
            raise _refusal(response, "Bluesky did not list the notifications")
        data = json_or_empty(response)
        notifications = data.get("notifications")
        if not isinstance(notifications, list):
            raise with_status(
                RetryableError("Bluesky answered listNotifications without its notifications"),
                response.status_code,
            )
        next_cursor = data.get("cursor")
        return (
            [_note(item) for item in notifications],
            next_cursor if isinstance(next_cursor, str) else "",
        )

    def _inbound(self, account: Any, note: "_Note") -> Inbound:
        raw = note.raw
        record = _mapping(raw.get("record"))
        author = _mapping(raw.get("author"))
        reply = _mapping(record.get("reply"))
        did = _text(author.get("did"))
        handle = _text(author.get("handle"))
        langs = record.get("langs")
        language = langs[0] if isinstance(langs, list) and langs else ""
        assert note.kind is not None  # only notifications of INBOUND_REASONS are taken
        return Inbound(
            network_id=note.uri,
            kind=note.kind,
            text=_text(record.get("text")),
            created_at=_when(record.get("createdAt")) or note.at,
            author_handle=handle or did,
            author_name=_text(author.get("displayName")),
            author_id=did,
            url=_post_url(note.uri, handle),
            thread_id=_ref_uri(account, reply.get("root")),
            in_reply_to_id=_ref_uri(account, reply.get("parent")),
            language=language if isinstance(language, str) else "",
            deleted=_hidden(raw.get("labels")),
            raw=raw,
        )

    # --- listening ---------------------------------------------------------------------------

    listens = frozenset({"search", "hashtag", "account"})
    listening_blind_spots = (
        "Searches and hashtags find only what Bluesky's search index holds, matched by its own "
        "rules (it leaves the query syntax unspecified, may override a post's language, and may "
        "stop paging a very busy search before the last read is reached). A post backdated by "
        "its app (created more than five minutes before Bluesky saw it) sorts below what was "
        "already read and is missed. An account's replies and reposts are not read. Posts of "
        "accounts that block the connected account, or that it blocks, and posts hidden by "
        "Bluesky's moderation are left out."
    )

    def search_public(
        self, account: Any, query: PublicQuery, cursor: str, *, limit: int = 40
    ) -> PublicPage:
        """The posts searchPosts finds for a search or a hashtag, or getAuthorFeed lists for an
        account, since `cursor`, at most `limit` a call, read as fetch_inbound reads (the
        module's docstring says how). Nothing here changes anything at the network."""
        read, nsid = self._public_reader(account, query)
        budget = max(1, int(limit))
        place = _Place.decode(cursor, what="listening")
        if place is None:
            notes, after = _read_first(read, budget, page_max=MAX_PUBLIC_PAGE, keep=MAX_SEEN_PUBLIC)
            return PublicPage(
                posts=[_public_post(note, nsid) for note in notes], cursor=after.encode()
            )
        notes, after = _read_down(
            read, place, budget, page_max=MAX_PUBLIC_PAGE, keep=MAX_SEEN_PUBLIC
        )
        return PublicPage(
            posts=[_public_post(note, nsid) for note in notes],
            cursor=cursor if after == place else after.encode(),
            more=after.walk is not None,
        )

    def _public_reader(self, account: Any, query: PublicQuery) -> "tuple[_Reader, str]":
        """The reader of one page of what `query` asks for, and the method it calls."""
        text = query.text.strip()
        if query.kind == "account":
            actor = text.lstrip("@")
            if not actor:
                raise PermanentError("Listening to a Bluesky account needs its handle.")

            def read_feed(network_cursor: str, count: int, floor: datetime | None):
                # getAuthorFeed has no "since": the floor is applied by the reader only.
                params: dict[str, Any] = {
                    "actor": actor,
                    "limit": count,
                    "filter": "posts_no_replies",
                }
                if network_cursor:
                    params["cursor"] = network_cursor
                data = self._public_list(account, AUTHOR_FEED, params, f"the posts of {actor}")
                return _feed_notes(data), _next_cursor(data)

            return read_feed, AUTHOR_FEED
        if query.kind == "hashtag":
            tag = text.lstrip("#").strip()
            if not tag:
                raise PermanentError("Listening for a Bluesky hashtag needs the hashtag.")
            params: dict[str, Any] = {"q": f"#{tag}", "tag": tag}
            what = f"the posts tagged #{tag}"
        elif query.kind == "search":
            if not text:
                raise PermanentError("A Bluesky search needs words to search for.")
            params = {"q": text}
            what = f"the posts found for {text!r}"
        else:
            raise PermanentError(f"Bluesky has no public {query.kind!r} that cxhub reads.")
        params["sort"] = "latest"
        if len(query.languages) == 1:
            params["lang"] = query.languages[0]

        def read_search(network_cursor: str, count: int, floor: datetime | None):
            page = {**params, "limit": count}
            if floor is not None:
                page["since"] = _stamp(floor)
            if network_cursor:
                page["cursor"] = network_cursor
            data = self._public_list(account, SEARCH_POSTS, page, what)
            posts = data.get("posts")
            if not isinstance(posts, list):
                raise RetryableError(f"Bluesky answered {SEARCH_POSTS} without its posts")
            return [_post_note(view, SEARCH_POSTS) for view in posts], _next_cursor(data)

        return read_search, SEARCH_POSTS

    def _public_list(
        self, account: Any, nsid: str, params: dict[str, Any], what: str
    ) -> dict[str, Any]:
        """One page of a public list, as the network answered it."""
        response = self._call(account, "GET", nsid, changes=False, params=params)
        if response.status_code != 200:
            raise _refusal(response, f"Bluesky did not give {what}")
        return json_or_empty(response)

    # --- engagement of our posts ----------------------------------------------------------------

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """The figures getPosts gives for our posts, 25 a call; a post it leaves out is deleted
        when our repo no longer holds it (the module's docstring says why it is checked). Ids
        that are not at:// post URIs are not asked about and get no entry."""
        wanted = list(dict.fromkeys(i for i in external_ids if _is_post_uri(i)))
        figures: dict[str, Engagement] = {}
        for start in range(0, len(wanted), MAX_GET_POSTS):
            batch = wanted[start : start + MAX_GET_POSTS]
            views = self._post_views(account, batch, what="Bluesky did not give the posts' figures")
            for uri in batch:
                view = views.get(_ref_uri(account, {"uri": uri}))
                if view is not None:
                    figures[uri] = _engagement(view)
                elif self._record_gone(account, uri):
                    figures[uri] = Engagement(deleted=True)
        return figures

    # --- items gone -----------------------------------------------------------------------------

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """The posts of `network_ids` that getPosts shows with a hiding label, or leaves out
        while their author's repo no longer holds them, 25 a call (the module's docstring says
        why one left out is checked). Ids that are not at:// post URIs are not asked about."""
        wanted = list(dict.fromkeys(i for i in network_ids if _is_post_uri(i)))
        gone: set[str] = set()
        for start in range(0, len(wanted), MAX_GET_POSTS):
            batch = wanted[start : start + MAX_GET_POSTS]
            views = self._post_views(account, batch, what="Bluesky did not give the posts")
            for uri in batch:
                view = views.get(_ref_uri(account, {"uri": uri}))
                if view is not None:
                    if _hidden(view.get("labels")):
                        gone.add(uri)
                elif self._record_gone(account, uri):
                    gone.add(uri)
        return gone

    def _post_views(self, account: Any, uris: list[str], *, what: str) -> dict[str, dict[str, Any]]:
        """One getPosts call: the postViews answered, by URI (our repo named by its DID)."""
        response = self._call(account, "GET", GET_POSTS, changes=False, params={"uris": uris})
        if response.status_code != 200:
            raise _refusal(response, what)
        posts = json_or_empty(response).get("posts")
        if not isinstance(posts, list):
            raise with_status(
                RetryableError("Bluesky answered getPosts without its posts"),
                response.status_code,
            )
        views: dict[str, dict[str, Any]] = {}
        for view in posts:
            uri = view.get("uri") if isinstance(view, dict) else None
            if not isinstance(uri, str) or not uri.startswith("at://"):
                raise with_status(
                    RetryableError(
                        f"Bluesky answered getPosts with a post without its at:// uri: "
                        f"{json.dumps(view)[:200]}"
                    ),
                    response.status_code,
                )
            views[_ref_uri(account, {"uri": uri})] = view
        return views

    def _record_gone(self, account: Any, uri: str) -> bool:
        """Whether the repo named in `uri` (ours, or another person's: the account's PDS asks
        the AppView for a repo it does not host) no longer holds the post (getRecord answers
        RecordNotFound); RetryableError when its answer says neither."""
        authority, _, rest = uri.removeprefix("at://").partition("/")
        collection, _, rkey = rest.partition("/")
        response = request(
            "GET",
            f"{_base(account)}/xrpc/com.atproto.repo.getRecord",
            changes=False,
            what="Looking for a post the AppView left out",
            params={"repo": authority, "collection": collection, "rkey": rkey},
        )
        if response.status_code in (400, 404) and _error(response) == "RecordNotFound":
            return True
        if response.status_code == 200 and isinstance(json_or_empty(response).get("value"), dict):
            return False
        refusal = _refusal(response, "Bluesky did not say whether the post still exists")
        if isinstance(refusal, RetryableError):
            raise refusal
        raise with_status(
            RetryableError(str(refusal) or "Bluesky answered getRecord without the record"),
            response.status_code,
        )


def reply_refs(reply_to: ReplyTo) -> dict[str, dict[str, str]]:
    """The `reply` of a post answering `reply_to`: the item as parent, its thread's root as
    root (the item's own reply.root when it is a reply, else the item); PermanentError when the
    item's payload lacks what a strongRef needs."""
    raw = reply_to.raw
    parent = _strong_ref(raw)
    if parent is None:
        raise PermanentError(
            f"Cannot answer {reply_to.network_id} on Bluesky: the item was kept without its uri "
            "and cid."
        )
    if reply_to.network_id and parent["uri"] != reply_to.network_id:
        raise PermanentError(
            f"Cannot answer {reply_to.network_id} on Bluesky: its payload is of another post "
            f"({parent['uri']})."
        )
    thread = _mapping(raw.get("record")).get("reply")
    if thread is None:
        return {"root": parent, "parent": parent}
    root = _strong_ref(_mapping(_mapping(thread).get("root")))
    if root is None:
        # A root guessed wrong gets our answer flagged by the AppView (invalidReplyRoot).
        raise PermanentError(
            f"Cannot answer {reply_to.network_id} on Bluesky: it is a reply whose thread root "
            "was kept without its uri and cid."
        )
    return {"root": root, "parent": parent}


def _strong_ref(value: Mapping[str, Any]) -> dict[str, str] | None:
    """A com.atproto.repo.strongRef ({uri, cid}) from what holds one, else None."""
    uri, cid = value.get("uri"), value.get("cid")
    if isinstance(uri, str) and uri.startswith("at://") and isinstance(cid, str) and cid:
        return {"uri": uri, "cid": cid}
    return None


def _is_post_uri(value: Any) -> bool:
    """Whether `value` is an at:// URI of an app.bsky.feed.post (what getPosts takes)."""
    if not isinstance(value, str) or not value.startswith("at://"):
        return False
    parts = value.removeprefix("at://").split("/")
    return len(parts) == 3 and all(parts) and parts[1] == POST_COLLECTION


def _engagement(view: dict[str, Any]) -> Engagement:
    """A postView's figures (None where it gives none); RetryableError for one that is not a
    count."""
    return Engagement(
        likes=_count(view, "likeCount"),
        reposts=_count(view, "repostCount"),
        replies=_count(view, "replyCount"),
        quotes=_count(view, "quoteCount"),
    )


def _count(view: dict[str, Any], name: str, *, nsid: str = GET_POSTS) -> int | None:
    value = view.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RetryableError(
            f"Bluesky answered {nsid} with {name}={json.dumps(value)[:50]} for "
            f"{view.get('uri')}, not a count"
        )
    return value


def access_token_expiry(token: str) -> datetime | None:
    """When a session's access token expires: the `exp` claim of the JWT a PDS issues (read,
    not verified: the PDS verifies it; cxhub only plans the renewal ahead of it). None for a
    token that is not a JWT with an expiry."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (ValueError, TypeError, KeyError, OverflowError):
        return None


def _base(account: Any) -> str:
    base = (account.base_url or "").rstrip("/")
    check_server(base, what="Bluesky server")
    return base


def _identity(session: dict[str, Any]) -> Identity:
    did = str(session["did"])
    handle = str(session.get("handle") or did)
    return Identity(handle=handle, external_id=did)


def _error(response: requests.Response) -> str:
    return str(json_or_empty(response).get("error") or "")


def _message(response: requests.Response) -> str:
    data = json_or_empty(response)
    parts = [str(data.get("error") or ""), str(data.get("message") or "")]
    text = ": ".join(p for p in parts if p)
    return text or response.text[:300]


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    detail = f"{what} (HTTP {status}): {_message(response)}"
    wait = rate_limit_wait(response, reset_header="RateLimit-Reset")
    return error_for_status(
        status,
        detail,
        retry_after=wait,
        expired=_error(response) in AUTH_ERRORS,
        changes=changes,
    )


# --- what comes back: our cursor and the notifications ------------------------------------------

Seen = tuple[tuple[datetime, str], ...]


@dataclass(frozen=True)
class _Note:
    """One item of a list the network gives newest first (a notification, a post a search
    found, an item of an author feed): its post's URI, its place in the list, whether cxhub
    takes it, the kind the inbox files a notification under, and the JSON as given."""

    uri: str
    at: datetime
    taken: bool
    raw: dict[str, Any]
    kind: InboundKind | None = None


# One page of a list, newest first: (the network's cursor, how many to ask for, the time below
# which nothing is wanted, or None) → (its items, the cursor to the older ones; "" at the end).
_Reader = Callable[[str, int, datetime | None], tuple[list[_Note], str]]


@dataclass(frozen=True)
class _Walk:
    """A gap longer than one call, being read down: the network's cursor to go on from, the
    newest time of the gap (the mark once the walk is done), and what was taken near it."""

    next: str
    top: datetime
    seen: Seen = ()


@dataclass(frozen=True)
class _Place:
    """Where reading stands: the newest notification time read (`mark`), the time below which
    nothing is read (`since`: the bottom of the first page, so the first call's choice not to
    back-fill holds), the URIs taken at or above the floor, and a walk under way."""

    mark: datetime | None
    since: datetime | None = None
    seen: Seen = ()
    walk: _Walk | None = None

    def floor(self) -> datetime | None:
        """Reading stops at the first notification older than this (None: the list's end)."""
        floors = [self.mark - LATE_MARGIN] if self.mark else []
        floors += [self.since] if self.since else []
        return max(floors, default=None)

    def normalised(self, keep: int = MAX_SEEN) -> "_Place":
        """The same place written one way, so that a call that found nothing new gives back the
        cursor it was given; at most `keep` URIs are kept."""
        since = self.since
        if since and self.mark and self.mark - LATE_MARGIN >= since:
            since = None
        place = replace(self, since=since)
        return replace(place, seen=_prune(self.seen, place.floor(), keep))

    def encode(self) -> str:
        data: dict[str, Any] = {
            "v": 1,
            "mark": _iso(self.mark),
            "since": _iso(self.since),
            "seen": _seen_out(self.seen),
        }
        if self.walk:
            data["walk"] = {
                "next": self.walk.next,
                "top": _iso(self.walk.top),
                "seen": _seen_out(self.walk.seen),
            }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, cursor: str, *, what: str) -> "_Place | None":
        """None for "" (the first call); PermanentError for a cursor that is not ours (`what`
        names the reading it belongs to: "inbound", "listening")."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            if data["v"] != 1:
                raise ValueError(f"version {data['v']!r}")
            walk = data.get("walk")
            return cls(
                mark=_iso_in(data["mark"]),
                since=_iso_in(data["since"]),
                seen=_seen_in(data["seen"]),
                walk=_Walk(
                    next=str(walk["next"]),
                    top=_required(_iso_in(walk["top"])),
                    seen=_seen_in(walk["seen"]),
                )
                if walk
                else None,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise PermanentError(f"Not a Bluesky {what} cursor ({exc}): {cursor[:100]!r}") from exc


def _prune(
    pairs: Iterable[tuple[datetime, str]], floor: datetime | None, keep: int = MAX_SEEN
) -> Seen:
    """What was taken at or above `floor`, newest first, at most `keep`."""
    latest: dict[str, datetime] = {}
    for at, uri in pairs:
        if (floor is None or at >= floor) and (uri not in latest or at > latest[uri]):
            latest[uri] = at
    ordered = sorted(
        ((at, uri) for uri, at in latest.items()), key=lambda p: (-p[0].timestamp(), p[1])
    )
    return tuple(ordered[:keep])


def _read_first(
    read: _Reader, budget: int, *, page_max: int, keep: int = MAX_SEEN
) -> tuple[list[_Note], _Place]:
    """The newest page only: what came before cxhub listened is not back-filled. Even an empty
    list gives a place (a cursor, not ""), so that everything after it is read, not only the
    newest page again. Returns what was taken and the place the next call starts from."""
    notes, network_cursor = read("", min(budget, page_max), None)
    taken = [note for note in notes if note.taken]
    # Where the list goes on below a full page, nothing older is ever read. (A short page ended
    # the list: the AppView answers a cursor even then.)
    full = bool(network_cursor) and len(notes) >= min(budget, page_max)
    since = min((note.at for note in notes), default=None) if full else None
    place = _Place(
        mark=max((note.at for note in notes), default=None),
        since=since,
        seen=tuple((note.at, note.uri) for note in taken),
    ).normalised(keep)
    return taken, place


def _read_down(
    read: _Reader, place: _Place, budget: int, *, page_max: int, keep: int = MAX_SEEN
) -> tuple[list[_Note], _Place]:
    """Read from the newest item (or from where an unfinished walk stopped) down to the floor
    below what was taken, and say where the next call starts."""
    floor = place.floor()
    walk = place.walk
    network_cursor = walk.next if walk else ""
    top = walk.top if walk else None
    walk_seen = walk.seen if walk else ()
    known = {uri for _, uri in place.seen} | {uri for _, uri in walk_seen}
    taken: list[_Note] = []
    finished = False
    for _ in range(MAX_PAGES_PER_CALL):
        remaining = budget - len(taken)
        if remaining <= 0:
            break
        notes, next_cursor = read(network_cursor, min(remaining, page_max), floor)
        top = _latest(top, *(note.at for note in notes))
        for note in notes:
            if floor is not None and note.at < floor:
                finished = True
                break
            # A page is taken whole (a server that answers more than `limit` makes a call
            # return more): stopping inside it would lose the rest, which the network's cursor
            # has already passed.
            if note.taken and note.uri not in known:
                known.add(note.uri)
                taken.append(note)
        # A short page may still go on (the AppView leaves out what the account cannot see),
        # so only an empty page or a missing cursor ends the list.
        if finished or not notes or not next_cursor:
            finished = True
            break
        network_cursor = next_cursor
    pairs = (*walk_seen, *((note.at, note.uri) for note in taken))
    if finished:
        # The top of the walk becomes the mark only now that its bottom is reached: what
        # arrived meanwhile lies above it and is read by the next call.
        after = _Place(mark=_latest(place.mark, top), since=place.since, seen=place.seen + pairs)
        return taken, after.normalised(keep)
    assert top is not None  # a page with items was read
    walk = _Walk(next=network_cursor, top=top, seen=_prune(pairs, top - LATE_MARGIN, keep))
    return taken, replace(place, walk=walk)


def _latest(*times: datetime | None) -> datetime | None:
    return max((at for at in times if at is not None), default=None)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _iso_in(value: Any) -> datetime | None:
    if value is None:
        return None
    return _required(_when(value))


def _required(value: datetime | None) -> datetime:
    if value is None:
        raise ValueError("a time is missing or not an ISO 8601 time with its offset")
    return value


def _seen_out(seen: Seen) -> list[list[str]]:
    return [[_iso(at) or "", uri] for at, uri in seen]


def _seen_in(value: Any) -> Seen:
    return tuple((_required(_when(at)), str(uri)) for at, uri in value)


def _when(value: Any) -> datetime | None:
    """An atproto datetime (RFC 3339, with its offset) as an aware UTC datetime, else None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else None


def _note(item: Any) -> _Note:
    """A listed notification, or RetryableError when it lacks what placing it needs."""
    uri = item.get("uri") if isinstance(item, dict) else None
    at = _when(item.get("indexedAt")) if isinstance(item, dict) else None
    if not isinstance(uri, str) or not uri.startswith("at://") or at is None:
        raise RetryableError(
            "Bluesky listed a notification without an at:// uri and an indexedAt time: "
            f"{json.dumps(item)[:200]}"
        )
    reason = item.get("reason")
    kind = INBOUND_REASONS.get(reason) if isinstance(reason, str) else None
    return _Note(uri=uri, at=at, taken=kind is not None, raw=item, kind=kind)


def _stamp(value: datetime) -> str:
    """An atproto datetime in UTC, to the millisecond (cut, never rounded up: a floor stays at
    or below the time it was taken from)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _next_cursor(data: dict[str, Any]) -> str:
    cursor = data.get("cursor")
    return cursor if isinstance(cursor, str) else ""


def _post_note(view: Any, nsid: str) -> _Note:
    """A postView as listed, placed by its sortAt (the earlier of its createdAt and its
    indexing time); RetryableError when it lacks a URI or both times."""
    uri = view.get("uri") if isinstance(view, dict) else None
    record = _mapping(view.get("record")) if isinstance(view, dict) else {}
    times = [
        at
        for at in (_when(record.get("createdAt")), _when(_mapping(view).get("indexedAt")))
        if at is not None
    ]
    if not isinstance(uri, str) or not uri.startswith("at://") or not times:
        raise RetryableError(
            f"Bluesky answered {nsid} with a post without an at:// uri and a time: "
            f"{json.dumps(view)[:200]}"
        )
    return _Note(uri=uri, at=min(times), taken=not _hidden(view.get("labels")), raw=view)


def _feed_notes(data: dict[str, Any]) -> list[_Note]:
    """The items of a getAuthorFeed page: the author's posts, taken, and the reposts among
    them, read past at the repost's time; RetryableError for a page without its feed."""
    feed = data.get("feed")
    if not isinstance(feed, list):
        raise RetryableError(f"Bluesky answered {AUTHOR_FEED} without its feed")
    notes = []
    for item in feed:
        if not isinstance(item, dict):
            raise RetryableError(
                f"Bluesky answered {AUTHOR_FEED} with an item that is not a feedViewPost: "
                f"{json.dumps(item)[:200]}"
            )
        note = _post_note(item.get("post"), AUTHOR_FEED)
        reason = item.get("reason")
        if reason is None:
            notes.append(note)
            continue
        at = _when(_mapping(reason).get("indexedAt"))
        # A reason without a time (a pin, which is not asked for) has no place in the list.
        if at is not None:
            notes.append(replace(note, at=at, taken=False))
    return notes


def _public_post(note: _Note, nsid: str) -> PublicPost:
    view = note.raw
    record = _mapping(view.get("record"))
    author = _mapping(view.get("author"))
    did = _text(author.get("did"))
    handle = _text(author.get("handle"))
    langs = record.get("langs")
    language = langs[0] if isinstance(langs, list) and langs else ""
    return PublicPost(
        network_id=note.uri,
        text=_text(record.get("text")),
        created_at=_when(record.get("createdAt")) or note.at,
        author_handle=handle or did,
        author_name=_text(author.get("displayName")),
        author_id=did,
        url=_post_url(note.uri, handle),
        language=language if isinstance(language, str) else "",
        likes=_count(view, "likeCount", nsid=nsid),
        reposts=_count(view, "repostCount", nsid=nsid),
        replies=_count(view, "replyCount", nsid=nsid),
        quotes=_count(view, "quoteCount", nsid=nsid),
        raw=view,
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ref_uri(account: Any, ref: Any) -> str:
    """A strongRef's at:// URI in the form publish() keeps (the repo named by its DID: a client
    may write our handle instead)."""
    uri = _text(_mapping(ref).get("uri"))
    authority, _, rest = uri.removeprefix("at://").partition("/")
    handle = (account.handle or "").lstrip("@")
    if uri.startswith("at://") and handle and authority == handle and account.external_id:
        return f"at://{account.external_id}/{rest}"
    return uri


def _post_url(uri: str, handle: str) -> str:
    """The post's page in the Bluesky app ("" for a record that is not a post)."""
    authority, _, rest = uri.removeprefix("at://").partition("/")
    collection, _, rkey = rest.partition("/")
    if collection != POST_COLLECTION or not rkey:
        return ""
    who = handle if handle and handle != "handle.invalid" else authority
    return f"https://bsky.app/profile/{who}/post/{rkey}"


def _hidden(labels: Any) -> bool:
    """Whether a global label hides the post from everyone (a negated label undoes it)."""
    state: dict[str, bool] = {}
    for label in labels if isinstance(labels, list) else []:
        value = _mapping(label).get("val")
        if value in HIDING_LABELS:
            state[value] = not label.get("neg")
    return any(state.values())
