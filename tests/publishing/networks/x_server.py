"""An X server for the tests, written from docs.x.com: OAuth 2.0 with PKCE (authorize,
token, revoke; fundamentals/authentication/oauth-2-0), GET /2/users/me, media upload (one-shot
and chunked, x-api/media), alt text (POST /2/media/metadata), POST /2/tweets, and the user
timeline GET /2/users/:id/tweets, the mention timeline GET /2/users/:id/mentions
(x-api/posts/user-mention-timeline-by-user-id: newest first, since_id, until_id, max_results
5–100, pagination_token from meta.next_token paging backwards within since_id, tweet.fields,
expansions=author_id with user.fields, only the 800 most recent mentions), with X's problem JSON
and x-rate-limit-* headers.

It checks what X checks: the client's Basic authentication at the token and revoke endpoints,
the exact redirect_uri, the PKCE verifier, single-use codes that live 30 seconds, rotated
refresh tokens, bearer tokens and their scopes, image sizes and formats, alt text ≤ 1,000
characters, the weighted length of a post, at most 4 images (or one GIF) that the same user
uploaded and that finished processing, and duplicate text. Posts are stored as X shows them:
links wrapped in t.co, &<> escaped, a t.co link appended for attached media (the Post object's
`text` and `entities.urls`, with expanded_url and, for the media link, media_key).
`fail_next("tweets", "502", after=True)` makes the post, then answers 502; "drop" makes it,
then closes the connection unanswered; "garbled" answers 200 with `body` (bytes, or data made
JSON), a broken answer. Other people's posts are made with `add_post` (a reply gets the @handle
of the post it answers at the start of its text, as X shows it); a post mentions the users
whose @handles its text holds; `delete_tweet` removes a post, which then simply leaves every
timeline, as on X.

Replies (x-api/posts/create-or-edit-post): POST /2/tweets with `reply` {in_reply_to_tweet_id,
exclude_reply_user_ids} stores the post as a reply: conversation_id the thread's root,
in_reply_to_user_id the author answered, referenced_tweets replied_to the post; X's handles of
those it answers (the author, then those the post answered, less the replier and the users
excluded) put before its text, so it reaches their mention timelines. A reply to a post that is
not there is refused with X's 403 "You attempted to reply to a Tweet that is deleted or not
visible to you."; `replies_to(id)` lists the replies a post has. GET /2/users/:id/tweets honours
exclude=replies and gives referenced_tweets when asked.

Figures (x-api/posts/get-posts-by-ids, x-api/fundamentals/metrics): GET /2/tweets?ids= (1 to
100 ids, tweet.fields checked) answers the posts in the order asked with public_metrics
(retweet, reply, like, quote, bookmark and impression counts) and, for the token's own posts of
the last 30 days only, non_public_metrics and organic_metrics (impressions, url_link_clicks,
user_profile_clicks); a post asked with those that is not the token's or is older is left out
with a "Field Authorization Error"; a post not there is named in errors as "Not Found Error".
`engage(id, likes=…, reposts=…, …)` adds what people did; replies and quotes are also counted
from the posts that answer or quote it. `timeline_queries` and `lookup_queries` keep the
query of every call of the user timeline and of the lookup.

Approximations: one app; error wordings the docs do not give are X's as seen in the wild
(duplicate content, invalid token) or plain ones (a post too long: X's 186 "Tweet needs to be a
bit shorter." as a 403); the duplicate check compares the text of all the user's posts (X's
window is not documented); rate-limit headers only on 429 answers; a pagination token is good
for as long as the server runs (X does not say how long its tokens last), and a page is never
empty (X may give a next_token whose page holds nothing); every post's lang is what it was made
with (X detects it); the duplicate check compares the text as sent (a reply's without the
handles X adds: whether X takes a reply of the same words to another person for a duplicate is
not documented); `refuse_private_fields` makes the lookup refuse a call asking for non-public
fields with a 403 of invented words (an app whose access does not reach them: X does not
document that answer).

Recent search (x-api/posts/search: introduction, integrate/build-a-query, integrate/operators,
integrate/paginate): GET /2/tweets/search/recent over every post of the last 7 days, newest
first; `query` of at most 512 characters, read as X documents it: keywords (a tokenized,
case-insensitive match), "exact phrases", #hashtags (exact), @mentions, from:, lang:,
is:retweet, a leading - for NOT, a space for AND, OR (AND binds first) and parentheses, with
at least one standalone operator (a keyword, phrase, hashtag, mention or from:) not negated;
max_results 10–100, since_id and until_id (exclusive), sort_order recency or relevancy (both
answered newest first here), next_token from meta.next_token paging backwards within the same
query and bounds, the fields and authors asked for. A since_id of a post older than the 7 days
is refused with X's 400 as seen in the wild ("'since_id' must be a tweet id created after …",
rooteco/tweetscape issue #421); an id the server never gave is taken as it is. `add_public`
makes a public post (or a Retweet) with its figures; `search_queries` keeps the query of every
call, and `search_tokens` the page tokens (clear it to have X refuse them: X says they do not
expire, but the client must survive it).
"""

import base64
import email.parser
import email.policy
import hashlib
import html
import io
import itertools
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from PIL import Image

from networks.channels import text as textutil
from networks.channels.x import weighted_length

from .server import Answer, FakeNetwork, Request, answer_json

ACCESS_TOKEN_SECONDS = 7200
CODE_SECONDS = 30
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_GIF_BYTES = 15 * 1024 * 1024
MAX_SEGMENT_BYTES = 5 * 1024 * 1024
MAX_ALT_TEXT = 1000
MAX_MEDIA = 4
SCOPES = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.email",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "space.read",
        "mute.read",
        "mute.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "block.read",
        "block.write",
        "bookmark.read",
        "bookmark.write",
        "dm.read",
        "dm.write",
        "media.write",
    }
)
# The mention timeline reaches this many of the most recent mentions.
MENTIONS_REACH = 800
# Recent search: how far back it reaches and its longest query (self-serve access levels).
SEARCH_DAYS = 7
MAX_QUERY_LENGTH = 512
# The Post lookup takes up to this many ids; non-public figures are kept this long.
LOOKUP_IDS = 100
PRIVATE_METRICS_DAYS = 30
# tweet.fields the Post lookup knows (x-api/posts/get-posts-by-ids).
TWEET_FIELDS = frozenset(
    {
        "article",
        "attachments",
        "author_id",
        "card_uri",
        "community_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "display_text_range",
        "edit_controls",
        "edit_history_tweet_ids",
        "entities",
        "geo",
        "id",
        "in_reply_to_user_id",
        "lang",
        "media_metadata",
        "non_public_metrics",
        "note_tweet",
        "organic_metrics",
        "possibly_sensitive",
        "promoted_metrics",
        "public_metrics",
        "referenced_tweets",
        "reply_settings",
        "scopes",
        "source",
        "text",
        "withheld",
    }
)
# Fields only the author's own token reads, and for posts of the last 30 days only.
PRIVATE_FIELDS = frozenset({"non_public_metrics", "organic_metrics", "promoted_metrics"})
_MENTION = re.compile(r"(?<![\w@])@(\w{1,15})")
# The handles at the start of a post's text (those a reply answers).
_LEADING_HANDLES = re.compile(r"^(?:@\w{1,15}\s+)+")
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra) -> Answer:
    return answer_json(
        status, {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    )


def invalid_request(detail: str) -> Answer:
    return problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        "https://api.x.com/2/problems/invalid-request",
        errors=[{"message": detail}],
    )


