"""Meta's Graph API for the tests: one server playing graph.facebook.com and www.facebook.com
(the login dialog) for the Facebook Pages and Instagram channels, written from Meta's pages:

- facebook-login/guides/advanced/manual-flow: GET /<version>/dialog/oauth (client_id,
  redirect_uri, state, response_type=code, scope separated by commas or spaces; auto-approved as a
  person clicking "Continue" would, 302 to redirect_uri?code=…&state=…#_=_), and
  /<version>/oauth/access_token exchanging the code (client_id, client_secret, redirect_uri
  identical to the dialog's, a code used once) for a short-lived User token;
  facebook-login/guides/access-tokens/get-long-lived: grant_type=fb_exchange_token for a
  long-lived one (expires_in 5183944), refused for an expired token.
- pages/access-tokens: GET /me/accounts lists the Pages with their Page tokens (no expiry when
  read with a long-lived User token), with field expansion (`instagram_business_account{…}`)
  and cursor paging; needs pages_show_list.
- pages-api/posts and graph-api/reference/photo: POST /{page-id}/feed (message,
  attached_media[i]={"media_fbid": …} of unpublished photos), POST /{page-id}/photos (multipart
  `source` or `url`; caption, alt_text_custom, published; under 10 MB, not animated), GET
  /{page-id}/posts, GET /{node}; a Page token of that Page with pages_manage_posts /
  pages_read_engagement. A copy of the Page's previous post is refused (#506). A post keeps
  its `message` as sent; its `attachments` (graph-api/reference/story-attachment) are a "photo",
  an "album" with its photos as `subattachments`, or, for a text post holding a link, the link
  preview Facebook adds ("share", with the link's `url`).
- instagram-platform/content-publishing, ig-user/media, ig-container, ig-user/media_publish,
  ig-user/content_publishing_limit: containers FETCH their image_url with requests, as Meta
  "cURLs" it (JPEG, ≤ 8 MiB, aspect ratio 4:5 to 1.91:1), answer IN_PROGRESS for
  `container_polls` reads and then FINISHED (or `container_outcome`), carousels of 2 to 10
  finished items, media_publish once per container and within the publishing quota; a
  Facebook User token with instagram_basic and instagram_content_publish.
- Comments (issue 17). graph-api/reference/page/published_posts: GET /{page-id}/published_posts,
  the Page's own posts newest first, cursor-paged. graph-api/reference/page-post/comments and
  object/comments: GET /{page-post-id}/comments with `filter` (toplevel by default, or stream:
  replies too, each with its `parent`), `order` (chronological by default, or
  reverse_chronological), `since` (a Unix time or an ISO time; taken as inclusive), `limit`
  (≤ 100) and cursor paging (graph-api/results: paging.cursors.before/after, paging.next absent
  on the last page; a cursor names an item, and is invalid once that item is deleted); needs the
  Page's token with pages_read_engagement and pages_read_user_content (#283 without it).
  graph-api/reference/comment fields: id, message, from{id,name}, created_time, parent,
  permalink_url, is_hidden, like_count, comment_count; any other is refused (#100 "Tried
  accessing nonexisting field"). A deleted comment is simply gone; a hidden one is still listed
  to the Page, with is_hidden true. Instagram, ig-media/comments and ig-comment/replies: GET
  /{ig-media-id}/comments lists the top-level comments newest first (what integrations report;
  Meta's page does not say), with ig-comment fields id, text, username, timestamp,
  from{id,username}, hidden, parent_id, like_count, media and the `replies{…}` expansion
  (`ig_reply_page` replies, oldest first, with a next link when there are more); GET
  /{ig-comment-id}/replies pages them; both need instagram_manage_comments. IG media give
  `comments_count` (replies included). Tests make comments appear with `add_comment`,
  `add_ig_comment`, `hide_comment` and `delete_comment`.
- Replies (issue 17). graph-api/reference/object/comments ("Publishing") and
  pages-api/comments-mentions: POST /{object-id}/comments with `message` on a Page post or on a
  comment of it, by the Page (its token with pages_manage_engagement), answering {"id"}; the
  comment is recorded with the Page as its author (`from`) and, on a comment, that comment as its
  `parent`. A reply to a reply is refused (#100): Facebook shows two levels and a reply's
  can_comment is false (the refusal's words are a stand-in). GET /{comment-id}/comments lists a
  comment's replies like the post's edge. instagram ig-comment/replies ("Creating"): POST
  /{ig-comment-id}/replies with `message` (instagram_manage_comments), "replies to a reply will
  be added to the top-level comment", "You cannot reply to hidden comments" (refused, #100, words
  a stand-in); the reply's author is the account (from{id: its IG user id, username}). GET
  /{comment-id} answers a comment's fields.
- Engagement (issue 17). The multiple-id read GET /?ids=a,b (at most 50: "(#100) Too many IDs")
  with field expansion and modifiers on a Page post: reactions / comments with
  `.summary(total_count)`, `.limit(n)`, `.filter(stream|toplevel)` (summary {"total_count"}),
  `shares` ({"count"}, left out when nobody shared, as integrators report it); on an IG medium:
  like_count, comments_count; any other field is refused (#100). An id the server does not have
  answers as `missing_ids` says: "refuse" (the default: the whole read refused, #803 "Some of the
  aliases you requested do not exist: …"), "error" (an {"error": {code 100, subcode 33}} in its
  place) or "omit" (left out). GET /insights?ids=…&metric=… reads the insights edge of several
  posts (graph-api/reference/insights; a Page post needs its Page's token with read_insights and
  gives post_media_view and post_clicks; instagram-media/insights needs instagram_manage_insights
  and gives views, reach, likes, comments, shares, saved, total_interactions; a deprecated metric
  such as post_impressions or impressions is refused, #100 "must be a valid insights metric";
  no metric at all is #3001/1504028), each as {"data": [{"name", "period": "lifetime",
  "values": [{"value"}], "title", "id"}]}. Tests set the figures with `add_figures` and delete
  posts with `delete_post` and `delete_ig_media`. The multiple-id read answers comments too (the
  inbox's re-check): a Page post's comment with the comment fields (is_hidden, …) for its Page's
  token with pages_read_user_content (#283 without it), an IG comment with the ig-comment fields
  (hidden, …) with instagram_manage_comments; a deleted comment is an id the server does not
  have.
- graph-api/guides/error-handling and instagram-graph-api/reference/error-codes: every refusal is
  {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}; 190 with subcode 463
  for an expired token, 460 for an invalidated one. The IG media errors use the codes of Meta's
  table where I could read them (36000/2207004 too large, 9/2207042 quota, 9007/2207027 not
  ready, -2/2207003 download timeout); the others (format, aspect ratio, download failure) are
  plausible stand-ins: the channel treats every one of them the same way.
- Failures on demand (`fail_next(route, mode)`): "190" expired token, "429" (HTTP 429, code 4,
  with X-App-Usage and X-Business-Use-Case-Usage and its estimated_time_to_regain_access in
  minutes, `minutes=`), "rate" (HTTP 400 with `code=` 4, 17, 32, 613 or 80001 and X-Page-Usage),
  "500" (code 1, is_transient), "transient" (code 2), "slow" (do the work, answer late),
  "malformed" (200 whose `data` is no list), "not_json" (200 with an HTML page), or any
  other Graph error code as a permanent refusal; with `after=True` the call is made first (a
  post created, then a 5xx), and "drop" makes it, then closes the connection unanswered.
"""

import base64
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests
from PIL import Image

from networks.channels.facebook import GRAPH_VERSION

from .server import Answer, FakeNetwork, Request, answer_json

SHORT_LIVED_SECONDS = 3600
LONG_LIVED_SECONDS = 5_183_944
CODE_SECONDS = 600
CONTAINER_SECONDS = 24 * 3600
PERMISSIONS = frozenset(
    {
        "public_profile",
        "email",
        "pages_show_list",
        "pages_manage_posts",
        "pages_read_engagement",
        "pages_manage_engagement",
        "pages_read_user_engagement",
        "pages_read_user_content",
        "business_management",
        "instagram_basic",
        "instagram_content_publish",
        "instagram_manage_comments",
        "read_insights",
        "instagram_manage_insights",
    }
)
MAX_IDS = 50
FB_POST_METRICS = frozenset({"post_media_view", "post_clicks"})
IG_MEDIA_METRICS = frozenset(
    {"views", "reach", "likes", "comments", "shares", "saved", "total_interactions"}
)
PHOTO_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"})
PHOTO_MAX_BYTES = 10 * 1000 * 1000
IG_MAX_BYTES = 8 * 1024 * 1024
IG_MAX_CAPTION = 2200
IG_MAX_HASHTAGS = 30
IG_MAX_MENTIONS = 20
IG_MAX_CHILDREN = 10
_VERSIONED = re.compile(r"/(v\d+\.\d+)(/.*)?")


