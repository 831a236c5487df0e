"""X: 280 "weighted" characters after NFC normalisation, per twitter-text's v3 configuration;
publishing through the X API v2 with OAuth 2.0 user tokens (authorization code with PKCE).

Sources (checked 2025/2026):
- docs.x.com/fundamentals/counting-characters (formerly developer.x.com/en/docs/counting-
  characters): posts hold up to 280 characters; weighted counting; every URL is wrapped by t.co
  and counts 23 whatever its length; every emoji counts 2 "regardless of complexity" (ZWJ
  sequences such as 👨‍👩‍👧‍👦 and skin tones count 2 once); length is measured on the NFC form
  (café composed or decomposed counts 4).
- twitter/twitter-text config/v3.json: maxWeightedTweetLength 280, scale 100, defaultWeight 200,
  transformedURLLength 23, emojiParsingEnabled true, ranges of weight 100 (i.e. 1): 0–4351,
  8192–8205, 8208–8223, 8242–8247. Everything else (CJK among it) weighs 2.
- Media: docs.x.com/x-api/media (upload size limits: image 5 MB, GIF 15 MB) and the media best
  practices ("up to 4 photos, 1 animated GIF or 1 video in a Post"; JPG, PNG, GIF, WEBP).
  5 MB and 15 MB are taken as 5 × 2^20 and 15 × 2^20 bytes, as X's upload errors state them.
- Alt text: POST /2/media/metadata (and v1.1 media/metadata/create) "alt_text.text":
  "Must be <= 1000 chars".

Connecting (docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code and
…/user-access-token):
- Authorize at https://x.com/i/oauth2/authorize (response_type=code, client_id, redirect_uri
  matched exactly, scope, state ≤ 500 characters, code_challenge + code_challenge_method S256 or
  plain: PKCE is required). The code lives 30 seconds.
- Token at https://api.x.com/2/oauth2/token, form-encoded; a confidential client (cxhub is a
  "Web App") authenticates with HTTP Basic client_id:client_secret. Access tokens last two hours;
  `offline.access` adds a refresh token, which X rotates: every refresh answers a new pair and
  the old refresh token stops working (so renewals go through the account's row lock).
- Revoke at https://api.x.com/2/oauth2/revoke (token, Basic auth); a person can also revoke in
  x.com/settings/connected_apps.
- Scopes: tweet.read, tweet.write, users.read (POST /2/tweets needs all three), offline.access,
  media.write ("Upload media"; every /2/media/upload endpoint requires it).
- GET /2/users/me: {"data": {"id", "name", "username"}}.

Publishing (docs.x.com/x-api/media/upload-media, …/quickstart/media-upload-chunked,
…/create-media-metadata, x-api/posts/creation-of-a-post, x-api/fundamentals/rate-limits and
…/response-codes-and-errors):
- Images (JPEG, PNG, WEBP): one POST /2/media/upload, multipart `media` + `media_category`
  tweet_image (+ `media_type`) → {"data": {"id", "media_key", …}}. An animated GIF must use the
  chunked flow with media_category tweet_gif: POST /2/media/upload/initialize (JSON media_type,
  total_bytes, media_category), POST /2/media/upload/{id}/append (multipart media +
  segment_index, segments kept under 5 MB), POST /2/media/upload/{id}/finalize, then while
  `processing_info.state` is pending or in_progress, GET /2/media/upload?command=STATUS&media_id=
  after `check_after_secs`. Media never attached expire (`expires_after_secs`), so a failed or
  timed-out upload posts nothing and is simply tried again.
- Alt text: POST /2/media/metadata {"id", "metadata": {"alt_text": {"text"}}}, ≤ 1,000 chars.
- POST /2/tweets {"text", "media": {"media_ids": […]}} → 201 {"data": {"id", "text"}}.
- Errors are problem JSON: {"title", "detail", "type", "status"} (some add "errors": […]);
  their words are shown to the author. A 401 is an expired or revoked token: renewed once
  (oauth.with_fresh_token) and the call made again. A 403 "You are not allowed to create a Tweet
  with duplicate content." refuses text the account already posted (see below).
- Rate limits: x-rate-limit-limit / -remaining / -reset (a Unix time) on every answer; 429 when
  exceeded. POST /2/tweets also has 24-hour windows, sent as x-user-limit-24hour-* and
  x-app-limit-24hour-* (not in the docs; seen on real answers, e.g. plhery/node-twitter-api-v2
  issues #495 and #553): the wait is the latest reset among the windows that are exhausted.

Reconcile (issue 11): POST /2/tweets takes no idempotency key, and X offers no way to find a
post by anything we choose, so the only trace of a send whose answer was lost (or was a 5xx:
UnknownOutcome, never a blind retry) is the post itself. We read the account's own timeline
(GET /2/users/:id/tweets, newest first, exclude=retweets,replies, max_results RECONCILE_POSTS,
start_time the target's first try less matching.CLOCK_SKEW, from dispatch's hints or else its
PublishAttempts) with tweet.fields created_at, entities, attachments, and match it with
networks.channels.matching. What the match relies on (docs.x.com/fundamentals/counting-
characters and the Post object, x-api/fundamentals/data-dictionary):
- `text` as X shows it: every link wrapped in t.co (put back as the entity's expanded_url where
  X lists one, else an address unknown that agrees with any link), the t.co link X appends for
  attached media dropped (the entity carrying a media_key; without entities, the last t.co link
  of a post with media), &amp; &lt; &gt; decoded;
- `attachments.media_keys`: the number of images; `created_at` and the ids other targets hold.
X refuses a post whose text duplicates one the account already has (403), which is why a blind
send after a lost answer fails rather than duplicates; a duplicate refusal is looked up the same
way: found since the first try, it is our earlier try that landed (published, nothing sent
twice); not found on a first try, it is an older post and the author must change the text
(refused); not found on a retry, it may be our earlier try not listed yet, so it is looked for
again later (retryable) until dispatch's last try, which only looks.
What it cannot tell apart: two posts of the same text and images since the first try, or of
the same text whose links X did not expand (AmbiguousMatch, a person decides); a post not yet
in the timeline (it is eventually consistent), pushed out by RECONCILE_POSTS newer posts, or
deleted meanwhile (not found); a clock more than CLOCK_SKEW apart from X's hides a post.

What comes back (issue 17): the user mention timeline, GET /2/users/:id/mentions
(docs.x.com/x-api/posts/user-mention-timeline-by-user-id; x-api/posts/timelines/introduction,
…/integrate and …/migrate/standard-to-twitter-api-v2; x-api/fundamentals/pagination;
fundamentals/data-dictionary for the Post and User objects):
- Posts that mention the account, newest first; a reply carries the @handles of those it answers
  at the start of its text, so replies to our posts are in it too. Only the 800 most recent
  mentions can be reached: a gap longer than that loses the older ones.
- OAuth 2.0 user token (Bearer) with tweet.read and users.read, as for the other calls.
- max_results 5 to 100 (default 10); since_id: only posts with a greater (newer) id; until_id:
  only older ones; pagination_token: the meta.next_token of the previous page, which pages
  backwards (older) while keeping the same since_id. tweet.fields created_at, author_id,
  conversation_id, in_reply_to_user_id, referenced_tweets, lang, entities; expansions=author_id
  with user.fields username,name puts the authors in includes.users.
- Answer: {"data": [Post…], "includes": {"users": […]}, "meta": {"newest_id", "oldest_id",
  "result_count", "next_token"}}; with nothing to list, only {"meta": {"result_count": 0}}.
  Polling is done with since_id, not with pagination (x-api/fundamentals/pagination).
- Rate limit: 180 requests per 15 minutes per user (450 per app) in the v2 reference; the tiers
  have changed since, so the x-rate-limit-* headers of a 429 are what we follow.
Our cursor is a small JSON object: {"since_id"} is the newest post taken. When a poll finds more
than one page is new, the gap is walked backwards one page per call: {"since_id", "next_token",
"newest_id"} keeps the walk's since_id, the token of its next page and its newest post, which
becomes since_id once the last page is taken; posts that arrive meanwhile are newer than that,
so the poll after the walk finds them. The first call (cursor "") takes the newest page only.
A reply is a post whose referenced_tweets has a replied_to and whose in_reply_to_user_id is the
account; anything else (a quote, a reply to someone else that names us) is a mention. Ids are
X's post ids, the form publish() stores as external_id; thread_id is the conversation_id (the
id of the post that began the thread). lang "und" (and X's codes for posts with no words to
tell: qme, qht, qam, qct, qst, zxx) means no language. A deleted post simply leaves the
timeline: X says nothing more of it, so no item is marked deleted while listing (items_gone,
below, asks later). The account's own posts (a thread it continues) are not what came back and
are left out.

Replies (issue 17): POST /2/tweets with {"text", "reply": {"in_reply_to_tweet_id"}}
(docs.x.com/x-api/posts/create-or-edit-post, formerly …/creation-of-a-post, and the older
developer.x.com reference of POST /2/tweets; x-api/fundamentals/conversation-id):
- The post answered is the item's id (ReplyTo.network_id: an X post id, as fetch_inbound gave
  it). X files the reply in that post's conversation: its conversation_id is the thread's root
  (the item's thread_id), referenced_tweets has {"type": "replied_to", "id": the item}, and
  in_reply_to_user_id is the item's author.
- Handles: `reply` also takes exclude_reply_user_ids, "a list of User IDs to be excluded from
  the reply Tweet thus removing a user from a thread" (in_reply_to_tweet_id must come with it):
  X itself fills in the handles of those the reply answers (the author of the post answered and
  those that post answered), and a reply's `text` begins with them (the conversation-id page's
  examples: "@user Great point!"). So nothing is put before the author's text here, and nobody
  is excluded: the thread is answered whole, as the X app does. The current reference also
  lists reply.auto_populate_reply_metadata ("If set to true, reply metadata will be
  automatically populated"), the v1.1 statuses/update flag that looked up the leading @mentions
  of the post answered; it gives no default and the older v2 reference did not list it, so it
  is not sent.
- A reply to a post deleted or hidden since is refused (403, X's words as seen: "You attempted
  to reply to a Tweet that is deleted or not visible to you.", plhery/node-twitter-api-v2 issue
  #366): a refusal in X's words, as for a post. A duplicate refusal is handled as for a post,
  reconcile looking for the reply.
- Reconcile of a reply reads the same timeline with exclude=retweets only (replies kept) and
  tweet.fields adding referenced_tweets, and compares only the account's replies to the item
  (replied_to is its id), the handles X put at their start left out on both sides: a post of
  the same text elsewhere (top-level, or answering someone else) is never taken for it. Without
  exclude=replies the timeline reaches the 3,200 most recent posts (800 with it); the
  RECONCILE_POSTS newest since the first try are read either way.

Engagement (issue 17): the Post lookup, GET /2/tweets?ids= (docs.x.com/x-api/posts/get-posts-
by-ids and x-api/posts/lookup/integrate; x-api/fundamentals/metrics; fundamentals/data-
dictionary):
- Up to 100 comma-separated ids a call (LOOKUP_IDS), with the user token (tweet.read,
  users.read). Answer {"data": [Post…], "errors": […]}; a post X no longer has is left out of
  data and named in errors ({"title": "Not Found Error", "type": "…/resource-not-found",
  "resource_id" and "value" its id}): Engagement(deleted=True).
- tweet.fields=public_metrics: like_count, retweet_count (reposts, quotes not among them),
  reply_count, quote_count, bookmark_count (not kept: Engagement has no place for it) and
  impression_count (public now, once only non_public_metrics.impression_count, still read
  where public_metrics lacks it).
- non_public_metrics (url_link_clicks: "the number of times a user clicks on a URL link or URL
  preview card in a Post", our `clicks`; user_profile_clicks; impression_count) is given with
  a user token for the authorized account's own posts created within the last 30 days only. It
  is asked for, since the decaying schedule reads posts in their first 30 days. For a post X
  will not give it for, X answers a "Field Authorization Error" (type …/not-authorized-for-
  field) and leaves the post out (as seen: plhery/node-twitter-api-v2 issue #432), so ids not
  answered are asked again with public_metrics alone (one more call, near the 30-day edge
  only); a whole call refused (400 or 403) is made again without it, and the following batches
  of the same fetch no longer ask. organic_metrics (the same without promoted views) is not
  asked for.
- Rate limits as for every call: the x-rate-limit-* headers of a 429.

Items gone (issue 17): the same Post lookup, GET /2/tweets?ids= (docs.x.com/x-api/posts/get-
posts-by-ids; x-api/fundamentals/response-codes-and-errors: a 200 whose errors name the posts
it could not give), LOOKUP_IDS a call, with no tweet.fields (X's defaults: id, text,
edit_history_tweet_ids): the items are others' posts, so nothing non-public is asked. A post
named in errors as not found (title "Not Found Error", type …/resource-not-found) is gone; one
given in data, named by another error (an "Authorization Error" for a protected author's post,
which is not deleted) or not named at all is not. A call answered otherwise raises as the
figures do and names nothing gone.

Listening (issue 18): recent search, GET /2/tweets/search/recent (docs.x.com/x-api/posts/search/
introduction, …/integrate/overview, …/integrate/build-a-query, …/integrate/operators,
…/integrate/paginate; x-api/fundamentals/rate-limits and …/post-cap):
- "Filtered public Posts posted over the last week", read with the account's user token
  (tweet.read, users.read). query, max_results 10 to 100 (default 10), since_id and until_id
  (exclusive bounds on post ids), next_token (meta.next_token of the previous page),
  sort_order recency (newest first, within a page and across pages). tweet.fields created_at,
  lang, public_metrics, author_id, conversation_id; expansions=author_id with user.fields
  username,name puts the authors in includes.users. The answer is the timelines' shape:
  {"data", "includes", "meta": {"newest_id", "oldest_id", "result_count", "next_token"}}.
- The query: a search is its text as one keyword, or quoted as an exact phrase when it holds
  anything but letters, digits and _ (a keyword is a tokenized match: "coca-cola" must be
  quoted; X documents no escape for a double quote inside a phrase, so those are left out); a
  hashtag is #tag ("an exact match, NOT a tokenized match"); an account is from:username. Then
  -is:retweet (Retweets repeat a post that is found on its own where it matches; is:retweet
  needs a standalone operator beside it, which every query has), and lang:xx for one language
  or (lang:xx OR lang:yy) for several ("each Post is currently only classified as being of one
  language, so AND'ing together multiple languages will yield no results"); lang: takes X's
  identifiers, iw for Hebrew and in for Indonesian. AND binds before OR, so the languages are
  grouped. A query is at most 512 characters at the self-serve levels (4,096 for Enterprise);
  a longer one is refused here, before any call.
- Polling, as …/integrate/paginate describes it: since_id is the newest post taken; when more
  than one page is new, the pages are read with next_token and the same since_id, and the
  first page's newest_id becomes since_id once the last is taken. As for the mentions, the gap
  is walked one page per call, the cursor keeping {"since_id", "next_token", "newest_id"} and
  "oldest_id", the oldest post the walk has taken. X says its next_token does not expire
  ("Multiple requests using the same next_token value will receive the same results"); one
  refused all the same is not walked again from the top: the walk goes on with until_id the
  oldest post taken (kept as "until_id", with the same since_id), which gives exactly what is
  left of the gap. X's smallest page is 10 posts: with a lower `limit`, the newest `limit` of
  a page are taken and the rest is read the same way, below until_id.
- Recent search reaches back seven days, and X refuses a since_id older than that: a 400
  whose error names since_id ("'since_id' must be a tweet id created after …", as seen in
  rooteco/tweetscape issue #421; not in the docs). A cursor that old is not walked: the search
  starts again from the newest page, as a first call does, and says so in the log (what was
  posted in between is past recent search's reach anyway).
- Rate limits: 300 requests per 15 minutes per user (450 per app), x-rate-limit-* headers on
  a 429 as for every call. Every post read counts toward the app's usage (billed per post,
  each post once a day) and the pay-per-use monthly cap of 2 million post reads.
- A post maps to a PublicPost as to an inbox item: the author's @username and name from
  includes.users, https://x.com/<username>/status/<id>, lang less X's no-language codes, the
  figures of public_metrics (like_count, retweet_count, reply_count, quote_count; None where X
  gives none), the post itself as raw. Its text is X's with &amp; &lt; &gt; decoded; links stay
  t.co links (entities are not asked for).
"""