def oauth_error(status: int, error: str, description: str) -> Answer:
    return answer_json(status, {"error": error, "error_description": description})


def _multipart(request: Request) -> dict[str, tuple[str | None, bytes]]:
    """name → (filename, bytes)."""
    head = f"Content-Type: {request.headers.get('Content-Type')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}


def _image(data: bytes) -> tuple[str, int, int, int] | None:
    """(Pillow format, width, height, frames) or None when the bytes are no image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        return None
    return image.format, image.width, image.height, getattr(image, "n_frames", 1)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class XServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.client_id = "cxhub-x-client-id"
        self.client_secret = "cxhub-x-client-secret"
        # X matches the callback exactly against the App's registered callback URLs.
        self.redirect_uris = {"https://cxhub.example.org/accounts/connect/x/callback/"}
        self.users: dict[str, dict[str, str]] = {}
        self.user_id = self.add_user("north_desk", "North Desk")
        # Set False to have the next person press "Cancel" instead of "Authorize app".
        self.approve = True
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.tweets: list[dict[str, Any]] = []  # newest first
        # How many status checks a finalized GIF answers "in_progress" for.
        self.processing_polls = 0
        # Seconds before a new post shows in the timeline (it is eventually consistent).
        self.timeline_delay = 0.0
        self._ids = itertools.count(1_880_000_000_000_000_001)
        # Pagination tokens of the mention timeline: token → where its page starts.
        self.page_tokens: dict[str, dict[str, Any]] = {}
        # The query of every call of the mention timeline, in order.
        self.mention_queries: list[dict[str, str]] = []
        # The query of every call of the user timeline and of the Post lookup, in order.
        self.timeline_queries: list[dict[str, str]] = []
        self.lookup_queries: list[dict[str, str]] = []
        # Set True to have X refuse, for the whole call, a lookup asking for non-public fields
        # (an app whose access does not reach them).
        self.refuse_private_fields = False
        # Recent search: token → the query, bounds and post its page starts below; the query
        # string of every call, in order.
        self.search_tokens: dict[str, dict[str, Any]] = {}
        self.search_queries: list[dict[str, str]] = []

    # --- control ---------------------------------------------------------------------------
    def add_user(self, username: str, name: str) -> str:
        user_id = str(2_244_994_945 + len(self.users))
        self.users[user_id] = {"id": user_id, "username": username, "name": name}
        return user_id

    def issue_tokens(self, user_id: str, scopes: frozenset[str] | None = None) -> dict[str, Any]:
        """A fresh grant's token answer, as POST /2/oauth2/token gives it."""
        scopes = frozenset(scopes or {"tweet.read", "tweet.write", "users.read", "media.write"})
        scopes |= {"offline.access"}
        return self._grant(user_id, sorted(scopes))

    def expire(self, access_token: str) -> None:
        """Let an access token reach its two hours."""
        with self.lock:
            self.access_tokens[access_token]["expires_at"] = time.time() - 1

    def revoke_grant(self, user_id: str) -> None:
        """The person removes the app in x.com/settings/connected_apps."""
        with self.lock:
            for token in [*self.access_tokens.values(), *self.refresh_tokens.values()]:
                if token["user_id"] == user_id:
                    token["active"] = False

    def add_tweet(
        self, user_id: str, text: str, *, created_at: datetime | None = None, images: int = 0
    ) -> dict:
        """A post made elsewhere (the X app), e.g. days ago, with `images` photos."""
        with self.lock:
            items = [
                self._new_media(user_id, "JPEG", 640, 480, b"", "tweet_image", done=True)
                for _ in range(images)
            ]
            return self._store_tweet(user_id, text, items, created_at or datetime.now(UTC))

    def add_post(
        self,
        username: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
        lang: str = "en",
    ) -> dict:
        """A post by `username` (made a user if new), now: a reply to the post `reply_to`, or a
        quote of `quote_of`, in the language `lang` X would detect."""
        with self.lock:
            user_id = self._user_named(username)
            parent = self._tweet(reply_to) if reply_to else None
            if parent is not None:
                to = f"@{self.users[parent['author_id']]['username']}"
                if not text.startswith(to):
                    text = f"{to} {text}"
            tweet = self._store_tweet(user_id, text, [], datetime.now(UTC))
            tweet["lang"] = lang
            if parent is not None:
                tweet["conversation_id"] = parent["conversation_id"]
                tweet["in_reply_to_user_id"] = parent["author_id"]
                tweet["referenced_tweets"].append({"type": "replied_to", "id": parent["id"]})
            if quote_of:
                tweet["referenced_tweets"].append({"type": "quoted", "id": quote_of})
            return tweet

    def add_public(
        self,
        text: str,
        *,
        username: str = "someone",
        lang: str = "en",
        likes: int = 0,
        retweets: int = 0,
        replies: int = 0,
        quotes: int = 0,
        is_retweet: bool = False,
        created_at: datetime | None = None,
    ) -> dict:
        """A public post by `username` (made a user if new), now or at `created_at`, in the
        language `lang` X would detect, with these figures; with `is_retweet`, a Retweet by
        `username` of a new post of `text` by @first_author (X shows it as "RT @first_author:
        …", referenced_tweets retweeted)."""
        with self.lock:
            user_id = self._user_named(username)
            when = created_at or datetime.now(UTC)
            if is_retweet:
                original = self.add_public(
                    text, username="first_author", lang=lang, created_at=when
                )
                tweet = self._store_tweet(user_id, f"RT @first_author: {text}", [], when)
                tweet["referenced_tweets"].append({"type": "retweeted", "id": original["id"]})
            else:
                tweet = self._store_tweet(user_id, text, [], when)
            tweet["lang"] = lang
            for name, value in (
                ("like", likes),
                ("retweet", retweets),
                ("reply", replies),
                ("quote", quotes),
            ):
                tweet["counts"][name] += value
            return tweet

    def engage(
        self,
        tweet_id: str,
        *,
        likes: int = 0,
        reposts: int = 0,
        replies: int = 0,
        quotes: int = 0,
        bookmarks: int = 0,
        impressions: int = 0,
        link_clicks: int = 0,
        profile_clicks: int = 0,
    ) -> None:
        """People act on a post: its counts grow (replies and quotes made with add_post or
        POST /2/tweets are counted on their own; these add to them)."""
        with self.lock:
            counts = self._tweet(tweet_id)["counts"]
            for name, value in (
                ("like", likes),
                ("retweet", reposts),
                ("reply", replies),
                ("quote", quotes),
                ("bookmark", bookmarks),
                ("impression", impressions),
                ("url_link_clicks", link_clicks),
                ("user_profile_clicks", profile_clicks),
            ):
                counts[name] += value

    def replies_to(self, tweet_id: str) -> list[dict[str, Any]]:
        """The posts that answer `tweet_id` (referenced_tweets replied_to), newest first."""
        with self.lock:
            return [t for t in self.tweets if _replied_to(t) == tweet_id]

    def delete_tweet(self, tweet_id: str) -> None:
        """The author deletes a post: it leaves every timeline."""
        with self.lock:
            self.tweets = [t for t in self.tweets if t["id"] != tweet_id]

    def mentions_of(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The user's mention timeline: newest (highest id) first, the most recent 800."""
        user_id = user_id or self.user_id
        with self.lock:
            found = [t for t in self.tweets if user_id in t["mentions"]]
        return sorted(found, key=lambda t: int(t["id"]), reverse=True)[:MENTIONS_REACH]

    def _user_named(self, username: str) -> str:
        """The id of the user `username`, made if new (call with the lock held)."""
        found = next((u["id"] for u in self.users.values() if u["username"] == username), None)
        return found or self.add_user(username, username.replace("_", " ").title())

    def _tweet(self, tweet_id: str) -> dict[str, Any]:
        return next(t for t in self.tweets if t["id"] == tweet_id)

    def tweets_of(self, user_id: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.tweets if t["author_id"] == (user_id or self.user_id)]

    # --- serving ---------------------------------------------------------------------------
    def route(self, request: Request):
        path, method = request.path, request.method
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/i/oauth2/authorize":
            return "authorize", self.authorize
        if method == "POST" and path == "/2/oauth2/token":
            return "token", self.token
        if method == "POST" and path == "/2/oauth2/revoke":
            return "revoke", self.revoke
        if method == "GET" and path == "/2/users/me":
            return "me", self.me
        if method == "POST" and path == "/2/media/upload":
            return "media_upload", self.media_upload
        if method == "GET" and path == "/2/media/upload":
            return "media_status", self.media_status
        if method == "POST" and path == "/2/media/upload/initialize":
            return "media_initialize", self.media_initialize
        if method == "POST" and len(parts) == 5 and parts[:3] == ["2", "media", "upload"]:
            if parts[4] == "append":
                return "media_append", self.media_append
            if parts[4] == "finalize":
                return "media_finalize", self.media_finalize
        if method == "POST" and path == "/2/media/metadata":
            return "media_metadata", self.media_metadata
        if method == "POST" and path == "/2/tweets":
            return "tweets", self.create_tweet
        if method == "GET" and path == "/2/tweets":
            return "tweets_lookup", self.lookup_tweets
        if method == "GET" and path == "/2/tweets/search/recent":
            return "search", self.search_recent
        if (
            method == "GET"
            and len(parts) == 4
            and parts[0:2] + parts[3:] == ["2", "users", "tweets"]
        ):
            return "user_tweets", self.user_tweets
        if (
            method == "GET"
            and len(parts) == 4
            and parts[0:2] + parts[3:] == ["2", "users", "mentions"]
        ):
            return "mentions", self.mentions
        return "other", self.not_found

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return self._unauthorized()
        if mode == "429":
            # 15-minute window; "daily": the 24-hour user window of POST /2/tweets ran out.
            now = int(time.time())
            headers = {
                "x-rate-limit-limit": str(options.get("limit", 100)),
                "x-rate-limit-remaining": "0" if not options.get("daily") else "37",
                "x-rate-limit-reset": str(now + options.get("reset_in", 900)),
            }
            if options.get("daily"):
                headers |= {
                    "x-user-limit-24hour-limit": "100",
                    "x-user-limit-24hour-remaining": "0",
                    "x-user-limit-24hour-reset": str(now + options["daily"]),
                }
            status, base_headers, body = problem(429, "Too Many Requests", "Too Many Requests")
            return status, {**base_headers, **headers}, body
        if mode == "garbled":
            body = options.get("body", b"<html><body>Over capacity</body></html>")
            if isinstance(body, bytes):
                return 200, {"Content-Type": "text/html"}, body
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        titles = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        status = int(mode)
        return problem(status, titles.get(status, "Error"), titles.get(status, "Error"))

    def not_found(self, request: Request) -> Answer:
        return problem(404, "Not Found Error", f"No route for {request.method} {request.path}.")

    # --- OAuth 2.0 -------------------------------------------------------------------------
    def authorize(self, request: Request) -> Answer:
        """The consent page: auto-approves as a person pressing "Authorize app" would."""
        client_id = request.param("client_id")
        redirect_uri = request.param("redirect_uri") or ""
        if client_id != self.client_id or redirect_uri not in self.redirect_uris:
            # No redirect to an unknown address: X shows its own error page.
            return 400, {"Content-Type": "text/html"}, b"<p>Something went wrong.</p>"
        state = request.param("state") or ""
        scopes = (request.param("scope") or "").split()
        challenge = request.param("code_challenge") or ""
        method = request.param("code_challenge_method") or ""
        error = ""
        if request.param("response_type") != "code":
            error = "unsupported_response_type"
        elif not state or len(state) > 500 or method not in ("S256", "plain") or not challenge:
            error = "invalid_request"
        elif not scopes or not set(scopes) <= SCOPES:
            error = "invalid_scope"
        elif not self.approve:
            error = "access_denied"
        if error:
            return self._redirect(redirect_uri, {"error": error, "state": state})
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = {
                "user_id": self.user_id,
                "redirect_uri": redirect_uri,
                "challenge": challenge,
                "method": method,
                "scopes": scopes,
                "expires_at": time.time() + CODE_SECONDS,
            }
        return self._redirect(redirect_uri, {"state": state, "code": code})

    def _redirect(self, redirect_uri: str, params: dict[str, str]) -> Answer:
        joiner = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": redirect_uri + joiner + urlencode(params)}, b""

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        """A confidential client: HTTP Basic client_id:client_secret (RFC 6749 §2.3.1)."""
        value = request.headers.get("Authorization") or ""
        if not value.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(value[6:], validate=True).decode()
        except ValueError:
            return False
        client_id, _, secret = pair.partition(":")
        if form.get("client_id") not in (None, self.client_id):
            return False
        return (unquote(client_id), unquote(secret)) == (self.client_id, self.client_secret)

    def token(self, request: Request) -> Answer:
        if not (request.headers.get("Content-Type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return oauth_error(400, "invalid_request", "Content-Type must be form-urlencoded.")
        form = _form(request)
        if not self._client_ok(request, form):
            return oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type.")

    def _exchange_code(self, form: dict[str, str]) -> Answer:
        with self.lock:
            code = self.codes.pop(form.get("code") or "", None)  # single use
        refused = oauth_error(
            400, "invalid_request", "Value passed for the authorization code was invalid."
        )
        if code is None or code["expires_at"] < time.time():
            return refused
        if form.get("redirect_uri") != code["redirect_uri"]:
            return refused
        verifier = form.get("code_verifier") or ""
        expected = _s256(verifier) if code["method"] == "S256" else verifier
        if not verifier or not secrets.compare_digest(expected, code["challenge"]):
            return refused
        return answer_json(200, self._grant(code["user_id"], code["scopes"]))

    def _refresh(self, form: dict[str, str]) -> Answer:
        with self.lock:
            old = self.refresh_tokens.get(form.get("refresh_token") or "")
            if old is None or not old["active"]:
                return oauth_error(
                    400, "invalid_request", "Value passed for the token was invalid."
                )
            old["active"] = False  # rotated: a refresh token is good once
        return answer_json(200, self._grant(old["user_id"], old["scopes"]))

    def _grant(self, user_id: str, scopes: list[str]) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        answer = {
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "access_token": access,
            "scope": " ".join(scopes),
        }
        with self.lock:
            self.access_tokens[access] = {
                "user_id": user_id,
                "scopes": frozenset(scopes),
                "expires_at": time.time() + ACCESS_TOKEN_SECONDS,
                "active": True,
            }
            if "offline.access" in scopes:
                refresh = secrets.token_urlsafe(32)
                self.refresh_tokens[refresh] = {
                    "user_id": user_id,
                    "scopes": list(scopes),
                    "active": True,
                }
                answer["refresh_token"] = refresh
        return answer

    def revoke(self, request: Request) -> Answer:
        form = _form(request)
        if not self._client_ok(request, form):
            return oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        token = form.get("token") or ""
        with self.lock:
            for store in (self.access_tokens, self.refresh_tokens):
                if token in store:
                    store[token]["active"] = False
        # RFC 7009 §2.2: an unknown token is answered the same way.
        return answer_json(200, {"revoked": True})

    # --- the API ---------------------------------------------------------------------------
    def _unauthorized(self) -> Answer:
        return problem(401, "Unauthorized", "Unauthorized")

    def _user_for(self, request: Request, *needs: str) -> tuple[str | None, Answer | None]:
        """The token's user, or the answer refusing it (401, or 403 for a missing scope)."""
        with self.lock:
            token = self.access_tokens.get(request.bearer() or "")
        if token is None or not token["active"] or token["expires_at"] < time.time():
            return None, self._unauthorized()
        missing = sorted(set(needs) - token["scopes"])
        if missing:
            return None, problem(
                403,
                "Forbidden",
                f"Missing required OAuth 2.0 scopes: {', '.join(missing)}.",
                "https://api.x.com/2/problems/client-forbidden",
            )
        return token["user_id"], None

    def me(self, request: Request) -> Answer:
        user_id, refused = self._user_for(request, "tweet.read", "users.read")
        if refused:
            return refused
        return answer_json(200, {"data": dict(self.users[user_id])})

    def media_upload(self, request: Request) -> Answer:
        """The one-shot upload: images only (GIFs and video go through the chunked flow)."""
        user_id, refused = self._user_for(request, "media.write")
        if refused:
            return refused
        if request.param("command"):
            return invalid_request("Do not send command=INIT, APPEND or FINALIZE here.")
        if not (request.headers.get("Content-Type") or "").startswith("multipart/form-data"):
            return invalid_request("The request must be multipart/form-data.")
        fields = _multipart(request)
        data = fields.get("media", (None, b""))[1]
        category = fields.get("media_category", (None, b""))[1].decode()
        if not data:
            return invalid_request("The `media` field is required.")
        if category not in ("tweet_image", "dm_image"):
            return invalid_request(f"media_category {category!r} is not for a one-shot upload.")
        if len(data) > MAX_IMAGE_BYTES:
            return invalid_request(
                f"File size exceeds {MAX_IMAGE_BYTES} bytes ({len(data)} bytes given)."
            )
        found = _image(data)
        if found is None or found[0] not in ("JPEG", "PNG", "WEBP"):
            return invalid_request("Unsupported media type; use image/jpeg, image/png or webp.")
        fmt, width, height, _ = found
        item = self._new_media(user_id, fmt, width, height, data, category, done=True)
        return answer_json(200, {"data": self._media_json(item)})

    def media_initialize(self, request: Request) -> Answer:
        user_id, refused = self._user_for(request, "media.write")
        if refused:
            return refused
        body = request.json() or {}
        media_type = body.get("media_type")
        total = body.get("total_bytes")
        category = body.get("media_category")
        if media_type != "image/gif" or category != "tweet_gif":
            return invalid_request("This server takes animated GIFs (tweet_gif) in chunks.")
        if not isinstance(total, int) or not 0 < total <= MAX_GIF_BYTES:
            return invalid_request(f"total_bytes must be between 1 and {MAX_GIF_BYTES}.")
        item = self._new_media(user_id, "GIF", 0, 0, b"", category, done=False)
        item["total_bytes"] = total
        item["segments"] = {}
        return answer_json(200, {"data": self._media_json(item)})

    def _chunked(self, request: Request) -> tuple[dict | None, Answer | None]:
        user_id, refused = self._user_for(request, "media.write")
        if refused:
            return None, refused
        item = self.media.get(request.path.split("/")[4])
        if item is None or item["user_id"] != user_id or "segments" not in item:
            return None, invalid_request("Unknown media id.")
        return item, None

    def media_append(self, request: Request) -> Answer:
        item, refused = self._chunked(request)
        if refused:
            return refused
        fields = _multipart(request)
        chunk = fields.get("media", (None, b""))[1]
        index = fields.get("segment_index", (None, b""))[1].decode()
        if not chunk or not index.isdigit() or int(index) > 999:
            return invalid_request("`media` and `segment_index` (0 to 999) are required.")
        if len(chunk) > MAX_SEGMENT_BYTES:
            return invalid_request("A segment may hold at most 5 MB.")
        with self.lock:
            item["segments"][int(index)] = chunk
        return answer_json(200, {"data": {"expires_at": int(item["expires_at"])}})

    def media_finalize(self, request: Request) -> Answer:
        item, refused = self._chunked(request)
        if refused:
            return refused
        data = b"".join(chunk for _, chunk in sorted(item["segments"].items()))
        if len(data) != item["total_bytes"]:
            return invalid_request(
                f"Uploaded {len(data)} bytes; total_bytes was {item['total_bytes']}."
            )
        found = _image(data)
        if found is None or found[0] != "GIF":
            return invalid_request("The uploaded file is not a GIF.")
        with self.lock:
            item["data"], item["width"], item["height"] = data, found[1], found[2]
            item["polls_left"] = self.processing_polls
            item["state"] = "pending" if self.processing_polls else "succeeded"
        return answer_json(200, {"data": self._media_json(item)})

    def media_status(self, request: Request) -> Answer:
        user_id, refused = self._user_for(request, "media.write")
        if refused:
            return refused
        item = self.media.get(request.param("media_id") or "")
        if request.param("command") != "STATUS" or item is None or item["user_id"] != user_id:
            return invalid_request("command=STATUS and a known media_id are required.")
        with self.lock:
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
                item["state"] = "in_progress"
            else:
                item["state"] = "succeeded"
        return answer_json(200, {"data": self._media_json(item)})

    def media_metadata(self, request: Request) -> Answer:
        user_id, refused = self._user_for(request, "media.write")
        if refused:
            return refused
        body = request.json() or {}
        item = self.media.get(str(body.get("id") or ""))
        if item is None or item["user_id"] != user_id:
            return invalid_request("Unknown media id.")
        alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
        if not isinstance(alt, str):
            return invalid_request("metadata.alt_text.text is required.")
        if len(alt) > MAX_ALT_TEXT:
            return invalid_request(f"alt_text.text must be <= {MAX_ALT_TEXT} chars.")
        with self.lock:
            item["alt_text"] = alt
        return answer_json(
            200, {"data": {"id": item["id"], "associated_metadata": {"alt_text": {"text": alt}}}}
        )

    def _new_media(
        self,
        user_id: str,
        fmt: str,
        width: int,
        height: int,
        data: bytes,
        category: str,
        done: bool,
    ) -> dict[str, Any]:
        media_id = str(next(self._ids))
        item = {
            "id": media_id,
            "media_key": f"{'16' if fmt == 'GIF' else '3'}_{media_id}",
            "user_id": user_id,
            "format": fmt,
            "mime": _FORMATS[fmt],
            "width": width,
            "height": height,
            "data": data,
            "category": category,
            "alt_text": "",
            "state": "succeeded" if done else "uploading",
            "polls_left": 0,
            "expires_at": time.time() + 86400,
        }
        with self.lock:
            self.media[media_id] = item
        return item

    def _media_json(self, item: dict[str, Any]) -> dict[str, Any]:
        data = {
            "id": item["id"],
            "media_key": item["media_key"],
            "size": len(item["data"]),
            "expires_after_secs": max(0, int(item["expires_at"] - time.time())),
        }
        if item["state"] in ("pending", "in_progress"):
            data["processing_info"] = {"state": item["state"], "check_after_secs": 1}
        if item["width"]:
            data["image"] = {"image_type": item["mime"], "w": item["width"], "h": item["height"]}
        return data

    # --- posts -----------------------------------------------------------------------------
    def create_tweet(self, request: Request) -> Answer:
        user_id, refused = self._user_for(request, "tweet.read", "tweet.write", "users.read")
        if refused:
            return refused
        body = request.json()
        if not isinstance(body, dict):
            return invalid_request("The body must be a JSON object.")
        text = body.get("text") or ""
        media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids") or []]
        if not text and not media_ids:
            return invalid_request("A post needs text or media.")
        if weighted_length(text) > 280:
            return problem(403, "Forbidden", "Tweet needs to be a bit shorter.")
        if len(media_ids) > MAX_MEDIA:
            return invalid_request(f"At most {MAX_MEDIA} media ids.")
        reply = body.get("reply")
        if reply is not None and not _reply_ok(reply):
            return invalid_request(
                "reply.in_reply_to_tweet_id must be a Post id, and exclude_reply_user_ids a "
                "list of User ids."
            )
        with self.lock:
            parent = None
            if reply is not None:
                parent = next(
                    (t for t in self.tweets if t["id"] == reply["in_reply_to_tweet_id"]), None
                )
                if parent is None:  # X's words as seen (v1.1's code 385)
                    return problem(
                        403,
                        "Forbidden",
                        "You attempted to reply to a Tweet that is deleted or not visible to you.",
                    )
            items = [self.media.get(media_id) for media_id in media_ids]
            for item in items:
                if item is None or item["user_id"] != user_id or item["expires_at"] < time.time():
                    return invalid_request("Your media IDs are invalid.")
                if item["state"] != "succeeded":
                    return invalid_request("Your media IDs are not yet processed.")
            if len(items) > 1 and any(item["format"] == "GIF" for item in items):
                return invalid_request("An animated GIF must be the only media in a post.")
            if text and any(t["raw_text"] == text for t in self.tweets_of(user_id)):
                return problem(
                    403,
                    "Forbidden",
                    "You are not allowed to create a Tweet with duplicate content.",
                )
            tweet = self._store_tweet(
                user_id,
                text,
                items,
                datetime.now(UTC),
                reply_to=parent,
                exclude=frozenset((reply or {}).get("exclude_reply_user_ids") or ()),
            )
        return answer_json(201, {"data": {"id": tweet["id"], "text": tweet["text"]}})

    def _store_tweet(
        self,
        user_id,
        text: str,
        items: list,
        created_at: datetime,
        *,
        reply_to: dict | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> dict:
        """Store a post as X shows it (call with the lock held); with `reply_to`, as a reply
        to that post, the handles of those it answers put before its text."""
        sent = text
        if reply_to is not None:
            handles = self._reply_handles(reply_to, user_id, exclude, text)
            text = " ".join([*(f"@{h}" for h in handles), text]) if handles else text
        shown, urls, last = [], [], 0
        for span in textutil.find_urls(text):
            shown.append(html.escape(text[last : span.start], quote=False))
            tco = f"https://t.co/{secrets.token_hex(5)}"
            expanded = span.text if "://" in span.text else f"http://{span.text}"
            urls.append({"url": tco, "expanded_url": expanded, "display_url": span.text[:26]})
            shown.append(tco)
            last = span.end
        shown.append(html.escape(text[last:], quote=False))
        rendered = "".join(shown)
        tweet_id = str(next(self._ids))
        username = self.users[user_id]["username"]
        if items:
            tco = f"https://t.co/{secrets.token_hex(5)}"
            rendered = f"{rendered} {tco}" if rendered else tco
            urls.append(
                {
                    "url": tco,
                    "expanded_url": f"https://x.com/{username}/status/{tweet_id}/photo/1",
                    "display_url": f"pic.x.com/{tco[-10:]}",
                    "media_key": items[0]["media_key"],
                }
            )
        for entity in urls:  # positions in code points, as X gives them
            entity["start"] = rendered.index(entity["url"])
            entity["end"] = entity["start"] + len(entity["url"])
        by_name = {u["username"].lower(): u["id"] for u in self.users.values()}
        mentions = [
            {
                "start": match.start(),
                "end": match.end(),
                "username": match.group(1),
                "id": by_name[match.group(1).lower()],
            }
            for match in _MENTION.finditer(rendered)
            if match.group(1).lower() in by_name
        ]
        entities: dict[str, Any] = {"urls": urls} if urls else {}
        if mentions:
            entities["mentions"] = mentions
        tweet = {
            "id": tweet_id,
            "text": rendered,
            # As sent (without the handles X puts before a reply): what duplicates compare.
            "raw_text": sent,
            "author_id": user_id,
            "created_at": created_at,
            "edit_history_tweet_ids": [tweet_id],
            "entities": entities,
            "mentions": {m["id"] for m in mentions},
            "conversation_id": tweet_id,
            "in_reply_to_user_id": None,
            "referenced_tweets": [],
            "lang": "en",
            "media": [
                {"media_key": i["media_key"], "alt_text": i["alt_text"], "width": i["width"]}
                for i in items
            ],
            # What people did with it (engage); replies and quotes are counted from the posts.
            "counts": dict.fromkeys(
                (
                    "like",
                    "retweet",
                    "reply",
                    "quote",
                    "bookmark",
                    "impression",
                    "url_link_clicks",
                    "user_profile_clicks",
                ),
                0,
            ),
        }
        if reply_to is not None:
            tweet["conversation_id"] = reply_to["conversation_id"]
            tweet["in_reply_to_user_id"] = reply_to["author_id"]
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to["id"]}]
        self.tweets.insert(0, tweet)
        self.tweets.sort(key=lambda t: t["created_at"], reverse=True)
        return tweet

    def _reply_handles(
        self, parent: dict, user_id: str, exclude: frozenset[str], text: str
    ) -> list[str]:
        """The usernames X puts before a reply to `parent`: its author, then those `parent`
        itself answered (the handles at its start), less the replier, the users excluded and
        those the text already begins with."""
        by_name = {u["username"].lower(): u["id"] for u in self.users.values()}
        leading = _LEADING_HANDLES.match(parent["text"])
        answered = [parent["author_id"]] + [
            by_name[name.lower()]
            for name in _MENTION.findall(leading.group() if leading else "")
            if name.lower() in by_name
        ]
        typed = _LEADING_HANDLES.match(text)
        already = {n.lower() for n in _MENTION.findall(typed.group() if typed else "")}
        names = []
        for answered_id in dict.fromkeys(answered):
            name = self.users[answered_id]["username"]
            if (
                answered_id != user_id
                and answered_id not in exclude
                and name.lower() not in already
            ):
                names.append(name)
        return names

    def user_tweets(self, request: Request) -> Answer:
        """GET /2/users/:id/tweets: newest first, max_results 5–100, start_time, exclude."""
        _, refused = self._user_for(request, "tweet.read", "users.read")
        if refused:
            return refused
        with self.lock:
            self.timeline_queries.append({k: v[0] for k, v in request.query.items()})
        user_id = request.path.split("/")[3]
        if user_id not in self.users:
            return problem(
                404,
                "Not Found Error",
                f"Could not find user with id: [{user_id}].",
                "https://api.x.com/2/problems/resource-not-found",
            )
        try:
            limit = int(request.param("max_results") or 10)
        except ValueError:
            limit = 0
        if not 5 <= limit <= 100:
            return invalid_request("The `max_results` query parameter value must be 5 to 100.")
        since = None
        if request.param("start_time"):
            try:
                since = datetime.strptime(request.param("start_time"), "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                return invalid_request("start_time must be YYYY-MM-DDTHH:mm:ssZ.")
            since = since.replace(tzinfo=UTC)
        fields = set((request.param("tweet.fields") or "").split(","))
        exclude = set(filter(None, (request.param("exclude") or "").split(",")))
        if not exclude <= {"retweets", "replies"}:
            return invalid_request("The `exclude` query parameter value must be retweets, replies.")
        listed_before = datetime.now(UTC) - timedelta(seconds=self.timeline_delay)
        found = [
            t
            for t in self.tweets_of(user_id)
            if (since is None or t["created_at"] >= since)
            and t["created_at"] <= listed_before
            and not ("replies" in exclude and _replied_to(t))
        ][:limit]
        if not found:
            return answer_json(200, {"meta": {"result_count": 0}})
        data = []
        for tweet in found:
            item = {
                "id": tweet["id"],
                "text": tweet["text"],
                "edit_history_tweet_ids": tweet["edit_history_tweet_ids"],
            }
            if "created_at" in fields:
                item["created_at"] = tweet["created_at"].isoformat(timespec="milliseconds")
                item["created_at"] = item["created_at"].replace("+00:00", "Z")
            if "entities" in fields and tweet["entities"]:
                item["entities"] = tweet["entities"]
            if "attachments" in fields and tweet["media"]:
                item["attachments"] = {"media_keys": [m["media_key"] for m in tweet["media"]]}
            if "referenced_tweets" in fields and tweet["referenced_tweets"]:
                item["referenced_tweets"] = [dict(r) for r in tweet["referenced_tweets"]]
            data.append(item)
        meta = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
        return answer_json(200, {"data": data, "meta": meta})

    def mentions(self, request: Request) -> Answer:
        """GET /2/users/:id/mentions: newest first; since_id and until_id (exclusive),
        max_results 5–100, pagination_token; the fields and authors asked for."""
        _, refused = self._user_for(request, "tweet.read", "users.read")
        if refused:
            return refused
        with self.lock:
            self.mention_queries.append({k: v[0] for k, v in request.query.items()})
        user_id = request.path.split("/")[3]
        if user_id not in self.users:
            return problem(
                404,
                "Not Found Error",
                f"Could not find user with id: [{user_id}].",
                "https://api.x.com/2/problems/resource-not-found",
            )
        limit = request.param("max_results") or "10"
        if not limit.isdigit() or not 5 <= int(limit) <= 100:
            return invalid_request("The `max_results` query parameter value must be 5 to 100.")
        bounds = {}
        for name in ("since_id", "until_id"):
            value = request.param(name)
            if value is not None and not value.isdigit():
                return invalid_request(f"The `{name}` query parameter value is not a Post id.")
            bounds[name] = int(value) if value else None
        token = request.param("pagination_token")
        start = self.page_tokens.get(token or "") if token else None
        if token and (start is None or start["user_id"] != user_id):
            return invalid_request(
                f"The `pagination_token` query parameter value [{token}] is not valid."
            )
        found = [
            t
            for t in self.mentions_of(user_id)
            if (bounds["since_id"] is None or int(t["id"]) > bounds["since_id"])
            and (bounds["until_id"] is None or int(t["id"]) < bounds["until_id"])
            and (start is None or int(t["id"]) < start["before"])
        ]
        page, rest = found[: int(limit)], found[int(limit) :]
        if not page:
            return answer_json(200, {"meta": {"result_count": 0}})
        fields = set((request.param("tweet.fields") or "").split(","))
        answer: dict[str, Any] = {"data": [self._post_json(t, fields) for t in page]}
        if "author_id" in (request.param("expansions") or "").split(","):
            user_fields = set((request.param("user.fields") or "").split(","))
            authors = dict.fromkeys(t["author_id"] for t in page)
            answer["includes"] = {
                "users": [self._user_json(self.users[a], user_fields) for a in authors]
            }
        meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if rest:
            next_token = secrets.token_hex(8)
            with self.lock:
                self.page_tokens[next_token] = {"user_id": user_id, "before": int(page[-1]["id"])}
            meta["next_token"] = next_token
        answer["meta"] = meta
        return answer_json(200, answer)

    def search_recent(self, request: Request) -> Answer:
        """GET /2/tweets/search/recent: the posts of the last 7 days that match `query`, newest
        first; since_id and until_id (exclusive), max_results 10–100, next_token; the fields,
        figures and authors asked for."""
        _, refused = self._user_for(request, "tweet.read", "users.read")
        if refused:
            return refused
        with self.lock:
            self.search_queries.append({k: v[0] for k, v in request.query.items()})
        text = request.param("query") or ""
        if not text.strip():
            return invalid_request("The `query` query parameter can not be empty.")
        if len(text) > MAX_QUERY_LENGTH:
            return invalid_request(
                f"The `query` query parameter value is {len(text)} characters long; the "
                f"longest query is {MAX_QUERY_LENGTH}."
            )
        try:
            rule = _Query(text).parse()
        except ValueError as exc:
            return invalid_request(f"There were errors processing your request: {exc}")
        limit = request.param("max_results") or "10"
        if not limit.isdigit() or not 10 <= int(limit) <= 100:
            return invalid_request(
                f"The `max_results` query parameter value [{limit}] is not between 10 and 100"
            )
        if (request.param("sort_order") or "recency") not in ("recency", "relevancy"):
            return invalid_request("The `sort_order` query parameter must be recency or relevancy.")
        fields = set(filter(None, (request.param("tweet.fields") or "").split(",")))
        if not fields <= TWEET_FIELDS:
            return invalid_request(
                f"The `tweet.fields` query parameter value [{sorted(fields - TWEET_FIELDS)[0]}] "
                "is not one of the fields of a Post."
            )
        bounds = {}
        for name in ("since_id", "until_id"):
            value = request.param(name)
            if value is not None and not value.isdigit():
                return invalid_request(f"The `{name}` query parameter value is not a Post id.")
            bounds[name] = int(value) if value else None
        reach = datetime.now(UTC) - timedelta(days=SEARCH_DAYS)
        with self.lock:
            recent = [t for t in self.tweets if t["created_at"] >= reach]
            since = next((t for t in self.tweets if int(t["id"]) == bounds["since_id"]), None)
        if since is not None and since["created_at"] < reach:
            larger = min((int(t["id"]) for t in recent), default=int(since["id"]) + 1) - 1
            return problem(
                400,
                "Invalid Request",
                "One or more parameters to your request was invalid.",
                "https://api.x.com/2/problems/invalid-request",
                errors=[
                    {
                        "parameters": {"since_id": [since["id"]]},
                        "message": "'since_id' must be a tweet id created after "
                        f"{reach:%Y-%m-%dT%H:%M}Z. Please use a 'since_id' that is larger than "
                        f"{larger}",
                    }
                ],
            )
        token = request.param("next_token")
        start = self.search_tokens.get(token or "") if token else None
        asked = (text, bounds["since_id"], bounds["until_id"])
        if token and (start is None or start["asked"] != asked):
            return invalid_request(
                f"The `next_token` query parameter value [{token}] is not valid."
            )
        with self.lock:
            users = {u["id"]: u for u in self.users.values()}
            found = [
                t
                for t in sorted(recent, key=lambda t: int(t["id"]), reverse=True)
                if (bounds["since_id"] is None or int(t["id"]) > bounds["since_id"])
                and (bounds["until_id"] is None or int(t["id"]) < bounds["until_id"])
                and (start is None or int(t["id"]) < start["before"])
                and rule.matches(t, users[t["author_id"]])
            ]
            page, rest = found[: int(limit)], found[int(limit) :]
            if not page:
                return answer_json(200, {"meta": {"result_count": 0}})
            answer: dict[str, Any] = {"data": [self._lookup_json(t, fields) for t in page]}
        if "author_id" in (request.param("expansions") or "").split(","):
            user_fields = set((request.param("user.fields") or "").split(","))
            authors = dict.fromkeys(t["author_id"] for t in page)
            answer["includes"] = {
                "users": [self._user_json(self.users[a], user_fields) for a in authors]
            }
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if rest:
            next_token = secrets.token_hex(12)
            with self.lock:
                self.search_tokens[next_token] = {"asked": asked, "before": int(page[-1]["id"])}
            meta["next_token"] = next_token
        answer["meta"] = meta
        return answer_json(200, answer)

    def _post_json(self, tweet: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        """A Post object with the default fields and those of `fields` that it has."""
        item = {
            "id": tweet["id"],
            "text": tweet["text"],
            "edit_history_tweet_ids": tweet["edit_history_tweet_ids"],
        }
        if "created_at" in fields:
            moment = tweet["created_at"].isoformat(timespec="milliseconds")
            item["created_at"] = moment.replace("+00:00", "Z")
        for name in ("author_id", "conversation_id", "lang"):
            if name in fields:
                item[name] = tweet[name]
        if "in_reply_to_user_id" in fields and tweet["in_reply_to_user_id"]:
            item["in_reply_to_user_id"] = tweet["in_reply_to_user_id"]
        if "referenced_tweets" in fields and tweet["referenced_tweets"]:
            item["referenced_tweets"] = [dict(r) for r in tweet["referenced_tweets"]]
        if "entities" in fields and tweet["entities"]:
            item["entities"] = tweet["entities"]
        return item

    def lookup_tweets(self, request: Request) -> Answer:
        """GET /2/tweets?ids=…: up to 100 posts, in the order asked; a post not there is left
        out and named in errors (Not Found); non-public figures only for the token's own posts
        of the last 30 days, any other post asked with them left out with a field error."""
        user_id, refused = self._user_for(request, "tweet.read", "users.read")
        if refused:
            return refused
        with self.lock:
            self.lookup_queries.append({k: v[0] for k, v in request.query.items()})
        ids = (request.param("ids") or "").split(",")
        if not ids or not all(i.isdigit() and len(i) <= 19 for i in ids):
            return invalid_request(
                f"The `ids` query parameter value [{request.param('ids')}] is not valid."
            )
        if len(ids) > LOOKUP_IDS:
            return invalid_request(f"The `ids` query parameter may hold up to {LOOKUP_IDS} ids.")
        fields = set(filter(None, (request.param("tweet.fields") or "").split(",")))
        if not fields <= TWEET_FIELDS:
            return invalid_request(
                f"The `tweet.fields` query parameter value [{sorted(fields - TWEET_FIELDS)[0]}] "
                "is not one of the fields of a Post."
            )
        private = fields & PRIVATE_FIELDS
        if private and self.refuse_private_fields:
            return problem(
                403,
                "Forbidden",
                "You are not permitted to request the fields non_public_metrics, "
                "organic_metrics or promoted_metrics.",
                "https://api.x.com/2/problems/client-forbidden",
            )
        data, errors = [], []
        recent = datetime.now(UTC) - timedelta(days=PRIVATE_METRICS_DAYS)
        with self.lock:
            for post_id in dict.fromkeys(ids):
                tweet = next((t for t in self.tweets if t["id"] == post_id), None)
                if tweet is None:
                    errors.append(_not_found(post_id))
                elif private and (tweet["author_id"] != user_id or tweet["created_at"] < recent):
                    errors.append(_field_refused(post_id, sorted(private)[0]))
                else:
                    data.append(self._lookup_json(tweet, fields))
        answer: dict[str, Any] = {}
        if data:
            answer["data"] = data
        if errors:
            answer["errors"] = errors
        return answer_json(200, answer)

    def _lookup_json(self, tweet: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        """A Post object with `fields`, its figures among them (call with the lock held)."""
        item = self._post_json(tweet, fields)
        counts = tweet["counts"]
        replies = counts["reply"] + len([t for t in self.tweets if _replied_to(t) == tweet["id"]])
        quotes = counts["quote"] + len(
            [t for t in self.tweets if _referenced(t, "quoted") == tweet["id"]]
        )
        if "public_metrics" in fields:
            item["public_metrics"] = {
                "retweet_count": counts["retweet"],
                "reply_count": replies,
                "like_count": counts["like"],
                "quote_count": quotes,
                "bookmark_count": counts["bookmark"],
                "impression_count": counts["impression"],
            }
        if "non_public_metrics" in fields:
            item["non_public_metrics"] = {
                "impression_count": counts["impression"],
                "url_link_clicks": counts["url_link_clicks"],
                "user_profile_clicks": counts["user_profile_clicks"],
            }
        if "organic_metrics" in fields:
            item["organic_metrics"] = {
                "impression_count": counts["impression"],
                "like_count": counts["like"],
                "reply_count": replies,
                "retweet_count": counts["retweet"],
                "url_link_clicks": counts["url_link_clicks"],
                "user_profile_clicks": counts["user_profile_clicks"],
            }
        return item

    def _user_json(self, user: dict[str, str], fields: set[str]) -> dict[str, str]:
        # id, name and username are always given; other user.fields are not kept here.
        return {k: v for k, v in user.items() if k in {"id", "name", "username"} | fields}


_QUERY_TOKEN = re.compile(
    r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<neg>-?)(?:"(?P<phrase>[^"]*)"|(?P<word>[^\s()"]+)))'
)
# Operators that may stand alone in a query; the others need one of these beside them.
STANDALONE = frozenset({"keyword", "phrase", "hashtag", "mention", "from"})
# X's other operators (x-api/posts/search/integrate/operators), which this server does not read.
UNKNOWN_OPERATORS = frozenset(
    {
        "to",
        "url",
        "retweets_of",
        "in_reply_to_tweet_id",
        "retweets_of_tweet_id",
        "quotes_of_tweet_id",
        "context",
        "entity",
        "conversation_id",
        "list",
        "place",
        "place_country",
        "point_radius",
        "bounding_box",
        "has",
    }
)


