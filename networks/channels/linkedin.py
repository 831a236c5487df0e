"""LinkedIn (Posts API): up to 3,000 characters of commentary in the "little" text format, in
which reserved characters must be escaped with a backslash or the text is cut short silently.
A member posts as themself (urn:li:person) or, mostly, as a Company Page they administer
(urn:li:organization).

Sources (checked 2025/2026):
- learn.microsoft.com/linkedin/marketing/community-management/shares/little-text-format:
  "Characters reserved for little elements must be escaped to be treated as plaintext" and "All
  reserved characters need to be escaped with a backslash, even if those characters are not
  used in one of the supported elements or templates"; reserved: | { } @ [ ] ( ) < > # \\ * _ ~.
  (Unescaped, the post is published cut at the first reserved character.) Elements: mentions
  `@[Name](urn:li:person:…)`, hashtags `#tag`, and the template `{hashtag|\\#|tag}`.
- Commentary length: 3,000 characters, LinkedIn's post limit as publishing tools document it
  (Ayrshare, Blotato); the Posts API pages I could read do not state it. Counted on the text as
  written, before escaping.
- Images: LinkedIn's Images API (learn.microsoft.com/linkedin/marketing/community-management/
  shares/images-api, as mirrored by CData's LinkedIn driver docs): JPG, GIF (≤ 250 frames) and
  PNG; "total pixel count (width X height) less than 36,152,320". MultiImage API: 2 to 20
  images per post. `altText` up to 4,086 characters (LinkedIn's figure as quoted by an
  integration; not re-read on LinkedIn's page). LinkedIn states no byte limit for images;
  5 MB (5 × 2^20) is the figure publishing tools use.

Publishing (learn.microsoft.com/linkedin, checked November 2026):
- marketing/versioning: every call under https://api.linkedin.com/rest/ sends
  `LinkedIn-Version: YYYYMM` (no default is applied) and
  `X-Restli-Protocol-Version: 2.0.0` (URNs in query strings and paths URL-encoded). Versions
  live at least a year, a sunset one is refused (HTTP 426, as integrations report it):
  LINKEDIN_VERSION below is pinned and must be moved on once a year.
- community-management/shares/images-api: `POST /rest/images?action=initializeUpload` with
  `{"initializeUploadRequest": {"owner": <author URN>}}` answers `value.uploadUrl` and
  `value.image` (urn:li:image:…); the bytes are PUT to uploadUrl with the bearer token;
  `GET /rest/images/{urn}` tells `status` (WAITING_UPLOAD, PROCESSING, AVAILABLE,
  PROCESSING_FAILED). We wait, a bounded number of times, for AVAILABLE before posting. An
  uploaded image no post uses posts nothing, so a failed upload is simply tried again.
- community-management/shares/posts-api: `POST /rest/posts` with `author`, `commentary`,
  `visibility` PUBLIC, `distribution.feedDistribution` MAIN_FEED, `lifecycleState` PUBLISHED,
  and `content.media` {id, altText} for one image; multiimage-post-api: `content.multiImage.
  images` [{id, altText}] for 2 to 20. 201 with the post's URN in the `x-restli-id` header; a
  person sees it at https://www.linkedin.com/feed/update/<urn>/.
- shared/api-guide/concepts/error-handling: errors are `{"message", "serviceErrorCode",
  "status"}`; 401 is an expired or revoked token; 422 names the refused field. The same
  content from the same author again within a short window is refused with 422 "Content is a
  duplicate of urn:li:share:…" (not on LinkedIn's pages; reported alike by many integrations):
  that names our post when an earlier try's answer was lost, and is taken as published.
- shared/api-guide/concepts/rate-limits: daily limits per application and per member, reset at
  midnight UTC; a throttled call gets 429, with no rate-limit headers (LinkedIn also answers 429
  to protect its infrastructure). Retry-After is honoured if it ever comes; otherwise dispatch
  backs off on its own schedule.

Connecting (learn.microsoft.com/linkedin/shared/authentication, checked November 2026):
- authorization-code-flow: GET https://www.linkedin.com/oauth/v2/authorization
  (response_type=code, client_id, redirect_uri, state, scope space-separated), then POST
  https://www.linkedin.com/oauth/v2/accessToken with grant_type, code, redirect_uri, client_id
  and client_secret in the form body. Access tokens live 60 days. The answer's `scope` comes
  comma-separated ("email,openid,profile", as integrations' recordings of real answers show;
  LinkedIn's example has a single scope): an OAuth2Session that was given the requested scopes
  takes that for a changed scope unless OAUTHLIB_RELAX_TOKEN_SCOPE is set.
- programmatic-refresh-tokens: approved partners also get `refresh_token` and
  `refresh_token_expires_in` (a year); grant_type=refresh_token gives a new access token, and
  the refresh token keeps its first expiry (it is not renewed). Renewal runs through
  oauth.refresh_oauth2, which keeps the refresh token we have when none comes back.
- consumer/integrations/self-serve/sign-in-with-linkedin-v2: scopes `openid profile`;
  `GET https://api.linkedin.com/v2/userinfo` answers `sub` (the member's id: urn:li:person:<sub>)
  and `name`.
- marketing/community-management/organizations/organization-access-control-by-role:
  `GET /rest/organizationAcls?q=roleAssignee` lists the member's roles (`organization`, `role`,
  `state`); a Page may be posted to by ADMINISTRATOR, CONTENT_ADMIN and
  DIRECT_SPONSORED_CONTENT_POSTER (multiimage-post-api's permission table). Scopes
  w_organization_social (post) and r_organization_social (read the Page's posts, used by
  reconcile); w_member_social posts as the member. `GET /rest/organizations/{id}` gives the
  Page's localizedName and vanityName.
- token-introspection documents POST /oauth/v2/introspectToken. Revocation: LinkedIn's pages I
  could read do not document one, but https://www.linkedin.com/oauth/v2/revoke (token,
  client_id, client_secret in the form; 200) is what integrations call; it is used through
  oauth.revoke_oauth2, and a refusal only means LinkedIn keeps a token cxhub forgets anyway.

Reconcile: LinkedIn has no idempotency key. A create whose answer was lost, timed out or was a
5xx is an unknown outcome (issue 11); reconcile then reads the author's newest posts
(`GET /rest/posts?author=<urn>&q=author&sortBy=CREATED`, RECONCILE_COUNT of them, which needs
r_organization_social for a Page and the restricted r_member_social for a member) and matches
the published ones with networks.channels.matching. What the match relies on: `commentary`
comes back in the little format, as sent or as LinkedIn stores it (a bare #tag read back as
the template {hashtag|\\#|tag}, posts-api), and is read as plain text on both sides (escapes
undone, templates as "#tag", mention elements as the name shown); `content.media` (one image)
or `content.multiImage.images` count the images; `createdAt` (milliseconds) bounds the window
(the target's first try less matching.CLOCK_SKEW, or RECONCILE_WINDOW), and posts other targets
hold are left out. What it cannot tell apart: two posts of the same text and images in that
window (AmbiguousMatch, a person decides; LinkedIn's own duplicate refusal makes it rare); a
post pushed out of the RECONCILE_COUNT newest. A member's posts cannot be listed without
r_member_social: LinkedIn's 403 is then a PermanentError saying so.

What comes back (issue 17): the comments on the Page's own posts, read post by post
(learn.microsoft.com/linkedin/marketing/community-management, November 2026; the fields below
marked * are as integrations show them, not re-read on LinkedIn's pages):
- shares/posts-api, "Find Posts by Authors": `GET /rest/posts?author=<org URN>&q=author&
  count=&sortBy=CREATED` lists the Page's posts newest first (r_organization_social). Only the
  INBOUND_POSTS (20) newest are read: comments come mostly in a post's first days, and 20 posts
  are a week or more of a public body's Page; each one costs at least one call per fetch, out
  of LinkedIn's daily per-app and per-member limits that publishing shares. Comments on older
  posts are not heard. Each post is named by its `id`, the x-restli-id publish() stores as
  external_id, so `thread_id` and `in_reply_to_id` match our PostTarget.
- shares/comments-api, "Get Comments on Shares" and "Get Comments on Comments":
  `GET /rest/socialActions/{post URN or comment URN, URL-encoded}/comments` with `start` and
  `count`, answering `paging` {start, count, total, links} and `elements`, each with `$URN` /
  `commentUrn` (urn:li:comment:(urn:li:activity:…,…), the `network_id`), `id`, `actor` (a member
  or organization URN: `author_id` and `author_handle`, as no name comes with it), `message.text`,
  `created.time` (ms), `object` (the activity, not the share URN: not used for matching),
  `parentComment` on a nested reply (its `in_reply_to_id`; otherwise the post's URN), and
  `commentsSummary`* (totalFirstLevelComments, aggregatedTotalComments). A post's list holds
  its first-level comments; the replies to one are listed with that comment's URN as the target
  ("to resolve nested comments … provide a parent commentUrn"); replies to a reply are not read.
  The order of a list is not documented: nothing here relies on it. `count` has no published
  maximum: the pages go on until `paging.total` is reached, whatever LinkedIn gives per page.
- The cursor (ours, JSON) keeps for each post the creation time of the newest comment taken and
  the URNs taken at that millisecond, and for each thread with replies the reply count LinkedIn
  gave and the same mark. Each call reads every page of each post's first-level comments and
  takes those past the mark, and reads a thread's replies only when its count changed since
  (on the first call, every thread with replies; and every time where no count is given).
  Pages overlap by PAGE_OVERLAP comments, so that a deletion between two pages does not carry
  a comment past a page's edge unread. The first call takes the `limit` newest comments and
  marks every list at its newest comment (no back-fill); later calls take the oldest `limit`
  comments past the marks, with `more` when others wait. Comments by the Page itself (our
  replies) are not inbound. Known blind spots: a reply added and another deleted in one thread
  between two calls leaves the count unchanged (the new one is heard with the thread's next
  change); a comment that LinkedIn made visible later than an already-taken newer one would be
  behind the mark; more than MAX_COMMENT_PAGES pages on one post are not read (logged).
- Deleted comments: LinkedIn drops them from the lists (a deleted comment is not listed, and no
  tombstone comes), so `deleted` is never set while listing; the inbox keeps what it took, and
  items_gone (below) asks later.
- Errors as publishing: 401 → AuthExpired (after one renewal); 429 → RetryableError with
  Retry-After when LinkedIn sends one, else None (LinkedIn's limits are daily and its 429 has no
  reset header: networks.ratelimits then holds the account its default minute); 5xx and answers
  that are not a list of elements → RetryableError; 403 on the posts → PermanentError.

Replies (issue 17): the answer to a comment is a comment under it, made as the Page
(learn.microsoft.com/linkedin/marketing/community-management/shares/comments-api, "Create a
Comment", November 2026; points marked * are as integrations show them, not re-read on
LinkedIn's pages):
- `POST /rest/socialActions/{URN, URL-encoded}/comments` with `actor` (the Page, or the member),
  `object` (the post: the thread_id fetch_inbound gave, which is publish()'s share or ugcPost
  URN) and `message.text`; to answer a comment, the URN in the path is that comment's and
  `parentComment` names it too ("For nested comments, this is the urn of the parent comment").
  Scope w_organization_social (w_member_social for a member), as for posts. 201 Created, with
  the new comment's id in `x-restli-id`* (the numeric id: its URN is urn:li:comment:(<the
  parent's activity>,<id>)) and, as some integrations show, the comment itself in the body*
  (`$URN` / `commentUrn`, `object`); whichever comes is read. A 201 from which no URN can be
  made is an unknown outcome: reconcile finds the comment.
- Threads have two levels*: a reply goes under a first-level comment, never under a reply. An
  item that is itself a reply (its raw `parentComment`) is answered under the same first-level
  comment, which is how LinkedIn shows such an answer anyway.
- `message` is attributed text, not the little format of a post's commentary: the text dispatch
  gives (render()'s little text) is sent as plain text (little_to_plain), or the reply would
  show its escapes. A comment holds at most MAX_COMMENT characters* (1,250, the figure
  integrations give); a longer reply is refused before anything is sent. Replies carry no
  images here.
- A person opens a comment at https://www.linkedin.com/feed/update/<activity>/?commentUrn=…
  (and &replyUrn=… for a reply under a comment), as LinkedIn's "Copy link to comment" gives*.
- No idempotency key: reconcile of a reply reads the comments under the item it answers
  ("Get Comments on Comments", or the post's first-level comments for an answer to a post), keeps
  those made by our actor, and matches their text with networks.channels.matching from
  hints.since (less matching.CLOCK_SKEW). A post or a comment elsewhere with the same text is
  not under that item, so it is never taken for the reply; two replies of the same text under
  one comment since the first try are AmbiguousMatch. When the comment answered is gone (404),
  no reply can exist: None.

Engagement (issue 17), read in batches of ENGAGEMENT_BATCH posts:
- shares/network-update-social-actions, "Batch Get Social Actions"*: `GET /rest/socialActions?
  ids=List(<URL-encoded URNs>)` (Rest.li 2.0: the URNs encoded, List( , ) not) answers
  `results` {URN: {likesSummary.totalLikes, commentsSummary.aggregatedTotalComments (replies
  to comments included), …}}, and `errors` {URN: {status}} for those it has not: 404 is a post
  (or comment) deleted → Engagement(deleted=True). Other per-post errors are logged and that
  post gets no entry this time. Scope r_organization_social (r_member_social for a member); a
  refusal of the whole call (403) is a PermanentError as for inbound.
- organizations/share-statistics: `GET /rest/organizationalEntityShareStatistics?
  q=organizationalEntity&organizationalEntity=<Page URN>&shares=List(…)&ugcPosts=List(…)*`
  (share URNs and ugcPost URNs each in their own list) answers `elements`, each naming its
  `share` or `ugcPost`* with `totalShareStatistics` {impressionCount, clickCount, shareCount,
  likeCount, commentCount, …}: impressions, clicks and reposts (reshares). Organic figures of
  the last 12 months only. It needs rw_organization_admin and the ADMINISTRATOR role, which
  cxhub does not ask for when connecting (SCOPES): a 403 leaves impressions, clicks and reposts
  None, and is not a failure. Not asked for a member's posts, nor for comments (our replies).
- `quotes` is always None: LinkedIn counts reshares, with or without text, as one figure.
- Errors as elsewhere: 401 → AuthExpired after one renewal, 429 → RetryableError (Retry-After
  when sent), 5xx → RetryableError, an answer without its `results` or `elements` →
  RetryableError. Nothing is changed at LinkedIn.

Re-checking kept comments (issue 17, items_gone): shares/comments-api, "Get a Comment": `GET
/rest/socialActions/{URN, URL-encoded}/comments/{comment id}`, the URN being the object that the
comment URN names (urn:li:comment:(<object>,<id>)); 404 is a comment deleted (or under a deleted
post): gone. Where several kept comments share an object, its first-level comments are read
first ("Get Comments on Shares" on that object, COMMENTS_PAGE a page): one page can settle a
hundred of them, where "Get a Comment" costs a call each, out of the daily limits publishing
shares. A list only ever proves that a comment is there: one it does not show (a reply, listed
under its comment; one moved past a page's edge; one deleted) is asked for on its own, and only
that 404 makes it gone. Pages are read while more than one comment is unfound and fewer pages
than comments were read, so a list that shows none of them costs at most as many calls again as
asking for each. The comments-api's "Batch Get a Collection of Comments" would be one call per
object, but what it answers for a deleted comment is not on the pages I could read, so it is not
used. Errors as for inbound; nothing is changed at LinkedIn.
"""

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests
from django.utils import timezone

