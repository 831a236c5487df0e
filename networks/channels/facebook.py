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
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils import timezone

from . import matching
from .base import (
    Channel,
    Identity,
    Limits,
    OAuthClient,
    OAuthSpec,
    ReconcileHints,
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
    scopes = ("pages_show_list", "pages_manage_posts", "pages_read_engagement")

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

    def publish(
        self, account: Any, text: str, media: Sequence[Any], *, idempotency_key: str
    ) -> Published:
        page_id = _page_id(account)
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
    ) -> Published | None:
        page_id = _page_id(account)
        return self._with_token(
            account, lambda token: self._find(account, page_id, token, text, hints)
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

    def _permalink(self, base: str, token: str, post_id: str) -> str:
        """The post's address for people; a plain one when Meta does not say (the post is out
        either way, so nothing here may fail the publish)."""
        fallback = f"https://www.facebook.com/{post_id}"
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


# Whose CXHUB_OAUTH_CLIENTS entry stands for cxhub's Meta app when a channel has none.
_CHANNEL_FOR_CLIENT = FacebookChannel()


def _page_id(account: Any) -> str:
    page_id = str(account.external_id or "")
    if not page_id:
        raise PermanentError("This Facebook account has no Page id; connect the Page again.")
    return page_id


def _q(value: str) -> str:
    return quote(str(value), safe="")
