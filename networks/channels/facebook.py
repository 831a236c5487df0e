"""Facebook Pages: long text, several photos, no counting tricks. Also the Graph API pieces the
Instagram channel shares (it is reached through the same Graph API and Facebook Login).

Sources (checked 2025/2026; Meta documents less here than the other networks):
- Text: Meta's Graph API reference for POST /{page-id}/feed gives no length for `message`;
  63,206 characters is the limit Facebook's composer enforces, as publishing tools document it
  (not a Meta page). Counted here as code points.
- Photos: developers.facebook.com/docs/graph-api/reference/page/photos/ (publishing section:
  photos under 4 MB, in JPEG, PNG, GIF, TIFF and newer formats such as WebP). The stored copy I
  could read lacked that section, so format list and size were not re-checked word for word;
  cxhub sends JPEG, PNG, GIF and WEBP renditions, and 4 MB is taken as 4,000,000 bytes. (The
  Photo node's reference, graph-api/reference/photo/, says "a photo must be less than 10MB";
  4 MB is the stricter reading.)
- Several photos: published as unpublished photos joined with `attached_media` on /feed; Meta
  states no maximum, so cxhub keeps 10 (its own choice, the size of an Instagram carousel).
- Alt text: the photos edge takes `alt_text_custom` ("Accessible alternative description for an
  image", graph-api/reference/photo/ → Creating); Meta states no maximum length.

Publishing (checked November 2026):
- Version: Graph API v25.0 (graph-api/changelog/versions: released 18 February 2026, available
  until July 2028), pinned in GRAPH_VERSION; every call names it.
- Connecting, facebook-login/guides/advanced/manual-flow: the login dialog
  https://www.facebook.com/<version>/dialog/oauth (client_id, redirect_uri, state,
  response_type=code, scope as a comma-separated list), then the code is exchanged at
  https://graph.facebook.com/<version>/oauth/access_token (client_id, redirect_uri,
  client_secret, code) for a short-lived User token. The token endpoint is sent a POST form
  (which it accepts, as requests-oauthlib's fetch_token does) so the app secret never sits in a
  URL.
- facebook-login/guides/access-tokens/get-long-lived: `grant_type=fb_exchange_token` with the
  app's id and secret turns a valid User token into a long-lived one (about 60 days); "You can
  not use an expired token to request a long-lived token". A Page token read with a long-lived
  User token "does not have an expiration date" (same page; pages/access-tokens), so `identify`
  exchanges first, then reads GET /me/accounts (fields id, name, access_token, tasks; needs
  pages_show_list) and offers one Identity per Page, holding that Page's token. A Page token has
  nothing to renew it with: when Meta refuses it (a password change, a removed Page role, the
  app removed), the account needs connecting again, so `refresh_token` is AuthExpired.
- Permissions (pages-api/posts, "Before you start"): pages_manage_posts to publish,
  pages_read_engagement to read the Page's posts (reconcile), pages_show_list for /me/accounts.
- pages-api/posts: POST /{page-id}/feed with `message` publishes a text post; answers
  {"id": "<page-id>_<post-id>"}. graph-api/reference/photo/ → Creating: POST /{page-id}/photos
  with a file attachment (multipart `source`) or `url`, `caption`, `alt_text_custom`,
  `published` (true by default; false keeps the photo unpublished); answers {"id", "post_id"}.
  Two or more images: each is uploaded with published=false, then one POST /feed carries them as
  `attached_media[i]={"media_fbid": "<photo id>"}`. An unpublished photo shows nowhere, so an
  upload that timed out is simply made again (its orphan is harmless); only the final call can
  leave the outcome unknown.
- Authentication: the token goes in the Authorization header (`Bearer`), never in the URL.
  When cxhub's app secret is configured, each call carries `appsecret_proof` (HMAC-SHA256 of the
  token keyed by the app secret, graph-api/guides/secure-requests), which apps that "Require App
  Secret" demand.
- Errors, graph-api/guides/error-handling: {"error": {"message", "type", "code",
  "error_subcode", "error_user_msg", "fbtrace_id"}}. 190 (access token expired or invalid) and
  102 (session) → AuthExpired. 4, 17, 32, 613 (app, user, Page and custom rate limits), 80001+
  (Business Use Case limits, graph-api/overview/rate-limiting) and HTTP 429 → RetryableError,
  waiting the largest `estimated_time_to_regain_access` (minutes) found in X-Business-Use-Case-
  Usage, X-Page-Usage or X-App-Usage. 1 and 2 (unknown, service: "temporary issue due to
  downtime"), 341 (application limit), 368 (temporarily blocked: "wait and retry"), an error
  marked `is_transient`, and 5xx → RetryableError; but for the call that creates the post
  (issue 11) a 5xx, or code 1 or 2 ("unknown error", "temporary issue"), does not prove the
  post was not made: UnknownOutcome, reconciled before any retry. 506 (duplicate post) after a
  lost answer means the first try went out: reconcile finds it. Anything else → PermanentError
  with Meta's message (error_user_msg when it has one).

Reconcile: the Graph API takes no idempotency key, so after an unknown outcome (a lost answer, a
timeout, a 5xx) cxhub reads the Page's recent posts (GET /{page-id}/posts, RECONCILE_LIMIT newest,
fields id, message, created_time, permalink_url and attachments{media_type, subattachments}:
graph-api/reference/page/feed and graph-api/reference/story-attachment, whose stored copy I could
read shows only its example, so the media_type values below are the ones integrations report, not
re-read on Meta's page) and matches them with networks.channels.matching. What the match relies
on: `message` is kept as it was sent (a link stays in it even when Facebook adds its preview); the
attachments count the images (a "photo" is one, an "album" as many as its subattachments, a link
preview ("share", "link") none); `created_time` bounds the window (the target's first try less
matching.CLOCK_SKEW, or RECONCILE_WINDOW), and posts other targets hold are left out. What it
cannot tell apart: two posts of the same message and images in that window, e.g. one made by hand
(AmbiguousMatch, a person decides); a post pushed out of the RECONCILE_LIMIT newest. Facebook
refuses a duplicate of the Page's previous post (506), which is what a blind retry would usually
hit.

Revoking: Meta's only revocation (DELETE /{user-id}/permissions) withdraws the whole app from the
person, which would cut every Page and Instagram account they connected; cxhub only forgets the
Page's token.

Hearing back (issue 17: comments on the Page's posts; checked November 2026):
- graph-api/reference/page/published_posts: GET /{page-id}/published_posts lists the Page's own
  posts, newest first, with ids "<page-id>_<post-id>", the form publish stores as external_id
  (fields id, permalink_url; `limit`). The INBOUND_POSTS (25) newest are read, in one call (one
  page of the list): a Page posting a few times a day keeps a week or more in view, most
  comments come in a post's first days, and each post read costs one more call per poll.
  Comments on older posts are not heard.
- graph-api/reference/page-post/comments (object/comments for the shared edge): GET
  /{page-post-id}/comments with `filter` (toplevel by default; `stream` gives every comment,
  replies included, flat, a reply naming its `parent`), `order` (chronological, oldest first, by
  default; reverse_chronological, newest first; "If the comments can be ranked, then the order
  will always be ranked regardless of this modifier"), `since` ("Lower bound of the time range
  to consider") and `limit`, paged with cursors (graph-api/results: paging.cursors.after, and
  paging.next absent on the last page; "your app shouldn't store cursors or assume that they will
  be valid in the future", so cxhub's cursor holds times and ids, never Meta's cursors). It needs
  the Page token with pages_read_engagement and pages_read_user_content (features-reference/
  page-public-content-access names these two as what reads a Page's comments and posts;
  without the second Meta answers #283, as integrators report it, not re-read on Meta's page: a
  PermanentError until the Page is connected again with it) and, for comment ids, the MODERATE
  task on the Page (v11.0+).
- graph-api/reference/comment: id, message (absent for a sticker or a photo), from (id, name;
  left out where Meta withholds who wrote it), created_time, parent (for a reply),
  permalink_url, is_hidden (hidden by the Page: the item is marked deleted).
The cursor is a small JSON object: {"v": 1, "t": the time (Unix seconds, Graph's precision) of
the newest comment taken, "ids": the comments taken at that very second}. The first call reads
each post's newest page (reverse_chronological, `limit`) and returns the newest `limit` of all:
no back-fill. Later calls ask each post for what came since t (since=t-1, so the second itself is
covered whether Meta's bound is inclusive or not) in chronological order, reading every page (up
to COMMENTS_PAGES of COMMENTS_PAGE), so that even a ranked order loses nothing; the oldest
`limit` new comments are returned and t moves to the last of them, so a comment of the same
second left for later is still new and none is taken twice; `more` when some were left. The
Page's own comments (its replies) move the mark but are not items. What polling cannot hear: a
comment that appears late with an earlier time than one already taken (Meta: "Read-after-write
may be delayed for video or GIF comments"), one hidden or deleted after it was taken (never read
again; Meta's Page webhooks would tell), one deleted before it was read, and comments on posts
past the INBOUND_POSTS newest.

Answering (issue 17: a reply is a comment by the Page; checked December 2026):
- graph-api/reference/object/comments, "Publishing", and pages-api/comments-mentions ("You can
  comment on a Page post or a comment on a comment. The author of the comment will be the
  Page"): POST /{object-id}/comments with `message`, the Page token with pages_manage_engagement
  (asked for since issue 17; a Page connected before lacks it and Meta refuses, a PermanentError
  until it is connected again) and the MODERATE and CREATE_CONTENT tasks; answers {"id"}. The
  object is the comment the item is (its reply goes under it), or the post when the item is one.
  Facebook shows two levels of comments, and a reply's `can_comment` is false
  (graph-api/reference/comment), so an item that is itself a reply (it has a `parent`) is
  answered under its parent, where Facebook's own "Reply" puts it. Text only: cxhub sends no
  image with a reply. The address is the new comment's permalink_url (GET /{comment-id}).
- The rule of issue 11 applies: a 5xx, code 1 or 2, a timeout or a dropped answer is an unknown
  outcome. Graph takes no idempotency key, so reconcile reads the comments under the same object
  (GET /{object-id}/comments, newest first, `since` the first try less matching.CLOCK_SKEW,
  REPLY_PAGES pages of COMMENTS_PAGE), keeps those whose `from.id` is the Page and matches their
  `message` with networks.channels.matching as for posts. A Page post, or a comment under another
  object, of the same text is never read, so never taken for the reply. What it cannot tell
  apart: two comments of the Page with the same text under the same object since the first try
  (AmbiguousMatch, a person decides).

Engagement (issue 17; checked December 2026):
- Graph's multiple-id read (graph-api/using-graph-api, "Multiple ID Read Requests": GET
  /?ids=a,b,c, up to IDS_PER_CALL ids, the answer an object keyed by the ids asked for; read
  from integrators and older copies of the guide, not re-read on Meta's current page) with
  field expansion (graph-api/guides/field-expansion: `.limit()` and `.summary()` modifiers):
  `reactions.summary(total_count).limit(0)` (every reaction, Like or other, counts as a like),
  `comments.filter(stream).summary(total_count).limit(0)` (every comment, replies included, as
  Instagram's comments_count counts them; the `filter` modifier as the edge takes it) and
  `shares` ({"count"}; Meta leaves it out of a post nobody shared, as integrators report it, so
  a post that answered without it has 0 reposts). Facebook has no quotes. A post Meta no longer
  has either fails the whole read (#803 "Some of the aliases you requested do not exist: …", or
  #100/33 "Object with ID … does not exist"), in which case the ids it names are marked deleted
  and the others asked again, or answers an error in place of that id, or is missing from the
  answer: marked deleted in each case. An answer naming ids cxhub did not ask for, or none of
  those it did, is malformed (RetryableError), never a reason to mark posts deleted.
- Impressions and clicks: graph-api/reference/insights (Page post metrics; "A Page access token
  requested by a person who can perform the ANALYZE task on the Page", read_insights, asked for
  since issue 17). post_impressions was deprecated for all versions on 15 November 2025
  (pages-api/changelog: "post_impressions* (Alternative: post_media_view)"), so impressions are
  post_media_view; clicks are post_clicks (still listed with the Page post metrics as far as the
  copies I could read show; not re-checked against Meta's list of June 2026 deprecations). One
  call per batch: the insights edge read for several ids at once (GET
  /insights?ids=…&metric=post_media_view,post_clicks, the multiple-id read of an edge). Meta's
  own refusal of it (a missing read_insights, a Page without the ANALYZE task, a metric it no
  longer gives: any PermanentError) leaves impressions and clicks None for the whole call and is
  not asked again in the same fetch; a rate limit, an expired token or a 5xx still raises. Meta
  gives Page insights only for Pages with 100 likes or more and updates most once a day: an empty
  answer is None.

Re-checking kept comments (issue 17, items_gone; shared with the Instagram channel): the same
multiple-id read (GET /?ids=…, IDS_PER_CALL comments a call) with the graph-api/reference/comment
fields id and is_hidden (hidden by the Page, as fetch_inbound marks it), with the Page token that
reads the comments; nothing that holds only for the Page's own posts is asked. A comment is gone
when Meta no longer has it, in the forms engagement handles (the read refused with #803 or #100/33
naming it, an error in its place, or left out of an answer that holds the others), or when
is_hidden is true. Any other error for one id leaves it not gone; a refusal of the whole read, an
answer for none of those asked or for ids not asked raises as engagement does.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils import timezone

from . import matching
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundPage,
    Limits,
    OAuthClient,
    OAuthSpec,
    ReconcileHints,
    ReplyTo,
    TokenSet,
    configured_client,
)
from .errors import AuthExpired, ChannelError, PermanentError, RetryableError, UnknownOutcome
from .http import Published, json_or_empty, on_server, request, retry_after_seconds, with_status
from .media_files import MediaFile, load_media
from .oauth import tokens_from_answer, with_fresh_token

GRAPH_VERSION = "v25.0"
GRAPH_ORIGIN = "https://graph.facebook.com"
LOGIN_DIALOG_URL = f"https://www.facebook.com/{GRAPH_VERSION}/dialog/oauth"
TOKEN_URL = f"{GRAPH_ORIGIN}/{GRAPH_VERSION}/oauth/access_token"

AUTH_CODES = frozenset({102, 190})
# 4 app, 17 user, 32 Page, 613 custom; 80000–80014 Business Use Case limits.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2, 341, 368})
# "An unknown error occurred", "temporary issue due to downtime" (and Instagram's -1, "unexpected
# error"): answered to a call that creates a post, they do not say whether it was made.
UNKNOWN_CODES = frozenset({-1, 1, 2})
DUPLICATE_POST = 506
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage")
PAGE_LIST_LIMIT = 100
PAGE_LIST_MAX_PAGES = 10
RECONCILE_LIMIT = 25
RECONCILE_WINDOW = timedelta(days=3)
# What comes back: how many of the account's newest posts are read for comments (see the module
# docstring), and how many comments are read per call and post at most.
INBOUND_POSTS = 25
COMMENTS_PAGE = 100
COMMENTS_PAGES = 5
# A call returns at most this many items: no more than one post's read can hold, so that a post
# whose comments were cut at COMMENTS_PAGES still holds every comment up to the new mark.
INBOUND_LIMIT = COMMENTS_PAGE * COMMENTS_PAGES
CURSOR_VERSION = 1
COMMENT_FIELDS = "id,message,from,created_time,parent{id},permalink_url,is_hidden"
# Reconciling a reply: the comments under the answered object read, pages of COMMENTS_PAGE.
REPLY_PAGES = 3
REPLY_FIELDS = "id,message,from,created_time,permalink_url"
# Engagement: ids per multiple-id read, what is read of a Page post, and its insights.
IDS_PER_CALL = 50
FB_FIGURES = (
    "reactions.summary(total_count).limit(0),"
    "comments.filter(stream).summary(total_count).limit(0),shares"
)
FB_INSIGHTS = ("post_media_view", "post_clicks")
# "Some of the aliases you requested do not exist"; #100 with subcode 33: "does not exist".
ALIASES_MISSING = 803
NOT_FOUND = (100, 33)


# --- the Graph API, shared with the Instagram channel -----------------------------------------


def graph_url(base_url: str, path: str) -> str:
    """https://graph.facebook.com/<version>/<path>, or the same path on a test server."""
    return on_server(f"{GRAPH_ORIGIN}/{GRAPH_VERSION}/{path.lstrip('/')}", base_url, GRAPH_ORIGIN)