from . import matching
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundPage,
    Limits,
    OAuthSpec,
    ReconcileHints,
    ReplyTo,
    TokenSet,
    configured_client,
)
from .errors import AuthExpired, PermanentError, RetryableError, UnknownOutcome
from .http import (
    Published,
    check_server,
    error_for_status,
    json_or_empty,
    on_server,
    request,
    retry_after_seconds,
    with_status,
)
from .media_files import MediaFile, load_media
from .oauth import refresh_oauth2, revoke_oauth2, with_fresh_token

T = TypeVar("T")

log = logging.getLogger("cxhub.networks")

RESERVED = frozenset("|{}@[]()<>#\\*_~")

DEFAULT_BASE_URL = "https://api.linkedin.com"
AUTHORIZE_URL = "https://www.linkedin.com/oauth/v2/authorization"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
REVOKE_URL = "https://www.linkedin.com/oauth/v2/revoke"
# LinkedIn Marketing API version, YYYYMM; each is served for at least a year after release.
LINKEDIN_VERSION = "202605"
SCOPES = ("openid", "profile", "w_member_social", "w_organization_social", "r_organization_social")
# Page roles that may post as the Page.
POSTING_ROLES = frozenset({"ADMINISTRATOR", "CONTENT_ADMIN", "DIRECT_SPONSORED_CONTENT_POSTER"})
MAX_IMAGES = 20
MEDIA_POLLS = 20
MEDIA_POLL_SECONDS = 0.5
RECONCILE_COUNT = 50
RECONCILE_WINDOW = timedelta(hours=72)
# What comes back: the comments of the Page's INBOUND_POSTS newest posts are read (see the
# module's docstring for why 20), COMMENTS_PAGE at a time, consecutive pages overlapping by
# PAGE_OVERLAP, at most MAX_COMMENT_PAGES pages of one list.
INBOUND_POSTS = 20
COMMENTS_PAGE = 100
PAGE_OVERLAP = 5
MAX_COMMENT_PAGES = 50
CURSOR_VERSION = 1
# Replies: the longest comment LinkedIn takes (as integrations give it; see the docstring).
MAX_COMMENT = 1_250
# Engagement: posts asked for in one call (each URN is 30 to 90 characters in the query string,
# well within what a URL may hold).
ENGAGEMENT_BATCH = 50