def _words(text: str) -> list[str]:
    """A post's text as X's keyword matching sees it: lower-case tokens split on punctuation,
    symbols and separators."""
    return re.findall(r"\w+", html.unescape(text).lower())


class _Query:
    """A recent-search query, parsed as build-a-query describes it: `a b` is AND, `a OR b`
    is OR (AND binds first), `-a` is NOT (never of a group), parentheses group."""

    def __init__(self, text: str) -> None:
        self.tokens: list[re.Match] = []
        at = 0
        while at < len(text.rstrip()):
            match = _QUERY_TOKEN.match(text, at)
            if match is None or match.end() == at:
                raise ValueError(f"cannot read the query at position {at + 1}")
            self.tokens.append(match)
            at = match.end()
        self.at = 0

    def parse(self) -> "_Rule":
        rule = self._or()
        if self.at != len(self.tokens):
            raise ValueError("unmatched ')'")
        if not rule.standalone():
            raise ValueError(
                "a query needs at least one standalone operator (a keyword, phrase, hashtag, "
                "mention or from:) that is not negated"
            )
        return rule

    def _peek(self) -> re.Match | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _or(self) -> "_Rule":
        parts = [self._and()]
        while (token := self._peek()) is not None and token["word"] == "OR" and not token["neg"]:
            self.at += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _Rule("or", parts=parts)

    def _and(self) -> "_Rule":
        parts = []
        while (token := self._peek()) is not None and not token["close"]:
            if token["word"] == "OR" and not token["neg"]:
                break
            self.at += 1
            if token["open"]:
                parts.append(self._or())
                closing = self._peek()
                if closing is None or not closing["close"]:
                    raise ValueError("missing ')'")
                self.at += 1
            else:
                parts.append(_Rule.of(token))
        if not parts:
            raise ValueError("an operator is missing")
        return parts[0] if len(parts) == 1 else _Rule("and", parts=parts)


