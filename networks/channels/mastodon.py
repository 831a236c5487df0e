"""Mastodon: grapheme clusters, every URL counts 23, "@user@server" counts as "@user"; each
server announces its own limits, which `limits_from_mastodon_instance` reads.

Sources (checked 2025/2026):
- Counting: mastodon/mastodon app/validators/status_length_validator.rb — MAX_CHARS = 500,
  URL_PLACEHOLDER_CHARS = 23, length is `grapheme_length` of the text with each URL replaced by
  23 characters and each mention by "@#{screen_name.split('@').first}"; URLs are extracted with
  `extract_url_without_protocol: false` (only http:// and https:// links get the discount).
  Also docs.joinmastodon.org/user/posting/ ("All links are counted as 23 characters … Only the
  username part will count against your character limit -- the domain is not counted").
- Server limits: docs.joinmastodon.org/entities/Instance/ (GET /api/v2/instance):
  configuration.statuses.max_characters, .max_media_attachments, .characters_reserved_per_url;
  configuration.media_attachments.image_size_limit (bytes), .image_matrix_limit (width × height),
  .supported_mime_types; app/serializers/rest/instance_serializer.rb also sends
  media_attachments.description_limit (Mastodon 4.4+).
- Defaults: 4 attachments (Status::MEDIA_ATTACHMENTS_LIMIT); images 16 MB
  (MediaAttachment::IMAGE_LIMIT = 16.megabytes = 16,777,216 bytes) and 33,177,600 pixels
  (Attachmentable::MAX_MATRIX_LIMIT, 7680 × 4320), as mastodon.social announces them;
  description ≤ 1,500 characters (MediaAttachment::MAX_DESCRIPTION_LENGTH = 1_500).
- Formats: JPEG, PNG, GIF, WEBP are in every current server's supported_mime_types (HEIC and
  AVIF too, which cxhub does not produce).

Publishing (docs.joinmastodon.org, checked 2026):
- methods/media/#v2: `POST /api/v2/media`, multipart `file` and `description` (the alt text).
  200 with the MediaAttachment when it is ready; 202 with `url: null` while it is processed.
- methods/media/#get: `GET /api/v1/media/:id` answers 206 while the file is still processed and
  200 once it is; a status may only attach processed media (422 otherwise). We poll a bounded
  number of times. An uploaded file that is never attached is removed by the server, so a
  failed or timed-out upload is simply tried again: it cannot post anything.
- methods/statuses/#create: `POST /api/v1/statuses` with `status`, `media_ids[]`,
  `visibility`; the `Idempotency-Key` header "prevents duplicate submissions of the same
  status", keys are kept for up to 1 hour: the same key returns the status already made.
- client/authorized/: `Authorization: Bearer <token>`; 401 "The access token is invalid"
  (revoked or expired: Mastodon access tokens do not expire on their own and have no refresh
  grant, so a 401 means reconnect).
- entities/Error/: errors are `{"error": "…"}`; 422 "Validation failed: …" refuses the post.
- api/rate-limits/: 300 calls / 5 min per account, media 30 / 30 min; 429 with
  `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (an ISO 8601 time).
- methods/accounts/#statuses: `GET /api/v1/accounts/:id/statuses` (the account's own, newest
  first); methods/accounts/#verify_credentials gives the id when the account has none stored.

Connecting (docs.joinmastodon.org, checked 2026):
- spec/oauth: Mastodon's OAuth 2 is Doorkeeper (RFC 6749): "allow your users to specify the
  domain they want to connect to before login. Use that domain to acquire a client id/secret and
  then proceed with normal OAuth 2". Endpoints GET /oauth/authorize, POST /oauth/token,
  POST /oauth/revoke (RFC 7009). `scope` at the OAuth endpoints must be a subset of the `scopes`
  registered, and `redirect_uri` one of the `redirect_uris` registered.
- methods/apps/#create: `POST /api/v1/apps` with `client_name`, `redirect_uris` (required),
  `scopes` (space separated; "read" when absent), `website` → a CredentialApplication with
  `client_id` and `client_secret` ("treat them as passwords … encrypt these when storing"); 422
  when a parameter is missing or malformed. Registered once per server and callback address
  (networks.OAuthApp); since 4.3 servers no longer remove registrations.
- methods/oauth/#authorize: `response_type=code`, `client_id`, `redirect_uri`, `scope`; the code
  comes back as `?code=`. Since 4.3 `state` and PKCE (`code_challenge`,
  `code_challenge_method=S256` only) are accepted, and ignored by older servers: both are sent.
- methods/oauth/#token: `grant_type=authorization_code`, `code`, `client_id`, `client_secret`,
  `redirect_uri` in the form; the Token has no `expires_in` and no refresh token (Mastodon's
  tokens last until revoked). 400 invalid_grant, 401 invalid_client.
- methods/oauth/#revoke: `client_id`, `client_secret`, `token` → 200 `{}` (idempotent); 403
  unauthorized_client for a token of another client.
- methods/accounts/#verify_credentials: the Account (`id`, `username`, `acct`,
  `display_name`, `url`); methods/instance/#v2: `GET /api/v2/instance` (public) → `domain`
  (the server's own name, which handles carry: "@user@domain"), `configuration` (the limits that
  limits_from_mastodon_instance reads, kept on the account for preflight).

Reconcile (issue 11): the Idempotency-Key makes a publish retried with the same key within the
hour safe on a server that honours it, but it is optional (methods/statuses/#create lists it as
an optional header): a server or fork that ignores it, or that records the status and then
answers 502 (a proxy in front of a slow server: mastodon/mastodon#21840), posts a second copy
when a publish is simply sent again. So a publish whose answer was lost, timed out or was a 5xx
is UnknownOutcome, and reconcile looks before any retry: it reads the account's
RECONCILE_STATUSES newest statuses (methods/accounts/#statuses, exclude_reblogs) and matches
them with networks.channels.matching. What the match relies on:
- `content` is HTML, as app/lib/text_formatter.rb renders the text: paragraphs and <br />,
  links with their address split over hidden spans (read back whole), hashtags as links
  ("#<span>tag</span>"), a mention the server resolved as a link showing "@user" (or
  "@user@domain" when another known account shares the name), and one it could not resolve
  kept as the plain text "@user@domain". Turned into text, with mentions compared as "@user"
  whatever their form;
- `media_attachments`: the number of images; `created_at`: posts made before the target's
  first try (less matching.CLOCK_SKEW) are left out, as are ids other targets already hold.
What it cannot tell apart: two statuses with the same text and images made since the first try
(AmbiguousMatch, a person decides); a status edited since, or pushed out of the
RECONCILE_STATUSES newest by newer ones (not found); two links to different addresses that the
server shows identically (never: Mastodon keeps the address).

Hearing back (issue 17; docs.joinmastodon.org, checked 2026):
- methods/notifications/#get: `GET /api/v1/notifications` (OAuth `read:notifications`) with
  `types[]` (3.5+; a server intersects them with the types it knows, so one that does not know
  `quote` simply leaves it out, and one older than 3.5 sends every type, which we then drop
  ourselves), `min_id` ("returns results immediately newer than this ID … sets a cursor at this
  ID and paginates forward"), `max_id`/`since_id` (unused), `limit` (default 40, max 80 since
  4.1; 15, max 30 before). The page comes newest first; the Link header's rel="prev" is the
  same page's newest id as `min_id`, rel="next" its oldest as `max_id` (api/guidelines
  #pagination), so walking forward is calling again with the newest id seen, which we read
  from the page itself (a proxy may drop the header). 401 "The access token is invalid".
- entities/Notification: `id` (a String "cast from an integer, but not guaranteed to be a
  number"), `type` (`mention`: someone mentioned you; `quote` since 4.5: someone quoted one of
  your statuses), `created_at`, `account`, `status` (attached for both). A reply to one of our
  statuses arrives as a mention, because a reply mentions the author it answers. When a status
  is deleted, Mastodon removes its mention notification with it; a notification still listed
  with its status null (removal under way, or a fork) cannot be an item and is passed over.
- entities/Status: `id`, `created_at`, `in_reply_to_id`, `in_reply_to_account_id` (both
  nullable), `visibility` (`direct`: "visible only to mentioned users"), `language` (nullable
  ISO 639-1), `content` (HTML, turned into text as reconcile reads it), `url` (nullable; `uri`
  then), `account` (`id`, `acct`: "username" for a local account, "username@domain" for a
  remote one, `display_name`).
The cursor is the newest notification id seen (ids compare as numbers when they are digits:
"999" < "1000"). The first call, without one, reads the newest page only. Mastodon does not say
that more is waiting; a page as full as the smallest maximum a server may apply (30, before
4.1) is taken to mean more may be, which costs at most one empty call. Not read: the thread's
root (methods/statuses/#context costs a call per item; `thread_id` is the status answered, or
the status itself), notifications a 4.3+ server's notification policy filtered into requests
(methods/notifications/#get-requests), and direct conversations (methods/conversations).

Answering (issue 17; docs.joinmastodon.org, checked 2026):
- methods/statuses/#create: a reply is the same `POST /api/v1/statuses` (same Idempotency-Key)
  with `in_reply_to_id`, the id of the status answered (the item's network_id). A status that
  is gone or hidden from us is refused with 404 "The status you are trying to reply to does
  not appear to exist" (Api::V1::StatusesController#set_thread): PermanentError.
- Visibility: Mastodon's own composer gives a reply the stricter of the author's default and
  the visibility of the status answered (app/javascript/mastodon/reducers/compose.js,
  `privacyPreference`: public < unlisted < private < direct). Ours is public, so a reply takes
  the answered status's visibility: a reply to a direct message stays direct, one to a
  followers-only status stays followers-only. The payload fetch_inbound kept (the Notification,
  whose `status` carries `visibility` and `account.acct`) says which; when it does not, the
  status is read (methods/statuses/#get, 404: gone).
- The mention. Mastodon's convention is that a reply starts with "@acct" of the author it
  answers: its composer writes it, the author is notified only when mentioned (a reply without
  it shows in the thread, unnoticed: mastodon/mastodon#5797, #10865), and a direct status
  reaches only the accounts it mentions (entities/Status `visibility`: "direct = visible only
  to mentioned users"). The channel does NOT add it: the text sent is the text people counted,
  previewed and approved (preflight counts the draft as written, and a mention added here could
  push an approved reply over the server's limit, or change an official statement after its
  approval), and the one reconcile compares. The draft should start with it instead:
  `reply_mention(reply_to)` gives "@user@domain" for the drafting service to prefill, which
  preflight then counts as Mastodon does (as "@user"). A direct reply whose text does not
  mention the author would reach nobody, so publish refuses it (PermanentError naming the
  mention) before sending anything; a public one is sent as written.
- Reconcile of a reply: the account's statuses (methods/accounts/#statuses with
  `exclude_replies=false`, the default, said explicitly; the owner sees all its statuses there,
  direct ones too: app/models/account_statuses_filter.rb `author?`), only those whose
  `in_reply_to_id` is the item answered, then the same matching. Without reply_to only
  statuses that answer nothing are looked at, so a reply of the same text is never taken for
  a post (and the other way round). A reply pushed out of the RECONCILE_STATUSES newest is
  not found, as a post is not.

Figures of our statuses (issue 17; docs.joinmastodon.org, checked 2026):
- methods/statuses/#index: `GET /api/v1/statuses?id[]=…` (Mastodon 4.3+) answers the
  statuses asked for that exist and can be seen, "fewer records than requested if the requested
  statuses do not exist": one missing is deleted. At most 20 ids a call
  (Api::BaseController::DEFAULT_STATUSES_LIMIT; check_statuses_limit refuses more with 422).
  An older server has no such route and answers 404 (or 405 on a fork): we then read each
  status with methods/statuses/#get (`GET /api/v1/statuses/:id`; 404 "Record not found" is a
  status deleted, by its author or a moderator).
- entities/Status: `favourites_count` (likes), `reblogs_count` (boosts), `replies_count`
  (counted by the server for public and unlisted replies), and `quotes_count` since 4.5
  (mastodon/mastodon#35832; None before). Mastodon gives no impressions or clicks: None.

Listening (issue 18; docs.joinmastodon.org, checked 2026, and mastodon/mastodon where the docs
say less), read with the account's own token:
- "search": methods/search/#v2, `GET /api/v2/search` with `q` (the words as the lead typed them),
  `type=statuses`, `limit` (default 20, max 40), `min_id`, `max_id` and `offset` (the last only
  with a user token) → a Search whose `statuses` we read. The docs say min_id "returns results
  immediately newer than this ID", but the server does otherwise (StatusesSearchService, 4.2+):
  results come newest id first, and min_id and max_id only become `after:` and `before:` at the
  second of the id (Mastodon::Snowflake.to_time). So a search answers the NEWEST page above the
  cursor, and walking forward from it would skip what lies between. We walk such a gap down
  instead: the cursor then also names the posts already taken above the gap
  ("<newest>:<oldest>:<floor>": everything at or below the floor, and everything from the oldest
  to the newest, was given), the next call asks below the oldest, and the gap is closed when a
  call finds nothing more in it. A short page proves nothing (the server drops statuses of
  accounts we block or mute after counting the page), so every search that found something
  costs one more call, which finds nothing. max_id is sent as the start of the second after the
  oldest, because `before:` that second would leave out the older posts of the same second;
  those at or above the oldest come back too and are dropped, and a page full of them is read
  past with `offset`. Servers before 4.2 compare the ids themselves and order by relevance; they
  search only the statuses the account wrote, favourited, boosted, bookmarked or was mentioned
  in, so a gap of more than a page is unlikely there. A search engine that fails makes the
  server answer no statuses, which cannot be told from none.
  The query syntax has `language:` (4.2+), but it takes one language only and an older server
  would search for the word "language": the languages are left to listening's own rules.
- "hashtag": methods/timelines/#tag, `GET /api/v1/timelines/tag/:hashtag` (without its #;
  Tag.find_normalized ignores case) with `limit` (max 40) and `min_id`, which here does give the
  page immediately newer than it (Paginable#paginate_by_min_id), newest first: we walk forward
  as fetch_inbound does, the cursor being the newest id taken. 404 "Record not found": nobody on
  the server used the hashtag yet, so nothing is found (an empty page, the cursor kept); 4.5's
  `timelines_access` may also answer an empty list for a feed the server keeps to itself.
- "account": methods/accounts/#lookup, `GET /api/v1/accounts/lookup?acct=` (3.4+; "skipping
  WebFinger resolution": an account of another server is known only once the server has seen
  it; 404 "Record not found" otherwise: PermanentError), then methods/accounts/#statuses,
  `GET /api/v1/accounts/:id/statuses` with `limit`, `min_id` and `exclude_reblogs=true`, walked
  forward like a hashtag.
- entities/Status: a boost is a status whose `reblog` is the original; boosts are left out
  (the original is what was written; a boost of an old post would come back as new). Only
  `public` and `unlisted` statuses are posts here (our token may show followers-only ones of
  accounts we follow). The text is the content warning (`spoiler_text`, which the search engine
  also reads), then the content as fetch_inbound reads it; `favourites_count`,
  `reblogs_count`, `replies_count` and `quotes_count` (4.5+) are its figures.
Ids of remote statuses come from the time they were written (Mastodon::Snowflake.id_at), so a
post that reaches the server late can fall behind the cursor and is not seen.

Items gone (issue 17; docs.joinmastodon.org, checked 2026): the same two reads as the figures,
for statuses of other people. methods/statuses/#index answers only the statuses that exist and
that the account is shown (Status.permitted_statuses_from_ids: StatusFilter also leaves out
authors the account blocks or mutes, and limited ones it does not follow), so one missing from
an answer that names others was deleted, taken down or hidden from us; methods/statuses/#get
answers 404 for a status that "does not exist or is private". An answer naming none of the
statuses asked for proves nothing (a server that does not read `id[]` could answer so: Pleroma
and its forks read `ids[]`): those are then asked for one by one, and only a 404 marks one
gone.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import regex
import requests

from ..models import OAuthApp
from ..tokens import oauth_app_register
from . import matching
from . import text as textutil
from .base import (
    Channel,
    Engagement,
    Identity,
    Inbound,
    InboundKind,
    InboundPage,
    Limits,
    OAuthClient,
    OAuthSpec,
    PublicPage,
    PublicPost,
    PublicQuery,
    ReconcileHints,
    ReplyTo,
    TokenSet,
)
from .errors import AuthExpired, PermanentError, RetryableError
from .http import (
    Published,
    check_server,
    error_for_status,
    json_or_empty,
    rate_limit_wait,
    request,
)
from .media_files import MediaFile, load_media
from .oauth import refresh_oauth2, revoke_oauth2

URL_PLACEHOLDER_CHARS = 23
CLIENT_NAME = "cxhub"
SCOPES = ("read", "write")

# Account::MENTION_RE / USERNAME_RE: "@user" or "@user@server.example".
MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?", regex.IGNORECASE
)

DEFAULT_LIMITS = Limits(
    max_text=500,
    text_unit="characters",
    max_text_bytes=None,
    max_media=4,
    media_formats=frozenset({"JPEG", "PNG", "GIF", "WEBP"}),
    max_image_bytes=16 * 1024 * 1024,
    max_image_pixels=33_177_600,
    max_alt_text=1_500,
)

_MIME_TO_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}


def countable_text(text: str) -> str:
    """The text as StatusLengthValidator measures it: URLs become 23 characters, remote
    mentions lose their server."""
    entities = [
        (span.start, span.end, "x" * URL_PLACEHOLDER_CHARS)
        for span in textutil.find_urls(text, bare_domains=False)
    ]
    entities += [(m.start(), m.end(), "@" + m.group(1)) for m in MENTION.finditer(text)]
    entities.sort()
    out, last = [], 0
    for start, end, replacement in entities:
        if start < last:  # overlaps an earlier entity (remove_overlapping_entities)
            continue
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def limits_from_mastodon_instance(
    instance_json: dict[str, Any], *, defaults: Limits = DEFAULT_LIMITS
) -> Limits:
    """The limits a server announces in its GET /api/v2/instance answer; whatever is missing
    or malformed keeps the default."""
    configuration = instance_json.get("configuration")
    configuration = configuration if isinstance(configuration, dict) else {}
    statuses = configuration.get("statuses")
    statuses = statuses if isinstance(statuses, dict) else {}
    media = configuration.get("media_attachments")
    media = media if isinstance(media, dict) else {}

    max_text = (
        _positive_int(statuses.get("max_characters"))
        # Some forks (Pleroma, glitch-soc's old API) announce it at the top level.
        or _positive_int(instance_json.get("max_toot_chars"))
        or defaults.max_text
    )
    formats = defaults.media_formats
    mime_types = media.get("supported_mime_types")
    if isinstance(mime_types, list) and mime_types:
        announced = {_MIME_TO_FORMAT[m] for m in mime_types if m in _MIME_TO_FORMAT}
        formats = frozenset(announced) or defaults.media_formats
    return replace(
        defaults,
        max_text=max_text,
        max_media=_positive_int(statuses.get("max_media_attachments")) or defaults.max_media,
        media_formats=formats,
        max_image_bytes=_positive_int(media.get("image_size_limit")) or defaults.max_image_bytes,
        max_image_pixels=(
            _positive_int(media.get("image_matrix_limit")) or defaults.max_image_pixels
        ),
        max_alt_text=_positive_int(media.get("description_limit")) or defaults.max_alt_text,
    )


class MastodonChannel(Channel):
    name = "mastodon"
    label = "Mastodon"
    limits = DEFAULT_LIMITS
    counting = "graphemes"
    url_weight = URL_PLACEHOLDER_CHARS
    mentions_count_local_part = True
    # The person names their server; cxhub registers itself with each one.
    needs_server = True

    def count(self, text: str) -> int:
        return textutil.grapheme_count(countable_text(text))

    @staticmethod
    def limits_from_instance(instance_json: dict[str, Any]) -> Limits:
        return limits_from_mastodon_instance(instance_json)

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
        base = _base(account)
        token = _token(account)
        payload: dict[str, Any] = {"status": text, "visibility": "public"}
        if reply_to is not None:
            # Before the uploads: a reply that cannot go out should leave nothing behind.
            payload.update(_reply_fields(account, base, token, text, reply_to))
        media_ids = [_upload(base, token, item) for item in load_media(media, channel=self.name)]
        if media_ids:
            payload["media_ids"] = media_ids
        response = request(
            "POST",
            f"{base}/api/v1/statuses",
            changes=True,
            what="Posting the status",
            json=payload,
            headers={**_auth(token), "Idempotency-Key": str(idempotency_key)},
        )
        status = json_or_empty(response)
        if response.status_code == 200 and status.get("id"):
            return _published(status, response.status_code)
        raise _refusal(response, "Mastodon refused the post", changes=True)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
        reply_to: ReplyTo | None = None,
    ) -> Published | None:
        # A post answers nothing; a reply answers its item: neither is taken for the other.
        answering = _answered_id(reply_to) if reply_to is not None else ""
        base = _base(account)
        token = _token(account)
        account_id = account.external_id or _own_id(base, token)
        response = request(
            "GET",
            f"{base}/api/v1/accounts/{quote(account_id, safe='')}/statuses",
            changes=False,
            what="Reading the account's statuses",
            params={
                "limit": RECONCILE_STATUSES,
                "exclude_reblogs": "true",
                # Our replies are among them (the default, said so a reply is never missed).
                "exclude_replies": "false",
            },
            headers=_auth(token),
        )
        if response.status_code != 200:
            raise _refusal(response, "Mastodon did not list the account's statuses")
        try:
            statuses = response.json()
        except ValueError as exc:
            raise RetryableError("Mastodon listed the statuses in a form we cannot read") from exc
        if not isinstance(statuses, list):
            raise RetryableError("Mastodon listed the statuses in a form we cannot read")
        found = matching.find(
            text,
            [
                _listed(status)
                for status in statuses
                if isinstance(status, dict) and _id(status.get("in_reply_to_id")) == answering
            ],
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

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        base = _base(account)
        token = _token(account)
        wanted = list(dict.fromkeys(id_ for id_ in map(_id, external_ids) if id_))
        figures: dict[str, Engagement] = {}
        batched = True
        for start in range(0, len(wanted), STATUSES_PER_CALL):
            chunk = wanted[start : start + STATUSES_PER_CALL]
            found = _statuses_batch(base, token, chunk) if batched else None
            if found is None:
                # Before 4.3: one call per status, for this chunk and the ones after it.
                batched = False
                found = {id_: _read_status(base, token, id_) for id_ in chunk}
            for id_ in chunk:
                status = found.get(id_)
                # Missing from the answer, or 404 on its own: the status is gone.
                figures[id_] = _engagement(status) if status else Engagement(deleted=True)
        return figures

    # --- what comes back (issue 17) -----------------------------------------------------------

    hears_back = True

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(id_ for id_ in map(_id, network_ids) if id_))
        if not wanted:
            return set()
        base = _base(account)
        token = _token(account)
        gone: set[str] = set()
        batched = True
        for start in range(0, len(wanted), STATUSES_PER_CALL):
            chunk = wanted[start : start + STATUSES_PER_CALL]
            found = (
                _statuses_batch(base, token, chunk, what="Checking the items") if batched else None
            )
            if found is None:
                # Before 4.3: one call per status, for this chunk and the ones after it.
                batched = False
            elif found.keys() & set(chunk):
                gone.update(id_ for id_ in chunk if id_ not in found)
                continue
            # No batch route, or an answer that named none of them: each is asked on its own.
            gone.update(id_ for id_ in chunk if _read_status(base, token, id_) is None)
        return gone

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        base = _base(account)
        token = _token(account)
        account_id = account.external_id or _own_id(base, token)
        asked = max(1, min(limit, NOTIFICATIONS_PAGE))
        params: list[tuple[str, str | int]] = [("limit", asked)]
        params += [("types[]", kind) for kind in INBOUND_TYPES]
        if cursor:
            params.append(("min_id", cursor))
        response = request(
            "GET",
            f"{base}/api/v1/notifications",
            changes=False,
            what="Reading the notifications",
            params=params,
            headers=_auth(token),
        )
        if response.status_code != 200:
            raise _refusal(response, "Mastodon did not list the notifications")
        page = _notifications(response)
        # A server that ignores min_id lists what we already have: only what is newer counts.
        newer = [(id_, n) for id_, n in page if not cursor or _id_key(id_) > _id_key(cursor)]
        newest = max((id_ for id_, _ in newer), key=_id_key, default=cursor)
        items = [item for _, n in newer if (item := _inbound(n, account_id)) is not None]
        return InboundPage(
            items=items,
            cursor=newest,
            # The first call never back-fills; later ones go on while pages come back full.
            more=bool(cursor) and bool(newer) and len(page) >= min(asked, SMALLEST_MAX_PAGE),
        )

    # --- listening (issue 18) -----------------------------------------------------------------

    listens = frozenset({"search", "hashtag", "account"})
    listening_blind_spots = (
        "Search finds posts only on a server that runs full-text search (many small ones do "
        "not), and there only public posts of people who let them be searched (Mastodon 4.2 "
        "and later; an older server searches only posts this account wrote, favourited, "
        "boosted, bookmarked or was mentioned in). Hashtags and accounts show only the posts "
        "that reached this account's server, so posts of people nobody there follows can be "
        "missing, and a post that arrives late may be missed. Followers-only and direct posts, "
        "boosts, and posts of accounts this account blocks or mutes are never seen."
    )

    def search_public(
        self, account: Any, query: PublicQuery, cursor: str, *, limit: int = 40
    ) -> PublicPage:
        base = _base(account)
        token = _token(account)
        asked = max(1, min(limit, PUBLIC_PAGE))
        text = query.text.strip()
        # Mastodon has no language filter we can rely on (see the module's docstring): every
        # language is asked for, and listening keeps the ones the watch wants.
        if query.kind == "search":
            if not text:
                raise PermanentError("A Mastodon search needs words to look for.")
            return _search(base, token, text, cursor, asked)
        if query.kind == "hashtag":
            tag = text.lstrip("#").strip()
            if not tag:
                raise PermanentError("A Mastodon hashtag to listen to needs a name.")
            return _walk_forward(
                base,
                token,
                f"/api/v1/timelines/tag/{quote(tag, safe='')}",
                [],
                cursor,
                asked,
                what=f"the posts tagged #{tag}",
                missing_is_empty=True,
            )
        if query.kind == "account":
            account_id = _lookup(base, token, text)
            return _walk_forward(
                base,
                token,
                f"/api/v1/accounts/{quote(account_id, safe='')}/statuses",
                [("exclude_reblogs", "true")],
                cursor,
                asked,
                what=f"the posts of @{text.lstrip('@')}",
            )
        raise PermanentError(f"Mastodon cannot listen for {query.kind!r}.")

    def refresh_token(self, account: Any) -> Any:
        # Mastodon access tokens do not expire and have no refresh grant: a refused one needs
        # the person to connect the account again. A server that did issue a refresh token
        # (another Doorkeeper set-up) is asked to renew it with the registration it came from.
        if account.refresh_token_encrypted:
            client = _stored_client(account)
            if client is not None:
                return refresh_oauth2(self, account, client=client)
        raise AuthExpired("Mastodon refused the access token; connect the account again.")

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        base = base_url.rstrip("/")
        return OAuthSpec(
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/token",
            revoke_url=f"{base}/oauth/revoke",
            scopes=SCOPES,
            pkce=True,
        )

    def oauth_client(self, base_url: str, *, redirect_uri: str) -> OAuthClient:
        """cxhub's registration with this server: the one kept, or a new one made now."""
        base = base_url.rstrip("/")
        kept = OAuthApp.objects.filter(
            channel=self.name, base_url=base, redirect_uri=redirect_uri
        ).first()
        if kept is None:
            check_server(base, what="Mastodon server")
            response = request(
                "POST",
                f"{base}/api/v1/apps",
                # A second registration is harmless (the first one kept wins): retry freely.
                changes=False,
                what="Registering cxhub with the Mastodon server",
                data={
                    "client_name": CLIENT_NAME,
                    "redirect_uris": redirect_uri,
                    "scopes": " ".join(SCOPES),
                },
                headers={"Accept": "application/json"},
            )
            data = json_or_empty(response)
            if response.status_code != 200 or not data.get("client_id"):
                raise _refusal(response, "The Mastodon server did not register cxhub")
            kept = oauth_app_register(
                channel=self.name,
                base_url=base,
                redirect_uri=redirect_uri,
                client_id=str(data["client_id"]),
                client_secret=str(data.get("client_secret") or ""),
            )
        return OAuthClient(client_id=kept.client_id, client_secret=kept.client_secret)

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        base = base_url.rstrip("/")
        check_server(base, what="Mastodon server")
        headers = _auth(tokens.access_token)
        response = request(
            "GET",
            f"{base}/api/v1/accounts/verify_credentials",
            changes=False,
            what="Reading the account",
            headers=headers,
        )
        if response.status_code != 200:
            raise _refusal(response, "Mastodon did not say which account this is")
        account = json_or_empty(response)
        account_id, username = str(account.get("id") or ""), str(account.get("username") or "")
        if not account_id or not username:
            raise PermanentError("Mastodon answered verify_credentials without an id or username")
        instance = _instance(base, headers)
        domain = str(instance.get("domain") or "") or (urlsplit(base).hostname or "")
        settings: dict[str, Any] = {}
        if instance:
            settings["instance"] = _instance_summary(instance)
        return [
            Identity(
                handle=f"@{username}@{domain}",
                external_id=account_id,
                display_name=str(account.get("display_name") or "")[:200],
                settings=settings,
            )
        ]

    def revoke(self, account: Any) -> bool:
        """Revoke the access token (and a refresh token, where the server gave one) with the
        registration they were issued to; False when cxhub no longer has it."""
        client = _stored_client(account)
        if client is None:
            return False
        check_server(_base_url(account), what="Mastodon server")
        spec = self.oauth_spec(_base_url(account))
        revoked = revoke_oauth2(spec, client, account.access_token, hint="access_token")
        if account.refresh_token_encrypted:
            revoke_oauth2(spec, client, account.refresh_token, hint="refresh_token")
        return revoked