def escape_little(text: str) -> str:
    """`text` as plain text in the little format: each reserved character escaped."""
    return "".join("\\" + char if char in RESERVED else char for char in text)


_HASHTAG_TEMPLATE = re.compile(r"\{hashtag\|\\?[#＃]\|([^{}|]*)\}")
_MENTION_ELEMENT = re.compile(r"@\[([^\]]*)\]\(urn:li:[^)]*\)")
_DUPLICATE = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)", re.IGNORECASE)


def little_to_plain(text: str) -> str:
    """Little text as a person reads it: escapes undone, hashtag templates as "#tag", mentions
    as the name shown. Used to recognise our own post when it is read back."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in RESERVED:
            out.append(text[index + 1])
            index += 2
            continue
        if char == "{" and (match := _HASHTAG_TEMPLATE.match(text, index)):
            out.append("#" + match.group(1))
            index = match.end()
            continue
        if char == "@" and (match := _MENTION_ELEMENT.match(text, index)):
            out.append(match.group(1))
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


class LinkedInChannel(Channel):
    name = "linkedin"
    label = "LinkedIn"
    limits = Limits(
        max_text=3_000,
        text_unit="characters",
        max_text_bytes=None,
        max_media=MAX_IMAGES,
        media_formats=frozenset({"JPEG", "PNG", "GIF"}),
        max_image_bytes=5 * 1024 * 1024,
        max_image_pixels=36_152_320 - 1,  # "less than 36,152,320"
        max_alt_text=4_086,
    )
    default_base_url = DEFAULT_BASE_URL

    def render(self, text: str) -> str:
        return escape_little(text)

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
        """Post `text`, already in the little format (dispatch passes render()'s output: it is
        sent as it is, never escaped again), with up to 20 images. With `reply_to`: the text
        as a comment under that comment (or post), see the module's docstring."""
        base = _base(account)
        author = _author(account)
        if reply_to is not None:
            if media:
                raise PermanentError("cxhub sends LinkedIn comments without images.")
            target = _reply_target(reply_to)
            return self._with_token(
                account, lambda token: _create_comment(base, token, author, text, target)
            )
        files = load_media(media, channel=self.name)
        if len(files) > MAX_IMAGES:
            raise PermanentError(f"LinkedIn takes at most {MAX_IMAGES} images in a post.")

        def send(token: str) -> Published:
            images = [(_upload(base, token, author, item), item.alt_text) for item in files]
            return _create_post(base, token, author, text, images)

        return self._with_token(account, send)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
        reply_to: ReplyTo | None = None,
    ) -> Published | None:
        base = _base(account)
        author = _author(account)
        if reply_to is not None:
            target = _reply_target(reply_to)
            return self._with_token(
                account, lambda token: _find_comment(base, token, author, text, target, hints)
            )
        return self._with_token(account, lambda token: _find_post(base, token, author, text, hints))

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """Likes and comments of our posts (and replies), and, where the token may read the
        Page's statistics, impressions, clicks and reshares; see the module's docstring."""
        urns = list(dict.fromkeys(str(urn) for urn in external_ids if _is_urn(str(urn))))
        if not urns:
            return {}
        base = _base(account)
        author = _author(account)
        return self._with_token(account, lambda token: _engagement(base, token, author, urns))

    def refresh_token(self, account: Any) -> None:
        refresh_oauth2(self, account)

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """The kept comments LinkedIn no longer has (see the module's docstring)."""
        urns = [
            urn
            for urn in dict.fromkeys(str(one) for one in network_ids)
            if _COMMENT_URN.fullmatch(urn)
        ]
        if not urns:
            return set()
        base = _base(account)
        return self._with_token(account, lambda token: _gone_comments(base, token, urns))

    # --- what comes back ----------------------------------------------------------------------

    hears_back = True

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """The comments on the Page's newest posts since `cursor` (see the module's docstring):
        on the first call the `limit` newest only; then the oldest `limit` of those not yet
        taken, `more` when others wait."""
        base = _base(account)
        author = _author(account)
        return self._with_token(
            account, lambda token: _inbound(base, token, author, cursor, max(1, limit))
        )

    def _with_token(self, account: Any, call: Callable[[str], T]) -> T:
        """`call(access_token)`, renewing first a token known to have expired, and once more
        if LinkedIn answers 401."""
        expired = account.expires_at is not None and account.expires_at <= timezone.now()
        if expired and account.refresh_token_encrypted:
            self.refresh_token(account)
        return with_fresh_token(self, account, call)

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        return OAuthSpec(
            authorize_url=on_server(AUTHORIZE_URL, base_url, DEFAULT_BASE_URL),
            token_url=on_server(TOKEN_URL, base_url, DEFAULT_BASE_URL),
            revoke_url=on_server(REVOKE_URL, base_url, DEFAULT_BASE_URL),
            scopes=SCOPES,
            client_auth="body",
        )

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        """The member (when LinkedIn tells who they are) and each Page they may post to."""
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        token = tokens.access_token
        identities = []
        person = _person(base, token)
        if person is not None:
            identities.append(person)
        identities += _organizations(base, token)
        if not identities:
            raise PermanentError(
                "LinkedIn did not say who you are or which Pages you manage; allow cxhub to see "
                "your profile, or ask a Page administrator for a posting role."
            )
        return identities

    def revoke(self, account: Any) -> bool:
        return revoke_oauth2(
            self.oauth_spec(account.base_url), configured_client(self), account.access_token
        )


