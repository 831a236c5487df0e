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
"""

import html
import re
import time
from collections.abc import Sequence
from dataclasses import replace
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
    Identity,
    Limits,
    MediaInfo,
    OAuthSpec,
    Problem,
    ReconcileHints,
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

_TCO = re.compile(r"https?://t\.co/\w+")


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

    def publish(
        self, account: Any, text: str, media: Sequence[Any], *, idempotency_key: str
    ) -> Published:
        files = load_media(media, channel=self.name)
        self._renew_if_ending(account)
        media_ids = [self._upload(account, item) for item in files]
        payload: dict[str, Any] = {}
        if text:
            payload["text"] = text
        if media_ids:
            payload["media"] = {"media_ids": media_ids}
        response = self._call(
            account, "POST", TWEETS_URL, changes=True, what="Posting to X", json=payload
        )
        data = json_or_empty(response).get("data")
        if response.status_code in (200, 201) and isinstance(data, dict) and data.get("id"):
            return self._published(account, data, response.status_code)
        if _is_duplicate(response):
            # Our earlier try may have landed (its answer lost): then that post is this one.
            found = self.reconcile(
                account,
                text,
                idempotency_key=idempotency_key,
                hints=ReconcileHints(since=_tries(idempotency_key)[0], media_count=len(media_ids)),
            )
            if found is not None:
                return found
            if _tries(idempotency_key)[1] > 1:
                # A retry: X knows a post with our text that its timeline does not show yet.
                raise with_status(
                    RetryableError(
                        f"X refused the post: {_message(response)} An earlier try may have "
                        "gone out and not be listed yet; looking again later.",
                        retry_after=DUPLICATE_RECHECK_SECONDS,
                    ),
                    response.status_code,
                )
            raise with_status(
                PermanentError(
                    f"X refused the post: {_message(response)} The account already has a post "
                    "with this text, made before this post was first sent; change the text to "
                    "post it again."
                ),
                response.status_code,
            )
        raise _refusal(response, "X refused the post", changes=True)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
    ) -> Published | None:
        self._renew_if_ending(account)
        user_id = account.external_id or self._own_id(account)
        params: dict[str, Any] = {
            "max_results": RECONCILE_POSTS,
            "exclude": "retweets,replies",
            "tweet.fields": "created_at,entities,attachments",
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
        found = matching.find(
            text,
            [_listed(post) for post in posts if isinstance(post, dict)]
            if isinstance(posts, list)
            else [],
            hints=replace(hints, since=since),
            network=self.label,
            window=RECONCILE_WINDOW,
        )
        if found is None:
            return None
        return self._published(account, {"id": found.external_id}, response.status_code)

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
    urls = {
        str(entity.get("url")): entity
        for entity in (entities or {}).get("urls") or []
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