@dataclass
class Token:
    value: str
    kind: str  # "user" or "page"
    scopes: frozenset[str]
    page_id: str = ""
    expires_at: float | None = None
    long_lived: bool = False
    invalidated: bool = False


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    kind: str = "OAuthException",
    subcode: int | None = None,
    user_msg: str | None = None,
    transient: bool | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    if user_msg:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = secrets.token_urlsafe(8)
    return answer_json(status, {"error": error}, headers)


def answer_html(status: int, text: str) -> Answer:
    body = f"<!DOCTYPE html><html><body><h1>{text}</h1></body></html>".encode()
    return status, {"Content-Type": "text/html; charset=utf-8"}, body


class Refused(Exception):
    """A request refused part way: `answer` is what the server says."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer[0])
        self.answer = answer


def parse_fields(spec: str) -> dict[str, str | None]:
    """ "id,name,instagram_business_account{id,username}" → {"id": None, …, "…": "id,username"}."""
    fields: dict[str, str | None] = {}
    depth, start = 0, 0
    spec = spec or ""
    for index, char in enumerate(spec + ","):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            part = spec[start:index].strip()
            start = index + 1
            if not part:
                continue
            if "{" in part and part.endswith("}"):
                name, inner = part.split("{", 1)
                fields[name.strip()] = inner[:-1]
            else:
                fields[part] = None
    return fields


def _graph_time(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _uncursor(value: str | None) -> int:
    try:
        return int(base64.urlsafe_b64decode((value or "").encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return -1


def form_of(request: Request) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """The request's parameters (query, then url-encoded or multipart body) and its files."""
    params = {name: values[0] for name, values in request.query.items() if values}
    files: dict[str, tuple[str, str, bytes]] = {}
    ctype = request.headers.get("Content-Type") or ""
    if ctype.startswith("application/x-www-form-urlencoded"):
        body = parse_qs(request.body.decode(), keep_blank_values=True)
        params.update({name: values[0] for name, values in body.items()})
    elif ctype.startswith("multipart/form-data"):
        import email.parser
        import email.policy

        head = f"Content-Type: {ctype}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename():
                files[name] = (part.get_filename(), part.get_content_type(), data)
            else:
                params[name] = data.decode()
    return params, files