# --- talking to LinkedIn ----------------------------------------------------------------------


def _base(account: Any) -> str:
    base = (account.base_url or DEFAULT_BASE_URL).rstrip("/")
    if base != DEFAULT_BASE_URL:
        check_server(base, what="LinkedIn API")
    return base


def _author(account: Any) -> str:
    author = str(account.external_id or "")
    if not author.startswith(("urn:li:person:", "urn:li:organization:")):
        raise AuthExpired(
            "The LinkedIn account does not say whom it posts as (a member or a Page); connect "
            "it again."
        )
    return author


def _headers(token: str, *, versioned: bool = True) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if versioned:
        headers["LinkedIn-Version"] = LINKEDIN_VERSION
        headers["X-Restli-Protocol-Version"] = "2.0.0"
    return headers


def _message(response: requests.Response) -> str:
    data = json_or_empty(response)
    message = data.get("message") or data.get("error_description") or response.text[:300]
    return str(message).strip()


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    detail = f"{what} (HTTP {status}): {_message(response)}"
    if status == 426:
        detail += f" (cxhub sends LinkedIn-Version {LINKEDIN_VERSION}; it needs moving on)"
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    return error_for_status(status, detail, retry_after=wait, changes=changes)


def _urn_path(urn: str) -> str:
    return quote(urn, safe="")


def _upload(base: str, token: str, author: str, item: MediaFile) -> str:
    """Register, upload and wait for one image; its urn:li:image."""
    response = request(
        "POST",
        f"{base}/rest/images",
        # An image no post uses is never shown: nothing went out.
        changes=False,
        what="Registering an image",
        params={"action": "initializeUpload"},
        json={"initializeUploadRequest": {"owner": author}},
        headers=_headers(token),
    )
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn refused to take an image")
    value = json_or_empty(response).get("value")
    value = value if isinstance(value, dict) else {}
    upload_url, image = str(value.get("uploadUrl") or ""), str(value.get("image") or "")
    if not upload_url or not image:
        raise RetryableError("LinkedIn answered the image registration without an upload URL")
    headers = {"Content-Type": item.mime}
    if _same_service(upload_url, base):
        headers["Authorization"] = f"Bearer {token}"
    put = request(
        "PUT", upload_url, changes=False, what="Uploading an image", data=item.data, headers=headers
    )
    if put.status_code not in (200, 201):
        raise _refusal(put, "LinkedIn refused an image")
    _wait_until_available(base, token, image)
    return image


def _same_service(url: str, base: str) -> bool:
    """Whether the bearer token may go to `url`: LinkedIn's own hosts, or the test server."""
    host = urlsplit(url).hostname or ""
    return (
        host == "linkedin.com" or host.endswith(".linkedin.com") or host == urlsplit(base).hostname
    )


def _wait_until_available(base: str, token: str, image: str) -> None:
    for attempt in range(MEDIA_POLLS):
        response = request(
            "GET",
            f"{base}/rest/images/{_urn_path(image)}",
            changes=False,
            what="Checking an uploaded image",
            headers=_headers(token),
        )
        if response.status_code != 200:
            raise _refusal(response, "LinkedIn did not say how an image is doing")
        status = str(json_or_empty(response).get("status") or "")
        if status == "AVAILABLE":
            return
        if status == "PROCESSING_FAILED":
            raise PermanentError(f"LinkedIn could not process image {image}.")
        if attempt + 1 < MEDIA_POLLS:
            time.sleep(MEDIA_POLL_SECONDS)
    raise RetryableError(
        f"LinkedIn was still processing an image after {MEDIA_POLLS * MEDIA_POLL_SECONDS:g} s"
    )