MEDIA_POLLS = 20
MEDIA_POLL_SECONDS = 0.5
# Reconcile reads this many of the account's newest statuses (the most one page gives), made
# within RECONCILE_WINDOW when dispatch did not say when it first tried.
RECONCILE_STATUSES = 40
RECONCILE_WINDOW = timedelta(hours=72)
# Notifications asked for per call at most: the default page since 4.1 (which allows 80).
NOTIFICATIONS_PAGE = 40
# The lowest maximum page a server may apply (30 before 4.1): a page this full may have more.
SMALLEST_MAX_PAGE = 30
# The notification types that are items: a quote of our status counts as a mention.
INBOUND_TYPES = ("mention", "quote")
# Statuses a listening call asks for at most: the most a search or a timeline gives
# (methods/search, methods/timelines: "Max 40").
PUBLIC_PAGE = 40
# Pages of posts already taken that a search walks past with `offset`, in one call, before it
# gives the gap up (so many matching posts in one second: see the module's docstring).
CROWDED_PAGES = 5
# What separates the parts of a search's cursor while it walks a gap down.
GAP_SEPARATOR = ":"
# A Mastodon::Snowflake id carries its time in milliseconds above its 16 low bits; below this
# (2001) an id is not one (a status from before Mastodon 2.0, or a fork's counter).
SNOWFLAKE_MIN_MILLIS = 10**12
# Longer ids are no Mastodon id (and could not be stored as an external id).
MAX_ID_LENGTH = 255
# Statuses one GET /api/v1/statuses may ask for (Api::BaseController::DEFAULT_STATUSES_LIMIT).
STATUSES_PER_CALL = 20
# What a server without that route (before 4.3; a fork) answers it.
NO_BATCH_ROUTE = (404, 405)
# Least to most restricted, as Mastodon's composer orders them for a reply.
VISIBILITIES = ("public", "unlisted", "private", "direct")
# The visibilities anyone may read: listening keeps only these.
PUBLIC_VISIBILITIES = VISIBILITIES[:2]
_PARAGRAPH_BREAKS = regex.compile(r"\n{3,}")