def meta_client(channel: Channel) -> OAuthClient:
    """cxhub's Meta app: the channel's own entry of CXHUB_OAUTH_CLIENTS, else Facebook's (one
    Meta app serves Pages and Instagram alike)."""
    entry = settings.CXHUB_OAUTH_CLIENTS.get(channel.name) or {}
    if entry.get("client_id"):
        return configured_client(channel)
    return configured_client(_CHANNEL_FOR_CLIENT)


def _app_secret(channel_name: str) -> str:
    clients = settings.CXHUB_OAUTH_CLIENTS
    for name in (channel_name, "facebook"):
        secret = (clients.get(name) or {}).get("client_secret")
        if secret:
            return str(secret)
    return ""


def graph_call(
    method: str,
    base_url: str,
    path: str,
    token: str,
    *,
    changes: bool,
    what: str,
    channel_name: str = "facebook",
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One Graph API call with the token in the Authorization header (and appsecret_proof
    when cxhub's app secret is known)."""
    params = dict(params or {})
    secret = _app_secret(channel_name)
    if secret:
        params["appsecret_proof"] = hmac.new(
            secret.encode(), token.encode(), hashlib.sha256
        ).hexdigest()
    headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
    return request(
        method,
        graph_url(base_url, path),
        changes=changes,
        what=what,
        params=params,
        headers=headers,
        **kwargs,
    )


def graph_json(response: requests.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object, or the channel error its refusal means."""
    if response.status_code != 200:
        raise graph_error(response, what)
    data = json_or_empty(response)
    if "error" in data:
        raise graph_error(response, what)
    return data


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def graph_error_fields(response: requests.Response) -> tuple[int | None, int | None, dict]:
    error = json_or_empty(response).get("error")
    error = error if isinstance(error, dict) else {}
    return _as_int(error.get("code")), _as_int(error.get("error_subcode")), error


def usage_wait(response: requests.Response) -> float | None:
    """Seconds until Meta lets calls through again: Retry-After, else the largest
    `estimated_time_to_regain_access` (minutes) in the usage headers."""
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if wait is not None:
        return wait
    minutes: list[float] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            found = value.get("estimated_time_to_regain_access")
            if isinstance(found, int | float) and not isinstance(found, bool):
                minutes.append(float(found))
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    for header in USAGE_HEADERS:
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            collect(json.loads(raw))
        except ValueError:
            continue
    best = max(minutes, default=0.0)
    return best * 60 if best > 0 else None


def graph_error(
    response: requests.Response,
    what: str,
    *,
    retryable_subcodes: Iterable[int] = (),
    retryable_codes: Iterable[int] = (),
    changes: bool = False,
) -> Exception:
    """A refused Graph call as a channel error (see the module docstring for the mapping). For a
    call that `changes` something (creates a post), an answer that does not prove refusal is
    UnknownOutcome."""
    status = response.status_code
    code, subcode, error = graph_error_fields(response)
    message = str(error.get("error_user_msg") or error.get("message") or "").strip()
    if not message:
        message = response.text[:300].strip() or response.reason or "no details"
    label = f"HTTP {status}"
    if code is not None:
        label += f", code {code}" + (f"/{subcode}" if subcode is not None else "")
    trace = f" (fbtrace_id {error['fbtrace_id']})" if error.get("fbtrace_id") else ""
    detail = f"{what} ({label}): {message}{trace}"
    if code in AUTH_CODES or (status == 401 and code is None):
        return with_status(AuthExpired(detail), status)
    if status == 429 or code in RATE_LIMIT_CODES:
        return with_status(RetryableError(detail, retry_after=usage_wait(response)), status)
    if changes and (status >= 500 or 200 <= status < 300 or code in UNKNOWN_CODES):
        return with_status(UnknownOutcome(detail, retry_after=usage_wait(response)), status)
    if (
        code in TRANSIENT_CODES
        or code in set(retryable_codes)
        or (subcode is not None and subcode in set(retryable_subcodes))
        or error.get("is_transient") is True
        or status >= 500
        or status == 408
    ):
        return with_status(RetryableError(detail, retry_after=usage_wait(response)), status)
    return with_status(PermanentError(detail), status)


def exchange_for_long_lived(channel: Channel, base_url: str, user_token: str) -> TokenSet:
    """A long-lived User token (about 60 days) for a still-valid User token."""
    client = meta_client(channel)
    response = request(
        "POST",
        on_server(TOKEN_URL, base_url, GRAPH_ORIGIN),
        # Getting a token changes nothing a second call would duplicate.
        changes=False,
        what="Getting a long-lived Facebook token",
        data={
            "grant_type": "fb_exchange_token",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "fb_exchange_token": user_token,
        },
        headers={"Accept": "application/json"},
    )
    data = graph_json(response, "Meta did not give a long-lived token")
    return tokens_from_answer(data, what="Getting a long-lived Facebook token")


def user_pages(base_url: str, user_token: str, *, fields: str, channel: Channel) -> list[dict]:
    """The Pages the person can act on (GET /me/accounts), following the cursors a bounded
    number of times."""
    pages: list[dict] = []
    params: dict[str, Any] = {"fields": fields, "limit": PAGE_LIST_LIMIT}
    for _ in range(PAGE_LIST_MAX_PAGES):
        response = graph_call(
            "GET",
            base_url,
            "me/accounts",
            user_token,
            changes=False,
            what="Listing your Facebook Pages",
            channel_name=channel.name,
            params=params,
        )
        data = graph_json(response, "Meta did not list your Pages")
        pages += [page for page in data.get("data") or [] if isinstance(page, dict)]
        paging = data.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        if not paging.get("next") or not after:
            break
        params = {**params, "after": after}
    return pages


def graph_oauth_spec(base_url: str, scopes: tuple[str, ...]) -> OAuthSpec:
    return OAuthSpec(
        authorize_url=on_server(LOGIN_DIALOG_URL, base_url, GRAPH_ORIGIN),
        token_url=on_server(TOKEN_URL, base_url, GRAPH_ORIGIN),
        scopes=scopes,
        client_auth="body",
        scope_separator=",",
    )


def account_token(account: Any, label: str) -> str:
    token = account.access_token
    if not token:
        raise AuthExpired(f"The {label} account has no access token; connect it again.")
    return token


# --- what comes back: comments, shared with the Instagram channel -----------------------------


@dataclass(frozen=True)
class Mark:
    """How far comments were taken (the channel's cursor): the time, in whole seconds as Graph
    gives it, of the newest comment taken (0: none yet, everything is new), the ids taken at
    that very second, and (Instagram) each medium's comment count when it was last read whole."""

    at: int = 0
    ids: frozenset[str] = frozenset()
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Heard:
    """One comment as read, before it is taken: its second, the item, whether the account wrote
    it itself (its own replies are not items), and the post or medium it was read from."""

    at: int
    item: Inbound
    own: bool = False
    source: str = ""


def read_mark(cursor: str) -> Mark | None:
    """The mark a cursor holds; None for the first call ("") and for a cursor that is not one
    of ours (which is then read as a first call: the newest page, no back-fill)."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return None
    at, ids, counts = data.get("t"), data.get("ids", []), data.get("n", {})
    if not _whole(at) or not isinstance(ids, list) or not isinstance(counts, dict):
        return None
    if not all(isinstance(i, str) for i in ids) or not all(_whole(n) for n in counts.values()):
        return None
    return Mark(at=at, ids=frozenset(ids), counts={str(k): n for k, n in counts.items()})


def write_mark(mark: Mark) -> str:
    data: dict[str, Any] = {"v": CURSOR_VERSION, "t": mark.at, "ids": sorted(mark.ids)}
    if mark.counts:
        data["n"] = dict(sorted(mark.counts.items()))
    return json.dumps(data, separators=(",", ":"))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def inbound_limit(limit: int) -> int:
    return max(1, min(int(limit), INBOUND_LIMIT))


def graph_id(value: Any) -> str:
    """A Graph id (a string; a number from a careless proxy), or "" when it is none."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        return ""
    return value.strip()


def graph_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def graph_time(value: Any) -> datetime | None:
    """Graph's "2026-11-24T07:00:00+0000" as an aware UTC datetime; None when it is not one."""
    moment = matching.parse_time(value)
    return moment.astimezone(UTC) if moment is not None else None


def graph_items(
    base_url: str,
    path: str,
    token: str,
    *,
    params: dict[str, Any],
    what: str,
    channel_name: str,
    pages: int,
    refusal: Callable[[requests.Response, str], Exception] = graph_error,
) -> tuple[list[dict[str, Any]], bool]:
    """The items of a cursor-paged edge, page after page while Meta gives a next one, `pages`
    at most; and whether more were left unread. Meta's cursors serve within this call only."""
    items: list[dict[str, Any]] = []
    query = dict(params)
    for _ in range(pages):
        response = graph_call(
            "GET",
            base_url,
            path,
            token,
            changes=False,
            what=what,
            channel_name=channel_name,
            params=query,
        )
        if response.status_code != 200:
            raise refusal(response, what)
        data = graph_json(response, what)
        rows = data.get("data")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise RetryableError(f"{what}: Meta answered without a list of items ({_shape(data)}).")
        items += rows
        after = _next_cursor(data, what)
        if after is None:
            return items, False
        query = {**query, "after": after}
    return items, True


def _next_cursor(data: Mapping[str, Any], what: str) -> str | None:
    """paging.cursors.after when Meta says a next page exists (paging.next), else None."""
    paging = data.get("paging")
    if paging is None:
        return None
    if not isinstance(paging, dict):
        raise RetryableError(f"{what}: Meta's paging is not an object ({_shape(data)}).")
    if not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not isinstance(after, str) or not after:
        raise RetryableError(f"{what}: Meta said more follows but gave no cursor to it.")
    return after


def _shape(data: Any) -> str:
    """The start of an answer we cannot read, for the message."""
    return json.dumps(data)[:200] if data else "an empty or non-JSON answer"


def newest_page(heard: Iterable[Heard], limit: int, counts: Mapping[str, int]) -> InboundPage:
    """The first call's answer: the newest `limit` comments read (no back-fill), and a mark at
    the newest of them (at 0 when there was none: every later comment is new)."""
    newest = sorted(_unique(heard), key=_order, reverse=True)[:limit]
    at = newest[0].at if newest else 0
    ids = frozenset(h.item.network_id for h in newest if h.at == at)
    mark = Mark(at=at, ids=ids, counts=counts)
    return InboundPage(
        items=[h.item for h in reversed(newest) if not h.own], cursor=write_mark(mark), more=False
    )


def split_new(heard: Iterable[Heard], mark: Mark, limit: int) -> tuple[list[Heard], list[Heard]]:
    """The comments after the mark, oldest first, cut at `limit`: (taken now, left for later)."""
    new = [
        h
        for h in _unique(heard)
        if h.at > mark.at or (h.at == mark.at and h.item.network_id not in mark.ids)
    ]
    new.sort(key=_order)
    return new[:limit], new[limit:]


def advanced(mark: Mark, taken: Sequence[Heard], counts: Mapping[str, int]) -> Mark:
    """The mark after `taken` (oldest first, not empty): at the last one's second, with the
    ids taken at that second (and those taken before at it, when it has not moved)."""
    at = taken[-1].at
    ids = {h.item.network_id for h in taken if h.at == at}
    if at == mark.at:
        ids |= mark.ids
    return Mark(at=at, ids=frozenset(ids), counts=counts)


def _unique(heard: Iterable[Heard]) -> list[Heard]:
    seen: dict[str, Heard] = {}
    for one in heard:
        seen.setdefault(one.item.network_id, one)
    return list(seen.values())


def _order(heard: Heard) -> tuple[int, str]:
    return (heard.at, heard.item.network_id)


# --- engagement, shared with the Instagram channel --------------------------------------------


def meta_engagement(
    base_url: str,
    token: str,
    external_ids: Sequence[str],
    *,
    fields: str,
    metrics: Sequence[str],
    figures: Callable[[str, dict[str, Any], Mapping[str, int]], Engagement],
    label: str,
    channel_name: str,
    refusal: Callable[[requests.Response, str], Exception] = graph_error,
) -> dict[str, Engagement]:
    """The Engagement of each post of `external_ids`: per IDS_PER_CALL of them, one read of the
    posts (`fields`, made into figures by `figures`) and one of the insights (`metrics`) of those
    still there; the insights are not asked again in this call once Meta refused them."""
    ids = [one for one in dict.fromkeys(str(i) for i in external_ids) if one]
    result: dict[str, Engagement] = {}
    insights_refused = False
    for start in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[start : start + IDS_PER_CALL]
        nodes = graph_nodes(
            base_url,
            token,
            chunk,
            fields=fields,
            what=f"Reading the figures of the {label} posts",
            channel_name=channel_name,
            refusal=refusal,
        )
        live = [node_id for node_id, row in nodes.items() if row is not None]
        seen: dict[str, dict[str, int]] | None = None
        if live and metrics and not insights_refused:
            seen = graph_insights(
                base_url,
                token,
                live,
                metrics=metrics,
                what=f"Reading the insights of the {label} posts",
                channel_name=channel_name,
                refusal=refusal,
            )
            insights_refused = seen is None
        for node_id, row in nodes.items():
            if row is None:
                result[node_id] = Engagement(deleted=True)
            else:
                result[node_id] = figures(node_id, row, (seen or {}).get(node_id, {}))
    return result


def meta_items_gone(
    base_url: str,
    token: str,
    network_ids: Sequence[str],
    *,
    hidden: str,
    label: str,
    channel_name: str,
    refusal: Callable[[requests.Response, str], Exception] = graph_error,
) -> set[str]:
    """Which comments of `network_ids` Meta no longer has, or shows hidden (its `hidden` field
    true), read IDS_PER_CALL at a time in one multiple-id read each."""
    ids = [one for one in dict.fromkeys(str(i) for i in network_ids) if one]
    gone: set[str] = set()
    for start in range(0, len(ids), IDS_PER_CALL):
        nodes = graph_nodes(
            base_url,
            token,
            ids[start : start + IDS_PER_CALL],
            fields=f"id,{hidden}",
            what=f"Checking the {label} comments kept in the inbox",
            channel_name=channel_name,
            refusal=refusal,
        )
        gone |= {one for one, row in nodes.items() if row is None or row.get(hidden) is True}
    return gone


def graph_nodes(
    base_url: str,
    token: str,
    ids: Sequence[str],
    *,
    fields: str,
    what: str,
    channel_name: str,
    refusal: Callable[[requests.Response, str], Exception] = graph_error,
) -> dict[str, dict[str, Any] | None]:
    """`ids` (IDS_PER_CALL at most) read with `fields` in one multiple-id read: each id Meta
    answered for, with its object, or None where Meta no longer has it. A refusal that names ids
    which do not exist marks them so, and the others are asked again without them (each round
    drops one id at least)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, dict[str, Any] | None] = {}
    while wanted:
        response = graph_call(
            "GET",
            base_url,
            "",
            token,
            changes=False,
            what=what,
            channel_name=channel_name,
            params={"ids": ",".join(wanted), "fields": fields},
        )
        gone = missing_aliases(response, wanted)
        if gone:
            found.update(dict.fromkeys(gone))
            wanted = [one for one in wanted if one not in gone]
            continue
        if response.status_code != 200:
            raise refusal(response, what)
        found.update(_keyed(graph_json(response, what), wanted, what))
        break
    return found


def missing_aliases(response: requests.Response, wanted: Sequence[str]) -> set[str]:
    """The ids of `wanted` a refused multiple-id read names as not existing; empty for any other
    answer (which is then refused as usual)."""
    if response.status_code == 200:
        return set()
    code, subcode, error = graph_error_fields(response)
    if code != ALIASES_MISSING and (code, subcode) != NOT_FOUND:
        return set()
    named = set(re.findall(r"\w+", str(error.get("message") or "")))
    return {one for one in wanted if one in named}


def _keyed(
    data: dict[str, Any], wanted: Sequence[str], what: str
) -> dict[str, dict[str, Any] | None]:
    """A multiple-id answer checked: keyed by the ids asked for and nothing else, each an
    object; an id left out, or answered with a "does not exist" error, is None (gone). An id
    answered with another error is left out: no figures for it this time."""
    if not data:
        raise RetryableError(
            f"{what}: Meta answered for none of the {len(wanted)} asked for ({_shape(data)})."
        )
    strangers = sorted(set(data) - set(wanted))
    if strangers:
        raise RetryableError(
            f"{what}: Meta answered for {strangers[0]!r}, which cxhub did not ask for "
            f"({_shape(data)})."
        )
    found: dict[str, dict[str, Any] | None] = {}
    for node_id in wanted:
        row = data.get(node_id)
        if row is None:
            found[node_id] = None
            continue
        if not isinstance(row, dict):
            raise RetryableError(f"{what}: Meta's answer for {node_id} is not an object.")
        error = row.get("error")
        if error is None:
            found[node_id] = row
        elif _not_found(error):
            found[node_id] = None
    return found


def _not_found(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    code, subcode = _as_int(error.get("code")), _as_int(error.get("error_subcode"))
    return code == ALIASES_MISSING or (code, subcode) == NOT_FOUND


def graph_insights(
    base_url: str,
    token: str,
    ids: Sequence[str],
    *,
    metrics: Sequence[str],
    what: str,
    channel_name: str,
    refusal: Callable[[requests.Response, str], Exception] = graph_error,
) -> dict[str, dict[str, int]] | None:
    """Each post's lifetime value of each of `metrics`, in one read of the insights edge for all
    of `ids`; None when Meta refuses it in its own words (a permission, a task, a metric it does
    not give): those figures are unknown, which is no failure. Whatever fails any read (a rate
    limit, an expired token, a 5xx) raises."""
    response = graph_call(
        "GET",
        base_url,
        "insights",
        token,
        changes=False,
        what=what,
        channel_name=channel_name,
        params={"ids": ",".join(ids), "metric": ",".join(metrics)},
    )
    if response.status_code != 200 or "error" in json_or_empty(response):
        error = refusal(response, what)
        if isinstance(error, PermanentError):
            return None
        raise error
    data = graph_json(response, what)
    if not data:
        raise RetryableError(
            f"{what}: Meta answered for none of the {len(ids)} asked for ({_shape(data)})."
        )
    strangers = sorted(set(data) - set(ids))
    if strangers:
        raise RetryableError(
            f"{what}: Meta answered for {strangers[0]!r}, which cxhub did not ask for "
            f"({_shape(data)})."
        )
    values: dict[str, dict[str, int]] = {}
    for node_id, row in data.items():
        rows = row.get("data") if isinstance(row, dict) else None
        if isinstance(row, dict) and "error" in row:
            continue  # refused for this post only: its figures stay unknown
        if not isinstance(rows, list) or not all(isinstance(one, dict) for one in rows):
            raise RetryableError(
                f"{what}: Meta gave {node_id}'s insights in a form cxhub cannot read."
            )
        values[node_id] = {
            str(one.get("name")): value for one in rows if (value := _metric_value(one)) is not None
        }
    return values


def _metric_value(entry: dict[str, Any]) -> int | None:
    """A lifetime metric's value: its last `values` entry, or its `total_value`; None when it
    is no whole number (a breakdown, an empty list)."""
    values = entry.get("values")
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        value = values[-1].get("value")
    elif isinstance(entry.get("total_value"), dict):
        value = entry["total_value"].get("value")
    else:
        return None
    return value if _whole(value) else None


def graph_count(value: Any, what: str) -> int | None:
    """A count Meta gave; None when it gave none; RetryableError when it is no whole number."""
    if value is None:
        return None
    if _whole(value):
        return int(value)
    raise RetryableError(f"{what}: Meta gave {value!r} where a count belongs.")


# --- the Facebook Pages channel ---------------------------------------------------------------


class FacebookChannel(Channel):
    name = "facebook"
    label = "Facebook"
    limits = Limits(
        max_text=63_206,
        text_unit="characters",
        max_text_bytes=None,
        max_media=10,
        media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
        max_image_bytes=4_000_000,
        max_alt_text=None,
    )
    default_base_url = GRAPH_ORIGIN
    scopes = (
        "pages_show_list",
        "pages_manage_posts",
        "pages_read_engagement",
        # Reading the comments on the Page's posts, answering them, and the posts' insights
        # (issue 17).
        "pages_read_user_content",
        "pages_manage_engagement",
        "read_insights",
    )

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        return graph_oauth_spec(base_url, self.scopes)

    def oauth_client(self, base_url: str, *, redirect_uri: str) -> OAuthClient:
        return meta_client(self)

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        """One Identity per Page the person may publish to, each with its Page token (read with
        a long-lived User token, so it does not expire)."""
        long_lived = exchange_for_long_lived(self, base_url, tokens.access_token)
        pages = user_pages(
            base_url,
            long_lived.access_token,
            fields="id,name,username,access_token,tasks",
            channel=self,
        )
        identities = []
        for page in pages:
            tasks = page.get("tasks")
            if isinstance(tasks, list) and "CREATE_CONTENT" not in tasks:
                continue  # the person cannot publish on this Page
            if not page.get("id") or not page.get("access_token"):
                continue
            name = str(page.get("name") or page["id"])
            identities.append(
                Identity(
                    handle=str(page.get("username") or name),
                    external_id=str(page["id"]),
                    display_name=name,
                    tokens=TokenSet(access_token=str(page["access_token"])),
                )
            )
        if not identities:
            raise PermanentError(
                "Facebook gave cxhub no Page to publish to. Connect again and choose at least "
                "one Page on which you can create content."
            )
        return identities

    def refresh_token(self, account: Any) -> Any:
        raise AuthExpired(
            "Facebook refused the Page's token. Page tokens cannot be renewed: connect the Page "
            "again."
        )

    # --- publishing ---------------------------------------------------------------------------

    replies = True
    # A reply is a comment: text only.
    reply_media = False

    def publish(
        self,
        account: Any,
        text: str,
        media: Sequence[Any],
        *,
        idempotency_key: str,
        reply_to: ReplyTo | None = None,
    ) -> Published:
        page_id = _page_id(account)
        if reply_to is not None:
            if media:
                raise PermanentError(
                    "cxhub sends a Facebook reply as text only; remove the images. Nothing was "
                    "sent."
                )
            target = _answered(reply_to)
            return self._with_token(
                account,
                lambda token: self._reply(account, page_id, token, text, target, reply_to),
            )
        files = load_media(media, channel=self.name)
        return self._with_token(
            account, lambda token: self._publish(account, page_id, token, text, files)
        )

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
        reply_to: ReplyTo | None = None,
    ) -> Published | None:
        page_id = _page_id(account)
        if reply_to is not None:
            target = _answered(reply_to)
            return self._with_token(
                account,
                lambda token: self._find_reply(
                    account.base_url, page_id, token, text, target, hints
                ),
            )
        return self._with_token(
            account, lambda token: self._find(account, page_id, token, text, hints)
        )

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """The figures of the Page's posts `external_ids`: per IDS_PER_CALL, one read of the
        posts and one of their insights (see the module docstring)."""
        _page_id(account)
        return self._with_token(
            account,
            lambda token: meta_engagement(
                account.base_url,
                token,
                external_ids,
                fields=FB_FIGURES,
                metrics=FB_INSIGHTS,
                figures=_fb_figures,
                label=self.label,
                channel_name=self.name,
            ),
        )

    # --- what comes back (issue 17) -----------------------------------------------------------

    hears_back = True

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """The Page's kept comments Meta no longer has or shows hidden (see the module
        docstring)."""
        _page_id(account)
        if not any(network_ids):
            return set()
        return self._with_token(
            account,
            lambda token: meta_items_gone(
                account.base_url,
                token,
                network_ids,
                hidden="is_hidden",
                label=self.label,
                channel_name=self.name,
            ),
        )

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """The comments on the Page's INBOUND_POSTS newest posts since the cursor's mark (see
        the module docstring)."""
        page_id = _page_id(account)
        return self._with_token(
            account,
            lambda token: self._inbound(account, page_id, token, cursor, inbound_limit(limit)),
        )

    def _inbound(
        self, account: Any, page_id: str, token: str, cursor: str, limit: int
    ) -> InboundPage:
        mark = read_mark(cursor)
        heard: list[Heard] = []
        cut = False
        for post_id, post_url in self._recent_posts(account.base_url, page_id, token):
            rows, more = self._comments(account.base_url, token, post_id, mark, limit)
            heard += [_heard(row, post_id, post_url, page_id) for row in rows]
            cut = cut or more
        if mark is None:
            return newest_page(heard, limit, {})
        taken, left = split_new(heard, mark, limit)
        if not taken:
            return InboundPage(items=[], cursor=cursor, more=cut)
        return InboundPage(
            items=[h.item for h in taken if not h.own],
            cursor=write_mark(advanced(mark, taken, {})),
            more=bool(left) or cut,
        )

    def _recent_posts(self, base: str, page_id: str, token: str) -> list[tuple[str, str]]:
        """The Page's INBOUND_POSTS newest posts: (id, address)."""
        rows, _ = graph_items(
            base,
            f"{_q(page_id)}/published_posts",
            token,
            params={"fields": "id,permalink_url", "limit": INBOUND_POSTS},
            what="Reading the Page's posts",
            channel_name=self.name,
            pages=1,
        )
        posts = []
        for row in rows:
            post_id = graph_id(row.get("id"))
            if not post_id:
                raise RetryableError("Facebook listed a post of the Page without an id.")
            posts.append((post_id, graph_text(row.get("permalink_url"))))
        return posts

    def _comments(
        self, base: str, token: str, post_id: str, mark: Mark | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """A post's comments, replies included: its newest page on the first call; later, all
        of those since the mark, oldest first (and whether some were left unread)."""
        params: dict[str, Any] = {"filter": "stream", "fields": COMMENT_FIELDS}
        if mark is None:
            params.update(order="reverse_chronological", limit=min(limit, COMMENTS_PAGE))
            rows, _ = graph_items(
                base,
                f"{_q(post_id)}/comments",
                token,
                params=params,
                what=f"Reading the comments on post {post_id}",
                channel_name=self.name,
                pages=1,
            )
            return rows, False
        params.update(order="chronological", limit=COMMENTS_PAGE)
        if mark.at > 0:
            params["since"] = mark.at - 1
        return graph_items(
            base,
            f"{_q(post_id)}/comments",
            token,
            params=params,
            what=f"Reading the comments on post {post_id}",
            channel_name=self.name,
            pages=COMMENTS_PAGES,
        )

    def _with_token(self, account: Any, call: Callable[[str], Any]) -> Any:
        account_token(account, self.label)
        return with_fresh_token(self, account, call)

    def _publish(
        self, account: Any, page_id: str, token: str, text: str, files: list[MediaFile]
    ) -> Published:
        base = account.base_url
        if len(files) == 1:
            item = files[0]
            form = {"caption": text, "published": "true"}
            if item.alt_text:
                form["alt_text_custom"] = item.alt_text
            response = graph_call(
                "POST",
                base,
                f"{_q(page_id)}/photos",
                token,
                changes=True,
                what="Posting the photo to the Page",
                data=form,
                files={"source": (item.filename, item.data, item.mime)},
            )
            if response.status_code != 200:
                return self._refused(account, page_id, token, text, response, len(files))
            data = json_or_empty(response)
            photo_id = str(data.get("id") or "")
            post_id = str(data.get("post_id") or (f"{page_id}_{photo_id}" if photo_id else ""))
        else:
            form = {"message": text}
            photo_ids = [self._unpublished_photo(base, page_id, token, f) for f in files]
            for index, photo_id in enumerate(photo_ids):
                form[f"attached_media[{index}]"] = json.dumps({"media_fbid": photo_id})
            response = graph_call(
                "POST",
                base,
                f"{_q(page_id)}/feed",
                token,
                changes=True,
                what="Posting to the Page",
                data=form,
            )
            if response.status_code != 200:
                return self._refused(account, page_id, token, text, response, len(files))
            post_id = str(json_or_empty(response).get("id") or "")
        if not post_id:
            # It went out (200), but we cannot say where: look for it rather than send again.
            hints = ReconcileHints(since=timezone.now(), media_count=len(files))
            try:
                found = self._find(account, page_id, token, text, hints)
            except (RetryableError, PermanentError) as exc:
                raise UnknownOutcome(
                    f"Facebook answered the post without an id, and listing the Page's posts "
                    f"failed: {exc}"
                ) from exc
            if found is not None:
                return found
            raise UnknownOutcome("Facebook answered the post without an id")
        return Published(
            external_id=post_id[:255],
            external_url=self._permalink(base, token, post_id)[:2000],
            http_status=response.status_code,
        )

    def _refused(
        self,
        account: Any,
        page_id: str,
        token: str,
        text: str,
        response: requests.Response,
        images: int,
    ) -> Published:
        code, _, _ = graph_error_fields(response)
        if code == DUPLICATE_POST:
            # Facebook refuses a copy of the Page's last post: an earlier try went out.
            found = self._find(account, page_id, token, text, ReconcileHints(media_count=images))
            if found is not None:
                return found
        raise graph_error(response, "Facebook refused the post", changes=True)

    def _reply(
        self,
        account: Any,
        page_id: str,
        token: str,
        text: str,
        target: str,
        reply_to: ReplyTo,
    ) -> Published:
        """The Page's comment of `text` on `target` (see the module docstring)."""
        base = account.base_url
        response = graph_call(
            "POST",
            base,
            f"{_q(target)}/comments",
            token,
            changes=True,
            what="Replying on Facebook",
            data={"message": text},
        )
        if response.status_code != 200:
            raise graph_error(response, "Facebook refused the reply", changes=True)
        comment_id = graph_id(json_or_empty(response).get("id"))
        if not comment_id:
            # It went out (200), but we cannot say where: look for it rather than send again.
            hints = ReconcileHints(since=timezone.now(), media_count=0)
            try:
                found = self._find_reply(base, page_id, token, text, target, hints)
            except (RetryableError, PermanentError) as exc:
                raise UnknownOutcome(
                    f"Facebook answered the reply without an id, and listing the comments under "
                    f"{target} failed: {exc}"
                ) from exc
            if found is not None:
                return found
            raise UnknownOutcome("Facebook answered the reply without an id")
        # Where the permalink cannot be read, the answered comment is the nearest place.
        raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
        near = graph_text(raw.get("permalink_url"))
        return Published(
            external_id=comment_id[:255],
            external_url=self._permalink(base, token, comment_id, fallback=near)[:2000],
            http_status=response.status_code,
        )

    def _find_reply(
        self,
        base: str,
        page_id: str,
        token: str,
        text: str,
        target: str,
        hints: ReconcileHints | None,
    ) -> Published | None:
        """The Page's comment of `text` under `target` since the first try: read newest first
        (REPLY_PAGES at most), only the Page's own matched."""
        start = hints.since if hints is not None and hints.since is not None else None
        if start is not None:
            since = start - matching.CLOCK_SKEW
        else:
            since = timezone.now() - RECONCILE_WINDOW
        rows, _ = graph_items(
            base,
            f"{_q(target)}/comments",
            token,
            params={
                "fields": REPLY_FIELDS,
                "order": "reverse_chronological",
                "since": int(since.timestamp()),
                "limit": COMMENTS_PAGE,
            },
            what=f"Reading the comments under {target}",
            channel_name=self.name,
            pages=REPLY_PAGES,
        )
        ours = [_listed_comment(row) for row in rows if _author_id(row) == page_id]
        found = matching.find(text, ours, hints=hints, network=self.label, window=RECONCILE_WINDOW)
        if found is None:
            return None
        return Published(
            external_id=found.external_id[:255],
            external_url=(found.external_url or f"https://www.facebook.com/{found.external_id}")[
                :2000
            ],
            http_status=200,
        )

    def _unpublished_photo(self, base: str, page_id: str, token: str, item: MediaFile) -> str:
        form = {"published": "false"}
        if item.alt_text:
            form["alt_text_custom"] = item.alt_text
        response = graph_call(
            "POST",
            base,
            f"{_q(page_id)}/photos",
            token,
            # Unpublished, it shows nowhere: a lost answer is retried, not reconciled.
            changes=False,
            what=f"Uploading image {item.position + 1}",
            data=form,
            files={"source": (item.filename, item.data, item.mime)},
        )
        data = graph_json(response, f"Facebook refused image {item.position + 1}")
        photo_id = str(data.get("id") or "")
        if not photo_id:
            raise RetryableError("Facebook answered the upload without a photo id")
        return photo_id

    def _permalink(self, base: str, token: str, post_id: str, *, fallback: str = "") -> str:
        """The post's (or comment's) address for people; `fallback`, or a plain one, when Meta
        does not say (it is out either way, so nothing here may fail the publish)."""
        fallback = fallback or f"https://www.facebook.com/{post_id}"
        try:
            response = graph_call(
                "GET",
                base,
                _q(post_id),
                token,
                changes=False,
                what="Reading the post's address",
                params={"fields": "permalink_url"},
            )
            return str(graph_json(response, "").get("permalink_url") or fallback)
        except ChannelError:
            return fallback

    def _find(
        self, account: Any, page_id: str, token: str, text: str, hints: ReconcileHints | None
    ) -> Published | None:
        response = graph_call(
            "GET",
            account.base_url,
            f"{_q(page_id)}/posts",
            token,
            changes=False,
            what="Reading the Page's posts",
            params={
                "fields": "id,message,created_time,permalink_url,"
                "attachments{media_type,subattachments}",
                "limit": RECONCILE_LIMIT,
            },
        )
        data = graph_json(response, "Facebook did not list the Page's posts")
        posts = data.get("data") if isinstance(data.get("data"), list) else []
        found = matching.find(
            text,
            [_listed(post) for post in posts if isinstance(post, dict)],
            hints=hints,
            network=self.label,
            window=RECONCILE_WINDOW,
        )
        if found is None:
            return None
        return Published(
            external_id=found.external_id[:255],
            external_url=(found.external_url or f"https://www.facebook.com/{found.external_id}")[
                :2000
            ],
            http_status=response.status_code,
        )


def _heard(row: dict[str, Any], post_id: str, post_url: str, page_id: str) -> Heard:
    """A comment of the stream as an item: a reply answers its parent comment, any other the
    post; both belong to the post's thread."""
    comment_id = graph_id(row.get("id"))
    created = graph_time(row.get("created_time"))
    if not comment_id or created is None:
        raise RetryableError(
            f"Facebook listed a comment on post {post_id} without an id or the time it was made."
        )
    author = row.get("from") if isinstance(row.get("from"), dict) else {}
    parent = row.get("parent") if isinstance(row.get("parent"), dict) else {}
    author_id = graph_id(author.get("id"))
    # A Facebook person has no public handle: their name is what the team knows them by.
    name = graph_text(author.get("name"))
    item = Inbound(
        network_id=comment_id,
        kind="comment",
        text=graph_text(row.get("message")),
        created_at=created,
        author_handle=name,
        author_name=name,
        author_id=author_id,
        url=graph_text(row.get("permalink_url")) or post_url,
        thread_id=post_id,
        in_reply_to_id=graph_id(parent.get("id")) or post_id,
        deleted=row.get("is_hidden") is True,
        raw=row,
    )
    own = bool(author_id) and author_id == page_id
    return Heard(at=int(created.timestamp()), item=item, own=own, source=post_id)


def _listed(post: dict[str, Any]) -> matching.Listed:
    return matching.Listed(
        external_id=str(post.get("id") or ""),
        text=str(post.get("message") or ""),
        created_at=matching.parse_time(post.get("created_time")),
        media_count=_images(post.get("attachments")),
        external_url=str(post.get("permalink_url") or ""),
    )


def _images(attachments: Any) -> int | None:
    """How many images a post's attachments hold: a photo is one, an album as many as its
    subattachments, a link preview none; None when Meta did not say."""
    if attachments is None:
        return 0  # Meta leaves the field out of a post without attachments
    items = attachments.get("data") if isinstance(attachments, dict) else None
    if not isinstance(items, list):
        return None
    count = 0
    for item in items:
        kind = str((item or {}).get("media_type") or "") if isinstance(item, dict) else ""
        if kind == "album":
            inner = ((item.get("subattachments") or {}).get("data")) or []
            count += len(inner) if isinstance(inner, list) else 0
        elif kind == "photo":
            count += 1
    return count


def _answered(reply_to: ReplyTo) -> str:
    """The object a reply is a comment on: the item's comment, or the comment it replies to when
    it is itself a reply (Facebook shows two levels), or the post when the item is one."""
    raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
    parent = raw.get("parent")
    target = (graph_id(parent.get("id")) if isinstance(parent, Mapping) else "") or graph_id(
        reply_to.network_id
    )
    if not target:
        raise PermanentError(
            "The item this reply answers has no Facebook id, so there is nothing to reply to. "
            "Nothing was sent."
        )
    return target


def _author_id(row: dict[str, Any]) -> str:
    author = row.get("from")
    return graph_id(author.get("id")) if isinstance(author, dict) else ""


def _listed_comment(row: dict[str, Any]) -> matching.Listed:
    return matching.Listed(
        external_id=graph_id(row.get("id")),
        text=graph_text(row.get("message")),
        created_at=graph_time(row.get("created_time")),
        # A reply carries no image (cxhub sends none); Meta does not count a comment's.
        media_count=None,
        external_url=graph_text(row.get("permalink_url")),
    )


def _fb_figures(post_id: str, row: dict[str, Any], insights: Mapping[str, int]) -> Engagement:
    what = f"The figures of Facebook post {post_id}"
    return Engagement(
        likes=_summary_total(row.get("reactions"), what),
        reposts=_shares(row.get("shares"), what),
        replies=_summary_total(row.get("comments"), what),
        impressions=insights.get("post_media_view"),
        clicks=insights.get("post_clicks"),
    )


def _summary_total(edge: Any, what: str) -> int | None:
    """An edge's summary.total_count; None when Meta left the edge out."""
    if edge is None:
        return None
    summary = edge.get("summary") if isinstance(edge, dict) else None
    if not isinstance(summary, dict):
        raise RetryableError(f"{what}: Meta gave an edge without its summary ({_shape(edge)}).")
    return graph_count(summary.get("total_count"), what)


def _shares(value: Any, what: str) -> int | None:
    if value is None:
        return 0  # Meta leaves `shares` out of a post nobody shared
    if not isinstance(value, dict):
        raise RetryableError(f"{what}: Meta gave shares in a form cxhub cannot read.")
    return graph_count(value.get("count"), what)


# Whose CXHUB_OAUTH_CLIENTS entry stands for cxhub's Meta app when a channel has none.
_CHANNEL_FOR_CLIENT = FacebookChannel()


def _page_id(account: Any) -> str:
    page_id = str(account.external_id or "")
    if not page_id:
        raise PermanentError("This Facebook account has no Page id; connect the Page again.")
    return page_id


def _q(value: str) -> str:
    return quote(str(value), safe="")