import html
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.utils import timezone

from .. import hooks
from . import matching
from . import text as textutil
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundPage,
    Limits,
    MediaInfo,
    OAuthSpec,
    Problem,
    PublicPage,
    PublicPost,
    PublicQuery,
    ReconcileHints,
    ReplyTo,
    TokenSet,
    configured_client,
)
from .errors import PermanentError, RetryableError
from .http import (
    Published,
    error_for_status,
    json_or_empty,
    on_server,
    request,
    retry_after_seconds,
    with_status,
)
from .media_files import MediaFile, load_media
from .oauth import refresh_oauth2, revoke_oauth2, with_fresh_token

MAX_WEIGHTED_LENGTH = 280
TRANSFORMED_URL_LENGTH = 23
DEFAULT_WEIGHT = 2
# (first, last) code points, inclusive, that weigh 1.
LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

API_BASE_URL = "https://api.x.com"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = f"{API_BASE_URL}/2/oauth2/token"
REVOKE_URL = f"{API_BASE_URL}/2/oauth2/revoke"
ME_URL = f"{API_BASE_URL}/2/users/me"
TWEETS_URL = f"{API_BASE_URL}/2/tweets"
SEARCH_URL = f"{API_BASE_URL}/2/tweets/search/recent"
UPLOAD_URL = f"{API_BASE_URL}/2/media/upload"
METADATA_URL = f"{API_BASE_URL}/2/media/metadata"
SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access", "media.write")