def _base(account: Any) -> str:
    base = (account.base_url or "").rstrip("/")
    check_server(base, what="Mastodon server")
    return base


def _base_url(account: Any) -> str:
    return (account.base_url or "").rstrip("/")


def _stored_client(account: Any) -> OAuthClient | None:
    """The registration the account's tokens were issued to (kept at connect), if cxhub still
    has it."""
    client_id = (getattr(account, "network_settings", None) or {}).get("oauth_client_id")
    if not client_id:
        return None
    app = OAuthApp.objects.filter(
        channel="mastodon", base_url=_base_url(account), client_id=str(client_id)
    ).first()
    if app is None:
        return None
    return OAuthClient(client_id=app.client_id, client_secret=app.client_secret)


def _instance(base: str, headers: dict[str, str]) -> dict[str, Any]:
    """The server's GET /api/v2/instance answer, or {} when it has none (before 4.0): the
    account then keeps the default limits."""
    try:
        response = request(
            "GET",
            f"{base}/api/v2/instance",
            changes=False,
            what="Reading the server's limits",
            headers=headers,
        )
    except RetryableError:
        return {}
    return json_or_empty(response) if response.status_code == 200 else {}


def _instance_summary(instance: dict[str, Any]) -> dict[str, Any]:
    """What preflight needs of the instance (its limits), not its whole description."""
    configuration = instance.get("configuration")
    configuration = configuration if isinstance(configuration, dict) else {}
    summary: dict[str, Any] = {
        "domain": instance.get("domain"),
        "version": instance.get("version"),
        "configuration": {
            key: configuration[key]
            for key in ("statuses", "media_attachments")
            if isinstance(configuration.get(key), dict)
        },
    }
    if "max_toot_chars" in instance:
        summary["max_toot_chars"] = instance["max_toot_chars"]
    return summary