class GraphServer(FakeNetwork):
    app_id = "4455667788"
    app_secret = "meta-app-secret"

    def __init__(self) -> None:
        super().__init__()
        # The app's "Valid OAuth Redirect URIs"; empty: any http(s) address is accepted.
        self.redirect_uris: set[str] = set()
        self.require_appsecret_proof = False
        # What the person unticks in the dialog.
        self.declined: set[str] = set()
        self.user = {"id": "10150000000000001", "name": "Nora North"}
        self.pages: list[dict[str, Any]] = [
            {
                "id": "201",
                "name": "North Desk",
                "username": "northdesk",
                "category": "Media/news company",
                "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"],
                "instagram": "17841400000000001",
            },
            {
                "id": "202",
                "name": "South Desk",
                "category": "Media/news company",
                "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT"],
                "instagram": None,
            },
            {
                "id": "203",
                "name": "Archive (read only)",
                "category": "Library",
                "tasks": ["ANALYZE"],
                "instagram": None,
            },
        ]
        self.ig_users = {
            "17841400000000001": {
                "id": "17841400000000001",
                "username": "north.desk",
                "name": "North Desk",
                "page_id": "201",
            }
        }
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []  # Page posts, newest first
        self.photos: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.ig_media: list[dict[str, Any]] = []  # newest first
        # Comments on Page posts and IG media (`network` says which), in the order made.
        self.comments: list[dict[str, Any]] = []
        # How many replies an IG comment carries in the `replies{…}` expansion.
        self.ig_reply_page = 25
        self.fetched: list[str] = []  # image URLs the containers fetched
        self.container_polls = 0
        self.container_outcome = "FINISHED"
        self.publish_quota = 50
        # What people did with posts and media, by id: reactions, shares, likes, views, clicks.
        self.figures: dict[str, dict[str, int]] = {}
        # How the multiple-id read answers an id it does not have: "refuse", "error" or "omit".
        self.missing_ids = "refuse"
        self._ids = itertools.count(178_414_000_000_000_001)

    # --- tokens, for fixtures and tests -----------------------------------------------------
    def issue_user_token(
        self, *, long_lived: bool = True, scopes: frozenset[str] | set[str] = PERMISSIONS
    ) -> str:
        seconds = LONG_LIVED_SECONDS if long_lived else SHORT_LIVED_SECONDS
        value = "EAAU" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[value] = Token(
                value,
                "user",
                frozenset(scopes),
                expires_at=time.time() + seconds,
                long_lived=long_lived,
            )
        return value

    def issue_page_token(self, page_id: str, *, user_token: Token | None = None) -> str:
        value = "EAAP" + secrets.token_urlsafe(24)
        scopes = user_token.scopes if user_token is not None else PERMISSIONS
        # From a long-lived User token, a Page token does not expire.
        expires = None
        if user_token is not None and not user_token.long_lived:
            expires = user_token.expires_at
        with self.lock:
            self.tokens[value] = Token(value, "page", scopes, page_id=page_id, expires_at=expires)
        return value

    def expire(self, value: str) -> None:
        self.tokens[value].expires_at = time.time() - 60

    def invalidate(self, value: str) -> None:
        self.tokens[value].invalidated = True

    def new_id(self) -> str:
        return str(next(self._ids))

    # --- routing ------------------------------------------------------------------------------
    def route(self, request: Request):
        match = _VERSIONED.fullmatch(request.path)
        if not match:
            return "other", self.not_found
        parts = [part for part in (match.group(2) or "").split("/") if part]
        method = request.method
        if parts == ["dialog", "oauth"] and method == "GET":
            return "dialog", self.dialog
        if parts == ["oauth", "access_token"] and method in ("GET", "POST"):
            return "token", self.access_token
        if parts == ["me"] and method == "GET":
            return "me", self.me
        if parts == ["me", "accounts"] and method == "GET":
            return "accounts", self.accounts
        if parts == [] and method == "GET":
            return "ids", self.read_ids
        if parts == ["insights"] and method == "GET":
            return "insights", self.read_insights
        if len(parts) == 2:
            node, edge = parts
            if (method, edge) == ("GET", "comments"):
                with self.lock:
                    on_ig_media = any(m["id"] == node for m in self.ig_media)
                    on_comment = self._fb_comment_of(node) is not None
                if on_ig_media:
                    return "ig_comments", self.ig_comments
                if on_comment:
                    return "comment_replies", self.comment_replies
                return "comments", self.post_comments
            table = {
                ("POST", "comments"): ("comment", self.create_comment),
                ("POST", "replies"): ("ig_reply", self.create_ig_reply),
                ("GET", "published_posts"): ("published_posts", self.published_posts),
                ("GET", "replies"): ("ig_replies", self.ig_replies),
                ("POST", "feed"): ("feed", self.feed),
                ("POST", "photos"): ("photos", self.upload_photo),
                ("GET", "posts"): ("posts", self.page_posts),
                ("POST", "media"): ("ig_media", self.create_container),
                ("GET", "media"): ("ig_media_list", self.list_ig_media),
                ("POST", "media_publish"): ("ig_publish", self.publish_container),
                ("GET", "content_publishing_limit"): ("ig_limit", self.publishing_limit),
            }
            if (method, edge) in table:
                return table[(method, edge)]
        if len(parts) == 1 and method == "GET":
            if parts[0] in self.containers:
                return "container", self.container_status
            return "node", self.node
        return "other", self.unsupported

    def not_found(self, request: Request) -> Answer:
        return answer_html(404, "Sorry, this content isn't available right now")

    def unsupported(self, request: Request) -> Answer:
        return graph_error(
            400,
            100,
            f"Unsupported {request.method.lower()} request. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api",
            kind="GraphMethodException",
        )

    def failure(self, mode: str, options: dict) -> Answer:
        minutes = options.get("minutes", 5)
        if mode == "190":
            return self._expired()
        if mode == "429":
            usage = {"call_count": 100, "total_cputime": 12, "total_time": 40}
            buc = {
                "201": [
                    {
                        "type": "pages",
                        "call_count": 100,
                        "total_cputime": 12,
                        "total_time": 40,
                        "estimated_time_to_regain_access": minutes,
                    }
                ]
            }
            return graph_error(
                429,
                4,
                "(#4) Application request limit reached",
                transient=True,
                headers={
                    "X-App-Usage": json.dumps(usage),
                    "X-Business-Use-Case-Usage": json.dumps(buc),
                },
            )
        if mode == "rate":
            code = options.get("code", 32)
            usage = {
                "call_count": 100,
                "total_cputime": 20,
                "total_time": 30,
                "estimated_time_to_regain_access": minutes,
            }
            return graph_error(
                400,
                code,
                f"(#{code}) Page request limit reached",
                headers={"X-Page-Usage": json.dumps(usage)},
            )
        if mode == "500":
            return graph_error(500, 1, "An unknown error has occurred.", transient=True)
        if mode == "transient":
            return graph_error(
                503,
                2,
                "An unexpected error has occurred. Please retry your request later.",
                transient=True,
            )
        if mode == "malformed":
            return answer_json(200, {"data": {"id": "17841400000000001"}})
        if mode == "not_json":
            return answer_html(200, "Facebook will be back soon")
        code = int(mode)
        return graph_error(400, code, options.get("message", f"(#{code}) Invalid parameter"))

    # --- authentication -----------------------------------------------------------------------
    def _expired(self) -> Answer:
        return graph_error(
            400,
            190,
            "Error validating access token: Session has expired on Monday, 23-Nov-26 "
            "10:00:00 PST. The current time is Tuesday, 24-Nov-26 07:00:00 PST.",
            subcode=463,
        )

    def _auth(self, request: Request, params: dict[str, str]) -> Token | Answer:
        value = request.bearer() or params.get("access_token")
        if not value:
            return graph_error(
                400,
                2500,
                "An active access token must be used to query information about the current user.",
            )
        token = self.tokens.get(value)
        if token is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        if token.invalidated:
            return graph_error(
                400,
                190,
                "Error validating access token: The session has been invalidated because the "
                "user changed their password or Facebook has changed the session for security "
                "reasons.",
                subcode=460,
            )
        if token.expires_at is not None and token.expires_at <= time.time():
            return self._expired()
        if self.require_appsecret_proof:
            expected = hmac.new(
                self.app_secret.encode(), value.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(params.get("appsecret_proof") or "", expected):
                return graph_error(
                    400,
                    100,
                    "API calls from the server require an appsecret_proof argument",
                    kind="GraphMethodException",
                )
        return token

    @staticmethod
    def _missing(scope: str) -> Answer:
        return graph_error(
            403,
            200,
            f"(#200) The permission {scope} is needed for this call",
        )

    def _page_token(self, request: Request, params: dict, page_id: str, scope: str):
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        if token.kind != "page" or token.page_id != page_id:
            return graph_error(
                403,
                200,
                "(#200) If posting to a page, requires both pages_read_engagement and "
                "pages_manage_posts as an admin with sufficient administrative permission",
            )
        if scope not in token.scopes:
            return self._missing(scope)
        return token

    def _ig_token(self, request: Request, params: dict, ig_id: str, scope: str):
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        if token.kind != "user":
            return graph_error(
                400, 10, "(#10) Application does not have permission for this action"
            )
        for needed in ("instagram_basic", scope):
            if needed not in token.scopes:
                return self._missing(needed)
        if ig_id not in self.ig_users:
            return graph_error(
                400,
                100,
                f"Unsupported post request. Object with ID '{ig_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                kind="GraphMethodException",
                subcode=33,
            )
        return token

    # --- the login dialog and the token endpoint --------------------------------------------
    def dialog(self, request: Request) -> Answer:
        query = {name: values[0] for name, values in request.query.items() if values}
        if query.get("client_id") != self.app_id:
            return answer_html(400, "Invalid App ID: The provided app ID does not look valid.")
        redirect_uri = query.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or (self.redirect_uris and redirect_uri not in self.redirect_uris)
        ):
            return answer_html(
                400,
                "URL blocked: This redirect failed because the redirect URI is not whitelisted "
                "in the app's client OAuth settings.",
            )
        if query.get("response_type", "code") != "code":
            return answer_html(400, "This test server answers response_type=code only.")
        scopes = [s for s in re.split(r"[,\s]+", query.get("scope", "")) if s]
        unknown = sorted(set(scopes) - PERMISSIONS)
        if unknown:
            return answer_html(400, f"Invalid Scopes: {', '.join(unknown)}")
        state = query.get("state")
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = {
                "redirect_uri": redirect_uri,
                "scopes": frozenset(scopes) - self.declined,
                "challenge": query.get("code_challenge"),
                "expires_at": time.time() + CODE_SECONDS,
            }
        answer = {"code": code}
        if state is not None:
            answer["state"] = state
        query_string = "&".join(filter(None, [parts.query, urlencode(answer)]))
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, query_string, "_=_"))
        return 302, {"Location": location}, b""

    def _client_error(self, params: dict[str, str]) -> Answer | None:
        if params.get("client_id") != self.app_id:
            return graph_error(400, 101, "Error validating application. Invalid application ID.")
        if not hmac.compare_digest(params.get("client_secret") or "", self.app_secret):
            return graph_error(400, 1, "Error validating client secret.")
        return None

    def access_token(self, request: Request) -> Answer:
        params, _ = form_of(request)
        refused = self._client_error(params)
        if refused is not None:
            return refused
        if params.get("grant_type") == "fb_exchange_token":
            token = self.tokens.get(params.get("fb_exchange_token") or "")
            if token is None or token.kind != "user" or token.invalidated:
                return graph_error(
                    400, 190, "Invalid OAuth access token - Cannot parse access token"
                )
            if token.expires_at is not None and token.expires_at <= time.time():
                return self._expired()
            value = self.issue_user_token(long_lived=True, scopes=token.scopes)
            return answer_json(
                200,
                {"access_token": value, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS},
            )
        if params.get("grant_type", "authorization_code") != "authorization_code" or not (
            params.get("code")
        ):
            return graph_error(400, 100, "Missing authorization code")
        with self.lock:
            grant = self.codes.pop(params["code"], None)
        if grant is None or grant["expires_at"] <= time.time():
            return graph_error(400, 100, "Invalid verification code format.", subcode=36007)
        if params.get("redirect_uri") != grant["redirect_uri"]:
            return graph_error(
                400,
                100,
                "Error validating verification code. Please make sure your redirect_uri is "
                "identical to the one you used in the OAuth dialog request",
                subcode=36008,
            )
        if grant["challenge"]:
            verifier = params.get("code_verifier") or ""
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                return graph_error(400, 100, "Invalid code verifier")
        value = self.issue_user_token(long_lived=False, scopes=grant["scopes"])
        return answer_json(
            200,
            {"access_token": value, "token_type": "bearer", "expires_in": SHORT_LIVED_SECONDS},
        )

    # --- the person and their Pages -----------------------------------------------------------
    def me(self, request: Request) -> Answer:
        params, _ = form_of(request)
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        if token.kind == "page":
            page = next(p for p in self.pages if p["id"] == token.page_id)
            return answer_json(200, {"id": page["id"], "name": page["name"]})
        return answer_json(200, dict(self.user))

    def _ig_json(self, ig_id: str, spec: str | None) -> dict[str, Any]:
        ig = self.ig_users[ig_id]
        wanted = parse_fields(spec or "id")
        return {name: ig[name] for name in wanted if name in ig and name != "page_id"}

    def accounts(self, request: Request) -> Answer:
        params, _ = form_of(request)
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        if token.kind != "user":
            return graph_error(
                400,
                100,
                "(#100) Tried accessing nonexisting field (accounts) on node type (Page)",
            )
        if "pages_show_list" not in token.scopes:
            return self._missing("pages_show_list")
        fields = parse_fields(params.get("fields") or "access_token,category,name,id,tasks")
        limit = max(1, min(int(params.get("limit") or 25), 100))
        start = _uncursor(params["after"]) + 1 if params.get("after") else 0
        chosen = self.pages[start : start + limit]
        data = []
        for page in chosen:
            item: dict[str, Any] = {}
            for name, inner in fields.items():
                if name == "access_token":
                    item[name] = self.issue_page_token(page["id"], user_token=token)
                elif name == "instagram_business_account":
                    if page.get("instagram"):
                        item[name] = self._ig_json(page["instagram"], inner)
                elif name in page and name != "instagram":
                    item[name] = page[name]
            data.append(item)
        answer: dict[str, Any] = {"data": data}
        if chosen:
            end = start + len(chosen) - 1
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
            if end + 1 < len(self.pages):
                query = urlencode({**params, "after": _cursor(end)})
                paging["next"] = f"{self.url}/{GRAPH_VERSION}/me/accounts?{query}"
            answer["paging"] = paging
        return answer_json(200, answer)

    # --- Page posts and photos ----------------------------------------------------------------
    def add_post(
        self, page_id: str, message: str, *, photos: int = 0, created: float | None = None
    ) -> dict[str, Any]:
        """A post made elsewhere (by hand on Facebook, another tool), e.g. an hour ago."""
        with self.lock:
            items = [
                {"id": self.new_id(), "page_id": page_id, "width": 640, "height": 480}
                for _ in range(photos)
            ]
            return self._add_post(page_id, message, items, created=created)

    def _add_post(
        self, page_id: str, message: str, photos: list[dict], *, created: float | None = None
    ) -> dict[str, Any]:
        number = self.new_id()
        post = {
            "id": f"{page_id}_{number}",
            "page_id": page_id,
            "message": message,
            "created_time": _graph_time(time.time() if created is None else created),
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{number}",
            "photos": photos,
        }
        link = re.search(r"https?://\S+", message)
        if link and not photos:
            post["link"] = link.group()
        self.posts.insert(0, post)
        self.posts.sort(key=lambda p: p["created_time"], reverse=True)
        return post

    def _attachments(self, post: dict[str, Any]) -> dict[str, Any] | None:
        """A post's `attachments` edge, as the story-attachment reference describes it."""
        photos = post["photos"]
        if len(photos) == 1:
            return {"data": [{"media_type": "photo", "target": {"id": photos[0]["id"]}}]}
        if photos:
            inner = [{"media_type": "photo", "target": {"id": p["id"]}} for p in photos]
            return {"data": [{"media_type": "album", "subattachments": {"data": inner}}]}
        if post.get("link"):
            return {"data": [{"media_type": "link", "type": "share", "url": post["link"]}]}
        return None

    def feed(self, request: Request) -> Answer:
        page_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._page_token(request, params, page_id, "pages_manage_posts")
        if not isinstance(token, Token):
            return token
        message = params.get("message", "")
        keys = sorted(
            (int(m.group(1)), name)
            for name in params
            if (m := re.fullmatch(r"attached_media\[(\d+)\]", name))
        )
        with self.lock:
            photos = []
            for _, name in keys:
                try:
                    fbid = str(json.loads(params[name])["media_fbid"])
                except (ValueError, KeyError, TypeError):
                    return graph_error(400, 100, f"(#100) param {name} must be a JSON object")
                photo = self.photos.get(fbid)
                if (
                    photo is None
                    or photo["page_id"] != page_id
                    or photo["published"]
                    or photo["attached"]
                ):
                    return graph_error(
                        400,
                        100,
                        f"(#100) param {name} has invalid media_fbid {fbid}: it must be an "
                        "unpublished photo of this Page",
                    )
                photos.append(photo)
            if not message.strip() and not photos and not params.get("link"):
                return graph_error(400, 100, "(#100) Missing message or attachment")
            previous = next((p for p in self.posts if p["page_id"] == page_id), None)
            if message.strip() and previous is not None and previous["message"] == message:
                return graph_error(400, 506, "(#506) Duplicate status message")
            for photo in photos:
                photo["attached"] = True
            post = self._add_post(page_id, message, photos)
        return answer_json(200, {"id": post["id"]})

    def upload_photo(self, request: Request) -> Answer:
        page_id = request.path.split("/")[2]
        params, files = form_of(request)
        token = self._page_token(request, params, page_id, "pages_manage_posts")
        if not isinstance(token, Token):
            return token
        if "source" in files:
            data = files["source"][2]
        elif params.get("url"):
            try:
                fetched = requests.get(params["url"], timeout=5)
            except requests.RequestException:
                return graph_error(400, 324, "(#324) Missing or invalid image file")
            data = fetched.content if fetched.status_code == 200 else b""
        else:
            return graph_error(400, 324, "(#324) Requires upload file")
        if len(data) >= PHOTO_MAX_BYTES:
            return graph_error(400, 100, "(#100) The photo must be less than 10MB in size")
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception:
            return graph_error(400, 324, "(#324) Missing or invalid image file")
        if image.format not in PHOTO_FORMATS:
            return graph_error(400, 324, f"(#324) Unsupported image format {image.format}")
        if getattr(image, "is_animated", False):
            return graph_error(400, 100, "(#100) Animated photos are not supported")
        published = (params.get("published") or "true").lower() != "false"
        with self.lock:
            photo = {
                "id": self.new_id(),
                "page_id": page_id,
                "caption": params.get("caption", ""),
                "alt_text_custom": params.get("alt_text_custom", ""),
                "format": image.format,
                "width": image.width,
                "height": image.height,
                "bytes": len(data),
                "published": published,
                "attached": False,
            }
            self.photos[photo["id"]] = photo
            if not published:
                return answer_json(200, {"id": photo["id"]})
            photo["attached"] = True
            post = self._add_post(page_id, photo["caption"], [photo])
        return answer_json(200, {"id": photo["id"], "post_id": post["id"]})

    def page_posts(self, request: Request) -> Answer:
        page_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._page_token(request, params, page_id, "pages_read_engagement")
        if not isinstance(token, Token):
            return token
        fields = parse_fields(params.get("fields") or "created_time,message,id")
        limit = max(1, min(int(params.get("limit") or 25), 100))
        posts = [p for p in self.posts if p["page_id"] == page_id][:limit]
        data = []
        for post in posts:
            item = {k: post[k] for k in fields if k in post and (k != "message" or post[k])}
            if "attachments" in fields and self._attachments(post):
                item["attachments"] = self._attachments(post)
            data.append(item)
        return answer_json(200, {"data": data})

    def node(self, request: Request) -> Answer:
        node_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        fields = parse_fields(params.get("fields") or "id")
        found = next((p for p in self.posts if p["id"] == node_id), None)
        found = found or self.photos.get(node_id)
        found = found or next((m for m in self.ig_media if m["id"] == node_id), None)
        found = found or next((p for p in self.pages if p["id"] == node_id), None)
        comment = next((c for c in self.comments if c["id"] == node_id), None)
        if found is None and comment is not None:
            if comment["network"] == "facebook":
                return answer_json(200, self._fb_comment(comment, {**fields, "id": None}))
            return answer_json(200, self._ig_comment(comment, {**fields, "id": None}))
        if found is None:
            return graph_error(
                400,
                100,
                f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                kind="GraphMethodException",
                subcode=33,
            )
        answer = {name: found[name] for name in fields if name in found}
        answer["id"] = found["id"]
        return answer_json(200, answer)

    # --- Instagram content publishing ---------------------------------------------------------
    def _fetch(self, url: str) -> tuple[Image.Image, int]:
        """The image at `url`, fetched as Meta does, or the error Meta would answer."""
        self.fetched.append(url)
        try:
            response = requests.get(url, timeout=5)
        except requests.Timeout:
            raise Refused(
                graph_error(400, -2, "It takes too long to download the media.", subcode=2207003)
            )
        except requests.RequestException:
            response = None
        if response is None or response.status_code != 200:
            raise Refused(
                graph_error(
                    400,
                    9004,
                    "Only photo or video can be accepted as media type.",
                    subcode=2207052,
                    user_msg="The media could not be fetched from this URI. Please check the URI.",
                )
            )
        data = response.content
        if len(data) > IG_MAX_BYTES:
            raise Refused(
                graph_error(
                    400,
                    36000,
                    "The image size is too large.",
                    subcode=2207004,
                    user_msg="The image is too large to download. It should be less than 8 MiB.",
                )
            )
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception:
            image = None
        if image is None or image.format != "JPEG":
            raise Refused(
                graph_error(
                    400,
                    36001,
                    "The image format is not supported.",
                    subcode=2207005,
                    user_msg="The image format is not supported. JPEG is the supported format.",
                )
            )
        ratio = image.width / image.height
        if ratio < 4 / 5 - 1e-9 or ratio > 1.91 + 1e-9:
            raise Refused(
                graph_error(
                    400,
                    36003,
                    "The aspect ratio is not supported.",
                    subcode=2207009,
                    user_msg=f"The submitted image with aspect ratio ('{image.width}/"
                    f"{image.height}') cannot be published. Please submit an image with a valid "
                    "aspect ratio.",
                )
            )
        return image, len(data)

    def _caption_error(self, caption: str) -> Answer | None:
        if len(caption) > IG_MAX_CAPTION:
            return graph_error(400, 100, "(#100) The caption is too long.")
        if len(re.findall(r"(?<!\w)#\w+", caption)) > IG_MAX_HASHTAGS:
            return graph_error(400, 100, "(#100) The caption has too many hashtags.")
        if len(re.findall(r"(?<![\w@])@[\w.]+", caption)) > IG_MAX_MENTIONS:
            return graph_error(400, 100, "(#100) The caption has too many @ tags.")
        return None

    def create_container(self, request: Request) -> Answer:
        ig_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._ig_token(request, params, ig_id, "instagram_content_publish")
        if not isinstance(token, Token):
            return token
        caption = params.get("caption", "")
        refused = self._caption_error(caption)
        if refused is not None:
            return refused
        media_type = (params.get("media_type") or "IMAGE").upper()
        container: dict[str, Any] = {
            "id": self.new_id(),
            "ig_id": ig_id,
            "caption": caption,
            "created_at": time.time(),
            "polls_left": self.container_polls,
            "published": False,
            "used": False,
        }
        if media_type == "CAROUSEL":
            children = [c for c in (params.get("children") or "").split(",") if c]
            if not 2 <= len(children) <= IG_MAX_CHILDREN:
                return graph_error(400, 100, "(#100) A carousel needs between 2 and 10 children.")
            with self.lock:
                items = [self.containers.get(child) for child in children]
                for child, item in zip(children, items, strict=True):
                    if (
                        item is None
                        or item["ig_id"] != ig_id
                        or not item["is_carousel_item"]
                        or item["used"]
                        or self._status(item, poll=False) != "FINISHED"
                    ):
                        return graph_error(
                            400,
                            100,
                            f"(#100) The child container {child} is not a finished carousel "
                            "item of this account.",
                        )
                for item in items:
                    item["used"] = True
                container.update(media_type="CAROUSEL", children=items, is_carousel_item=False)
                self.containers[container["id"]] = container
            return answer_json(200, {"id": container["id"]})
        if media_type != "IMAGE":
            return graph_error(400, 100, f"(#100) media_type {media_type} is not served here")
        if not params.get("image_url"):
            return graph_error(400, 100, "(#100) The parameter image_url is required.")
        try:
            image, size = self._fetch(params["image_url"])
        except Refused as refused:
            return refused.answer
        container.update(
            media_type="IMAGE",
            image_url=params["image_url"],
            alt_text=params.get("alt_text", ""),
            is_carousel_item=(params.get("is_carousel_item") or "").lower() == "true",
            width=image.width,
            height=image.height,
            bytes=size,
        )
        with self.lock:
            self.containers[container["id"]] = container
        return answer_json(200, {"id": container["id"]})

    def _status(self, container: dict[str, Any], *, poll: bool = True) -> str:
        if container["published"]:
            return "PUBLISHED"
        if time.time() - container["created_at"] > CONTAINER_SECONDS:
            return "EXPIRED"
        if container["polls_left"] > 0:
            if poll:
                container["polls_left"] -= 1
            return "IN_PROGRESS"
        return self.container_outcome

    def container_status(self, request: Request) -> Answer:
        container = self.containers[request.path.split("/")[2]]
        params, _ = form_of(request)
        token = self._ig_token(request, params, container["ig_id"], "instagram_basic")
        if not isinstance(token, Token):
            return token
        with self.lock:
            status = self._status(container)
        descriptions = {
            "IN_PROGRESS": "In Progress: Media is still being processed.",
            "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
            "PUBLISHED": "Published: Media has been published.",
            "EXPIRED": "Expired: The container was not published within 24 hours.",
            "ERROR": "Error: Media upload has failed with error code 2207026",
        }
        fields = parse_fields(params.get("fields") or "id")
        answer = {"id": container["id"]}
        if "status_code" in fields:
            answer["status_code"] = status
        if "status" in fields:
            answer["status"] = descriptions[status]
        return answer_json(200, answer)

    def _published_last_day(self, ig_id: str) -> int:
        since = time.time() - 24 * 3600
        return sum(1 for m in self.ig_media if m["ig_id"] == ig_id and m["published_at"] > since)

    def publish_container(self, request: Request) -> Answer:
        ig_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._ig_token(request, params, ig_id, "instagram_content_publish")
        if not isinstance(token, Token):
            return token
        with self.lock:
            container = self.containers.get(params.get("creation_id") or "")
            if container is None or container["ig_id"] != ig_id or container["is_carousel_item"]:
                return graph_error(
                    400, 100, "(#100) The parameter creation_id is not a container to publish."
                )
            status = self._status(container, poll=False)
            if status == "PUBLISHED":
                return graph_error(400, 100, "(#100) The container has already been published.")
            if status != "FINISHED":
                return graph_error(
                    400,
                    9007,
                    "Media ID is not available",
                    subcode=2207027,
                    user_msg="The media is not ready for publishing, please wait for a moment",
                )
            if self._published_last_day(ig_id) >= self.publish_quota:
                return graph_error(
                    400,
                    9,
                    "Application request limit reached",
                    subcode=2207042,
                    user_msg="You reached maximum number of posts that is allowed to be "
                    "published by Content Publishing API.",
                )
            container["published"] = True
            number = self.new_id()
            now = time.time()
            items = container.get("children") or [container]
            media = {
                "id": number,
                "ig_id": ig_id,
                "caption": container["caption"],
                "media_type": "CAROUSEL_ALBUM" if container.get("children") else "IMAGE",
                "permalink": f"https://www.instagram.com/p/C{number[-9:]}/",
                "timestamp": _graph_time(now),
                "published_at": now,
                "items": [
                    {
                        k: item[k]
                        for k in ("id", "image_url", "alt_text", "width", "height", "bytes")
                    }
                    for item in items
                ],
            }
            self.ig_media.insert(0, media)
        return answer_json(200, {"id": number})

    def list_ig_media(self, request: Request) -> Answer:
        ig_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._ig_token(request, params, ig_id, "instagram_basic")
        if not isinstance(token, Token):
            return token
        fields = parse_fields(params.get("fields") or "id")
        limit = max(1, min(int(params.get("limit") or 25), 100))
        media = [m for m in self.ig_media if m["ig_id"] == ig_id][:limit]
        data = []
        for item in media:
            row = {k: item[k] for k in fields if k in item and (k != "caption" or item[k])}
            if "children" in fields and item["media_type"] == "CAROUSEL_ALBUM":
                row["children"] = {"data": [{"id": child["id"]} for child in item["items"]]}
            if "comments_count" in fields:
                row["comments_count"] = sum(1 for c in self.comments if c["on"] == item["id"])
            data.append(row)
        return answer_json(200, {"data": data})

    def add_ig_media(
        self, ig_id: str, caption: str, *, images: int = 1, published: float | None = None
    ) -> dict[str, Any]:
        """A post made elsewhere (in the Instagram app), e.g. an hour ago."""
        now = time.time() if published is None else published
        number = self.new_id()
        media = {
            "id": number,
            "ig_id": ig_id,
            "caption": caption,
            "media_type": "CAROUSEL_ALBUM" if images > 1 else "IMAGE",
            "permalink": f"https://www.instagram.com/p/C{number[-9:]}/",
            "timestamp": _graph_time(now),
            "published_at": now,
            "items": [{"id": self.new_id(), "width": 1080, "height": 1080} for _ in range(images)],
        }
        with self.lock:
            self.ig_media.insert(0, media)
            self.ig_media.sort(key=lambda m: m["published_at"], reverse=True)
        return media

    def publishing_limit(self, request: Request) -> Answer:
        ig_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._ig_token(request, params, ig_id, "instagram_content_publish")
        if not isinstance(token, Token):
            return token
        fields = parse_fields(params.get("fields") or "quota_usage")
        row: dict[str, Any] = {"quota_usage": self._published_last_day(ig_id)}
        if "config" in fields:
            row["config"] = {"quota_total": self.publish_quota, "quota_duration": 86400}
        return answer_json(200, {"data": [row]})

    # --- comments (issue 17) ------------------------------------------------------------------
    def add_comment(
        self,
        post_id: str,
        message: str,
        *,
        author: dict[str, str] | None = None,
        parent: str | None = None,
        created: float | None = None,
        hidden: bool = False,
    ) -> dict[str, Any]:
        """A comment on a Page post (or, with `parent`, a reply to a comment of it) by a person
        (`author` {"id", "name"}; {} when Meta withholds who wrote it), e.g. a minute ago."""
        with self.lock:
            post = next(p for p in self.posts if p["id"] == post_id)
            if parent is not None:
                assert any(c["id"] == parent and c["on"] == post_id for c in self.comments)
            comment = {
                "id": f"{post_id.split('_')[-1]}_{self.new_id()}",
                "network": "facebook",
                "on": post_id,
                "page_id": post["page_id"],
                "parent": parent,
                "text": message,
                "author": {"id": "6100000000000042", "name": "Ann Reader"}
                if author is None
                else author,
                "created": time.time() if created is None else created,
                "hidden": hidden,
            }
            self.comments.append(comment)
        return comment

    def add_ig_comment(
        self,
        media_id: str,
        text: str,
        *,
        username: str = "city.reader",
        parent: str | None = None,
        created: float | None = None,
        hidden: bool = False,
    ) -> dict[str, Any]:
        """A comment on an IG medium (or, with `parent`, a reply to one of its comments)."""
        with self.lock:
            assert any(m["id"] == media_id for m in self.ig_media)
            if parent is not None:
                assert any(c["id"] == parent and c["on"] == media_id for c in self.comments)
            comment = {
                "id": self.new_id(),
                "network": "instagram",
                "on": media_id,
                "parent": parent,
                "text": text,
                "author": {"id": f"99{zlib.crc32(username.encode()):013d}", "username": username},
                "created": time.time() if created is None else created,
                "hidden": hidden,
            }
            self.comments.append(comment)
        return comment

    def hide_comment(self, comment_id: str, hidden: bool = True) -> None:
        with self.lock:
            next(c for c in self.comments if c["id"] == comment_id)["hidden"] = hidden

    def delete_comment(self, comment_id: str) -> None:
        """Gone from every list, with its replies, as Meta deletes a comment."""
        with self.lock:
            self.comments = [c for c in self.comments if comment_id not in (c["id"], c["parent"])]

    def _paged(
        self, rows: list[dict[str, Any]], params: dict[str, str], path: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | Answer:
        """One page of `rows` after params["after"], and its paging object (None when empty);
        an answer when the cursor names no item of the list."""
        try:
            limit = max(1, min(int(params.get("limit") or 25), 100))
        except ValueError:
            return graph_error(400, 100, "(#100) Param limit must be an integer")
        start = 0
        if params.get("after"):
            after = _unid(params["after"])
            ids = [row["id"] for row in rows]
            if after not in ids:
                return graph_error(400, 100, "(#100) The after cursor is invalid")
            start = ids.index(after) + 1
        chosen = rows[start : start + limit]
        if not chosen:
            return [], None
        paging: dict[str, Any] = {
            "cursors": {
                "before": _id_cursor(chosen[0]["id"]),
                "after": _id_cursor(chosen[-1]["id"]),
            }
        }
        if start + len(chosen) < len(rows):
            query = urlencode({**params, "after": _id_cursor(chosen[-1]["id"])})
            paging["next"] = f"{self.url}/{GRAPH_VERSION}/{path}?{query}"
        return chosen, paging

    @staticmethod
    def _unknown_field(fields: dict[str, str | None], known: frozenset[str], node: str):
        unknown = sorted(set(fields) - known)
        if not unknown:
            return None
        return graph_error(
            400,
            100,
            f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({node})",
        )

    def published_posts(self, request: Request) -> Answer:
        page_id = request.path.split("/")[2]
        params, _ = form_of(request)
        token = self._page_token(request, params, page_id, "pages_read_engagement")
        if not isinstance(token, Token):
            return token
        fields = parse_fields(params.get("fields") or "created_time,message,id")
        with self.lock:
            posts = [p for p in self.posts if p["page_id"] == page_id]
            paged = self._paged(posts, params, f"{page_id}/published_posts")
        if not isinstance(paged, tuple):
            return paged
        chosen, paging = paged
        data = [
            {k: post[k] for k in fields if k in post and (k != "message" or post[k])}
            for post in chosen
        ]
        return answer_json(200, {"data": data, **({"paging": paging} if paging else {})})

    def _fb_comment(self, comment: dict[str, Any], fields: dict[str, str | None]) -> dict:
        page_id = comment["page_id"]
        post_number = comment["on"].split("_")[-1]
        full = {
            "id": comment["id"],
            "created_time": _graph_time(comment["created"]),
            "permalink_url": f"https://www.facebook.com/{page_id}/posts/{post_number}"
            f"?comment_id={comment['id'].split('_')[-1]}",
            "is_hidden": comment["hidden"],
            "like_count": 0,
            "comment_count": sum(1 for c in self.comments if c["parent"] == comment["id"]),
        }
        if comment["text"]:
            full["message"] = comment["text"]
        if comment["author"]:
            full["from"] = dict(comment["author"])
        answer = {name: full[name] for name in fields if name in full}
        if "parent" in fields and comment["parent"]:
            parent = next(c for c in self.comments if c["id"] == comment["parent"])
            inner = parse_fields(fields["parent"] or "created_time,from,message,id")
            answer["parent"] = self._fb_comment(parent, inner)
        return answer

    def post_comments(self, request: Request) -> Answer:
        post_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            post = next((p for p in self.posts if p["id"] == post_id), None)
        if post is None:
            return graph_error(
                400,
                100,
                f"Unsupported get request. Object with ID '{post_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                kind="GraphMethodException",
                subcode=33,
            )
        return self._list_comments(request, params, post, None)

    def comment_replies(self, request: Request) -> Answer:
        """GET /{comment-id}/comments: the comment's replies, read like a post's comments."""
        comment_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            comment = self._fb_comment_of(comment_id)
            post = next((p for p in self.posts if comment and p["id"] == comment["on"]), None)
        if comment is None or post is None:
            return self._no_object(comment_id)
        return self._list_comments(request, params, post, comment_id)

    def _list_comments(
        self, request: Request, params: dict[str, str], post: dict[str, Any], parent: str | None
    ) -> Answer:
        """A post's comments (`parent` None) or a comment's replies, as the comments edge
        answers them."""
        post_id = post["id"]
        token = self._page_token(request, params, post["page_id"], "pages_read_engagement")
        if not isinstance(token, Token):
            return token
        if "pages_read_user_content" not in token.scopes:
            return graph_error(
                400, 283, "(#283) Requires pages_read_user_content permission to manage the object"
            )
        fields = parse_fields(params.get("fields") or "created_time,from,message,id")
        refused = self._unknown_field(fields, FB_COMMENT_FIELDS, "Comment")
        if refused is not None:
            return refused
        stream = params.get("filter", "toplevel")
        order = params.get("order", "chronological")
        since = _since(params.get("since"))
        if stream not in ("toplevel", "stream") or order not in (
            "chronological",
            "reverse_chronological",
        ):
            return graph_error(400, 100, "(#100) filter or order must be one of the enum values")
        if since is False:
            return graph_error(400, 100, "(#100) The parameter since is not a valid time")
        with self.lock:
            rows = [
                c
                for c in self.comments
                if c["on"] == post_id
                and (
                    c["parent"] == parent
                    if parent is not None
                    else (stream == "stream" or c["parent"] is None)
                )
                and (since is None or int(c["created"]) >= since)
            ]
            rows.sort(key=lambda c: (c["created"], c["id"]), reverse=order != "chronological")
            paged = self._paged(rows, params, f"{parent or post_id}/comments")
            if not isinstance(paged, tuple):
                return paged
            chosen, paging = paged
            data = [self._fb_comment(c, fields) for c in chosen]
        return answer_json(200, {"data": data, **({"paging": paging} if paging else {})})

    def _ig_comment(self, comment: dict[str, Any], fields: dict[str, str | None]) -> dict:
        full: dict[str, Any] = {
            "id": comment["id"],
            "text": comment["text"],
            "username": comment["author"]["username"],
            "timestamp": _graph_time(comment["created"]),
            "from": dict(comment["author"]),
            "hidden": comment["hidden"],
            "like_count": 0,
            "media": {"id": comment["on"]},
        }
        if comment["parent"]:
            full["parent_id"] = comment["parent"]
        answer = {name: full[name] for name in fields if name in full}
        replies = self._ig_replies_of(comment["id"])
        if "replies" in fields and replies:
            inner = parse_fields(fields["replies"] or "id,timestamp,text")
            shown = replies[: self.ig_reply_page]
            nested: dict[str, Any] = {"data": [self._ig_comment(r, inner) for r in shown]}
            nested["paging"] = {
                "cursors": {
                    "before": _id_cursor(shown[0]["id"]),
                    "after": _id_cursor(shown[-1]["id"]),
                }
            }
            if len(replies) > len(shown):
                query = urlencode(
                    {"fields": fields["replies"] or "", "after": _id_cursor(shown[-1]["id"])}
                )
                nested["paging"]["next"] = (
                    f"{self.url}/{GRAPH_VERSION}/{comment['id']}/replies?{query}"
                )
            answer["replies"] = nested
        return answer

    def _ig_replies_of(self, comment_id: str) -> list[dict[str, Any]]:
        replies = [c for c in self.comments if c["parent"] == comment_id]
        return sorted(replies, key=lambda c: (c["created"], c["id"]))

    def _ig_fields(self, params: dict[str, str]) -> dict[str, str | None] | Answer:
        fields = parse_fields(params.get("fields") or "id,timestamp,text")
        refused = self._unknown_field(fields, IG_COMMENT_FIELDS, "IGComment")
        if refused is None and fields.get("replies"):
            inner = parse_fields(fields["replies"] or "")
            refused = self._unknown_field(inner, IG_COMMENT_FIELDS - {"replies"}, "IGComment")
        return refused if refused is not None else fields

    def ig_comments(self, request: Request) -> Answer:
        media_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            media = next(m for m in self.ig_media if m["id"] == media_id)
        token = self._ig_token(request, params, media["ig_id"], "instagram_manage_comments")
        if not isinstance(token, Token):
            return token
        fields = self._ig_fields(params)
        if not isinstance(fields, dict):
            return fields
        with self.lock:
            rows = [c for c in self.comments if c["on"] == media_id and c["parent"] is None]
            rows.sort(key=lambda c: (c["created"], c["id"]), reverse=True)
            paged = self._paged(rows, params, f"{media_id}/comments")
            if not isinstance(paged, tuple):
                return paged
            chosen, paging = paged
            data = [self._ig_comment(c, fields) for c in chosen]
        return answer_json(200, {"data": data, **({"paging": paging} if paging else {})})

    def ig_replies(self, request: Request) -> Answer:
        comment_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            comment = next((c for c in self.comments if c["id"] == comment_id), None)
            media = next(
                (m for m in self.ig_media if comment is not None and m["id"] == comment["on"]),
                None,
            )
        if comment is None or media is None:
            return graph_error(
                400,
                100,
                f"Unsupported get request. Object with ID '{comment_id}' does not exist.",
                kind="GraphMethodException",
                subcode=33,
            )
        token = self._ig_token(request, params, media["ig_id"], "instagram_manage_comments")
        if not isinstance(token, Token):
            return token
        fields = self._ig_fields(params)
        if not isinstance(fields, dict):
            return fields
        with self.lock:
            paged = self._paged(self._ig_replies_of(comment_id), params, f"{comment_id}/replies")
            if not isinstance(paged, tuple):
                return paged
            chosen, paging = paged
            data = [self._ig_comment(c, fields) for c in chosen]
        return answer_json(200, {"data": data, **({"paging": paging} if paging else {})})

    # --- replies (issue 17) -------------------------------------------------------------------
    def _fb_comment_of(self, comment_id: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.comments if c["id"] == comment_id and c["network"] == "facebook"),
            None,
        )

    @staticmethod
    def _no_object(object_id: str) -> Answer:
        return graph_error(
            400,
            100,
            f"Unsupported request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            kind="GraphMethodException",
            subcode=33,
        )

    def create_comment(self, request: Request) -> Answer:
        """POST /{post-or-comment-id}/comments: the Page comments (or replies) as itself."""
        object_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            post = next((p for p in self.posts if p["id"] == object_id), None)
            comment = self._fb_comment_of(object_id)
        if post is None and comment is None:
            return self._no_object(object_id)
        page_id = post["page_id"] if post is not None else comment["page_id"]
        token = self._page_token(request, params, page_id, "pages_manage_engagement")
        if not isinstance(token, Token):
            return token
        if comment is not None and comment["parent"]:
            return graph_error(400, 100, "(#100) This comment is a reply and cannot be replied to")
        message = params.get("message", "")
        if not message.strip():
            return graph_error(400, 100, "(#100) Missing message or attachment")
        page = next(p for p in self.pages if p["id"] == page_id)
        with self.lock:
            on = post["id"] if post is not None else comment["on"]
            made = {
                "id": f"{on.split('_')[-1]}_{self.new_id()}",
                "network": "facebook",
                "on": on,
                "page_id": page_id,
                "parent": None if post is not None else object_id,
                "text": message,
                "author": {"id": page_id, "name": page["name"]},
                "created": time.time(),
                "hidden": False,
            }
            self.comments.append(made)
        return answer_json(200, {"id": made["id"]})

    def create_ig_reply(self, request: Request) -> Answer:
        """POST /{ig-comment-id}/replies: the account replies under a top-level comment."""
        comment_id = request.path.split("/")[2]
        params, _ = form_of(request)
        with self.lock:
            comment = next(
                (c for c in self.comments if c["id"] == comment_id and c["network"] == "instagram"),
                None,
            )
            media = next(
                (m for m in self.ig_media if comment is not None and m["id"] == comment["on"]),
                None,
            )
        if comment is None or media is None:
            return self._no_object(comment_id)
        token = self._ig_token(request, params, media["ig_id"], "instagram_manage_comments")
        if not isinstance(token, Token):
            return token
        if comment["hidden"]:
            return graph_error(400, 100, "(#100) You cannot reply to a hidden comment")
        message = params.get("message", "")
        if not message.strip():
            return graph_error(400, 100, "(#100) The parameter message is required.")
        user = self.ig_users[media["ig_id"]]
        with self.lock:
            made = {
                "id": self.new_id(),
                "network": "instagram",
                "on": media["id"],
                # "replies to a reply will be added to the top-level comment"
                "parent": comment["parent"] or comment["id"],
                "text": message,
                "author": {"id": user["id"], "username": user["username"]},
                "created": time.time(),
                "hidden": False,
            }
            self.comments.append(made)
        return answer_json(200, {"id": made["id"]})

    # --- engagement (issue 17) ----------------------------------------------------------------
    def add_figures(self, object_id: str, **counts: int) -> None:
        """People reacted to, shared, liked, viewed or clicked a post or medium: `reactions`,
        `shares` (Facebook), `likes` (Instagram), `views`, `clicks`, added to what it had."""
        unknown = set(counts) - {"reactions", "shares", "likes", "views", "clicks"}
        assert not unknown, unknown
        with self.lock:
            held = self.figures.setdefault(object_id, {})
            for name, value in counts.items():
                held[name] = held.get(name, 0) + value

    def delete_post(self, post_id: str) -> None:
        """The Page deleted a post (by hand): gone, with its comments."""
        with self.lock:
            self.posts = [p for p in self.posts if p["id"] != post_id]
            self.comments = [c for c in self.comments if c["on"] != post_id]

    def delete_ig_media(self, media_id: str) -> None:
        with self.lock:
            self.ig_media = [m for m in self.ig_media if m["id"] != media_id]
            self.comments = [c for c in self.comments if c["on"] != media_id]

    def _object(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        post = next((p for p in self.posts if p["id"] == object_id), None)
        if post is not None:
            return "post", post
        media = next((m for m in self.ig_media if m["id"] == object_id), None)
        return ("ig_media", media) if media is not None else None

    def _may_read(self, request: Request, params: dict, kind: str, obj: dict, scope: str):
        """The token, when it may read `obj` (with `scope`), else Meta's refusal."""
        if kind in ("post", "fb_comment"):
            return self._page_token(request, params, obj["page_id"], scope)
        if kind == "ig_comment":
            media = next(m for m in self.ig_media if m["id"] == obj["on"])
            return self._ig_token(request, params, media["ig_id"], scope)
        return self._ig_token(request, params, obj["ig_id"], scope)

    def _comment_object(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        comment = next((c for c in self.comments if c["id"] == object_id), None)
        if comment is None:
            return None
        return ("fb_comment" if comment["network"] == "facebook" else "ig_comment"), comment

    def _objects(
        self, params: dict[str, str], *, comments: bool = False
    ) -> dict[str, Any] | Answer:
        """The objects the `ids` of a multiple-id read name (None for one the server does not
        have), or the refusal of the whole read; comments only with `comments`."""
        ids = [one for one in (params.get("ids") or "").split(",") if one]
        if not ids:
            return graph_error(400, 100, "(#100) Missing or invalid parameter ids")
        if len(ids) > MAX_IDS:
            return graph_error(
                400, 100, f"(#100) Too many IDs. Maximum: {MAX_IDS}. Provided: {len(ids)}."
            )
        with self.lock:
            found = {
                one: self._object(one) or (self._comment_object(one) if comments else None)
                for one in ids
            }
        missing = [one for one, obj in found.items() if obj is None]
        if missing and self.missing_ids == "refuse":
            return graph_error(
                400,
                803,
                f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}",
            )
        return found

    def _missing_entry(self, object_id: str) -> dict[str, Any] | None:
        if self.missing_ids != "error":
            return None
        error = json.loads(self._no_object(object_id)[2])["error"]
        return {"error": error}

    def read_ids(self, request: Request) -> Answer:
        """GET /?ids=…&fields=…: several posts or media in one read."""
        params, _ = form_of(request)
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        found = self._objects(params, comments=True)
        if not isinstance(found, dict):
            return found
        fields = parse_expanded(params.get("fields") or "id")
        answer: dict[str, Any] = {}
        for object_id, held in found.items():
            if held is None:
                entry = self._missing_entry(object_id)
                if entry is not None:
                    answer[object_id] = entry
                continue
            kind, obj = held
            scope = READ_SCOPES[kind]
            refused = self._may_read(request, params, kind, obj, scope)
            if not isinstance(refused, Token):
                return refused
            if kind == "fb_comment" and "pages_read_user_content" not in refused.scopes:
                return graph_error(
                    400,
                    283,
                    "(#283) Requires pages_read_user_content permission to manage the object",
                )
            with self.lock:
                row = self._row(kind, obj, fields)
            if not isinstance(row, dict):
                return row
            answer[object_id] = row
        return answer_json(200, answer)

    def _row(self, kind: str, obj: dict[str, Any], fields: dict[str, dict[str, str]]):
        """What the multiple-id read answers for one object, or the refusal of its fields."""
        if kind == "post":
            return self._post_row(obj, fields)
        if kind == "ig_media":
            return self._media_row(obj, fields)
        plain = dict.fromkeys(fields)
        if kind == "fb_comment":
            refused = self._unknown_field(plain, FB_COMMENT_FIELDS, "Comment")
            return refused or self._fb_comment(obj, {**plain, "id": None})
        refused = self._unknown_field(plain, IG_COMMENT_FIELDS - {"replies"}, "IGComment")
        return refused or self._ig_comment(obj, {**plain, "id": None})

    def _post_row(self, post: dict[str, Any], fields: dict[str, dict[str, str]]):
        known = {
            "id",
            "message",
            "created_time",
            "permalink_url",
            "reactions",
            "comments",
            "shares",
        }
        refused = self._unknown_field(dict.fromkeys(fields), frozenset(known), "Post")
        if refused is not None:
            return refused
        held = self.figures.get(post["id"], {})
        row: dict[str, Any] = {"id": post["id"]}
        for name, modifiers in fields.items():
            if name == "reactions":
                row[name] = _edge_summary(held.get("reactions", 0), modifiers, {})
            elif name == "comments":
                stream = modifiers.get("filter", "toplevel") == "stream"
                count = sum(
                    1
                    for c in self.comments
                    if c["on"] == post["id"] and (stream or c["parent"] is None)
                )
                row[name] = _edge_summary(count, modifiers, {"can_comment": True})
            elif name == "shares":
                if held.get("shares"):
                    row[name] = {"count": held["shares"]}
            elif name in post and (name != "message" or post[name]):
                row[name] = post[name]
        return row

    def _media_row(self, media: dict[str, Any], fields: dict[str, dict[str, str]]):
        known = {
            "id",
            "caption",
            "permalink",
            "timestamp",
            "media_type",
            "like_count",
            "comments_count",
        }
        refused = self._unknown_field(dict.fromkeys(fields), frozenset(known), "IGMedia")
        if refused is not None:
            return refused
        row: dict[str, Any] = {"id": media["id"]}
        for name in fields:
            if name == "like_count":
                row[name] = self.figures.get(media["id"], {}).get("likes", 0)
            elif name == "comments_count":
                row[name] = sum(1 for c in self.comments if c["on"] == media["id"])
            elif name in media and (name != "caption" or media[name]):
                row[name] = media[name]
        return row

    def read_insights(self, request: Request) -> Answer:
        """GET /insights?ids=…&metric=…: the lifetime insights of several posts or media."""
        params, _ = form_of(request)
        token = self._auth(request, params)
        if not isinstance(token, Token):
            return token
        metrics = [m for m in (params.get("metric") or "").split(",") if m]
        if not metrics:
            return graph_error(
                400,
                3001,
                "No metric was specified to be fetched. Please specify one or more metrics to be "
                "fetched and try again.",
                subcode=1504028,
            )
        found = self._objects(params)
        if not isinstance(found, dict):
            return found
        answer: dict[str, Any] = {}
        for object_id, held in found.items():
            if held is None:
                entry = self._missing_entry(object_id)
                if entry is not None:
                    answer[object_id] = entry
                continue
            kind, obj = held
            scope = "read_insights" if kind == "post" else "instagram_manage_insights"
            refused = self._may_read(request, params, kind, obj, scope)
            if not isinstance(refused, Token):
                return refused
            valid = FB_POST_METRICS if kind == "post" else IG_MEDIA_METRICS
            wrong = [m for m in metrics if m not in valid]
            if wrong:
                return graph_error(
                    400, 100, f"(#100) The value must be a valid insights metric: {wrong[0]}"
                )
            with self.lock:
                values = {m: self._metric(kind, obj, m) for m in metrics}
            answer[object_id] = {
                "data": [
                    {
                        "name": name,
                        "period": "lifetime",
                        "values": [{"value": value}],
                        "title": name.replace("_", " ").capitalize(),
                        "id": f"{object_id}/insights/{name}/lifetime",
                    }
                    for name, value in values.items()
                ]
            }
        return answer_json(200, answer)

    def _metric(self, kind: str, obj: dict[str, Any], metric: str) -> int:
        held = self.figures.get(obj["id"], {})
        if metric in ("post_media_view", "views", "reach"):
            return held.get("views", 0)
        if metric == "post_clicks":
            return held.get("clicks", 0)
        if metric == "likes":
            return held.get("likes", 0)
        if metric == "comments":
            return sum(1 for c in self.comments if c["on"] == obj["id"])
        return 0


def _edge_summary(total: int, modifiers: dict[str, str], extra: dict[str, Any]) -> dict:
    """An edge read by field expansion: no items kept here (`.limit(0)` is all cxhub asks), and
    its summary when `.summary(total_count)` (or `.summary(true)`) asks for it."""
    edge: dict[str, Any] = {"data": []}
    if modifiers.get("summary") in ("total_count", "true", "1"):
        edge["summary"] = {"total_count": total, **extra}
    return edge


def _split_top(spec: str) -> list[str]:
    """ "a.b(c,d),e{f,g}" → ["a.b(c,d)", "e{f,g}"]: commas outside () and {}."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(spec + ","):
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        elif char == "," and depth == 0:
            if spec[start:index].strip():
                parts.append(spec[start:index].strip())
            start = index + 1
    return parts


def parse_expanded(spec: str) -> dict[str, dict[str, str]]:
    """ "reactions.summary(total_count).limit(0),shares" → {"reactions": {"summary":
    "total_count", "limit": "0"}, "shares": {}}: field expansion's modifiers."""
    fields: dict[str, dict[str, str]] = {}
    for part in _split_top(spec or ""):
        name, _, rest = part.partition(".")
        name = name.split("{", 1)[0].strip()
        fields[name] = dict(re.findall(r"(\w+)\(([^)]*)\)", rest))
    return fields


# What the multiple-id read needs to read each kind of object.
READ_SCOPES = {
    "post": "pages_read_engagement",
    "ig_media": "instagram_basic",
    "fb_comment": "pages_read_engagement",
    "ig_comment": "instagram_manage_comments",
}
FB_COMMENT_FIELDS = frozenset(
    {
        "id",
        "message",
        "from",
        "created_time",
        "parent",
        "permalink_url",
        "is_hidden",
        "like_count",
        "comment_count",
    }
)
IG_COMMENT_FIELDS = frozenset(
    {
        "id",
        "text",
        "username",
        "timestamp",
        "from",
        "hidden",
        "parent_id",
        "like_count",
        "media",
        "replies",
    }
)


def _id_cursor(item_id: str) -> str:
    return base64.urlsafe_b64encode(f"id:{item_id}".encode()).decode()


def _unid(value: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(value.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded[3:] if decoded.startswith("id:") else ""


def _since(value: str | None) -> int | None | bool:
    """`since` as a Unix time: None when absent, False when it is no time."""
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