# Chunked uploads (GIFs): X takes segments up to 5 MB; stay under.
SEGMENT_BYTES = 4 * 1024 * 1024
# Waiting for X to process a GIF: at most this many status checks, each after X's
# check_after_secs capped at MEDIA_POLL_MAX_SECONDS.
MEDIA_POLLS = 20
MEDIA_POLL_MAX_SECONDS = 5.0
# Reconcile reads this many of the account's newest posts (X allows 5 to 100 a page; reads are
# billed per post returned), made since the target's first try less this much clock skew.
RECONCILE_POSTS = 20
# Without a first try to start from (a key that is no target's), this much is read back.
RECONCILE_WINDOW = timedelta(days=3)
# A duplicate refusal on a retry that the timeline does not explain yet: look again after this.
DUPLICATE_RECHECK_SECONDS = 60.0
# An access token this close to its end is renewed before use rather than after a 401.
RENEW_AHEAD = timedelta(seconds=60)

# The mentions timeline: fields asked for each post (entities to show links as written).
MENTION_FIELDS = (
    "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,lang,entities"
)
# X's page sizes for timelines.
MIN_PAGE, MAX_PAGE = 5, 100
# lang values that name no language: undetermined, and X's codes for posts of only media,
# hashtags, mentions, cashtags or a URL ("qme" etc.), or with no linguistic content.
NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct", "qst"})

# The Post lookup takes up to this many ids a call.
LOOKUP_IDS = 100
# What the lookup asks of each post: the public figures, and the non-public ones (X gives them
# for the account's own posts of the last 30 days only; url_link_clicks is among them).
PUBLIC_METRICS = "public_metrics"
PRIVATE_METRICS = "public_metrics,non_public_metrics"
# The counts X always gives in public_metrics.
PUBLIC_COUNTS = ("like_count", "retweet_count", "reply_count", "quote_count")

# Recent search (listening): the fields asked for each post, X's page sizes, the longest query
# of the self-serve access levels (Enterprise's is 4,096), and how far back it reaches.
SEARCH_FIELDS = "created_at,lang,public_metrics,author_id,conversation_id"
MIN_SEARCH_PAGE, MAX_SEARCH_PAGE = 10, 100
MAX_QUERY_LENGTH = 512
SEARCH_DAYS = 7
# The lang: operator takes X's identifiers, which differ from ISO 639-1 for these two.
X_LANGUAGES = {"he": "iw", "id": "in"}

_TCO = re.compile(r"https?://t\.co/\w+")
# A keyword that needs no quotes (a tokenized match), a hashtag, a username, a BCP 47 tag.
_KEYWORD = re.compile(r"\w+")
_HASHTAG = re.compile(r"\w+")
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

log = logging.getLogger("cxhub.networks")
# The handles at the start of a reply's text: X puts those of the people it answers there.
_REPLY_HANDLES = re.compile(r"^(?:[@＠]\w{1,15}\s+)+")


def code_point_weight(char: str) -> int:
    point = ord(char)
    for first, last in LIGHT_RANGES:
        if first <= point <= last:
            return 1
    return DEFAULT_WEIGHT


def weighted_length(text: str) -> int:
    """twitter-text v3's weightedLength: URLs 23, emoji sequences 2, other code points by range,
    all on the NFC form."""
    text = textutil.nfc(text)
    units = {span.start: (span.end, TRANSFORMED_URL_LENGTH) for span in textutil.find_urls(text)}
    for span in textutil.find_emoji_sequences(text):
        units.setdefault(span.start, (span.end, DEFAULT_WEIGHT))
    total, index = 0, 0
    while index < len(text):
        unit = units.get(index)
        if unit is not None:
            index, weight = unit
            total += weight
        else:
            total += code_point_weight(text[index])
            index += 1
    return total