def _token(account: Any) -> str:
    token = account.access_token
    if not token:
        raise AuthExpired("The Mastodon account has no access token; connect it again.")
    return token


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _published(status: dict[str, Any], http_status: int) -> Published:
    return Published(
        external_id=str(status["id"])[:255],
        external_url=str(status.get("url") or status.get("uri") or "")[:2000],
        http_status=http_status,
    )


def _listed(status: dict[str, Any]) -> matching.Listed:
    attachments = status.get("media_attachments")
    return matching.Listed(
        external_id=str(status.get("id") or ""),
        text=matching.text_from_html(str(status.get("content") or "")),
        created_at=matching.parse_time(status.get("created_at")),
        media_count=len(attachments) if isinstance(attachments, list) else None,
        external_url=str(status.get("url") or status.get("uri") or ""),
    )


def _error_text(response: requests.Response) -> str:
    data = json_or_empty(response)
    message = data.get("error") or data.get("error_description") or response.text[:300]
    return str(message).strip()


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    detail = f"{what} (HTTP {status}): {_error_text(response)}"
    wait = rate_limit_wait(response, reset_header="X-RateLimit-Reset")
    return error_for_status(status, detail, retry_after=wait, changes=changes)


def _upload(base: str, token: str, item: MediaFile) -> str:
    """Upload one image and wait until the server has processed it; its media id."""
    # An upload that times out made at most an unattached file, which the server removes:
    # nothing was posted, so it is retryable rather than unknown.
    response = request(
        "POST",
        f"{base}/api/v2/media",
        changes=False,
        what="Uploading an image",
        files={"file": (item.filename, item.data, item.mime)},
        data={"description": item.alt_text},
        headers=_auth(token),
    )
    if response.status_code not in (200, 202):
        raise _refusal(response, "Mastodon refused an image")
    attachment = json_or_empty(response)
    media_id = str(attachment.get("id") or "")
    if not media_id:
        raise RetryableError("Mastodon answered the upload without a media id")
    if response.status_code == 200 and attachment.get("url"):
        return media_id
    for _ in range(MEDIA_POLLS):
        time.sleep(MEDIA_POLL_SECONDS)
        poll = request(
            "GET",
            f"{base}/api/v1/media/{quote(media_id, safe='')}",
            changes=False,
            what="Checking an uploaded image",
            headers=_auth(token),
        )
        if poll.status_code == 200 and json_or_empty(poll).get("url"):
            return media_id
        if poll.status_code not in (200, 206):
            raise _refusal(poll, "Mastodon did not process an image")
    raise RetryableError(
        f"Mastodon was still processing an image after {MEDIA_POLLS * MEDIA_POLL_SECONDS:g} s"
    )