class _Rule:
    """One operator of a query (or a group of them) and whether a post matches it."""

    def __init__(
        self, kind: str, value: str = "", *, negated: bool = False, parts: list | None = None
    ) -> None:
        self.kind, self.value, self.negated, self.parts = kind, value, negated, parts or []

    @classmethod
    def of(cls, token: re.Match) -> "_Rule":
        negated = bool(token["neg"])
        if token["phrase"] is not None:
            return cls("phrase", token["phrase"], negated=negated)
        word = token["word"]
        name, colon, value = word.partition(":")
        if colon and name in ("from", "lang", "is"):
            if name == "is" and value != "retweet":
                raise ValueError(f"is:{value} is not an operator this server knows")
            return cls(name, value, negated=negated)
        if colon and name in UNKNOWN_OPERATORS:
            raise ValueError(f"{name}: is not an operator this server knows")
        if word.startswith("#") and len(word) > 1:
            return cls("hashtag", word[1:], negated=negated)
        if word.startswith("@") and len(word) > 1:
            return cls("mention", word[1:], negated=negated)
        return cls("keyword", word, negated=negated)

    def standalone(self) -> bool:
        if self.kind == "and":
            return any(part.standalone() for part in self.parts)
        if self.kind == "or":
            return all(part.standalone() for part in self.parts)
        return self.kind in STANDALONE and not self.negated

    def matches(self, tweet: dict[str, Any], author: dict[str, str]) -> bool:
        if self.kind == "and":
            return all(part.matches(tweet, author) for part in self.parts)
        if self.kind == "or":
            return any(part.matches(tweet, author) for part in self.parts)
        return self._leaf(tweet, author) != self.negated

    def _leaf(self, tweet: dict[str, Any], author: dict[str, str]) -> bool:
        value = self.value.lower()
        text = html.unescape(tweet["text"])
        if self.kind == "keyword":
            return all(word in _words(text) for word in _words(value)) and bool(_words(value))
        if self.kind == "phrase":
            words, wanted = _words(text), _words(value)
            return bool(wanted) and any(
                words[i : i + len(wanted)] == wanted for i in range(len(words))
            )
        if self.kind == "hashtag":
            return value in {tag.lower() for tag in re.findall(r"(?<![\w&])#(\w+)", text)}
        if self.kind == "mention":
            return value in {name.lower() for name in _MENTION.findall(text)}
        if self.kind == "from":
            return value in (author["username"].lower(), author["id"])
        if self.kind == "lang":
            return tweet["lang"].lower() == value
        return _referenced(tweet, "retweeted") is not None  # is:retweet