class XChannel(Channel):
    name = "x"
    label = "X"
    limits = Limits(
        max_text=MAX_WEIGHTED_LENGTH,
        text_unit="weighted characters",
        max_text_bytes=None,
        max_media=4,
        media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
        max_image_bytes=5 * 1024 * 1024,
        max_gif_bytes=15 * 1024 * 1024,
        max_alt_text=1_000,
    )
    counting = "x-weighted"
    url_weight = TRANSFORMED_URL_LENGTH
    bare_domain_urls = True
    default_base_url = API_BASE_URL

    def count(self, text: str) -> int:
        return weighted_length(text)

    def validate(
        self, text: str, media: Sequence[MediaInfo], *, limits: Limits | None = None
    ) -> list[Problem]:
        problems = super().validate(text, media, limits=limits)
        if len(media) > 1 and any(item.format == "GIF" and item.animated for item in media):
            problems.append(
                Problem(
                    "animated_gif_not_alone",
                    "error",
                    f"An animated GIF must be the only image in a post on X; this post has "
                    f"{len(media)} images.",
                    "media",
                )
            )
        return problems

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        return OAuthSpec(
            authorize_url=on_server(AUTHORIZE_URL, base_url, self.default_base_url),
            token_url=on_server(TOKEN_URL, base_url, self.default_base_url),
            revoke_url=on_server(REVOKE_URL, base_url, self.default_base_url),
            scopes=SCOPES,
            pkce=True,
            client_auth="basic",
        )

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        response = request(
            "GET",
            on_server(ME_URL, base_url, self.default_base_url),
            changes=False,
            what="Reading the X account",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        user = _user(response)
        return [
            Identity(
                handle=f"@{user['username']}",
                external_id=user["id"],
                display_name=str(user.get("name") or "")[:200],
            )
        ]

    def refresh_token(self, account: Any) -> None:
        refresh_oauth2(self, account)

    def revoke(self, account: Any) -> bool:
        """Revoke the refresh token (the lasting grant), then the access token."""
        spec = self.oauth_spec(account.base_url)
        client = configured_client(self)
        tokens = [t for t in (account.refresh_token, account.access_token) if t]
        results = [revoke_oauth2(spec, client, token) for token in tokens]
        return bool(results) and all(results)

    # --- publishing ---------------------------------------------------------------------------

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
        """Post `text` with `media`; with `reply_to`, as X's reply to that post (X puts the
        handles of those it answers before the text itself)."""
        if reply_to is not None:
            _check_reply_to(reply_to)
        files = load_media(media, channel=self.name)
        self._renew_if_ending(account)
        media_ids = [self._upload(account, item) for item in files]
        payload: dict[str, Any] = {}
        if text:
            payload["text"] = text
        if media_ids:
            payload["media"] = {"media_ids": media_ids}
        if reply_to is not None:
            payload["reply"] = {"in_reply_to_tweet_id": reply_to.network_id}
        what = "Replying on X" if reply_to is not None else "Posting to X"
        response = self._call(account, "POST", TWEETS_URL, changes=True, what=what, json=payload)
        data = json_or_empty(response).get("data")
        if response.status_code in (200, 201) and isinstance(data, dict) and data.get("id"):
            return self._published(account, data, response.status_code)
        if _is_duplicate(response):
            return self._after_duplicate(
                account, text, response, idempotency_key, len(media_ids), reply_to
            )
        refused = "X refused the reply" if reply_to is not None else "X refused the post"
        raise _refusal(response, refused, changes=True)

    def _after_duplicate(
        self,
        account: Any,
        text: str,
        response: requests.Response,
        idempotency_key: str,
        media_count: int,
        reply_to: ReplyTo | None,
    ) -> Published:
        """X refused our text as one the account already posted: our earlier try may have
        landed (its answer lost), and then that post is this one."""
        found = self.reconcile(
            account,
            text,
            idempotency_key=idempotency_key,
            hints=ReconcileHints(since=_tries(idempotency_key)[0], media_count=media_count),
            reply_to=reply_to,
        )
        if found is not None:
            return found
        noun = "post" if reply_to is None else "reply"
        if _tries(idempotency_key)[1] > 1:
            # A retry: X knows a post with our text that its timeline does not show yet.
            raise with_status(
                RetryableError(
                    f"X refused the {noun}: {_message(response)} An earlier try may have "
                    "gone out and not be listed yet; looking again later.",
                    retry_after=DUPLICATE_RECHECK_SECONDS,
                ),
                response.status_code,
            )
        raise with_status(
            PermanentError(
                f"X refused the {noun}: {_message(response)} The account already has a post "
                f"with this text, made before this {noun} was first sent; change the text to "
                "send it again."
            ),
            response.status_code,
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
        """Look for the post among the account's newest (with `reply_to`: among its replies to
        that post only, so a post of the same text elsewhere is never taken for it)."""
        self._renew_if_ending(account)
        user_id = account.external_id or self._own_id(account)
        params: dict[str, Any] = {
            "max_results": RECONCILE_POSTS,
            "exclude": "retweets,replies" if reply_to is None else "retweets",
            "tweet.fields": "created_at,entities,attachments"
            + (",referenced_tweets" if reply_to is not None else ""),
        }
        hints = hints or ReconcileHints()
        since = hints.since or _tries(idempotency_key)[0]
        if since is not None:
            params["start_time"] = _x_time(since - matching.CLOCK_SKEW)
        response = self._call(
            account,
            "GET",
            f"{API_BASE_URL}/2/users/{quote(str(user_id), safe='')}/tweets",
            changes=False,
            what="Reading the account's posts",
            params=params,
        )
        if response.status_code != 200:
            raise _refusal(response, "X did not list the account's posts")
        posts = json_or_empty(response).get("data") or []  # no "data" at all when there are none
        posts = (
            [post for post in posts if isinstance(post, dict)] if isinstance(posts, list) else []
        )
        if reply_to is not None:
            posts = [
                post for post in posts if _referenced(post, "replied_to") == reply_to.network_id
            ]
        listed = [_listed(post) for post in posts]
        if reply_to is not None:
            # The handles X put before a reply are not part of what was sent.
            text = _without_reply_handles(text)
            listed = [replace(post, text=_without_reply_handles(post.text)) for post in listed]
        found = matching.find(
            text,
            listed,
            hints=replace(hints, since=since),
            network=self.label,
            window=RECONCILE_WINDOW,
        )
        if found is None:
            return None
        return self._published(account, {"id": found.external_id}, response.status_code)

    # --- what comes back ------------------------------------------------------------------------

    hears_back = True

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """Mentions and replies from the account's mention timeline since `cursor`, one page
        per call (X's smallest page is MIN_PAGE posts, so a lower `limit` still reads that
        many)."""
        at = _MentionsCursor.parse(cursor)
        self._renew_if_ending(account)
        user_id = str(account.external_id or self._own_id(account))
        params: dict[str, Any] = {
            "max_results": min(MAX_PAGE, max(MIN_PAGE, limit)),
            "tweet.fields": MENTION_FIELDS,
            "expansions": "author_id",
            "user.fields": "username,name",
        }
        if at.since_id:
            params["since_id"] = at.since_id
        if at.next_token:
            params["pagination_token"] = at.next_token
        response = self._call(
            account,
            "GET",
            f"{API_BASE_URL}/2/users/{quote(user_id, safe='')}/mentions",
            changes=False,
            what="Reading the account's mentions",
            params=params,
        )
        if at.next_token and response.status_code == 400:
            # The walk's page token was refused (they do not last for ever): the gap is walked
            # again from its since_id, which still marks all that was taken before it; what the
            # walk already took comes again and is kept once (the inbox deduplicates).
            return InboundPage(
                items=[], cursor=_MentionsCursor(since_id=at.since_id).dump(), more=True
            )
        page = _posts_page(response, "X did not list the account's mentions")
        items = [
            _inbound(post, page.users, user_id)
            for post in page.posts
            if str(post.get("author_id") or "") != user_id
        ]
        following = at.after(page)
        return InboundPage(
            items=items,
            cursor=cursor if following == at else following.dump(),
            more=bool(following.next_token),
        )

    # --- listening ------------------------------------------------------------------------------

    listens = frozenset({"search", "hashtag", "account"})
    listening_blind_spots = (
        "X's recent search reaches back 7 days only and finds public posts only: posts of "
        "protected accounts are never found, and Retweets are left out (the post retweeted is "
        "found on its own where it matches). Every post read counts toward the X app's usage, "
        "billed per post and capped at 2 million post reads a month on pay-per-use plans, and "
        "searches are limited to 300 per 15 minutes per account, so a broad word or hashtag "
        "can use up the plan."
    )

    def search_public(
        self, account: Any, query: PublicQuery, cursor: str, *, limit: int = 40
    ) -> PublicPage:
        """Public posts of the last 7 days for `query` since `cursor`, from X's recent search,
        one page per call (X's smallest page is MIN_SEARCH_PAGE posts; with a lower `limit` the
        rest of a page is read by the next call)."""
        text = _search_query(query)
        given = _SearchCursor.parse(cursor)
        self._renew_if_ending(account)
        size = min(MAX_SEARCH_PAGE, max(MIN_SEARCH_PAGE, limit))
        at, response = given, self._search(account, text, given, size)
        if given.since_id and _refuses_since_id(response):
            log.warning(
                "X's recent search refused since_id %s (older than its %d days) for %r: "
                "starting again from the newest posts; older ones are past its reach",
                given.since_id,
                SEARCH_DAYS,
                text,
            )
            at = _SearchCursor()
            response = self._search(account, text, at, size)
        elif given.next_token and response.status_code == 400:
            # X says its tokens do not expire; one refused all the same: the walk goes on below
            # the oldest post it took, so nothing is read twice or skipped.
            return PublicPage(posts=[], cursor=given.without_token().dump(), more=True)
        page = _posts_page(response, "X did not answer the search")
        taken = page.posts[: max(1, limit)]
        following = at.after(page, taken)
        return PublicPage(
            posts=[_public_post(post, page.users) for post in taken],
            cursor=cursor if following == given else following.dump(),
            more=following.walking,
        )

    def _search(self, account: Any, text: str, at: "_SearchCursor", size: int) -> requests.Response:
        """One call of recent search for `text` from `at`, `size` posts a page."""
        params: dict[str, Any] = {
            "query": text,
            "max_results": size,
            "sort_order": "recency",
            "tweet.fields": SEARCH_FIELDS,
            "expansions": "author_id",
            "user.fields": "username,name",
        }
        for name in ("since_id", "until_id", "next_token"):
            if getattr(at, name):
                params[name] = getattr(at, name)
        return self._call(
            account, "GET", SEARCH_URL, changes=False, what="Searching X", params=params
        )

    # --- engagement -----------------------------------------------------------------------------

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """The figures of our posts, LOOKUP_IDS per call of the Post lookup; clicks where X
        gives the account's own non-public figures (its posts of the last 30 days)."""
        ids = list(dict.fromkeys(str(i) for i in external_ids if _is_post_id(str(i))))
        if not ids:
            return {}
        self._renew_if_ending(account)
        found: dict[str, Engagement] = {}
        private = True
        for start in range(0, len(ids), LOOKUP_IDS):
            batch, private = self._engagement_batch(
                account, ids[start : start + LOOKUP_IDS], private
            )
            found |= batch
        return found

    def _engagement_batch(
        self, account: Any, ids: list[str], private: bool
    ) -> tuple[dict[str, Engagement], bool]:
        """One batch's figures, and whether the next batch may still ask for the non-public
        ones (`private`: X did not refuse them for a whole call)."""
        if private:
            response = self._lookup(account, ids, PRIVATE_METRICS)
            # A whole call refused for what it asks (the app's access may not reach the
            # non-public figures): asked again without them, here and for the next batches.
            if response.status_code not in (400, 403):
                found = _figures(response, ids)
                # X leaves out a post whose non-public figures it will not give (one older
                # than 30 days), with a field error: its public figures are read on their own.
                rest = [post_id for post_id in ids if post_id not in found]
                if rest:
                    found |= _figures(self._lookup(account, rest, PUBLIC_METRICS), rest)
                return found, True
        return _figures(self._lookup(account, ids, PUBLIC_METRICS), ids), False

    def _lookup(
        self,
        account: Any,
        ids: list[str],
        fields: str = "",
        *,
        what: str = "Reading the figures of the account's posts",
    ) -> requests.Response:
        """GET /2/tweets?ids=… with `fields` of each post (X's default fields when none)."""
        params = {"ids": ",".join(ids)}
        if fields:
            params["tweet.fields"] = fields
        return self._call(account, "GET", TWEETS_URL, changes=False, what=what, params=params)

    # --- items gone -----------------------------------------------------------------------------

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """The posts of `network_ids` that the Post lookup names as not found, LOOKUP_IDS per
        call, with X's default fields only (these are others' posts: nothing non-public)."""
        ids = list(dict.fromkeys(str(i) for i in network_ids if _is_post_id(str(i))))
        if not ids:
            return set()
        self._renew_if_ending(account)
        gone: set[str] = set()
        for start in range(0, len(ids), LOOKUP_IDS):
            batch = ids[start : start + LOOKUP_IDS]
            response = self._lookup(account, batch, what="Checking which inbox posts X still has")
            gone |= _not_found_ids(response, batch)
        return gone

    # --- the calls ----------------------------------------------------------------------------

    def _call(
        self, account: Any, method: str, url: str, *, changes: bool, what: str, **kwargs: Any
    ) -> requests.Response:
        """One call with the account's token at its path on the account's server; a 401 renews
        the token once and the call is made again (oauth.with_fresh_token)."""
        url = on_server(url, account.base_url, self.default_base_url)
        headers = kwargs.pop("headers", {})

        def call(token: str) -> requests.Response:
            response = request(
                method,
                url,
                changes=changes,
                what=what,
                headers={**headers, "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code == 401:
                raise _refusal(response, what)
            return response

        return with_fresh_token(self, account, call)

    def _renew_if_ending(self, account: Any) -> None:
        # Tokens last two hours: one known to be over is renewed first, sparing a refused call.
        ends = getattr(account, "expires_at", None)
        ending = ends is not None and ends <= timezone.now() + RENEW_AHEAD
        if ending and account.refresh_token_encrypted:
            self.refresh_token(account)

    def _own_id(self, account: Any) -> str:
        response = self._call(account, "GET", ME_URL, changes=False, what="Reading the X account")
        return _user(response)["id"]

    def _published(self, account: Any, post: dict[str, Any], status: int) -> Published:
        post_id = str(post["id"])
        username = (account.handle or "").lstrip("@")
        url = f"https://x.com/{username}/status/{post_id}" if username else ""
        return Published(external_id=post_id[:255], external_url=url, http_status=status)

    # --- media --------------------------------------------------------------------------------

    def _upload(self, account: Any, item: MediaFile) -> str:
        """Upload one image (its alt text too) and answer its media id."""
        if item.mime == "image/gif":
            media_id = self._upload_chunked(account, item, category="tweet_gif")
        else:
            response = self._call(
                account,
                "POST",
                UPLOAD_URL,
                changes=False,
                what="Uploading an image",
                files={"media": (item.filename, item.data, item.mime)},
                data={"media_category": "tweet_image", "media_type": item.mime},
            )
            media_id = _media_id(response, "X refused an image")
        if item.alt_text.strip():
            response = self._call(
                account,
                "POST",
                METADATA_URL,
                changes=False,
                what="Setting an image's alt text",
                json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text}}},
            )
            if response.status_code != 200:
                raise _refusal(response, f"X refused the alt text of image {item.position + 1}")
        return media_id

    def _upload_chunked(self, account: Any, item: MediaFile, *, category: str) -> str:
        started = self._call(
            account,
            "POST",
            f"{UPLOAD_URL}/initialize",
            changes=False,
            what="Starting an upload",
            json={
                "media_type": item.mime,
                "total_bytes": len(item.data),
                "media_category": category,
            },
        )
        media_id = _media_id(started, "X refused an upload")
        base = f"{UPLOAD_URL}/{quote(media_id, safe='')}"
        for index, start in enumerate(range(0, len(item.data), SEGMENT_BYTES)):
            appended = self._call(
                account,
                "POST",
                f"{base}/append",
                changes=False,
                what="Uploading part of an image",
                files={"media": (item.filename, item.data[start : start + SEGMENT_BYTES])},
                data={"segment_index": str(index)},
            )
            if appended.status_code != 200:
                raise _refusal(appended, "X refused part of an upload")
        finished = self._call(
            account, "POST", f"{base}/finalize", changes=False, what="Finishing an upload"
        )
        if finished.status_code != 200:
            raise _refusal(finished, "X refused an upload")
        info = (json_or_empty(finished).get("data") or {}).get("processing_info")
        for _ in range(MEDIA_POLLS):
            state = str((info or {}).get("state") or "succeeded")
            if state == "succeeded":
                return media_id
            if state == "failed":
                error = (info or {}).get("error") or {}
                raise PermanentError(
                    f"X could not process image {item.position + 1}: "
                    f"{error.get('message') or error.get('name') or 'processing failed'}"
                )
            wait = _number((info or {}).get("check_after_secs")) or 1.0
            time.sleep(min(wait, MEDIA_POLL_MAX_SECONDS))
            status = self._call(
                account,
                "GET",
                UPLOAD_URL,
                changes=False,
                what="Checking an upload",
                params={"command": "STATUS", "media_id": media_id},
            )
            if status.status_code != 200:
                raise _refusal(status, "X did not say how an upload is going")
            info = (json_or_empty(status).get("data") or {}).get("processing_info")
        raise RetryableError(
            f"X was still processing image {item.position + 1} after {MEDIA_POLLS} checks"
        )


# --- helpers ----------------------------------------------------------------------------------


def _user(response: requests.Response) -> dict[str, str]:
    """GET /2/users/me's answer: {"id", "name", "username"} of the token's account."""
    if response.status_code != 200:
        raise _refusal(response, "X did not say which account this is")
    user = json_or_empty(response).get("data")
    if not isinstance(user, dict) or not user.get("id") or not user.get("username"):
        raise PermanentError("X did not say which account this is (no id or username).")
    return {k: str(v) for k, v in user.items() if isinstance(v, str | int)}


def _media_id(response: requests.Response, what: str) -> str:
    if response.status_code not in (200, 201, 202):
        raise _refusal(response, what)
    media_id = str((json_or_empty(response).get("data") or {}).get("id") or "")
    if not media_id:
        raise RetryableError(f"{what}: X answered without a media id")
    return media_id


@dataclass(frozen=True)
class _PostsPage:
    """One page of a timeline or of a search, checked: its posts (newest first, each with a
    numeric id, text and creation time), its authors by id, its newest id and the next page's
    token."""

    posts: list[dict[str, Any]]
    users: Mapping[str, Mapping[str, Any]]
    newest_id: str
    next_token: str


@dataclass(frozen=True)
class _MentionsCursor:
    """Where the mention timeline was left (see the module's docstring): `since_id` the newest
    post taken ("" before the first call); while a gap is walked, `next_token` of the walk's
    next page and `newest_id`, the walk's newest post."""

    since_id: str = ""
    next_token: str = ""
    newest_id: str = ""

    @classmethod
    def parse(cls, cursor: str) -> "_MentionsCursor":
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key, ""), str) for key in ("since_id", "next_token", "newest_id")
        ):
            raise PermanentError(f"Not a cursor of the X mention timeline: {cursor[:100]!r}.")
        return cls(
            since_id=data.get("since_id", ""),
            next_token=data.get("next_token", ""),
            newest_id=data.get("newest_id", ""),
        )

    def dump(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v}, sort_keys=True)

    def after(self, page: _PostsPage) -> "_MentionsCursor":
        """Where the next call starts once `page`, read from here, is taken."""
        if self.next_token:  # walking a gap
            if page.next_token:
                return replace(self, next_token=page.next_token)
            return _MentionsCursor(since_id=_newest(self.newest_id, page.newest_id, self.since_id))
        if not page.newest_id:
            return self
        if self.since_id and page.next_token:  # more is new than one page: walk it
            return _MentionsCursor(self.since_id, page.next_token, page.newest_id)
        # The first call's next pages are the past: not read (no back-fill).
        return _MentionsCursor(since_id=_newest(page.newest_id, self.since_id))


