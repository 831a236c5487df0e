"""Instagram (professional accounts, Content Publishing API): every post needs an image; JPEG
only; caption ≤ 2,200 characters with ≤ 30 hashtags and ≤ 20 @mentions.

Sources (checked 2025/2026):
- developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
  (POST /{ig-user-id}/media): `caption` "Maximum 2200 characters, 30 hashtags, and 20 @ tags";
  Image specifications: "Format: JPEG", "File size: 8 MB maximum", "Aspect ratio: Must be within
  a 4:5 to 1.91:1 range", "Minimum width: 320 (will be scaled up …)", "Maximum width: 1440 (will
  be scaled down …)". 8 MB is taken as 8,000,000 bytes, the stricter reading.
- developers.facebook.com/docs/instagram-platform/content-publishing/: image, video, reel or
  carousel (up to 10 items) — there is no text-only post; `alt_text` for image posts since
  24 March 2025 (no maximum length is documented).

Publishing (checked November 2026):
- Which login. Meta offers two: "Instagram API with Facebook Login" (the professional account
  is reached through the Facebook Page it is linked to, on graph.facebook.com) and the newer
  "Instagram API with Instagram Login" (graph.instagram.com; Meta's March 2025 blog recommends it
  for new features, while it "will continue to support" the Facebook Login path). cxhub uses
  Facebook Login: the same Meta app, login dialog, token exchange and Graph API as the Facebook
  channel (networks.channels.facebook), one sign-in that offers a team's Pages and their
  Instagram accounts alike, and every call this channel needs is documented for it.
- Connecting: the login dialog and code exchange of facebook-login/guides/advanced/manual-flow
  with the permissions instagram_basic, instagram_content_publish, pages_show_list and
  pages_read_engagement (IG User Media and IG Container references, "Instagram API with Facebook
  Login"). `identify` turns the User token into a long-lived one (fb_exchange_token, about 60
  days), reads GET /me/accounts with `instagram_business_account{id,username,name}` and offers
  one Identity per Page that has a linked professional account: handle "@username", external_id
  the IG user id.
- Token: the references list a "Facebook User access token" for every call on this path, so the
  account keeps the long-lived User token, with its expiry. facebook-login/guides/access-tokens/
  get-long-lived: a valid User token can be exchanged again ("You will need: A valid User Access
  Token"), an expired one cannot ("You can not use an expired token to request a long-lived
  token"), and facebook-login/auth-vs-data: without Meta's SDKs "you need to include code that
  refreshes the User token manually. If the User access token expires, your app must put the
  user through the login flow again." So `refresh_token` exchanges the still-valid token for a
  new one (under the account's row lock, audited), and `publish` does so first when the token
  has less than RENEW_WITHIN left; an expired or refused token is AuthExpired: reconnect.
- Instagram takes no upload: "We cURL media used in publishing attempts, so the media must be
  hosted on a publicly accessible server" (content-publishing). Each image goes as a signed link
  valid for an hour (publishing.public_media, made from CXHUB_PUBLIC_URL) to the JPEG rendition.
- content-publishing and ig-user/media: one image → POST /{ig-user-id}/media with `image_url`,
  `caption`, `alt_text`; several (2–10) → one container per image with `is_carousel_item=true`
  (and its `alt_text`), then a container with `media_type=CAROUSEL`, `children` (the ids, comma
  separated) and `caption`. ig-container: GET /{container-id}?fields=status_code,status gives
  IN_PROGRESS, FINISHED, ERROR, EXPIRED ("not published within 24 hours") or PUBLISHED; we poll
  every CONTAINER_POLL_SECONDS, CONTAINER_POLLS times at most, before publishing (Meta suggests
  once a minute for up to 5 minutes, for videos; images are ready in seconds). ERROR and EXPIRED
  refuse the post. ig-user/media_publish: POST /{ig-user-id}/media_publish with `creation_id`
  answers the IG media id; GET /{ig-media-id}?fields=permalink gives its address. A container
  publishes nothing and expires unused, so only media_publish can leave the outcome unknown.
- Limits: ig-user/content_publishing_limit (GET …?fields=quota_usage,config: quota_total and
  quota_duration, 50 posts per 24 hours in Meta's example; carousels count once) is read before
  publishing, and a full quota is retried after QUOTA_RETRY_SECONDS. ig-user/media: "An Instagram
  account can only create 400 containers within a rolling 24 hour period".
- Errors: Graph errors as in the Facebook channel, plus instagram-platform/instagram-graph-api/
  reference/error-codes: codes -1 and -2 (server error, download timeout) and subcode 2207027
  (container not ready) are retried; 9/2207042 ("You reached maximum number of posts…") waits
  QUOTA_RETRY_SECONDS; the media errors (36000/2207004 image too large, …) refuse the post with
  Meta's message.

Reconcile: no idempotency key exists here either, and a media_publish whose answer was lost, timed
out, or was a 5xx (or Meta's code -1, 1 or 2: "unexpected", "unknown", "temporary") is an unknown
outcome (issue 11). cxhub then lists the account's recent media (GET /{ig-user-id}/media,
RECONCILE_LIMIT newest, fields id, caption, permalink, timestamp, media_type and children:
instagram-platform/reference/instagram-media, "an Instagram album, photo, or video"; media_type
IMAGE, VIDEO or CAROUSEL_ALBUM as integrations read it) and matches them with
networks.channels.matching. What the match relies on: `caption` is kept as sent (hashtags and
@mentions stay text in it); `media_type` and `children` count the images (IMAGE one, CAROUSEL_ALBUM
as many as its children); `timestamp` bounds the window (the target's first try less
matching.CLOCK_SKEW, or RECONCILE_WINDOW), and media other targets hold are left out. What it
cannot tell apart: two posts of the same caption and number of images in that window, e.g. one made
by hand in the app (AmbiguousMatch, a person decides); a post pushed out of the RECONCILE_LIMIT
newest. A container that says PUBLISHED before we published it is an unknown outcome too.

Hearing back (issue 17: comments on the account's media; checked November 2026):
- ig-user/media (GET /{ig-user-id}/media, as reconcile reads it) with fields id, permalink and
  comments_count (instagram-media: "Count of comments on the media", replies included): the
  INBOUND_POSTS (25) newest media are read, in one call, for the reasons the Facebook channel
  gives; their ids are the IG media ids publish stores as external_id.
- ig-media/comments: GET /{ig-media-id}/comments lists a medium's comments, cursor-paged like
  every Graph edge (graph-api/results); with Facebook Login it needs instagram_basic,
  instagram_manage_comments and pages_read_engagement (the second is asked for since issue 17;
  an account connected before lacks it and Meta refuses, a PermanentError until it is connected
  again). Fields of ig-comment: id, text, username, timestamp, from (id, username: changelog
  ooc-changes/oct-20-2021), hidden ("Indicates if comment has been hidden"; the item is marked
  deleted), parent_id (for a reply) and the replies edge, read by field expansion
  (replies{…}); ig-comment/replies (GET /{ig-comment-id}/replies) when a comment's replies have
  a next page. Unlike the Page comments edge, Meta documents neither `since` nor an order here,
  and a new reply sits under a comment of any age, so a medium is read whole (up to
  COMMENTS_PAGES of IG_COMMENTS_PAGE comments) and only when its comments_count differs from the
  one the cursor remembers for it; the newest-first order integrations report is relied on only
  by the first call (its newest page) and, past that bound, by which comments are left unread.
The cursor is the Facebook channel's mark (the second of the newest comment taken and the ids
taken at it), plus each medium's comments_count when it was last read whole and all taken: the
first call takes the newest page of each medium and returns the newest `limit` of all; later ones
return the oldest `limit` of the comments after the mark. The account's own comments (its replies)
move the mark but are not items. What polling cannot hear, besides what the Facebook channel
names: a new comment while another of the same medium was deleted in between (the count is
unchanged: it is heard with the next change to that medium), and replies under comments past the
bound on a medium with more comments than that. A medium whose count fell (a deletion) is read
again at every call until something new comes, because a call that takes nothing returns the
cursor it was given.

Answering (issue 17; checked December 2026):
- instagram-platform/comment-moderation ("Reply to a comment") and ig-comment/replies,
  "Creating": POST /{ig-comment-id}/replies with `message` (required) "Creates an IG Comment on
  an IG Comment" and answers {"id"}; with Facebook Login it needs instagram_basic,
  instagram_manage_comments, pages_show_list and pages_read_engagement, which the account holds.
  Its limitations: "You can only reply to top-level comments; replies to a reply will be added to
  the top-level comment", so an item that is a reply (it has a `parent_id`) is answered on its
  parent, where Meta would put the answer anyway and where reconcile looks; "You cannot reply to
  hidden comments" (Meta's refusal is a PermanentError with its words); nor on a live video.
  Text only: a comment has no image. Instagram gives a comment no address: the reply's
  Published carries the medium's permalink (GET /{ig-media-id}?fields=permalink, the item's
  thread), or the account's profile when Meta does not say.
- A lost answer, a timeout, a 5xx or code -1, 1 or 2 is an unknown outcome (issue 11). No
  idempotency key here either: reconcile lists the replies under the same comment (GET
  /{ig-comment-id}/replies with ig-comment fields id, text, username, from, timestamp; oldest
  first as integrators report it, COMMENTS_PAGES pages of IG_COMMENTS_PAGE at most; Meta
  documents no `since` on this edge), keeps those written by the account (`from.id` is its IG
  user id, or `username`/`from.username` its handle, as fetch_inbound tells its own), and
  matches their text with networks.channels.matching, within the first try's window. A post or
  a comment elsewhere of the same text is never read. What it cannot tell apart: two replies of
  the same text by the account under that comment since the first try (AmbiguousMatch); one past
  the bound of a comment with more replies than that.

Engagement (issue 17; checked December 2026):
- The Facebook channel's multiple-id read (GET /?ids=…, IDS_PER_CALL at most) with the
  instagram-media fields `like_count` and `comments_count` ("Count of comments on the media",
  replies included); a medium Meta no longer has is marked deleted as there. Instagram has no
  reposts (a share there is a private send, counted only in insights) nor quotes, and no clicks.
- Impressions: instagram-media/insights. `impressions` "deprecated for v22.0 and will be
  deprecated for all versions on April 21, 2025"; its successor is `views` ("Introducing the views
  metric for FEED, STORY, and REELS media product types"), so cxhub (on Graph v25.0) asks for
  views and shows it as impressions. It needs instagram_manage_insights (asked for since issue 17)
  beside instagram_basic and pages_read_engagement. One call per batch: GET
  /insights?ids=…&metric=views (the multiple-id read of the edge). Meta's own refusal of it (a
  missing permission, "(#10) Not enough viewers for the media to show insights", a metric it does
  not give for a kind of medium: any PermanentError) leaves impressions None, not a failure;
  "If insights data you are requesting does not exist or is currently unavailable, the API
  returns an empty data set instead of 0": None too. Meta notes the data can be 48 hours late.

Re-checking kept comments (issue 17, items_gone): the Facebook channel's multiple-id read (GET
/?ids=…, IDS_PER_CALL comments a call; facebook.meta_items_gone) with the ig-comment fields id and
hidden ("Indicates if comment has been hidden", as fetch_inbound marks it), with the token that
reads the comments (instagram_basic, instagram_manage_comments). A comment Meta no longer has (the
forms engagement handles) or that is hidden is gone; any other answer for one id leaves it not
gone, and a refusal of the whole read raises as engagement does.
"""