def _own_id(base: str, token: str) -> str:
    response = request(
        "GET",
        f"{base}/api/v1/accounts/verify_credentials",
        changes=False,
        what="Reading the account",
        headers=_auth(token),
    )
    if response.status_code != 200:
        raise _refusal(response, "Mastodon did not say which account this is")
    account_id = str(json_or_empty(response).get("id") or "")
    if not account_id:
        raise RetryableError("Mastodon answered verify_credentials without an id")
    return account_id


# --- what comes back -----------------------------------------------------------------------------


def _id(value: Any) -> str:
    """An id as the API gives it (a string; an integer on some forks), or "" when it is none."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        return ""
    return value


def _id_key(value: str) -> tuple[int, int, str]:
    """What orders ids: digits as the numbers they are ("999" before "1000", which plain
    strings get wrong), compared by their digits rather than int() so no length can overflow
    it; other ids (a fork's: GoToSocial's fixed-length ULIDs) by length, then character."""
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        return (0, len(digits), digits)
    return (1, len(value), value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _notifications(response: requests.Response) -> list[tuple[str, dict[str, Any]]]:
    """The page's notifications with their ids; one without an id leaves no cursor to go on
    from, so the whole page is refused (and asked for again later)."""
    try:
        page = response.json()
    except ValueError as exc:
        raise RetryableError("Mastodon listed the notifications in a form we cannot read") from exc
    if not isinstance(page, list):
        raise RetryableError("Mastodon listed the notifications in a form we cannot read")
    listed = []
    for notification in page:
        id_ = _id(notification.get("id")) if isinstance(notification, dict) else ""
        if not id_:
            raise RetryableError("Mastodon listed a notification without an id")
        listed.append((id_, notification))
    return listed


def _inbound(notification: dict[str, Any], account_id: str) -> Inbound | None:
    """The status a mention or quote notification carries, as an item; None for other types
    (a server before 3.5 sends every type) and for a status that is gone or unreadable."""
    if notification.get("type") not in INBOUND_TYPES:
        return None
    status = notification.get("status")
    status_id = _id(status.get("id")) if isinstance(status, dict) else ""
    if not isinstance(status, dict) or not status_id:
        return None
    created_at = matching.parse_time(status.get("created_at")) or matching.parse_time(
        notification.get("created_at")
    )
    if created_at is None:
        return None
    author = status.get("account")
    if not isinstance(author, dict):
        author = notification.get("account")
    author = author if isinstance(author, dict) else {}
    in_reply_to_id = _id(status.get("in_reply_to_id"))
    return Inbound(
        network_id=status_id,
        kind=_kind(status, account_id),
        text=_plain(_text(status.get("content"))),
        created_at=created_at,
        author_handle=_text(author.get("acct")),
        author_name=_text(author.get("display_name")),
        author_id=_id(author.get("id")),
        url=_text(status.get("url")) or _text(status.get("uri")),
        # The Status does not name its thread's root: the status it answers stands for it.
        thread_id=in_reply_to_id or status_id,
        in_reply_to_id=in_reply_to_id,
        language=_text(status.get("language")),
        raw=notification,
    )


def _plain(content: str) -> str:
    """The content as a person reads it: reconcile's reading, with the breaks it leaves between
    two paragraphs (one for each side) made one blank line."""
    return _PARAGRAPH_BREAKS.sub("\n\n", matching.text_from_html(content))


def _kind(status: dict[str, Any], account_id: str) -> InboundKind:
    if account_id and _id(status.get("in_reply_to_account_id")) == account_id:
        return "reply"
    if status.get("visibility") == "direct":
        return "message"
    return "mention"


# --- answering and figures -----------------------------------------------------------------------


def reply_mention(reply_to: ReplyTo) -> str:
    """The mention a reply to `reply_to` should start with, as Mastodon's composer writes it:
    "@user" for an account of our server, "@user@domain" for another's; "" when the payload
    does not name the author. For the drafting service to prefill: the channel sends the text
    as approved and adds nothing."""
    acct = _author_acct(_status_in(reply_to))
    return f"@{acct}" if acct else ""


def _status_in(reply_to: ReplyTo) -> Mapping[str, Any]:
    """The status answered, as fetch_inbound kept it: the Notification's `status` (or the raw
    payload itself when it is a Status); {} when the payload has none for this id."""
    raw = reply_to.raw if isinstance(reply_to.raw, Mapping) else {}
    status = raw.get("status")
    if not isinstance(status, Mapping):
        status = raw
    return status if _id(status.get("id")) == reply_to.network_id else {}


def _author_acct(status: Mapping[str, Any]) -> str:
    author = status.get("account")
    return _text(author.get("acct")).strip().lstrip("@") if isinstance(author, Mapping) else ""


def _reply_fields(
    account: Any, base: str, token: str, text: str, reply_to: ReplyTo
) -> dict[str, str]:
    """What makes the status a reply: the status it answers and the visibility the reply takes
    from it. A direct reply that does not mention the author would reach nobody: refused."""
    answered_id = _answered_id(reply_to)
    answered = _status_in(reply_to)
    if answered.get("visibility") not in VISIBILITIES:
        answered = _read_status(base, token, answered_id) or {}
        if not answered:
            raise PermanentError(
                "The Mastodon status this reply answers is no longer there (deleted, or hidden "
                "from this account)."
            )
    visibility = _reply_visibility(answered.get("visibility"))
    author = _author_acct(answered)
    if visibility == "direct" and author and not mentions(text, author, _own_domain(account)):
        raise PermanentError(
            "A reply to a private message on Mastodon reaches only the accounts it mentions, and "
            f"this one does not mention @{author}: start it with @{author}."
        )
    return {"in_reply_to_id": answered_id, "visibility": visibility}


def _answered_id(reply_to: ReplyTo) -> str:
    answered = _id(reply_to.network_id)
    if not answered:
        raise PermanentError("This reply does not say which Mastodon status it answers.")
    return answered


def _reply_visibility(answered: Any) -> str:
    """The stricter of ours (public, the least strict) and the answered status's; a value
    Mastodon's composer does not know is passed over, as it does."""
    return answered if answered in VISIBILITIES else VISIBILITIES[0]