@dataclass(frozen=True)
class _SearchCursor:
    """Where a search was left (see the module's docstring): `since_id` the newest post taken
    ("" before the first call); while a gap is walked, `newest_id` the walk's newest post and
    `oldest_id` the oldest it has taken, `next_token` of its next page, and `until_id` the
    bound its calls carry once a page could not be followed by its token."""

    since_id: str = ""
    newest_id: str = ""
    oldest_id: str = ""
    next_token: str = ""
    until_id: str = ""

    @property
    def walking(self) -> bool:
        return bool(self.newest_id)

    @classmethod
    def parse(cls, cursor: str) -> "_SearchCursor":
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
        except ValueError:
            data = None
        names = {"since_id", "newest_id", "oldest_id", "next_token", "until_id"}
        if (
            not isinstance(data, dict)
            or not set(data) <= names
            or not all(isinstance(value, str) for value in data.values())
            or not all(_is_post_id(value) for name, value in data.items() if name.endswith("_id"))
        ):
            raise PermanentError(f"Not a cursor of X's recent search: {cursor[:100]!r}.")
        return cls(**data)

    def dump(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v}
        return json.dumps(data, sort_keys=True) if data else ""

    def without_token(self) -> "_SearchCursor":
        """After a refused page token: the rest of the gap, below the oldest post taken."""
        return replace(self, next_token="", until_id=self.oldest_id or self.until_id)

    def after(self, page: _PostsPage, taken: list[dict[str, Any]]) -> "_SearchCursor":
        """Where the next call starts once `taken` (the newest posts of `page`, read from
        here) is taken."""
        cut = len(taken) < len(page.posts)
        ids = [post["id"] for post in taken]
        if self.walking:
            oldest = _oldest(self.oldest_id, *ids)
            if cut:  # the rest of this page is read below what was taken
                return replace(self, next_token="", until_id=oldest, oldest_id=oldest)
            if page.next_token:
                return replace(self, next_token=page.next_token, oldest_id=oldest)
            return _SearchCursor(since_id=_newest(self.newest_id, self.since_id))
        if not ids:
            return self
        if self.since_id and (cut or page.next_token):  # more is new than one page: walk it
            return _SearchCursor(
                since_id=self.since_id,
                newest_id=_newest(*ids),
                oldest_id=_oldest(*ids),
                next_token="" if cut else page.next_token,
                until_id=_oldest(*ids) if cut else "",
            )
        # The first call's older posts are the past: not read (no back-fill).
        return _SearchCursor(since_id=_newest(*ids, self.since_id))