import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from .. import hooks
from ..tokens import social_account_tokens_refresh
from . import matching
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundPage,
    Limits,
    MediaInfo,
    OAuthClient,
    OAuthSpec,
    Problem,
    ReconcileHints,
    ReplyTo,
    TokenSet,
)
from .errors import AuthExpired, ChannelError, PermanentError, RetryableError, UnknownOutcome
from .facebook import (
    COMMENTS_PAGES,
    GRAPH_ORIGIN,
    INBOUND_POSTS,
    Heard,
    account_token,
    advanced,
    exchange_for_long_lived,
    graph_call,
    graph_count,
    graph_error,
    graph_error_fields,
    graph_id,
    graph_items,
    graph_json,
    graph_oauth_spec,
    graph_text,
    graph_time,
    inbound_limit,
    meta_client,
    meta_engagement,
    meta_items_gone,
    newest_page,
    read_mark,
    split_new,
    user_pages,
    write_mark,
)
from .http import Published, json_or_empty

MIN_WIDTH = 320
MAX_WIDTH = 1440
MAX_CAROUSEL = 10
CONTAINER_POLLS = 30
CONTAINER_POLL_SECONDS = 2.0
RENEW_WITHIN = timedelta(days=7)
QUOTA_RETRY_SECONDS = 3600
RECONCILE_LIMIT = 25
RECONCILE_WINDOW = timedelta(days=3)
# Meta's IG error codes that are worth another try (reference/error-codes).
RETRYABLE_CODES = (-1, -2)
RETRYABLE_SUBCODES = (2207001, 2207003, 2207027, 2207032)
PUBLISH_LIMIT_SUBCODE = 2207042
# What comes back: comments asked for per page (top-level, and replies of one comment).
IG_COMMENTS_PAGE = 50
IG_COMMENT_FIELDS = "id,text,username,timestamp,from,hidden,parent_id"
# Reconciling a reply: what is read of the replies under the answered comment.
IG_REPLY_FIELDS = "id,text,username,from,timestamp"
# Engagement: what is read of a medium, and its insights (`views`: see the module docstring).
IG_FIGURES = "like_count,comments_count"
IG_INSIGHTS = ("views",)