def mentions(text: str, acct: str, domain: str) -> bool:
    """Whether `text` mentions the account `acct` ("user" on our server `domain`, "user@home"
    elsewhere) as Mastodon resolves mentions: a bare "@user" names an account of our server."""
    user, _, home = acct.casefold().partition("@")
    home = home or domain.casefold()
    for match in MENTION.finditer(text):
        name, _, at = match.group()[1:].casefold().partition("@")
        if name == user and (at or domain.casefold()) == home:
            return True
    return False


def _own_domain(account: Any) -> str:
    """The account's server as handles name it: the instance's `domain` kept at connect, else
    the handle's, else the API's host."""
    settings = getattr(account, "network_settings", None) or {}
    instance = settings.get("instance") if isinstance(settings, dict) else None
    domain = instance.get("domain") if isinstance(instance, dict) else None
    if isinstance(domain, str) and domain:
        return domain
    _, _, handle_domain = (getattr(account, "handle", "") or "").lstrip("@").partition("@")
    return handle_domain or (urlsplit(_base_url(account)).hostname or "")


def _read_status(base: str, token: str, status_id: str) -> dict[str, Any] | None:
    """One status (methods/statuses/#get); None when the server has it no more (404)."""
    response = request(
        "GET",
        f"{base}/api/v1/statuses/{quote(status_id, safe='')}",
        changes=False,
        what="Reading a status",
        headers=_auth(token),
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _refusal(response, "Mastodon did not show the status")
    try:
        status = response.json()
    except ValueError as exc:
        raise RetryableError("Mastodon answered a status in a form we cannot read") from exc
    if not isinstance(status, dict) or _id(status.get("id")) != status_id:
        raise RetryableError("Mastodon answered a status in a form we cannot read")
    return status


def _statuses_batch(
    base: str, token: str, ids: list[str], *, what: str = "Reading the statuses' figures"
) -> dict[str, dict[str, Any]] | None:
    """The statuses `ids` the server still has, by id (methods/statuses/#index); None when it
    has no such route (before 4.3)."""
    response = request(
        "GET",
        f"{base}/api/v1/statuses",
        changes=False,
        what=what,
        params=[("id[]", id_) for id_ in ids],
        headers=_auth(token),
    )
    if response.status_code in NO_BATCH_ROUTE:
        return None
    if response.status_code != 200:
        raise _refusal(response, "Mastodon did not list the statuses")
    try:
        listed = response.json()
    except ValueError as exc:
        raise RetryableError("Mastodon listed the statuses in a form we cannot read") from exc
    if not isinstance(listed, list):
        raise RetryableError("Mastodon listed the statuses in a form we cannot read")
    found = {}
    for status in listed:
        # One we cannot name would be taken for a deleted status: the whole answer is refused.
        id_ = _id(status.get("id")) if isinstance(status, dict) else ""
        if not id_:
            raise RetryableError("Mastodon listed a status without an id")
        found[id_] = status
    return found


def _engagement(status: Mapping[str, Any]) -> Engagement:
    return Engagement(
        likes=_count(status.get("favourites_count")),
        reposts=_count(status.get("reblogs_count")),
        replies=_count(status.get("replies_count")),
        # Since 4.5; absent before.
        quotes=_count(status.get("quotes_count")),
    )


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


# --- listening -----------------------------------------------------------------------------------


def _search(base: str, token: str, text: str, cursor: str, asked: int) -> PublicPage:
    """One call of a search: the newest page on the first call; then what is above the floor,
    or, while a gap is walked down, what lies in it (see the module's docstring)."""
    floor, oldest, newest = _search_cursor(cursor)
    params: list[tuple[str, str | int]] = [("q", text), ("type", "statuses"), ("limit", asked)]
    if floor:
        params.append(("min_id", floor))
    if oldest:
        params.append(("max_id", _search_ceiling(oldest)))

    def inside(id_: str) -> bool:
        key = _id_key(id_)
        return key > _id_key(floor) and (not oldest or key < _id_key(oldest))

    offset = 0
    taken: list[tuple[str, dict[str, Any]]] = []
    for _ in range(CROWDED_PAGES):
        listed = _found_statuses(base, token, [*params, *([("offset", offset)] if offset else [])])
        if not floor:
            return PublicPage(
                posts=_public_posts(listed),
                cursor=max((id_ for id_, _ in listed), key=_id_key, default=""),
            )
        taken = [(id_, status) for id_, status in listed if inside(id_)]
        # A full page of posts at or above the oldest taken (its second's, which max_id cannot
        # cut) hides the gap's next ones behind it: read on past them.
        crowded = (
            oldest
            and len(listed) >= asked
            and all(_id_key(id_) >= _id_key(oldest) for id_, _ in listed)
        )
        if taken or not crowded:
            break
        offset += len(listed)
    if not taken:
        # Nothing more above the floor (or in the gap): all up to the newest taken is given.
        return PublicPage(posts=[], cursor=newest or floor)
    ids = [id_ for id_, _ in taken]
    top = newest or max(ids, key=_id_key)
    bottom = min(ids, key=_id_key)
    return PublicPage(
        posts=_public_posts(taken),
        cursor=GAP_SEPARATOR.join((top, bottom, floor)),
        more=True,
    )


def _search_cursor(cursor: str) -> tuple[str, str, str]:
    """(floor, oldest, newest) of a search's cursor: "" on the first call; one id (the floor)
    between walks; three ("newest:oldest:floor") while a gap is walked down."""
    if not cursor:
        return "", "", ""
    parts = [_id(part) for part in cursor.split(GAP_SEPARATOR)]
    if len(parts) == 1 and parts[0]:
        return parts[0], "", ""
    if len(parts) == 3 and all(parts):
        newest, oldest, floor = parts
        if _id_key(floor) < _id_key(oldest) <= _id_key(newest):
            return floor, oldest, newest
    raise PermanentError(f"This is not a cursor cxhub gave for a Mastodon search: {cursor[:80]!r}")


def _search_ceiling(oldest: str) -> str:
    """The max_id that asks for everything below `oldest`: the start of the second after its
    own, since the server cuts max_id to its second (a larger bound costs nothing: what is
    at or above `oldest` is dropped when it comes back)."""
    if oldest.isascii() and oldest.isdigit():
        millis = int(oldest) >> 16
        if millis >= SNOWFLAKE_MIN_MILLIS:
            return str(((millis // 1000 + 1) * 1000) << 16)
    return oldest


def _found_statuses(
    base: str, token: str, params: list[tuple[str, str | int]]
) -> list[tuple[str, dict[str, Any]]]:
    response = request(
        "GET",
        f"{base}/api/v2/search",
        changes=False,
        what="Searching the posts",
        params=params,
        headers=_auth(token),
    )
    if response.status_code != 200:
        raise _refusal(response, "Mastodon did not search the posts")
    try:
        found = response.json()
    except ValueError as exc:
        raise RetryableError("Mastodon answered the search in a form we cannot read") from exc
    statuses = found.get("statuses") if isinstance(found, dict) else None
    if not isinstance(statuses, list):
        raise RetryableError("Mastodon answered the search in a form we cannot read")
    return _identified(statuses)


def _walk_forward(
    base: str,
    token: str,
    path: str,
    params: list[tuple[str, str | int]],
    cursor: str,
    asked: int,
    *,
    what: str,
    missing_is_empty: bool = False,
) -> PublicPage:
    """One page of a timeline that min_id pages forward (methods/timelines, methods/accounts):
    the newest page on the first call, then the page immediately newer than the cursor, as
    fetch_inbound walks the notifications."""
    floor = _id(cursor)
    if cursor and not floor:
        raise PermanentError(f"This is not a cursor cxhub gave for Mastodon: {cursor[:80]!r}")
    params = [*params, ("limit", asked)]
    if floor:
        params.append(("min_id", floor))
    response = request(
        "GET",
        f"{base}{path}",
        changes=False,
        what=f"Reading {what}",
        params=params,
        headers=_auth(token),
    )
    if response.status_code == 404 and missing_is_empty:
        return PublicPage(posts=[], cursor=floor)
    if response.status_code != 200:
        raise _refusal(response, f"Mastodon did not list {what}")
    try:
        listed = response.json()
    except ValueError as exc:
        raise RetryableError(f"Mastodon listed {what} in a form we cannot read") from exc
    if not isinstance(listed, list):
        raise RetryableError(f"Mastodon listed {what} in a form we cannot read")
    page = _identified(listed)
    # A server that ignores min_id lists what we already have: only what is newer counts.
    newer = [(id_, s) for id_, s in page if not floor or _id_key(id_) > _id_key(floor)]
    return PublicPage(
        posts=_public_posts(newer),
        cursor=max((id_ for id_, _ in newer), key=_id_key, default=floor),
        # The first call never back-fills; later ones go on while pages come back full.
        more=bool(floor) and bool(newer) and len(page) >= asked,
    )


def _lookup(base: str, token: str, handle: str) -> str:
    """The id of the account `handle` ("@user@domain", "user@domain" or "user") on our
    server (methods/accounts/#lookup)."""
    acct = handle.strip().lstrip("@")
    if not acct:
        raise PermanentError("A Mastodon account to listen to needs a handle.")
    response = request(
        "GET",
        f"{base}/api/v1/accounts/lookup",
        changes=False,
        what="Looking up the account",
        params={"acct": acct},
        headers=_auth(token),
    )
    if response.status_code == 404:
        raise PermanentError(
            f"The Mastodon server {urlsplit(base).hostname or base} knows no account @{acct}. "
            "Check the handle; an account of another server is known there only once someone "
            "on it has followed it or looked it up."
        )
    if response.status_code != 200:
        raise _refusal(response, "Mastodon did not look up the account")
    account_id = _id(json_or_empty(response).get("id"))
    if not account_id:
        raise RetryableError("Mastodon answered the account lookup without an id")
    return account_id


def _identified(listed: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The statuses with their ids; one without an id leaves no cursor to go on from, so the
    whole page is refused (and asked for again later)."""
    page = []
    for status in listed:
        id_ = _id(status.get("id")) if isinstance(status, dict) else ""
        if not id_:
            raise RetryableError("Mastodon listed a status without an id")
        page.append((id_, status))
    return page


def _public_posts(page: list[tuple[str, dict[str, Any]]]) -> list[PublicPost]:
    return [post for id_, status in page if (post := _public_post(id_, status)) is not None]


def _public_post(status_id: str, status: dict[str, Any]) -> PublicPost | None:
    """A status as a public post; None for a boost, a status that is not public (followers-only
    or direct) and one without a time."""
    if status.get("reblog") is not None:
        return None
    if status.get("visibility", "public") not in PUBLIC_VISIBILITIES:
        return None
    created_at = matching.parse_time(status.get("created_at"))
    if created_at is None:
        return None
    author = status.get("account")
    author = author if isinstance(author, dict) else {}
    warning = _text(status.get("spoiler_text")).strip()
    text = _plain(_text(status.get("content")))
    return PublicPost(
        network_id=status_id,
        text=f"{warning}\n\n{text}" if warning and text else warning or text,
        created_at=created_at,
        author_handle=_text(author.get("acct")),
        author_name=_text(author.get("display_name")),
        author_id=_id(author.get("id")),
        url=_text(status.get("url")) or _text(status.get("uri")),
        language=_text(status.get("language")),
        likes=_count(status.get("favourites_count")),
        reposts=_count(status.get("reblogs_count")),
        replies=_count(status.get("replies_count")),
        # Since 4.5; absent before.
        quotes=_count(status.get("quotes_count")),
        raw=status,
    )