def _oldest(*ids: str) -> str:
    """The oldest of X's post ids; "" when none is given."""
    known = [i for i in ids if i.isdigit()]
    return min(known, key=int) if known else ""


def _newest(*ids: str) -> str:
    """The newest of X's post ids (numbers, ordered by time); "" when none is given."""
    known = [i for i in ids if i.isdigit()]
    return max(known, key=int) if known else ""


def _posts_page(response: requests.Response, what: str) -> _PostsPage:
    """A timeline's or a search's answer, checked, or the error it means (`what` says what X did
    not do): anything other than a 200 as publish reads it (429 with its wait, 5xx retryable), a
    200 with only X's errors a refusal in X's words, a 200 of any other shape RetryableError."""
    if response.status_code != 200:
        raise _refusal(response, what)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise with_status(RetryableError(f"{what}: the answer is not a JSON object"), 200)
    if "data" not in body and "meta" not in body and body.get("errors"):
        raise with_status(PermanentError(f"{what}: {_message(response)}"), 200)
    posts, meta = body.get("data", []), body.get("meta", {})
    if not isinstance(posts, list) or not isinstance(meta, dict):
        raise with_status(RetryableError(f"{what}: data or meta is not of X's shape"), 200)
    for post in posts:
        problem = _post_problem(post)
        if problem:
            raise with_status(RetryableError(f"{what}: a post {problem}"), 200)
    token = meta.get("next_token") or ""
    if not isinstance(token, str):
        raise with_status(RetryableError(f"{what}: meta.next_token is not a string"), 200)
    includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
    users = (includes or {}).get("users")
    return _PostsPage(
        posts=posts,
        users={
            str(user["id"]): user
            for user in (users if isinstance(users, list) else [])
            if isinstance(user, dict) and user.get("id")
        },
        newest_id=_newest(*(post["id"] for post in posts)),
        next_token=token,
    )