def _create_post(
    base: str, token: str, author: str, text: str, images: list[tuple[str, str]]
) -> Published:
    payload: dict[str, Any] = {
        "author": author,
        "commentary": text,
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    described = [{"id": image, "altText": alt} for image, alt in images]
    if len(described) == 1:
        payload["content"] = {"media": described[0]}
    elif described:
        payload["content"] = {"multiImage": {"images": described}}
    response = request(
        "POST",
        f"{base}/rest/posts",
        changes=True,
        what="Posting to LinkedIn",
        json=payload,
        headers=_headers(token),
    )
    if response.status_code == 422 and (match := _DUPLICATE.search(_message(response))):
        # Our own earlier try (whose answer was lost) is the only likely twin of this post
        # within LinkedIn's short duplicate window: it is the post.
        return _published(match.group(1), response.status_code)
    if response.status_code != 201:
        raise _refusal(response, "LinkedIn refused the post", changes=True)
    urn = response.headers.get("x-restli-id") or ""
    if not urn:
        # Created, but we cannot say where: reconcile finds it before any new try.
        raise UnknownOutcome("LinkedIn created the post but did not say its URN")
    return _published(urn, response.status_code)


def _published(urn: str, http_status: int) -> Published:
    return Published(
        external_id=urn[:255],
        external_url=f"https://www.linkedin.com/feed/update/{urn}/",
        http_status=http_status,
    )


def _find_post(
    base: str, token: str, author: str, text: str, hints: ReconcileHints | None
) -> Published | None:
    response = request(
        "GET",
        f"{base}/rest/posts",
        changes=False,
        what="Reading the author's posts",
        params={"author": author, "q": "author", "count": RECONCILE_COUNT, "sortBy": "CREATED"},
        headers=_headers(token),
    )
    if response.status_code == 403:
        raise with_status(
            PermanentError(
                f"LinkedIn does not let cxhub read the posts of {author} (HTTP 403: "
                f"{_message(response)}); look on LinkedIn whether the post went out."
            ),
            403,
        )
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not list the author's posts")
    elements = json_or_empty(response).get("elements")
    posts = [
        post
        for post in (elements if isinstance(elements, list) else [])
        if isinstance(post, dict) and post.get("lifecycleState", "PUBLISHED") == "PUBLISHED"
    ]
    found = matching.find(
        little_to_plain(text),
        [_listed(post) for post in posts],
        hints=hints,
        network="LinkedIn",
        window=RECONCILE_WINDOW,
    )
    return None if found is None else _published(found.external_id, response.status_code)


def _listed(post: dict[str, Any]) -> matching.Listed:
    urn = str(post.get("id") or "")
    return matching.Listed(
        external_id=urn,
        text=little_to_plain(str(post.get("commentary") or "")),
        created_at=matching.parse_time(post.get("createdAt") or post.get("publishedAt")),
        media_count=_images(post.get("content")),
        external_url=f"https://www.linkedin.com/feed/update/{urn}/" if urn else "",
    )


def _images(content: Any) -> int | None:
    """How many images a post holds: content.media is one, content.multiImage its images; a
    post without content has none; None for content we cannot read."""
    if content is None:
        return 0
    if not isinstance(content, dict):
        return None
    if isinstance(content.get("multiImage"), dict):
        images = content["multiImage"].get("images")
        return len(images) if isinstance(images, list) else None
    if isinstance(content.get("media"), dict):
        return 1
    return 0 if not content else None


def _person(base: str, token: str) -> Identity | None:
    response = request(
        "GET",
        f"{base}/v2/userinfo",
        changes=False,
        what="Asking LinkedIn who you are",
        headers=_headers(token, versioned=False),
    )
    if response.status_code == 401:
        raise _refusal(response, "LinkedIn refused the new token")
    if response.status_code in (403, 404):
        return None  # no openid/profile grant: only Pages can be offered
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not say who you are")
    data = json_or_empty(response)
    sub = str(data.get("sub") or "")
    if not sub:
        raise RetryableError("LinkedIn answered userinfo without a member id")
    name = str(data.get("name") or "").strip()
    return Identity(
        handle=name or sub,
        external_id=f"urn:li:person:{sub}",
        display_name=name,
        settings={"kind": "person"},
    )


def _organizations(base: str, token: str) -> list[Identity]:
    response = request(
        "GET",
        f"{base}/rest/organizationAcls",
        changes=False,
        what="Asking LinkedIn which Pages you manage",
        params={"q": "roleAssignee", "state": "APPROVED", "count": 100},
        headers=_headers(token),
    )
    if response.status_code == 403:
        return []  # no Page scopes granted to cxhub (or to this app)
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not list your Pages")
    elements = json_or_empty(response).get("elements")
    seen: dict[str, None] = {}
    for acl in elements if isinstance(elements, list) else []:
        if not isinstance(acl, dict) or acl.get("role") not in POSTING_ROLES:
            continue
        if acl.get("state", "APPROVED") != "APPROVED":
            continue
        urn = str(acl.get("organization") or acl.get("organizationalTarget") or "")
        if urn.startswith("urn:li:organization:"):
            seen.setdefault(urn)
    return [_organization(base, token, urn) for urn in seen]


def _organization(base: str, token: str, urn: str) -> Identity:
    org_id = urn.rsplit(":", 1)[1]
    response = request(
        "GET",
        f"{base}/rest/organizations/{quote(org_id, safe='')}",
        changes=False,
        what="Reading a Page's name",
        headers=_headers(token),
    )
    data = json_or_empty(response) if response.status_code == 200 else {}
    name = str(data.get("localizedName") or "").strip()
    vanity = str(data.get("vanityName") or "").strip()
    return Identity(
        handle=vanity or name or f"organization {org_id}",
        external_id=urn,
        display_name=name or f"LinkedIn Page {org_id}",
        settings={"kind": "organization"},
    )


# --- what comes back --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    """How far one list of comments was taken: the creation time (ms) of the newest comment
    taken, and the comments taken at that very millisecond (others may share it)."""

    time: int = 0
    edge: frozenset[str] = frozenset()

    def is_new(self, comment: "_Comment") -> bool:
        return comment.when > self.time or (
            comment.when == self.time and comment.urn not in self.edge
        )

    def past(self, taken: Sequence["_Comment"]) -> "_Mark":
        """The mark once `taken` (new comments of this list) are taken too."""
        if not taken:
            return self
        newest = max(comment.when for comment in taken)
        edge = {comment.urn for comment in taken if comment.when == newest}
        if newest == self.time:
            edge |= self.edge
        return _Mark(newest, frozenset(edge))


@dataclass(frozen=True)
class _Thread:
    """The replies to one first-level comment: how many LinkedIn counted when they were last
    read (None: it gave no count, so they are read on every call), and how far they were
    taken."""

    count: int | None
    mark: _Mark


@dataclass(frozen=True)
class _PostMark:
    """How far the comments of one of our posts were taken: its first-level comments, and
    the replies of those that have some."""

    mark: _Mark = _Mark()
    threads: Mapping[str, _Thread] = field(default_factory=dict)


@dataclass(frozen=True)
class _Comment:
    urn: str
    when: int  # created.time, milliseconds since the epoch
    actor: str
    # The replies LinkedIn counts under it (commentsSummary); None where the answer says not.
    replies: int | None
    item: Inbound


@dataclass
class _PostRead:
    """What one call read of one post: its first-level comments, and the replies of the
    threads read this time (LinkedIn's count when read, and the replies)."""

    post: str
    before: _PostMark
    top: list[_Comment]
    threads: dict[str, tuple[int | None, list[_Comment]]] = field(default_factory=dict)


class _Gone(Exception):
    """LinkedIn answered 404: the post or comment was deleted since it was listed."""


def _inbound(base: str, token: str, author: str, cursor: str, limit: int) -> InboundPage:
    before = _load_cursor(cursor)
    reads = []
    for post in _recent_posts(base, token, author):
        read = _read_post(base, token, post, (before or {}).get(post, _PostMark()))
        if read is not None:
            reads.append(read)
    if before is None:
        return _first_page(reads, author, limit)
    return _next_page(reads, author, cursor, limit)


_Found = tuple[str, str, _Comment]  # (post, "" or the first-level comment replied to, comment)


def _comments_of(read: _PostRead) -> list[_Found]:
    """Every comment read on the post: its first-level comments, then the replies read."""
    found = [(read.post, "", comment) for comment in read.top]
    for thread, (_count, replies) in read.threads.items():
        found += [(read.post, thread, reply) for reply in replies]
    return found


def _first_page(reads: list[_PostRead], author: str, limit: int) -> InboundPage:
    """The `limit` newest comments; every list marked at its newest comment, so that
    nothing older is ever back-filled."""
    found = [entry for read in reads for entry in _comments_of(read) if entry[2].actor != author]
    found = sorted(_once(found), key=lambda entry: (entry[2].when, entry[2].urn))[-limit:]
    everything = [entry for read in reads for entry in _comments_of(read)]
    marks = {read.post: _moved(read, everything, []) for read in reads}
    return InboundPage(items=[c.item for _, _, c in found], cursor=_dump_cursor(marks), more=False)


def _next_page(reads: list[_PostRead], author: str, cursor: str, limit: int) -> InboundPage:
    """The oldest `limit` comments not taken yet, and the marks moved past exactly those."""
    found = [
        entry for read in reads for entry in _comments_of(read) if _is_new(read, entry, author)
    ]
    if not found:
        return InboundPage(items=[], cursor=cursor, more=False)
    found = sorted(_once(found), key=lambda entry: (entry[2].when, entry[2].urn))
    taken, left = found[:limit], found[limit:]
    marks = {read.post: _moved(read, taken, left) for read in reads}
    return InboundPage(
        items=[c.item for _, _, c in taken], cursor=_dump_cursor(marks), more=bool(left)
    )


def _once(found: list[_Found]) -> list[_Found]:
    """A reply LinkedIn would list both on the post and under its comment is taken once."""
    return list({entry[2].urn: entry for entry in reversed(found)}.values())


def _thread_mark(read: _PostRead, thread: str) -> _Mark:
    """Where a thread's replies were taken to; from the start for one not known (its
    comment is new, or had no replies last time)."""
    known = read.before.threads.get(thread)
    return known.mark if known is not None else _Mark()


def _is_new(read: _PostRead, entry: _Found, author: str) -> bool:
    _post, thread, comment = entry
    if comment.actor == author:
        return False  # our own comments and replies are not what came back
    mark = _thread_mark(read, thread) if thread else read.before.mark
    return mark.is_new(comment)


def _moved(read: _PostRead, taken: list[_Found], left: list[_Found]) -> _PostMark:
    """The post's marks once `taken` are taken, `left` waiting for a later call."""

    def of(entries: list[_Found], thread: str) -> list[_Comment]:
        return [c for post, key, c in entries if post == read.post and key == thread]

    threads: dict[str, _Thread] = {}
    for comment in read.top:
        if comment.urn in read.threads:
            count, _replies = read.threads[comment.urn]
            mark = _thread_mark(read, comment.urn).past(of(taken, comment.urn))
            # Replies still waiting: no count kept, so that the thread is read again.
            if of(left, comment.urn):
                count = None
            if count or mark != _Mark():
                threads[comment.urn] = _Thread(count, mark)
        elif comment.urn in read.before.threads and comment.replies != 0:
            threads[comment.urn] = read.before.threads[comment.urn]
    return _PostMark(read.before.mark.past(of(taken, "")), threads)


def _read_post(base: str, token: str, post: str, before: _PostMark) -> _PostRead | None:
    """One post's first-level comments, and the replies of those whose reply count changed
    since it was last read (or that come without one); None when the post is gone."""
    try:
        top = _parse_comments(_all_comments(base, token, post), post, parent="")
    except _Gone:
        return None
    read = _PostRead(post, before, top)
    for comment in top:
        known = before.threads.get(comment.urn)
        if comment.replies == 0 or (
            comment.replies is not None and known is not None and known.count == comment.replies
        ):
            continue
        try:
            elements = _all_comments(base, token, comment.urn)
        except _Gone:
            continue
        read.threads[comment.urn] = (
            comment.replies,
            _parse_comments(elements, post, parent=comment.urn),
        )
    return read


def _recent_posts(base: str, token: str, author: str) -> list[str]:
    """The URNs of the author's INBOUND_POSTS newest published posts, as publish() stores
    them (the x-restli-id LinkedIn gives a new post is the id the Posts API lists)."""
    response = request(
        "GET",
        f"{base}/rest/posts",
        changes=False,
        what="Reading the Page's newest posts",
        params={"author": author, "q": "author", "count": INBOUND_POSTS, "sortBy": "CREATED"},
        headers=_headers(token),
    )
    if response.status_code == 403:
        raise with_status(
            PermanentError(
                f"LinkedIn does not let cxhub read the posts of {author} (HTTP 403: "
                f"{_message(response)}); comments cannot be read without r_organization_social."
            ),
            403,
        )
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not list the Page's posts")
    elements = _elements(response, "The Page's posts")
    return [
        str(post["id"])
        for post in elements
        if isinstance(post, dict)
        and str(post.get("id") or "").startswith("urn:li:")
        and post.get("lifecycleState", "PUBLISHED") == "PUBLISHED"
    ]


def _all_comments(base: str, token: str, target: str) -> list[Any]:
    """Every comment LinkedIn lists on `target` (a post; or a comment, for its replies), page
    after page. Pages overlap by PAGE_OVERLAP: a comment deleted while they are read moves
    the others up one place, and without the overlap the one at a page's edge would be read
    on neither page (the repeats are dropped by URN afterwards)."""
    elements: list[Any] = []
    start = 0
    for _ in range(MAX_COMMENT_PAGES):
        page, total = _comments_page(base, token, target, start)
        elements += page
        end = start + len(page)
        if not page or (end >= total if total is not None else len(page) < COMMENTS_PAGE):
            return elements
        start = end - PAGE_OVERLAP if len(page) > PAGE_OVERLAP else end
    log.warning("LinkedIn lists more than %d pages of comments on %s", MAX_COMMENT_PAGES, target)
    return elements


def _comments_page(base: str, token: str, target: str, start: int) -> tuple[list[Any], int | None]:
    response = request(
        "GET",
        f"{base}/rest/socialActions/{_urn_path(target)}/comments",
        changes=False,
        what="Reading comments",
        params={"start": start, "count": COMMENTS_PAGE},
        headers=_headers(token),
    )
    if response.status_code == 404:
        raise _Gone(target)
    if response.status_code != 200:
        raise _refusal(response, f"LinkedIn did not list the comments on {target}")
    elements = _elements(response, f"The comments on {target}")
    paging = json_or_empty(response).get("paging")
    total = paging.get("total") if isinstance(paging, dict) else None
    return elements, total if isinstance(total, int) and not isinstance(total, bool) else None


def _elements(response: requests.Response, what: str) -> list[Any]:
    """The `elements` of a collection LinkedIn answered with 200; a RetryableError that says
    so when the answer is not one (a proxy's page, a cut answer), never a KeyError."""
    try:
        data = response.json()
    except ValueError:
        data = None
    elements = data.get("elements") if isinstance(data, dict) else None
    if not isinstance(elements, list):
        raise with_status(
            RetryableError(
                f"{what}: LinkedIn answered HTTP {response.status_code} with no list of "
                f"elements: {response.text[:200]!r}"
            ),
            response.status_code,
        )
    return elements


def _parse_comments(elements: list[Any], post: str, *, parent: str) -> list[_Comment]:
    """The comments among `elements` (once each: pages overlap), replies of `parent` when
    it is set. An element without a comment URN or a creation time cannot be told apart or
    placed in time; it is logged and left out."""
    comments: dict[str, _Comment] = {}
    for element in elements:
        comment = _comment(element, post, parent)
        if comment is None:
            log.warning("A comment LinkedIn listed on %s cannot be read: %.300r", post, element)
            continue
        comments[comment.urn] = comment
    return list(comments.values())


def _comment(element: Any, post: str, parent: str) -> _Comment | None:
    if not isinstance(element, dict):
        return None
    urn = str(element.get("$URN") or element.get("commentUrn") or "")
    if not urn and element.get("id") and element.get("object"):
        urn = f"urn:li:comment:({element['object']},{element['id']})"
    created = element.get("created")
    when = created.get("time") if isinstance(created, dict) else None
    if not urn.startswith("urn:li:comment:") or not isinstance(when, int) or isinstance(when, bool):
        return None
    try:
        created_at = datetime.fromtimestamp(when / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    actor = str(element.get("actor") or "")
    message = element.get("message")
    parent_comment = element.get("parentComment")
    item = Inbound(
        network_id=urn,
        kind="comment",
        text=str(message.get("text") or "") if isinstance(message, dict) else "",
        created_at=created_at,
        author_handle=actor,
        author_id=actor,
        url=f"https://www.linkedin.com/feed/update/{post}/",
        thread_id=post,
        in_reply_to_id=(
            parent_comment if isinstance(parent_comment, str) and parent_comment else parent
        )
        or post,
        raw=element,
    )
    return _Comment(urn, when, actor, _reply_count(element.get("commentsSummary")), item)


def _reply_count(summary: Any) -> int | None:
    if not isinstance(summary, dict):
        return None
    count = summary.get("aggregatedTotalComments", summary.get("totalFirstLevelComments"))
    return count if isinstance(count, int) and not isinstance(count, bool) else None


# The cursor: {"v": 1, "posts": {post URN: {"t": ms, "e": [URNs at t], "threads": {comment URN:
# {"n": count or null, "t": ms, "e": [...]}}}}}, for the INBOUND_POSTS newest posts only.


def _load_cursor(cursor: str) -> dict[str, _PostMark] | None:
    """The marks in `cursor`; None for "" (the first call). One that cannot be read (a
    cursor of another version) starts over as a first call, which back-fills nothing."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)
    except ValueError:
        data = None
    ours = isinstance(data, dict) and data.get("v") == CURSOR_VERSION
    posts = data.get("posts") if ours else None
    if not isinstance(posts, dict):
        log.warning("A LinkedIn inbound cursor could not be read; starting from the newest")
        return None
    marks = {}
    for post, entry in posts.items():
        if isinstance(entry, dict):
            threads = entry.get("threads")
            marks[post] = _PostMark(
                _load_mark(entry),
                {
                    urn: _Thread(_count(thread.get("n")), _load_mark(thread))
                    for urn, thread in (threads.items() if isinstance(threads, dict) else ())
                    if isinstance(thread, dict)
                },
            )
    return marks


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _load_mark(entry: dict[str, Any]) -> _Mark:
    edge = entry.get("e")
    return _Mark(
        _count(entry.get("t")) or 0,
        frozenset(str(urn) for urn in edge) if isinstance(edge, list) else frozenset(),
    )


def _dump_cursor(marks: Mapping[str, _PostMark]) -> str:
    def mark(value: _Mark) -> dict[str, Any]:
        return {"t": value.time, "e": sorted(value.edge)}

    posts = {
        post: {
            **mark(entry.mark),
            "threads": {
                urn: {"n": thread.count, **mark(thread.mark)}
                for urn, thread in entry.threads.items()
            },
        }
        for post, entry in marks.items()
    }
    return json.dumps({"v": CURSOR_VERSION, "posts": posts}, separators=(",", ":"))


# --- replies ----------------------------------------------------------------------------------

# urn:li:comment:(<the post's activity, or the post>,<the comment's id>)
_COMMENT_URN = re.compile(r"urn:li:comment:\((urn:li:[A-Za-z]+:[^,()]+),([^,()]+)\)")
_POST_URN = re.compile(r"urn:li:(?:share|ugcPost|activity):[^,()\s]+")


@dataclass(frozen=True)
class _ReplyTarget:
    """Where a reply goes: the URN whose comments it joins (`on`), the post (`object`), the
    first-level comment it answers (`parent`, "" for an answer to the post itself), and that
    comment's activity, from which the new comment's URN is made (`activity`, "" if unknown)."""

    on: str
    object: str
    parent: str = ""
    activity: str = ""


def _is_urn(value: str) -> bool:
    return value.startswith("urn:li:")


def _reply_target(reply_to: ReplyTo) -> _ReplyTarget:
    """The comment (or post) `reply_to` names, as LinkedIn's create call needs it. An item that
    is itself a reply is answered under its first-level comment: threads have two levels."""
    item = str(reply_to.network_id or "")
    raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
    if _POST_URN.fullmatch(item):
        return _ReplyTarget(on=item, object=item)
    if not _COMMENT_URN.fullmatch(item):
        raise PermanentError(f"LinkedIn has no comment or post {item!r} to answer.")
    above = raw.get("parentComment")
    parent = above if isinstance(above, str) and _COMMENT_URN.fullmatch(above) else item
    activity = _activity(parent)
    listed_on = raw.get("object")
    post = next(
        (
            urn
            for urn in (reply_to.thread_id, listed_on, activity)
            if isinstance(urn, str) and _POST_URN.fullmatch(urn)
        ),
        activity,
    )
    return _ReplyTarget(on=parent, object=post, parent=parent, activity=activity)


def _activity(comment: str) -> str:
    """The post (its activity, as LinkedIn names it) a comment URN is under; "" if none."""
    match = _COMMENT_URN.fullmatch(comment)
    return match.group(1) if match else ""


def _create_comment(
    base: str, token: str, author: str, text: str, target: _ReplyTarget
) -> Published:
    message = little_to_plain(text)
    if not message.strip():
        raise PermanentError("The reply has no text.")
    if len(message) > MAX_COMMENT:
        raise PermanentError(
            f"The reply is {len(message):,} characters; a LinkedIn comment holds at most "
            f"{MAX_COMMENT:,} ({len(message) - MAX_COMMENT:,} too many)."
        )
    payload: dict[str, Any] = {
        "actor": author,
        "object": target.object,
        "message": {"text": message},
    }
    if target.parent:
        payload["parentComment"] = target.parent
    response = request(
        "POST",
        f"{base}/rest/socialActions/{_urn_path(target.on)}/comments",
        changes=True,
        what="Replying on LinkedIn",
        json=payload,
        headers=_headers(token),
    )
    if response.status_code != 201:
        raise _refusal(response, "LinkedIn refused the reply", changes=True)
    urn = _new_comment_urn(response, target)
    if not urn:
        # Made, but we cannot say where: reconcile finds it before any new try.
        raise with_status(
            UnknownOutcome("LinkedIn made the comment but did not say its URN"),
            response.status_code,
        )
    return _comment_published(urn, target.parent, response.status_code)


def _new_comment_urn(response: requests.Response, target: _ReplyTarget) -> str:
    """The new comment's URN: from the comment in the body, else from the id in x-restli-id
    (or the body) under the activity of the comment answered; "" when neither says."""
    data = json_or_empty(response)
    for key in ("$URN", "commentUrn"):
        value = data.get(key)
        if isinstance(value, str) and _COMMENT_URN.fullmatch(value):
            return value
    header = unquote(response.headers.get("x-restli-id") or "").strip()
    if _COMMENT_URN.fullmatch(header):
        return header
    comment_id = header or str(data.get("id") or "")
    listed_on = data.get("object")
    activity = (
        listed_on
        if isinstance(listed_on, str) and listed_on.startswith("urn:li:activity:")
        else target.activity
    )
    if activity and re.fullmatch(r"\d+", comment_id):
        return f"urn:li:comment:({activity},{comment_id})"
    return ""


def _comment_url(urn: str, parent: str) -> str:
    """Where a person sees the comment `urn` (a reply under `parent`, when set)."""
    post = _activity(urn)
    if not post:
        return ""
    url = f"https://www.linkedin.com/feed/update/{post}/?commentUrn="
    if parent:
        return url + f"{quote(parent, safe='')}&replyUrn={quote(urn, safe='')}"
    return url + quote(urn, safe="")


def _comment_published(urn: str, parent: str, http_status: int) -> Published:
    return Published(
        external_id=urn[:255], external_url=_comment_url(urn, parent), http_status=http_status
    )


def _find_comment(
    base: str,
    token: str,
    author: str,
    text: str,
    target: _ReplyTarget,
    hints: ReconcileHints | None,
) -> Published | None:
    """Our reply among the comments under the item answered (see the module's docstring)."""
    try:
        elements = _all_comments(base, token, target.on)
    except _Gone:
        return None  # the comment answered is gone, and any reply to it with it
    listed = [
        comment
        for element in elements
        if (comment := _our_comment(element, author, target)) is not None
    ]
    found = matching.find(
        little_to_plain(text), listed, hints=hints, network="LinkedIn", window=RECONCILE_WINDOW
    )
    if found is None:
        return None
    return Published(found.external_id, external_url=found.external_url, http_status=200)


def _our_comment(element: Any, author: str, target: _ReplyTarget) -> matching.Listed | None:
    """A comment listed under the item answered, when our actor made it there."""
    if not isinstance(element, dict) or element.get("actor") != author:
        return None
    urn = str(element.get("$URN") or element.get("commentUrn") or "")
    if not _COMMENT_URN.fullmatch(urn):
        return None
    parent = element.get("parentComment")
    if target.parent and isinstance(parent, str) and parent and parent != target.parent:
        return None
    created = element.get("created")
    message = element.get("message")
    return matching.Listed(
        external_id=urn,
        text=str(message.get("text") or "") if isinstance(message, dict) else "",
        created_at=matching.parse_time(created.get("time") if isinstance(created, dict) else None),
        external_url=_comment_url(urn, target.parent),
    )


# --- engagement -------------------------------------------------------------------------------


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _restli_list(urns: list[str]) -> str:
    """Rest.li 2.0's List(…) of URNs for a query string: each URN encoded, the list not."""
    return "List(" + ",".join(_urn_path(urn) for urn in urns) + ")"


def _engagement(base: str, token: str, author: str, urns: list[str]) -> dict[str, Engagement]:
    figures: dict[str, Engagement] = {}
    for chunk in _chunks(urns, ENGAGEMENT_BATCH):
        figures |= _social_actions(base, token, chunk)
    if author.startswith("urn:li:organization:"):
        posts = [
            urn
            for urn, seen in figures.items()
            if not seen.deleted and urn.startswith(("urn:li:share:", "urn:li:ugcPost:"))
        ]
        for chunk in _chunks(posts, ENGAGEMENT_BATCH):
            for urn, (impressions, clicks, reposts) in _statistics(base, token, author, chunk):
                figures[urn] = replace(
                    figures[urn], impressions=impressions, clicks=clicks, reposts=reposts
                )
    return figures


def _social_actions(base: str, token: str, urns: list[str]) -> dict[str, Engagement]:
    """Likes and comments of `urns` in one call; deleted ones marked."""
    response = request(
        "GET",
        f"{base}/rest/socialActions?ids={_restli_list(urns)}",
        changes=False,
        what="Reading likes and comments",
        headers=_headers(token),
    )
    if response.status_code == 403:
        raise with_status(
            PermanentError(
                f"LinkedIn does not let cxhub read the likes and comments of these posts (HTTP "
                f"403: {_message(response)}); they cannot be read without r_organization_social."
            ),
            403,
        )
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not give the likes and comments of the posts")
    results, errors = _batch(response)
    figures = {}
    for urn in urns:
        if isinstance(results.get(urn), dict):
            figures[urn] = _summary(results[urn])
        elif _status(errors.get(urn)) == 404:
            figures[urn] = Engagement(deleted=True)
        else:
            log.warning("LinkedIn gave no likes or comments for %s: %.300r", urn, errors.get(urn))
    return figures


def _batch(response: requests.Response) -> tuple[dict[str, Any], dict[str, Any]]:
    """A batch answer's `results` and `errors`, keyed by URN (decoded, however they come); a
    RetryableError that says so when the answer is not one."""
    try:
        data = response.json()
    except ValueError:
        data = None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise with_status(
            RetryableError(
                f"Likes and comments: LinkedIn answered HTTP {response.status_code} with no "
                f"results: {response.text[:200]!r}"
            ),
            response.status_code,
        )
    errors = data.get("errors")
    # Statuses of keys without an error entry (Rest.li lists both) count as errors too.
    statuses = data.get("statuses")
    failed = {
        key: {"status": status}
        for key, status in (statuses.items() if isinstance(statuses, dict) else ())
        if isinstance(status, int) and status >= 400
    }
    failed |= errors if isinstance(errors, dict) else {}
    return (
        {unquote(str(key)): value for key, value in results.items()},
        {unquote(str(key)): value for key, value in failed.items()},
    )


def _status(error: Any) -> int | None:
    return _count(error.get("status")) if isinstance(error, dict) else None


def _summary(result: dict[str, Any]) -> Engagement:
    likes = result.get("likesSummary")
    comments = result.get("commentsSummary")
    return Engagement(
        likes=_count(likes.get("totalLikes")) if isinstance(likes, dict) else None,
        replies=(
            _count(comments.get("aggregatedTotalComments")) if isinstance(comments, dict) else None
        ),
    )


_Figures = tuple[int | None, int | None, int | None]  # impressions, clicks, reshares


def _statistics(base: str, token: str, author: str, urns: list[str]) -> list[tuple[str, _Figures]]:
    """The Page's figures for its posts `urns`; none where the token may not read them."""
    shares = [urn for urn in urns if urn.startswith("urn:li:share:")]
    ugc_posts = [urn for urn in urns if urn.startswith("urn:li:ugcPost:")]
    query = f"q=organizationalEntity&organizationalEntity={_urn_path(author)}"
    if shares:
        query += f"&shares={_restli_list(shares)}"
    if ugc_posts:
        query += f"&ugcPosts={_restli_list(ugc_posts)}"
    response = request(
        "GET",
        f"{base}/rest/organizationalEntityShareStatistics?{query}",
        changes=False,
        what="Reading the Page's statistics",
        headers=_headers(token),
    )
    if response.status_code == 403:
        # rw_organization_admin (and the ADMINISTRATOR role) not granted: no such figures.
        log.info("LinkedIn does not let cxhub read %s's statistics: %s", author, _message(response))
        return []
    if response.status_code != 200:
        raise _refusal(response, "LinkedIn did not give the Page's statistics")
    found = []
    for element in _elements(response, "The Page's statistics"):
        if not isinstance(element, dict):
            continue
        urn = element.get("share") or element.get("ugcPost")
        totals = element.get("totalShareStatistics")
        if urn in urns and isinstance(totals, dict):
            figures = (
                _count(totals.get("impressionCount")),
                _count(totals.get("clickCount")),
                _count(totals.get("shareCount")),
            )
            found.append((str(urn), figures))
    return found


# --- re-checking kept comments ----------------------------------------------------------------


def _gone_comments(base: str, token: str, urns: list[str]) -> set[str]:
    """Those of the comment `urns` LinkedIn answers 404 for, asked object by object: the
    object's list first (which must answer: a 404 there, the post gone or its form of URN not
    taken, leaves its comments unjudged, since a wrong "gone" is worse than a late one), then
    each comment it did not show."""
    by_object: dict[str, list[str]] = {}
    for urn in urns:
        by_object.setdefault(_activity(urn), []).append(urn)
    gone: set[str] = set()
    for target, under in by_object.items():
        listed = _listed_among(base, token, target, set(under))
        if listed is None:
            continue
        gone |= {
            urn for urn in under if urn not in listed and _comment_gone(base, token, target, urn)
        }
    return gone


def _listed_among(base: str, token: str, target: str, wanted: set[str]) -> set[str] | None:
    """Those of `wanted` that the first-level comments of `target` show, page by page while
    more than one is unfound and fewer pages than `wanted` were read (the first page always);
    None when LinkedIn does not know `target`."""
    found: set[str] = set()
    start = pages = 0
    while pages == 0 or (len(wanted - found) > 1 and pages < len(wanted)):
        try:
            page, total = _comments_page(base, token, target, start)
        except _Gone:
            if pages == 0:
                return None
            break  # each is asked on its own, and answers for itself
        pages += 1
        found |= wanted & {_element_urn(element) for element in page}
        start += len(page)
        if not page or (start >= total if total is not None else len(page) < COMMENTS_PAGE):
            break
    return found


def _element_urn(element: Any) -> str:
    if not isinstance(element, dict):
        return ""
    return str(element.get("$URN") or element.get("commentUrn") or "")


def _comment_gone(base: str, token: str, target: str, urn: str) -> bool:
    """Whether "Get a Comment" answers 404 for `urn` (under `target`, its object)."""
    match = _COMMENT_URN.fullmatch(urn)
    comment_id = match.group(2) if match else ""
    response = request(
        "GET",
        f"{base}/rest/socialActions/{_urn_path(target)}/comments/{quote(comment_id, safe='')}",
        changes=False,
        what="Checking a comment",
        headers=_headers(token),
    )
    if response.status_code == 404:
        return True
    if response.status_code != 200:
        raise _refusal(response, f"LinkedIn did not say whether {urn} is still there")
    data = json_or_empty(response)
    if str(data.get("id") or "") != comment_id and _element_urn(data) != urn:
        raise with_status(
            RetryableError(
                f"Checking {urn}: LinkedIn answered HTTP 200 without the comment: "
                f"{response.text[:200]!r}"
            ),
            response.status_code,
        )
    return False