def _referenced(tweet: dict[str, Any], kind: str) -> str | None:
    return next((r["id"] for r in tweet["referenced_tweets"] if r["type"] == kind), None)


def _replied_to(tweet: dict[str, Any]) -> str | None:
    return _referenced(tweet, "replied_to")


def _reply_ok(reply: Any) -> bool:
    """POST /2/tweets' `reply`: in_reply_to_tweet_id a Post id (required), and
    exclude_reply_user_ids, if given, a list of User ids."""
    if not isinstance(reply, dict):
        return False
    post_id = reply.get("in_reply_to_tweet_id")
    if not isinstance(post_id, str) or not post_id.isdigit() or len(post_id) > 19:
        return False
    excluded = reply.get("exclude_reply_user_ids", [])
    return isinstance(excluded, list) and all(
        isinstance(user_id, str) and user_id.isdigit() for user_id in excluded
    )


def _not_found(post_id: str) -> dict[str, str]:
    """The errors entry of a post X does not have."""
    return {
        "value": post_id,
        "detail": f"Could not find tweet with ids: [{post_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": post_id,
        "type": "https://api.x.com/2/problems/resource-not-found",
    }


def _field_refused(post_id: str, field: str) -> dict[str, str]:
    """The errors entry of a post whose `field` the token may not read (the post is left out)."""
    return {
        "value": post_id,
        "detail": f"Sorry, you are not authorized to access '{field}' on the Tweet with ids: "
        f"[{post_id}].",
        "title": "Field Authorization Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": post_id,
        "section": "data",
        "field": field,
        "type": "https://api.x.com/2/problems/not-authorized-for-field",
    }


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