def _search_query(query: PublicQuery) -> str:
    """X's recent-search query for a listening source (see the module's docstring);
    PermanentError for one X cannot take: no words, not a hashtag or username, a language
    that is no BCP 47 tag, or longer than MAX_QUERY_LENGTH."""
    text = query.text.strip()
    if query.kind == "search":
        # X documents no escape for a double quote inside a phrase.
        words = " ".join(text.replace('"', " ").split())
        if not words:
            raise PermanentError("A search on X needs words to look for.")
        plain = _KEYWORD.fullmatch(words) and words != "OR"
        term = words if plain else f'"{words}"'
    elif query.kind == "hashtag":
        tag = text.removeprefix("#")
        if not _HASHTAG.fullmatch(tag):
            raise PermanentError(f"X cannot search for {text[:100]!r}: it is not a hashtag.")
        term = f"#{tag}"
    elif query.kind == "account":
        username = text.removeprefix("@")
        if not _USERNAME.fullmatch(username):
            raise PermanentError(
                f"X cannot search for the posts of {text[:100]!r}: it is not an X username "
                "(up to 15 letters, digits and _)."
            )
        term = f"from:{username}"
    else:
        raise PermanentError(
            f"X listens for a search, a hashtag or an account, not {query.kind!r}."
        )
    codes: list[str] = []
    for language in query.languages:
        code = language.strip()
        if not _LANGUAGE.fullmatch(code):
            raise PermanentError(f"{language[:40]!r} is not a language X can search for.")
        codes.append(X_LANGUAGES.get(code.lower(), code))
    codes = list(dict.fromkeys(codes))
    parts = [term, "-is:retweet"]
    if len(codes) == 1:
        parts.append(f"lang:{codes[0]}")
    elif codes:
        parts.append("(" + " OR ".join(f"lang:{code}" for code in codes) + ")")
    built = " ".join(parts)
    if len(built) > MAX_QUERY_LENGTH:
        raise PermanentError(
            f"The search on X would be {len(built):,} characters long; X's recent search takes "
            f"queries of up to {MAX_QUERY_LENGTH} characters (its self-serve access levels). "
            "Shorten the words or choose fewer languages."
        )
    return built


def _refuses_since_id(response: requests.Response) -> bool:
    """Whether X refused a search for its since_id (one older than recent search's 7 days: a
    400 whose error names the parameter)."""
    if response.status_code != 400:
        return False
    for error in json_or_empty(response).get("errors") or []:
        if not isinstance(error, dict):
            continue
        parameters = error.get("parameters")
        if isinstance(parameters, dict) and "since_id" in parameters:
            return True
        if "since_id" in str(error.get("message") or ""):
            return True
    return False


def _public_post(post: dict[str, Any], users: Mapping[str, Mapping[str, Any]]) -> PublicPost:
    """A checked post of recent search as listening keeps it, with the figures X showed."""
    post_id = post["id"]
    author_id = _scalar(post.get("author_id"))
    author = users.get(author_id) or {}
    username = _scalar(author.get("username"))
    lang = post.get("lang") if isinstance(post.get("lang"), str) else ""
    public = post.get("public_metrics")
    public = public if isinstance(public, dict) else {}
    return PublicPost(
        network_id=post_id,
        text=_listed(post).text,
        created_at=_post_time(post["created_at"]) or timezone.now(),
        author_handle=f"@{username}" if username else "",
        author_name=_scalar(author.get("name")),
        author_id=author_id,
        # Without the author's username, X's address for any post by id.
        url=f"https://x.com/{username or 'i/web'}/status/{post_id}",
        language="" if lang in NO_LANGUAGE else lang,
        likes=_count(public.get("like_count")),
        reposts=_count(public.get("retweet_count")),
        replies=_count(public.get("reply_count")),
        quotes=_count(public.get("quote_count")),
        raw=post,
    )


def _post_problem(post: Any) -> str:
    """What is wrong with a listed post for the inbox or listening, "" when nothing."""
    if not isinstance(post, dict):
        return "is not an object"
    post_id = post.get("id")
    if not isinstance(post_id, str) or not post_id.isdigit():
        return f"has no id of X's form ({str(post_id)[:40]!r})"
    if not isinstance(post.get("text"), str):
        return f"({post_id}) has no text"
    if _post_time(post.get("created_at")) is None:
        return f"({post_id}) has no creation time of X's form"
    return ""