class InstagramChannel(Channel):
    name = "instagram"
    renews_with_access_token = True
    label = "Instagram"
    limits = Limits(
        max_text=2_200,
        text_unit="characters",
        max_text_bytes=None,
        max_media=10,
        media_formats=frozenset({"JPEG"}),
        max_image_bytes=8_000_000,
        min_aspect_ratio=4 / 5,
        max_aspect_ratio=1.91,
        max_alt_text=None,
        requires_media=True,
        max_hashtags=30,
        max_mentions=20,
    )
    default_base_url = GRAPH_ORIGIN
    scopes = (
        "instagram_basic",
        "instagram_content_publish",
        "pages_show_list",
        "pages_read_engagement",
        # Reading the comments on the account's media and answering them, and the media's
        # insights (issue 17).
        "instagram_manage_comments",
        "instagram_manage_insights",
    )

    def validate(
        self, text: str, media: Sequence[MediaInfo], *, limits: Limits | None = None
    ) -> list[Problem]:
        problems = super().validate(text, media, limits=limits)
        # Instagram rescales these itself: worth knowing, not worth blocking.
        for index, item in enumerate(media):
            if item.width < MIN_WIDTH or item.width > MAX_WIDTH:
                problems.append(
                    Problem(
                        "media_will_be_rescaled",
                        "warning",
                        f"Image {index + 1} is {item.width:,} pixels wide; Instagram scales "
                        f"images to between {MIN_WIDTH:,} and {MAX_WIDTH:,} pixels wide.",
                        f"media[{index}]",
                    )
                )
        return problems

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        return graph_oauth_spec(base_url, self.scopes)

    def oauth_client(self, base_url: str, *, redirect_uri: str) -> OAuthClient:
        return meta_client(self)

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        """One Identity per Page with a linked Instagram professional account, holding the
        long-lived User token that Instagram's calls take."""
        long_lived = exchange_for_long_lived(self, base_url, tokens.access_token)
        pages = user_pages(
            base_url,
            long_lived.access_token,
            fields="id,name,instagram_business_account{id,username,name}",
            channel=self,
        )
        identities = []
        for page in pages:
            linked = page.get("instagram_business_account")
            if not isinstance(linked, dict) or not linked.get("id"):
                continue
            username = str(linked.get("username") or linked["id"])
            identities.append(
                Identity(
                    handle=f"@{username}",
                    external_id=str(linked["id"]),
                    display_name=str(linked.get("name") or username),
                    tokens=long_lived,
                    settings={"page_id": str(page.get("id") or ""), "page_name": page.get("name")},
                )
            )
        if not identities:
            raise PermanentError(
                "None of the Facebook Pages you chose has an Instagram professional account "
                "linked to it. Link the Instagram account to its Page (Instagram: Settings → "
                "Account type and tools), then connect again."
            )
        return identities

    def refresh_token(self, account: Any) -> None:
        """A new long-lived User token for the current, still-valid one, stored under the row
        lock; AuthExpired once it has expired or Meta refuses it."""

        def renew(_refresh_token: str) -> TokenSet:
            expires_at = account.expires_at
            if expires_at is not None and expires_at <= timezone.now():
                raise AuthExpired(_expired_message(expires_at))
            return exchange_for_long_lived(
                self, account.base_url, account_token(account, self.label)
            )

        social_account_tokens_refresh(account=account, renew=renew)

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
        if reply_to is not None:
            return self._reply(account, text, media, reply_to)
        if not media:
            raise PermanentError(
                "Instagram needs at least one image: it has no text-only posts. Nothing was sent."
            )
        if len(media) > MAX_CAROUSEL:
            raise PermanentError(
                f"Instagram takes at most {MAX_CAROUSEL} images in one post; this one has "
                f"{len(media)}. Nothing was sent."
            )
        ig_id = _ig_id(account)
        items = sorted(media, key=lambda item: item.get("position", 0))
        # Made first: a missing public address or image refuses before anything is asked.
        links = [
            (hooks.public_image_url.send(sha256=item["sha256"], channel=self.name)[0], item)
            for item in items
        ]
        token = self._fresh_token(account)
        base = account.base_url
        self._check_quota(base, ig_id, token)
        if len(links) == 1:
            url, item = links[0]
            fields = {"image_url": url, "caption": text}
            if item.get("alt_text"):
                fields["alt_text"] = item["alt_text"]
            container = self._container(base, ig_id, token, fields, "the image")
        else:
            children = []
            for number, (url, item) in enumerate(links, start=1):
                fields = {"image_url": url, "is_carousel_item": "true"}
                if item.get("alt_text"):
                    fields["alt_text"] = item["alt_text"]
                children.append(self._container(base, ig_id, token, fields, f"image {number}"))
            self._wait(base, token, children)
            container = self._container(
                base,
                ig_id,
                token,
                {"media_type": "CAROUSEL", "children": ",".join(children), "caption": text},
                "the carousel",
            )
        self._wait(base, token, [container])
        response = graph_call(
            "POST",
            base,
            f"{_q(ig_id)}/media_publish",
            token,
            changes=True,
            what="Publishing the Instagram post",
            channel_name=self.name,
            data={"creation_id": container},
        )
        if response.status_code != 200:
            raise self._error(response, "Instagram refused to publish the post", changes=True)
        media_id = str(graph_json(response, "").get("id") or "")
        if not media_id:
            raise UnknownOutcome("Instagram answered the publish without a media id")
        return Published(
            external_id=media_id[:255],
            external_url=self._permalink(base, token, media_id)[:2000],
            http_status=response.status_code,
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
        ig_id = _ig_id(account)
        if reply_to is not None:
            token = self._fresh_token(account)
            return self._find_reply(
                account, ig_id, token, text, _answered(reply_to), reply_to, hints
            )
        token = account_token(account, self.label)
        response = graph_call(
            "GET",
            account.base_url,
            f"{_q(ig_id)}/media",
            token,
            changes=False,
            what="Reading the Instagram account's posts",
            channel_name=self.name,
            params={
                "fields": "id,caption,permalink,timestamp,media_type,children{id}",
                "limit": RECONCILE_LIMIT,
            },
        )
        if response.status_code != 200:
            raise self._error(response, "Instagram did not list the account's posts")
        data = graph_json(response, "")
        items = data.get("data") if isinstance(data.get("data"), list) else []
        found = matching.find(
            text,
            [_listed(item) for item in items if isinstance(item, dict)],
            hints=hints,
            network=self.label,
            window=RECONCILE_WINDOW,
        )
        if found is None:
            return None
        return Published(
            external_id=found.external_id[:255],
            external_url=found.external_url[:2000],
            http_status=response.status_code,
        )

    # --- answering and engagement (issue 17) ---------------------------------------------------

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """The figures of the account's media `external_ids`: per IDS_PER_CALL, one read of the
        media and one of their insights (see the module docstring)."""
        _ig_id(account)
        token = self._fresh_token(account)
        return meta_engagement(
            account.base_url,
            token,
            external_ids,
            fields=IG_FIGURES,
            metrics=IG_INSIGHTS,
            figures=_ig_figures,
            label=self.label,
            channel_name=self.name,
            refusal=self._error,
        )

    def _reply(self, account: Any, text: str, media: Sequence[Any], reply_to: ReplyTo) -> Published:
        """The account's reply of `text` on the item's comment (see the module docstring)."""
        if media:
            raise PermanentError(
                "An Instagram reply is text only: a comment carries no image. Remove the images. "
                "Nothing was sent."
            )
        ig_id = _ig_id(account)
        comment = _answered(reply_to)
        token = self._fresh_token(account)
        response = graph_call(
            "POST",
            account.base_url,
            f"{_q(comment)}/replies",
            token,
            changes=True,
            what="Replying on Instagram",
            channel_name=self.name,
            data={"message": text},
        )
        if response.status_code != 200:
            raise self._error(response, "Instagram refused the reply", changes=True)
        reply_id = graph_id(json_or_empty(response).get("id"))
        if not reply_id:
            # It went out (200), but we cannot say where: look for it rather than send again.
            hints = ReconcileHints(since=timezone.now(), media_count=0)
            try:
                found = self._find_reply(account, ig_id, token, text, comment, reply_to, hints)
            except (RetryableError, PermanentError) as exc:
                raise UnknownOutcome(
                    f"Instagram answered the reply without an id, and listing the replies to "
                    f"comment {comment} failed: {exc}"
                ) from exc
            if found is not None:
                return found
            raise UnknownOutcome("Instagram answered the reply without an id")
        return Published(
            external_id=reply_id[:255],
            external_url=self._reply_url(account, token, reply_to)[:2000],
            http_status=response.status_code,
        )

    def _find_reply(
        self,
        account: Any,
        ig_id: str,
        token: str,
        text: str,
        comment: str,
        reply_to: ReplyTo,
        hints: ReconcileHints | None,
    ) -> Published | None:
        """The account's reply of `text` under `comment` since the first try, if any."""
        rows, _ = graph_items(
            account.base_url,
            f"{_q(comment)}/replies",
            token,
            params={"fields": IG_REPLY_FIELDS, "limit": IG_COMMENTS_PAGE},
            what=f"Reading the replies to Instagram comment {comment}",
            channel_name=self.name,
            pages=COMMENTS_PAGES,
            refusal=self._error,
        )
        own = _own(account, ig_id)
        ours = [_listed_reply(row) for row in rows if _written_by(row, own)]
        found = matching.find(text, ours, hints=hints, network=self.label, window=RECONCILE_WINDOW)
        if found is None:
            return None
        return Published(
            external_id=found.external_id[:255],
            external_url=self._reply_url(account, token, reply_to)[:2000],
            http_status=200,
        )

    def _reply_url(self, account: Any, token: str, reply_to: ReplyTo) -> str:
        """Where a person sees a reply: its medium (Instagram gives a comment no address), or
        the account's profile when Meta does not say."""
        raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
        medium = raw.get("media")
        media_id = graph_id(reply_to.thread_id) or (
            graph_id(medium.get("id")) if isinstance(medium, Mapping) else ""
        )
        url = self._permalink(account.base_url, token, media_id) if media_id else ""
        username = str(account.handle or "").lstrip("@")
        return url or f"https://www.instagram.com/{quote(username)}/"

    # --- what comes back (issue 17) -----------------------------------------------------------

    hears_back = True

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """The account's kept comments Meta no longer has or shows hidden (see the module
        docstring)."""
        _ig_id(account)
        if not any(network_ids):
            return set()
        return meta_items_gone(
            account.base_url,
            self._fresh_token(account),
            network_ids,
            hidden="hidden",
            label=self.label,
            channel_name=self.name,
            refusal=self._error,
        )

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """The comments on the account's INBOUND_POSTS newest media since the cursor's mark
        (see the module docstring)."""
        ig_id = _ig_id(account)
        token = self._fresh_token(account)
        base = account.base_url
        limit = inbound_limit(limit)
        mark = read_mark(cursor)
        first = mark is None
        own = _own(account, ig_id)
        heard: list[Heard] = []
        # Each medium's comment count: those not read now keep the one remembered.
        counts: dict[str, int] = {}
        unchanged: dict[str, int] = {}
        cut: set[str] = set()
        for media_id, url, count in self._recent_media(base, ig_id, token):
            remembered = mark.counts.get(media_id) if mark is not None else None
            if count is not None and count in (0, remembered):
                unchanged[media_id] = count
                continue
            rows, more = self._media_comments(base, token, media_id, first=first, limit=limit)
            heard += [_heard(row, parent, media_id, url, own) for row, parent in rows]
            if more:
                cut.add(media_id)
            if count is not None:
                counts[media_id] = count
        if mark is None:
            # The first call takes no more than the newest page: every count is the baseline.
            return newest_page(heard, limit, {**unchanged, **counts})
        taken, left = split_new(heard, mark, limit)
        if not taken:
            return InboundPage(items=[], cursor=cursor, more=bool(cut))
        # A medium with comments left (or unread) is read again next time, whatever its count.
        unfinished = cut | {h.source for h in left}
        counts = {m: n for m, n in counts.items() if m not in unfinished}
        return InboundPage(
            items=[h.item for h in taken if not h.own],
            cursor=write_mark(advanced(mark, taken, {**unchanged, **counts})),
            more=bool(left) or bool(cut),
        )

    def _recent_media(self, base: str, ig_id: str, token: str) -> list[tuple[str, str, int | None]]:
        """The account's INBOUND_POSTS newest media: (id, address, comment count or None)."""
        rows, _ = graph_items(
            base,
            f"{_q(ig_id)}/media",
            token,
            params={"fields": "id,permalink,comments_count", "limit": INBOUND_POSTS},
            what="Reading the Instagram account's posts",
            channel_name=self.name,
            pages=1,
            refusal=self._error,
        )
        media = []
        for row in rows:
            media_id = graph_id(row.get("id"))
            if not media_id:
                raise RetryableError("Instagram listed a post of the account without an id.")
            count = row.get("comments_count")
            whole = isinstance(count, int) and not isinstance(count, bool) and count >= 0
            media.append((media_id, graph_text(row.get("permalink")), count if whole else None))
        return media

    def _media_comments(
        self, base: str, token: str, media_id: str, *, first: bool, limit: int
    ) -> tuple[list[tuple[dict[str, Any], str]], bool]:
        """A medium's comments with their replies, each with the id of the comment it answers
        ("" for a comment on the medium): its newest page on the first call, else all of them
        (bounded); and whether some were left unread."""
        what = f"Reading the comments on Instagram post {media_id}"
        rows, cut = graph_items(
            base,
            f"{_q(media_id)}/comments",
            token,
            params={
                "fields": f"{IG_COMMENT_FIELDS},replies{{{IG_COMMENT_FIELDS}}}",
                "limit": min(limit, IG_COMMENTS_PAGE) if first else IG_COMMENTS_PAGE,
            },
            what=what,
            channel_name=self.name,
            pages=1 if first else COMMENTS_PAGES,
            refusal=self._error,
        )
        found: list[tuple[dict[str, Any], str]] = []
        for row in rows:
            found.append((row, ""))
            parent = graph_id(row.get("id"))
            replies, more = _nested_replies(row, what)
            if more and parent and not first:
                replies, replies_cut = graph_items(
                    base,
                    f"{_q(parent)}/replies",
                    token,
                    params={"fields": IG_COMMENT_FIELDS, "limit": IG_COMMENTS_PAGE},
                    what=f"Reading the replies to Instagram comment {parent}",
                    channel_name=self.name,
                    pages=COMMENTS_PAGES,
                    refusal=self._error,
                )
                cut = cut or replies_cut
            found += [(reply, parent) for reply in replies]
        return found, cut and not first

    # --- steps --------------------------------------------------------------------------------

    def _fresh_token(self, account: Any) -> str:
        """The account's token, renewed first when it expires within RENEW_WITHIN."""
        expires_at = account.expires_at
        if expires_at is not None:
            now = timezone.now()
            if expires_at <= now:
                raise AuthExpired(_expired_message(expires_at))
            if expires_at - now <= RENEW_WITHIN:
                # Still valid for now: when Meta cannot be reached, publish with it.
                with contextlib.suppress(RetryableError):
                    self.refresh_token(account)
        return account_token(account, self.label)

    def _error(self, response: Any, what: str, *, changes: bool = False) -> Exception:
        _, subcode, _ = graph_error_fields(response)
        error = graph_error(
            response,
            what,
            retryable_codes=RETRYABLE_CODES,
            retryable_subcodes=(*RETRYABLE_SUBCODES, PUBLISH_LIMIT_SUBCODE),
            changes=changes,
        )
        if subcode == PUBLISH_LIMIT_SUBCODE and isinstance(error, RetryableError):
            error.retry_after = error.retry_after or QUOTA_RETRY_SECONDS
        return error

    def _check_quota(self, base: str, ig_id: str, token: str) -> None:
        response = graph_call(
            "GET",
            base,
            f"{_q(ig_id)}/content_publishing_limit",
            token,
            changes=False,
            what="Reading Instagram's publishing limit",
            channel_name=self.name,
            params={"fields": "quota_usage,config"},
        )
        if response.status_code != 200:
            error = self._error(response, "Instagram did not tell its publishing limit")
            if isinstance(error, PermanentError):
                return  # a check we could not make is no reason to refuse the post
            raise error
        rows = graph_json(response, "").get("data") or [{}]
        row = rows[0] if isinstance(rows[0], dict) else {}
        usage = row.get("quota_usage")
        total = (row.get("config") or {}).get("quota_total")
        if isinstance(usage, int) and isinstance(total, int) and usage >= total:
            raise RetryableError(
                f"The Instagram account has published {usage} posts through the API in the "
                f"last 24 hours, its limit of {total}; trying again later.",
                retry_after=QUOTA_RETRY_SECONDS,
            )

    def _container(
        self, base: str, ig_id: str, token: str, fields: dict[str, str], what: str
    ) -> str:
        response = graph_call(
            "POST",
            base,
            f"{_q(ig_id)}/media",
            token,
            # A container publishes nothing and expires unused: a lost answer is retried.
            changes=False,
            what=f"Preparing {what} for Instagram",
            channel_name=self.name,
            data=fields,
        )
        if response.status_code != 200:
            raise self._error(response, f"Instagram refused {what}")
        container = str(graph_json(response, "").get("id") or "")
        if not container:
            raise RetryableError("Instagram answered without a container id")
        return container

    def _wait(self, base: str, token: str, containers: list[str]) -> None:
        """Poll the containers until all are FINISHED (bounded)."""
        pending = list(containers)
        for attempt in range(CONTAINER_POLLS):
            if attempt:
                time.sleep(CONTAINER_POLL_SECONDS)
            for container in list(pending):
                response = graph_call(
                    "GET",
                    base,
                    _q(container),
                    token,
                    changes=False,
                    what="Checking Instagram's processing",
                    channel_name=self.name,
                    params={"fields": "status_code,status"},
                )
                if response.status_code != 200:
                    raise self._error(response, "Instagram did not say how the media is doing")
                data = graph_json(response, "")
                status = str(data.get("status_code") or "")
                if status == "FINISHED":
                    pending.remove(container)
                elif status in ("ERROR", "EXPIRED"):
                    detail = str(data.get("status") or status)
                    raise PermanentError(f"Instagram could not use the media: {detail}")
                elif status == "PUBLISHED":
                    raise UnknownOutcome(f"Instagram container {container} is already published")
            if not pending:
                return
        raise RetryableError(
            "Instagram was still processing the media after "
            f"{CONTAINER_POLLS * CONTAINER_POLL_SECONDS:g} s; nothing was published."
        )

    def _permalink(self, base: str, token: str, media_id: str) -> str:
        try:
            response = graph_call(
                "GET",
                base,
                _q(media_id),
                token,
                changes=False,
                what="Reading the post's address",
                channel_name=self.name,
                params={"fields": "permalink"},
            )
            return str(graph_json(response, "").get("permalink") or "")
        except ChannelError:
            return ""  # the post is out; only its address is unknown


def _listed(item: dict[str, Any]) -> matching.Listed:
    return matching.Listed(
        external_id=str(item.get("id") or ""),
        text=str(item.get("caption") or ""),
        created_at=matching.parse_time(item.get("timestamp")),
        media_count=_images(item),
        external_url=str(item.get("permalink") or ""),
    )


def _images(item: dict[str, Any]) -> int | None:
    """How many images an IG media holds; None when Meta did not say."""
    kind = str(item.get("media_type") or "")
    if kind == "CAROUSEL_ALBUM":
        children = (item.get("children") or {}).get("data")
        return len(children) if isinstance(children, list) else None
    return 1 if kind in ("IMAGE", "VIDEO") else None


def _own(account: Any, ig_id: str) -> frozenset[str]:
    """What marks a comment as the account's own: its IG user id and its username."""
    username = str(account.handle or "").lstrip("@").lower()
    return frozenset(filter(None, {ig_id, f"@{username}" if username else ""}))


def _nested_replies(row: dict[str, Any], what: str) -> tuple[list[dict[str, Any]], bool]:
    """The replies a comment carries (field expansion), and whether Meta has more of them."""
    replies = row.get("replies")
    if replies is None:
        return [], False
    data = replies.get("data") if isinstance(replies, dict) else None
    if not isinstance(data, list) or not all(isinstance(reply, dict) for reply in data):
        raise RetryableError(f"{what}: Meta gave a comment's replies in a form cxhub cannot read.")
    paging = replies.get("paging")
    return data, isinstance(paging, dict) and bool(paging.get("next"))


def _heard(
    row: dict[str, Any], parent: str, media_id: str, media_url: str, own: frozenset[str]
) -> Heard:
    """A comment as an item: a reply answers its comment, any other the medium; both belong to
    the medium's thread. Instagram gives no address for a comment: the medium's stands in."""
    comment_id = graph_id(row.get("id"))
    created = graph_time(row.get("timestamp"))
    if not comment_id or created is None:
        raise RetryableError(
            f"Instagram listed a comment on post {media_id} without an id or the time it was made."
        )
    author = row.get("from") if isinstance(row.get("from"), dict) else {}
    username = graph_text(row.get("username")) or graph_text(author.get("username"))
    handle = f"@{username}" if username else ""
    author_id = graph_id(author.get("id"))
    item = Inbound(
        network_id=comment_id,
        kind="comment",
        text=graph_text(row.get("text")),
        created_at=created,
        author_handle=handle,
        author_id=author_id,
        url=media_url,
        thread_id=media_id,
        in_reply_to_id=graph_id(row.get("parent_id")) or parent or media_id,
        deleted=row.get("hidden") is True,
        # The replies are items of their own.
        raw={key: value for key, value in row.items() if key != "replies"},
    )
    mine = author_id in own or handle.lower() in own
    return Heard(at=int(created.timestamp()), item=item, own=mine, source=media_id)


def _answered(reply_to: ReplyTo) -> str:
    """The comment a reply goes on: the item's, or its top-level comment when the item is itself
    a reply (Meta would add the answer there anyway)."""
    raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
    comment = graph_id(raw.get("parent_id")) or graph_id(reply_to.network_id)
    if not comment:
        raise PermanentError(
            "The item this reply answers has no Instagram comment id, so there is nothing to "
            "reply to. Nothing was sent."
        )
    return comment


def _written_by(row: dict[str, Any], own: frozenset[str]) -> bool:
    """Whether the account wrote this comment (its IG user id, or its @username)."""
    author = row.get("from") if isinstance(row.get("from"), dict) else {}
    username = graph_text(row.get("username")) or graph_text(author.get("username"))
    return graph_id(author.get("id")) in own or (bool(username) and f"@{username.lower()}" in own)


def _listed_reply(row: dict[str, Any]) -> matching.Listed:
    return matching.Listed(
        external_id=graph_id(row.get("id")),
        text=graph_text(row.get("text")),
        created_at=graph_time(row.get("timestamp")),
        media_count=None,
    )


def _ig_figures(media_id: str, row: dict[str, Any], insights: Mapping[str, int]) -> Engagement:
    what = f"The figures of Instagram post {media_id}"
    return Engagement(
        likes=graph_count(row.get("like_count"), what),
        replies=graph_count(row.get("comments_count"), what),
        impressions=insights.get("views"),
    )


def _ig_id(account: Any) -> str:
    ig_id = str(account.external_id or "")
    if not ig_id:
        raise PermanentError(
            "This Instagram account has no Instagram user id; connect the account again."
        )
    return ig_id


def _expired_message(expires_at: Any) -> str:
    return (
        f"The Instagram account's Facebook token expired on {expires_at:%Y-%m-%d %H:%M} UTC and "
        "Meta does not renew expired tokens; connect the account again."
    )


def _q(value: str) -> str:
    return quote(str(value), safe="")