def _post_time(value: Any) -> datetime | None:
    """created_at in UTC: ISO 8601 as X sends it, or the "Wed Jan 06 18:40:40 +0000 2021" form
    of the reference's examples."""
    moment = matching.parse_time(value)
    if moment is None and isinstance(value, str):
        try:
            moment = datetime.strptime(value.strip(), "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            return None
    return moment.astimezone(UTC) if moment is not None else None


def _inbound(post: dict[str, Any], users: Mapping[str, Mapping[str, Any]], user_id: str) -> Inbound:
    """A checked post of the mention timeline as an inbox item of the account `user_id`."""
    post_id = post["id"]
    author_id = _scalar(post.get("author_id"))
    author = users.get(author_id) or {}
    username = _scalar(author.get("username"))
    replied_to = _referenced(post, "replied_to")
    answers_us = bool(replied_to) and _scalar(post.get("in_reply_to_user_id")) == user_id
    lang = post.get("lang") if isinstance(post.get("lang"), str) else ""
    return Inbound(
        network_id=post_id,
        kind="reply" if answers_us else "mention",
        text=_listed(post).text,
        created_at=_post_time(post["created_at"]) or timezone.now(),
        author_handle=f"@{username}" if username else "",
        author_name=_scalar(author.get("name")),
        author_id=author_id,
        # Without the author's username, X's address for any post by id.
        url=f"https://x.com/{username or 'i/web'}/status/{post_id}",
        thread_id=_scalar(post.get("conversation_id")),
        in_reply_to_id=replied_to,
        language="" if lang in NO_LANGUAGE else lang,
        raw=post,
    )


def _referenced(post: dict[str, Any], kind: str) -> str:
    """The id of the post `post` refers to as `kind` (replied_to, quoted), "" when none."""
    references = post.get("referenced_tweets")
    for reference in references if isinstance(references, list) else []:
        if isinstance(reference, dict) and reference.get("type") == kind:
            return _scalar(reference.get("id"))
    return ""


def _scalar(value: Any) -> str:
    """A string or number X sent as text; "" for anything else (absent, null, a structure)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def _is_post_id(value: str) -> bool:
    """Whether `value` has the form of X's post ids (a number of up to 19 digits)."""
    return value.isascii() and value.isdigit() and len(value) <= 19


def _check_reply_to(reply_to: ReplyTo) -> None:
    if not _is_post_id(reply_to.network_id):
        raise PermanentError(
            f"X answers a post by its id; {reply_to.network_id[:100]!r} is not an X post id."
        )


def _without_reply_handles(text: str) -> str:
    """A reply's text without the handles at its start (X adds those it answers, and shows
    them as part of the text): what the author wrote, to compare."""
    return _REPLY_HANDLES.sub("", text.lstrip())


def _figures(response: requests.Response, ids: list[str]) -> dict[str, Engagement]:
    """The Post lookup's answer for `ids`, checked: the figures of each post it gives, and
    `deleted` for each it names as not found; anything other than a 200 as every read is (429
    with its wait, 5xx retryable), a 200 of another shape RetryableError."""
    what = "X did not give the figures of the account's posts"
    posts, errors = _lookup_answer(response, ids, what)
    asked = set(ids)
    found: dict[str, Engagement] = {}
    for post in posts:
        problem = _metrics_problem(post)
        if problem:
            raise with_status(RetryableError(f"{what}: a post {problem}"), 200)
        if post["id"] in asked:
            found[post["id"]] = _engagement(post)
    gone = {_error_id(error) for error in errors if _not_found(error)} & asked
    return found | {post_id: Engagement(deleted=True) for post_id in gone - found.keys()}


def _not_found_ids(response: requests.Response, ids: list[str]) -> set[str]:
    """The posts of `ids` the Post lookup's answer names as not found (and does not give);
    errors as _figures raises them. Any other error about a post (a protected author's, one
    withheld) does not say it is gone."""
    what = "X did not say which posts are still there"
    posts, errors = _lookup_answer(response, ids, what)
    given: set[str] = set()
    for post in posts:
        post_id = post.get("id") if isinstance(post, dict) else None
        if not isinstance(post_id, str) or not _is_post_id(post_id):
            raise with_status(
                RetryableError(f"{what}: a post has no id of X's form ({str(post_id)[:40]!r})"),
                200,
            )
        given.add(post_id)
    named = {_error_id(error) for error in errors if _not_found(error)}
    return (named & set(ids)) - given


def _lookup_answer(
    response: requests.Response, ids: list[str], what: str
) -> tuple[list[Any], list[Any]]:
    """The Post lookup's posts and errors for `ids`, of X's shape; anything other than a 200
    as every read is (429 with its wait, 5xx retryable), a 200 of another shape
    RetryableError, one whose errors are about none of `ids` X's refusal in its words."""
    if response.status_code != 200:
        raise _refusal(response, what)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
        raise with_status(RetryableError(f"{what}: the answer is not X's data or errors"), 200)
    posts, errors = body.get("data", []), body.get("errors", [])
    if not isinstance(posts, list) or not isinstance(errors, list):
        raise with_status(RetryableError(f"{what}: data or errors is not of X's shape"), 200)
    named = {_error_id(error) for error in errors} & set(ids)
    if not posts and errors and not named:
        # Nothing about the posts asked: the whole call refused (a suspended account).
        raise with_status(PermanentError(f"{what}: {_message(response)}"), 200)
    return posts, errors


def _metrics_problem(post: Any) -> str:
    """What is wrong with a post of the lookup for its figures, "" when nothing."""
    if not isinstance(post, dict):
        return "is not an object"
    post_id = post.get("id")
    if not isinstance(post_id, str) or not _is_post_id(post_id):
        return f"has no id of X's form ({str(post_id)[:40]!r})"
    public = post.get("public_metrics")
    if not isinstance(public, dict):
        return f"({post_id}) has no public_metrics"
    for name in PUBLIC_COUNTS:
        if _count(public.get(name)) is None:
            return f"({post_id}) has no count {name}"
    return ""


def _engagement(post: dict[str, Any]) -> Engagement:
    """A checked post's figures. Impressions are public now (public_metrics.impression_count),
    once only non-public; clicks on its links are the non-public url_link_clicks."""
    public = post["public_metrics"]
    private = post.get("non_public_metrics")
    private = private if isinstance(private, dict) else {}
    impressions = _count(public.get("impression_count"))
    if impressions is None:
        impressions = _count(private.get("impression_count"))
    return Engagement(
        likes=public["like_count"],
        reposts=public["retweet_count"],
        replies=public["reply_count"],
        quotes=public["quote_count"],
        impressions=impressions,
        clicks=_count(private.get("url_link_clicks")),
    )


def _count(value: Any) -> int | None:
    """A figure as X gives it (a whole number, 0 or more); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _error_id(error: Any) -> str:
    """The post an entry of X's errors array is about ("" when it names none)."""
    if not isinstance(error, dict):
        return ""
    return _scalar(error.get("resource_id")) or _scalar(error.get("value"))


def _not_found(error: Any) -> bool:
    """Whether an entry of X's errors says the post is not there (deleted)."""
    if not isinstance(error, dict):
        return False
    kind, title = str(error.get("type") or ""), str(error.get("title") or "")
    return kind.endswith("/resource-not-found") or "Not Found" in title


def _tries(idempotency_key: str) -> tuple[datetime | None, int]:
    """When dispatch first tried this target, and how many tries it has started (this one
    among them); (None, 0) for a key that is no target's, or with nobody to ask
    (networks.hooks.target_tries: publishing keeps the tries)."""
    answers = hooks.target_tries.send(idempotency_key=idempotency_key)
    return answers[0] if answers else (None, 0)


def _x_time(when: datetime) -> str:
    """The ISO 8601 form X's start_time takes: YYYY-MM-DDTHH:mm:ssZ, in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(post: dict[str, Any]) -> matching.Listed:
    """A post as X lists it, its text as a person reads it: t.co links expanded where X says
    where they lead, the link X appends for attached media dropped, entities decoded."""
    entities = post.get("entities") if isinstance(post.get("entities"), dict) else {}
    listed_urls = (entities or {}).get("urls")
    urls = {
        str(entity.get("url")): entity
        for entity in (listed_urls if isinstance(listed_urls, list) else [])
        if isinstance(entity, dict)
    }
    attachments = post.get("attachments") if isinstance(post.get("attachments"), dict) else {}
    media_keys = (attachments or {}).get("media_keys") or []
    shown = str(post.get("text") or "")
    links = list(_TCO.finditer(shown))

    def link(match: re.Match) -> str:
        entity = urls.get(match.group())
        if entity is not None:
            if entity.get("media_key"):
                return ""
            return str(entity.get("expanded_url") or match.group())
        # Without entities, X's media link is the last one of a post with media.
        return "" if media_keys and match is links[-1] else match.group()

    pieces, last = [], 0
    for match in links:
        pieces.append(shown[last : match.start()])
        pieces.append(link(match))
        last = match.end()
    pieces.append(shown[last:])
    return matching.Listed(
        external_id=str(post.get("id") or ""),
        text=html.unescape("".join(pieces)),
        created_at=matching.parse_time(post.get("created_at")),
        media_count=len(media_keys) if isinstance(media_keys, list) else None,
    )


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _message(response: requests.Response) -> str:
    """X's own words: a problem's detail (or title), the messages of its errors, or an OAuth
    error's description."""
    data = json_or_empty(response)
    parts: list[str] = []
    for key in ("detail", "title", "error_description", "error"):
        value = data.get(key)
        if value and isinstance(value, str):
            parts.append(value.strip())
            break
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            value = error.get("message") or error.get("detail")
            if value and str(value).strip() not in parts:
                parts.append(str(value).strip())
    text = " ".join(p if p.endswith((".", "!", "?")) else f"{p}." for p in parts if p)
    return text or response.text[:300].strip() or f"HTTP {response.status_code}"


def _is_duplicate(response: requests.Response) -> bool:
    return response.status_code == 403 and "duplicate" in _message(response).lower()


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds until X takes calls again: Retry-After if sent, else the latest reset among the
    exhausted windows (15 minutes, and the 24-hour user and app windows), else the 15-minute
    window's reset."""
    headers = response.headers
    wait = retry_after_seconds(headers.get("Retry-After"))
    if wait is not None:
        return wait
    now = time.time()
    resets = []
    for window in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        reset = _number(headers.get(f"{window}-reset"))
        if reset is not None and headers.get(f"{window}-remaining", "").strip() == "0":
            resets.append(reset)
    if not resets:
        reset = _number(headers.get("x-rate-limit-reset"))
        resets = [reset] if reset is not None else []
    return max(0.0, max(resets) - now) if resets else None


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    data = json_or_empty(response)
    title = str(data.get("title") or "").strip()
    detail = f"{what} (HTTP {status}{', ' + title if title else ''}): {_message(response)}"
    return error_for_status(status, detail, retry_after=_rate_limit_wait(response), changes=changes)
