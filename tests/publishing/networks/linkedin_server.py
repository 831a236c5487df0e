"""A LinkedIn for the tests, written from LinkedIn's documentation on learn.microsoft.com
(authorization-code-flow, programmatic-refresh-tokens, sign-in-with-linkedin-v2, versioning,
images-api, posts-api, multiimage-post-api, organization-access-control-by-role,
little-text-format, error-handling, rate-limits): OAuth 2 with client credentials in the form
body and comma-separated scopes in the answer, refresh tokens that keep their first expiry, the
versioned /rest API with its two required headers, image upload in three steps, posts whose
commentary is read as "little" text (cut at the first unescaped reserved character, as
LinkedIn does), and the author's posts listed newest first.

Comments (comments-api: Get Comments on Shares, Get Comments on Comments):
`GET /rest/socialActions/{post or comment URN}/comments?start=&count=` answers `paging`
{start, count, total, links} and `elements` (`$URN`/`commentUrn` urn:li:comment:(urn:li:activity:
…,id), `actor`, `message.text`, `created.time` in ms, `object` the post's activity,
`parentComment` on a reply, `commentsSummary`). A post lists its first-level comments, a comment
its replies. The order of the lists is not documented: `comment_order` chooses it
("newest_first" or "oldest_first") so that tests show the channel relies on neither. A deleted
comment is dropped from the lists, with its replies (LinkedIn gives no tombstone).
`add_comment` and `delete_comment` make them happen; `comment_page_hook(target, start)` runs as
a page is asked for (a test deletes a comment between two pages with it).

Replies (comments-api, Create a Comment): `POST /rest/socialActions/{post or comment URN}/comments`
with `actor`, `object` (the post: its share/ugcPost URN or its activity) and `message.text`, and
`parentComment` (the comment in the path) for a reply under a comment. Threads have two levels
(as integrations report): a reply under a reply is refused with 422. A comment is at most
MAX_COMMENT characters. The new comment is recorded in `comments` like the others (a test
asserts on its `actor`, `parent` and `post`); the answer is 201 with its numeric id in
`x-restli-id` and the comment in the body, or only one of them (`comment_answer`: "both",
"header", "body", or "none" for a 201 that says nothing).

Engagement: `GET /rest/socialActions?ids=List(…)` (batch: `results`, `statuses`, `errors` with a
404 for a URN the server no longer has) and `GET /rest/socialActions/{URN}`: likesSummary
(`add_likes`) and commentsSummary (counted from `comments`); `GET /rest/
organizationalEntityShareStatistics?q=organizationalEntity&organizationalEntity=&shares=List(…)
&ugcPosts=List(…)`: totalShareStatistics (`add_views`, `add_reshares`, and the likes and
comments), only for a token with rw_organization_admin and the ADMINISTRATOR role (403
otherwise); a ugcPost URN in `shares` (or a share in `ugcPosts`) is refused with 400.
`delete_post` removes a post and its comments (404 from then on).

Re-checking comments (comments-api, Get a Comment): `GET /rest/socialActions/{post, its activity,
or the parent comment}/comments/{comment id}` answers the comment as the lists show it, or 404
when it is not there (deleted, or its post deleted). The lists take a post's activity URN as
well as its share or ugcPost URN.

Each post keeps `commentary` (what was sent) and `shown` (what a person would read).
`fail_next("posts", "500", after=True)` stores the post, then answers 500; "drop" stores it,
then closes the connection unanswered."""

import io
import itertools
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from PIL import Image

from .server import Answer, FakeNetwork, Request, answer_json

RESERVED = set("|{}@[]()<>#\\*_~")
MAX_COMMENTARY = 3_000
MAX_ALT_TEXT = 4_086
MAX_PIXELS = 36_152_320
MAX_GIF_FRAMES = 250
# Comments in one page at most (not published for socialActions; 100 as elsewhere in /rest).
MAX_COMMENTS_COUNT = 100
# The longest comment (as integrations give it; not on LinkedIn's pages).
MAX_COMMENT = 1_250
DEFAULT_COMMENTS_COUNT = 10
ACCESS_TTL = 60 * 24 * 3600
REFRESH_TTL = 365 * 24 * 3600
CODE_TTL = 30 * 60
# LinkedIn refuses the same content from the same author "within a short time window"; its
# length is not published.
DUPLICATE_WINDOW = 3600
FIRST_VERSION = "202206"
ORG_READ_SCOPES = {"rw_organization_admin", "r_organization_admin", "r_organization_social"}
ORG_ACL_SCOPES = ORG_READ_SCOPES | {"w_organization_social"}
POSTING_ROLES = {"ADMINISTRATOR", "CONTENT_ADMIN", "DIRECT_SPONSORED_CONTENT_POSTER"}
_MENTION = re.compile(r"@\[([^\]\\]*)\]\((urn:li:(?:person|organization):[\w-]+)\)")
_HASHTAG = re.compile(r"#(\w+)")
_TEMPLATE = re.compile(r"\{hashtag\|\\#\|(\w+)\}")


def shown_text(little: str) -> str:
    """What LinkedIn shows for a commentary in the little format: escapes undone, mentions as
    their names, hashtags kept; an unescaped reserved character that starts no element cuts
    the text there."""
    out, index = [], 0
    while index < len(little):
        char = little[index]
        if char == "\\":
            if index + 1 < len(little) and little[index + 1] in RESERVED:
                out.append(little[index + 1])
                index += 2
                continue
            break
        if char == "@" and (match := _MENTION.match(little, index)):
            out.append(match.group(1))
        elif char == "#" and (match := _HASHTAG.match(little, index)):
            out.append(match.group())
        elif char == "{" and (match := _TEMPLATE.match(little, index)):
            out.append("#" + match.group(1))
        elif char in RESERVED:
            break
        else:
            out.append(char)
            index += 1
            continue
        index = match.end()
    return "".join(out)


def _as_stored(little: str) -> str:
    """Commentary as the API reads it back: a bare #tag comes back as its template."""
    return re.sub(r"(?<!\\)#(\w+)", r"{hashtag|\\#|\1}", little)


def _error(status: int, message: str, code: str = "", service_code: int | None = None) -> Answer:
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return answer_json(status, body)


def _oauth_error(status: int, error: str, description: str) -> Answer:
    return answer_json(status, {"error": error, "error_description": description})


def _page(status: int, text: str) -> Answer:
    return status, {"Content-Type": "text/html; charset=utf-8"}, f"<p>{text}</p>".encode()


class LinkedInServer(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.client_id = "86cxhubclient"
        self.client_secret = "cxhub-secret-" + secrets.token_hex(4)
        self.redirect_uris = {"https://cxhub.example/connect/linkedin/callback/"}
        # Scopes the app's products grant (Share on LinkedIn, Sign In with OpenID Connect,
        # Community Management API).
        self.app_scopes = {
            "openid",
            "profile",
            "email",
            "w_member_social",
            "w_organization_social",
            "r_organization_social",
            "rw_organization_admin",
        }
        # Whether the app is approved for programmatic refresh tokens.
        self.refresh_tokens_enabled = True
        self.member = {"sub": "yWdG1kQx_a", "name": "Nora North", "given_name": "Nora"}
        self.organizations = {
            "2414183": {"localizedName": "North Health Trust", "vanityName": "north-health"},
            "5515715": {"localizedName": "South Clinic", "vanityName": "south-clinic"},
        }
        self.roles = {"2414183": "ADMINISTRATOR", "5515715": "ANALYST"}
        # None: any version from 202206 on; a set: only those (the rest are sunset).
        self.active_versions: set[str] | None = None
        # How many status reads an uploaded image answers PROCESSING for.
        self.processing_polls = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.refresh_grants: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []
        # The activity each post is (urn:li:share:… → urn:li:activity:…), as comments name it.
        self.activities: dict[str, str] = {}
        self.comments: list[dict[str, Any]] = []
        self.comment_order = "newest_first"
        # False: comments come without commentsSummary (the channel must then read replies).
        self.comment_summaries = True
        self.comment_page_hook: Callable[[str, int], None] | None = None
        # What a created comment's answer carries: "both", "header", "body" or "none".
        self.comment_answer = "both"
        # Figures of posts (and comments), by URN.
        self.likes: dict[str, int] = {}
        self.reshares: dict[str, int] = {}
        self.impressions: dict[str, int] = {}
        self.clicks: dict[str, int] = {}
        self.headers_seen: list[dict[str, str]] = []
        self._ids = itertools.count(7_270_000_000_000_000_001)

    @property
    def person_urn(self) -> str:
        return f"urn:li:person:{self.member['sub']}"

    # --- control ---------------------------------------------------------------------------
    def issue(self, scopes: set[str], *, refresh: bool = True) -> tuple[str, str]:
        """An access token (and refresh token) as a finished grant would leave them."""
        now = time.time()
        access = "AQV" + secrets.token_urlsafe(18)
        refresh_token = "AQW" + secrets.token_urlsafe(18) if refresh else ""
        with self.lock:
            self.tokens[access] = {"scopes": set(scopes), "expires_at": now + ACCESS_TTL}
            if refresh_token:
                self.refresh_grants[refresh_token] = {
                    "scopes": set(scopes),
                    "expires_at": now + REFRESH_TTL,
                    "revoked": False,
                }
        return access, refresh_token

    def expire(self, access_token: str) -> None:
        with self.lock:
            self.tokens[access_token]["expires_at"] = time.time() - 1

    def add_post(
        self,
        author: str,
        little: str,
        *,
        age_seconds: float = 0,
        images: int = 0,
        kind: str = "share",
    ) -> str:
        """A post made elsewhere (by hand, or days ago), with `images` images; `kind` "ugcPost"
        for one LinkedIn names urn:li:ugcPost (made in LinkedIn's own pages, or by the older
        UGC API)."""
        described = [
            {"id": f"urn:li:image:D4E{next(self._ids)}", "altText": ""} for _ in range(images)
        ]
        content = None
        if len(described) == 1:
            content = {"media": described[0]}
        elif described:
            content = {"multiImage": {"images": described}}
        with self.lock:
            return self._store_post(
                author, little, content, created=time.time() - age_seconds, kind=kind
            )

    def add_comment(
        self,
        post: str,
        text: str,
        *,
        actor: str = "urn:li:person:mK3aZ9fQ1c",
        age_seconds: float = 0,
        millis: int | None = None,
        parent: str = "",
    ) -> str:
        """A comment someone made on `post` (a reply to the comment `parent` when given), its
        URN. `millis` sets its created.time exactly (comments sharing a millisecond)."""
        with self.lock:
            if parent:
                assert any(c["urn"] == parent for c in self.comments), parent
            created = millis if millis is not None else int((time.time() - age_seconds) * 1000)
            return self._store_comment(post, text, actor, created, parent)["urn"]

    def _store_comment(
        self, post: str, text: str, actor: str, created: int, parent: str
    ) -> dict[str, Any]:
        activity = self.activities[post]
        comment_id = str(next(self._ids))
        comment = {
            "urn": f"urn:li:comment:({activity},{comment_id})",
            "id": comment_id,
            "post": post,
            "activity": activity,
            "actor": actor,
            "text": text,
            "created": created,
            "parent": parent,
        }
        self.comments.append(comment)
        return comment

    def delete_comment(self, urn: str) -> None:
        """LinkedIn drops a deleted comment, and its replies, from every list."""
        with self.lock:
            self.comments = [c for c in self.comments if urn not in (c["urn"], c["parent"])]

    def delete_post(self, urn: str) -> None:
        """The post is deleted (by hand on LinkedIn): it, its comments and its figures go."""
        with self.lock:
            self.posts = [p for p in self.posts if p["id"] != urn]
            self.comments = [c for c in self.comments if c["post"] != urn]

    def replies_by(self, actor: str) -> list[dict[str, Any]]:
        """The comments `actor` made (our Page's replies), oldest first."""
        with self.lock:
            return sorted(
                (c for c in self.comments if c["actor"] == actor), key=lambda c: c["created"]
            )

    def add_likes(self, urn: str, count: int = 1) -> None:
        """`count` more people like the post (or comment) `urn`."""
        with self.lock:
            self.likes[urn] = self.likes.get(urn, 0) + count

    def add_reshares(self, post: str, count: int = 1) -> None:
        with self.lock:
            self.reshares[post] = self.reshares.get(post, 0) + count

    def add_views(self, post: str, impressions: int, *, clicks: int = 0) -> None:
        with self.lock:
            self.impressions[post] = self.impressions.get(post, 0) + impressions
            self.clicks[post] = self.clicks.get(post, 0) + clicks

    def route(self, request: Request):
        path, method = request.path, request.method
        if method == "GET" and path == "/oauth/v2/authorization":
            return "authorize", self.authorize
        if method == "POST" and path == "/oauth/v2/accessToken":
            return "token", self.token
        if method == "POST" and path == "/oauth/v2/revoke":
            return "revoke", self.revoke
        if method == "GET" and path == "/v2/userinfo":
            return "userinfo", self.userinfo
        if method == "GET" and path == "/rest/organizationAcls":
            return "acls", self.versioned(self.acls)
        if method == "GET" and path.startswith("/rest/organizations/"):
            return "organization", self.versioned(self.organization)
        if method == "POST" and path == "/rest/images":
            return "images", self.versioned(self.initialize_upload)
        if method == "GET" and path.startswith("/rest/images/"):
            return "image_get", self.versioned(self.image_get)
        if method == "PUT" and path.startswith("/dms-uploads/"):
            return "upload", self.upload
        if method == "POST" and path == "/rest/posts":
            return "posts", self.versioned(self.create_post)
        if method == "GET" and path == "/rest/posts":
            return "posts_by_author", self.versioned(self.posts_by_author)
        if method == "GET" and re.fullmatch(r"/rest/socialActions/[^/]+/comments/[^/]+", path):
            return "comment", self.versioned(self.comment_one)
        if (
            method == "GET"
            and path.startswith("/rest/socialActions/")
            and path.endswith("/comments")
        ):
            return "comments", self.versioned(self.comments_on)
        if (
            method == "POST"
            and path.startswith("/rest/socialActions/")
            and path.endswith("/comments")
        ):
            return "comment_create", self.versioned(self.create_comment)
        if method == "GET" and path == "/rest/socialActions":
            return "social_actions", self.versioned(self.social_actions_batch)
        if method == "GET" and path.startswith("/rest/socialActions/"):
            return "social_actions", self.versioned(self.social_actions_one)
        if method == "GET" and path == "/rest/organizationalEntityShareStatistics":
            return "share_statistics", self.versioned(self.share_statistics)
        return "other", self.not_found

    def failure(self, mode: str, options: dict) -> Answer:
        if mode == "401":
            return _error(
                401,
                "The token used in the request has expired",
                "EXPIRED_ACCESS_TOKEN",
                65601,
            )
        if mode == "429":
            status, headers, body = _error(
                429,
                "Resource level throttle APPLICATION DAY limit for calls to this resource "
                "is reached.",
            )
            if "retry_after" in options:
                headers["Retry-After"] = str(options["retry_after"])
            return status, headers, body
        if mode == "422":
            return _error(422, options.get("message", "ERROR :: /commentary :: invalid"))
        if mode == "html":  # a proxy's page where JSON was due
            return 200, {"Content-Type": "text/html"}, b"<html><body>Bad gateway</body></html>"
        if mode == "no_elements":  # JSON, but not a collection
            return answer_json(200, {"paging": {"start": 0, "count": 10}, "elements": {"x": 1}})
        return _error(int(mode), "Internal Server Error")

    def not_found(self, request: Request) -> Answer:
        return _error(404, f"No virtual resource found for {request.path}", "NOT_FOUND")

    # --- auth helpers ----------------------------------------------------------------------
    def _grant(self, request: Request) -> tuple[dict[str, Any] | None, Answer | None]:
        token = request.bearer()
        if not token:
            return None, _error(401, "Empty oauth2_access_token", "EMPTY_ACCESS_TOKEN", 401)
        with self.lock:
            grant = self.tokens.get(token)
        if grant is None:
            return None, _error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        if grant["expires_at"] <= time.time():
            return None, self.failure("401", {})
        return grant, None

    def _denied(self, what: str) -> Answer:
        return _error(403, f"Not enough permissions to access: {what}", "ACCESS_DENIED", 100)

    def _may_write_as(self, grant: dict[str, Any], urn: str) -> bool:
        if urn == self.person_urn:
            return "w_member_social" in grant["scopes"]
        if urn.startswith("urn:li:organization:"):
            org_id = urn.rsplit(":", 1)[1]
            return (
                "w_organization_social" in grant["scopes"]
                and self.roles.get(org_id) in POSTING_ROLES
            )
        return False

    def versioned(self, handler):
        """/rest/ calls: the two headers LinkedIn requires, then the bearer token."""

        def check(request: Request) -> Answer:
            with self.lock:
                self.headers_seen.append(
                    {
                        "path": request.path,
                        "version": request.headers.get("LinkedIn-Version") or "",
                        "restli": request.headers.get("X-Restli-Protocol-Version") or "",
                    }
                )
            version = request.headers.get("LinkedIn-Version")
            if not version:
                return _error(
                    400,
                    "A version must be present. Please specify a version by adding the "
                    "LinkedIn-Version header.",
                    "VERSION_MISSING",
                )
            active = (
                version in self.active_versions
                if self.active_versions is not None
                else bool(re.fullmatch(r"20\d{4}", version)) and version >= FIRST_VERSION
            )
            if not active:
                return _error(
                    426, f"Requested version {version} is not active", "NONEXISTENT_VERSION"
                )
            if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
                return _error(400, "X-Restli-Protocol-Version 2.0.0 is required for this resource")
            grant, refused = self._grant(request)
            if refused is not None:
                return refused
            return handler(request, grant)

        return check

    # --- OAuth 2 ---------------------------------------------------------------------------
    def authorize(self, request: Request) -> Answer:
        if request.param("client_id") != self.client_id:
            return _page(400, "The passed in client_id is invalid")
        redirect_uri = request.param("redirect_uri") or ""
        if redirect_uri not in self.redirect_uris:
            return _page(400, "The redirect_uri does not match the registered value")
        state = request.param("state")

        def back(**params: str) -> Answer:
            if state is not None:
                params["state"] = state
            return 302, {"Location": f"{redirect_uri}?{urlencode(params)}"}, b""

        if request.param("response_type") != "code":
            return back(error="invalid_request", error_description="response_type must be code")
        scopes = set((request.param("scope") or "").split())
        unknown = sorted(scopes - self.app_scopes)
        if not scopes or unknown:
            return back(
                error="unauthorized_scope_error",
                error_description=f'Scope "{",".join(unknown)}" is not authorized for your '
                "application",
            )
        # The member signs in and clicks "Allow".
        code = "AQT" + secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scopes": scopes,
                "expires_at": time.time() + CODE_TTL,
            }
        return back(code=code)

    def _form(self, request: Request) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}

    def _client_refused(self, form: dict[str, str]) -> Answer | None:
        # LinkedIn reads the client's credentials from the form body, never from Basic auth.
        for name in ("client_id", "client_secret"):
            if not form.get(name):
                return _oauth_error(
                    400, "invalid_request", f'A required parameter "{name}" is missing'
                )
        if form["client_id"] != self.client_id or form["client_secret"] != self.client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        return None

    def _token_answer(self, access: str, refresh: str, scopes: set[str], refresh_left: int):
        data: dict[str, Any] = {
            "access_token": access,
            "expires_in": ACCESS_TTL,
            "scope": ",".join(sorted(scopes)),
        }
        if refresh:
            data["refresh_token"] = refresh
            data["refresh_token_expires_in"] = refresh_left
        if "openid" in scopes:
            data["token_type"] = "Bearer"
        return answer_json(200, data)

    def token(self, request: Request) -> Answer:
        form = self._form(request)
        refused = self._client_refused(form)
        if refused is not None:
            return refused
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                code = self.codes.pop(form.get("code") or "", None)
            if (
                code is None
                or code["expires_at"] < time.time()
                or code["redirect_uri"] != form.get("redirect_uri")
            ):
                return _oauth_error(
                    400,
                    "invalid_request",
                    "Unable to retrieve access token: appid/redirect uri/code verifier does not "
                    "match authorization code. Or authorization code expired. Or external member "
                    "binding exists",
                )
            access, refresh = self.issue(code["scopes"], refresh=self.refresh_tokens_enabled)
            return self._token_answer(access, refresh, code["scopes"], REFRESH_TTL)
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token") or ""
            with self.lock:
                grant = self.refresh_grants.get(refresh)
                if grant is None or grant["revoked"] or grant["expires_at"] <= time.time():
                    return _oauth_error(
                        400,
                        "invalid_request",
                        "The provided authorization grant or refresh token is invalid, expired "
                        "or revoked.",
                    )
                access = "AQV" + secrets.token_urlsafe(18)
                self.tokens[access] = {
                    "scopes": set(grant["scopes"]),
                    "expires_at": time.time() + ACCESS_TTL,
                }
                left = int(grant["expires_at"] - time.time())
            # The same refresh token comes back: its expiry does not move.
            return self._token_answer(access, refresh, grant["scopes"], left)
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def revoke(self, request: Request) -> Answer:
        form = self._form(request)
        refused = self._client_refused(form)
        if refused is not None:
            return refused
        with self.lock:
            self.tokens.pop(form.get("token") or "", None)
        return 200, {}, b""

    def userinfo(self, request: Request) -> Answer:
        grant, refused = self._grant(request)
        if refused is not None:
            return refused
        if "openid" not in grant["scopes"]:
            return self._denied("userinfo.GET.NO_VERSION")
        data: dict[str, Any] = {"sub": self.member["sub"], "locale": {"country": "GB"}}
        if "profile" in grant["scopes"]:
            data |= {"name": self.member["name"], "given_name": self.member["given_name"]}
        return answer_json(200, data)

    # --- organizations ---------------------------------------------------------------------
    def acls(self, request: Request, grant: dict[str, Any]) -> Answer:
        if request.param("q") != "roleAssignee":
            return _error(400, "Invalid finder for organizationAcls")
        if not grant["scopes"] & ORG_ACL_SCOPES:
            return self._denied("organizationAcls.FINDER-roleAssignee")
        role, state = request.param("role"), request.param("state")
        elements = [
            {
                "roleAssignee": self.person_urn,
                "state": "APPROVED",
                "role": org_role,
                "organization": f"urn:li:organization:{org_id}",
            }
            for org_id, org_role in self.roles.items()
            if role in (None, org_role) and state in (None, "APPROVED")
        ]
        paging = {"start": 0, "count": len(elements), "links": [], "total": len(elements)}
        return answer_json(200, {"paging": paging, "elements": elements})

    def organization(self, request: Request, grant: dict[str, Any]) -> Answer:
        org_id = request.path.rsplit("/", 1)[1]
        org = self.organizations.get(org_id)
        if org is None:
            return _error(404, f"Organization {org_id} not found", "NOT_FOUND")
        return answer_json(200, {"id": int(org_id), **org})

    # --- images ----------------------------------------------------------------------------
    def initialize_upload(self, request: Request, grant: dict[str, Any]) -> Answer:
        if request.param("action") != "initializeUpload":
            return _error(400, "Unsupported action")
        owner = ((request.json() or {}).get("initializeUploadRequest") or {}).get("owner")
        if not owner:
            return _error(
                422, "ERROR :: /initializeUploadRequest/owner :: field is required but not found"
            )
        if not self._may_write_as(grant, owner):
            return self._denied("images.ACTION-initializeUpload")
        key = f"C4E10AQ{next(self._ids)}"
        urn = f"urn:li:image:{key}"
        with self.lock:
            self.images[urn] = {
                "owner": owner,
                "status": "WAITING_UPLOAD",
                "key": key,
                "polls_left": 0,
                "bytes": 0,
            }
        value = {
            "uploadUrlExpiresAt": int((time.time() + 3600) * 1000),
            "uploadUrl": f"{self.url}/dms-uploads/sp/v2/{key}/uploaded-image/0?ca=vector_feedshare",
            "image": urn,
        }
        return answer_json(200, {"value": value})

    def upload(self, request: Request) -> Answer:
        grant, refused = self._grant(request)
        if refused is not None:
            return refused
        key = request.path.split("/")[4]
        with self.lock:
            image = next((i for i in self.images.values() if i["key"] == key), None)
        if image is None or image["status"] != "WAITING_UPLOAD":
            return _error(400, "Upload URL is not valid or was already used")
        try:
            picture = Image.open(io.BytesIO(request.body))
            picture.load()
        except Exception:
            return _error(400, "The uploaded file is not an image LinkedIn can read")
        if picture.format not in ("JPEG", "PNG", "GIF"):
            return _error(400, f"Image format {picture.format} is not supported")
        if picture.width * picture.height >= MAX_PIXELS:
            return _error(400, "The image has too many pixels")
        if picture.format == "GIF" and getattr(picture, "n_frames", 1) > MAX_GIF_FRAMES:
            return _error(400, "An animated GIF may have at most 250 frames")
        with self.lock:
            image.update(
                status="PROCESSING" if self.processing_polls else "AVAILABLE",
                polls_left=self.processing_polls,
                bytes=len(request.body),
                format=picture.format,
                width=picture.width,
                height=picture.height,
            )
        return 201, {}, b""

    def image_get(self, request: Request, grant: dict[str, Any]) -> Answer:
        urn = unquote(request.path[len("/rest/images/") :])
        with self.lock:
            image = self.images.get(urn)
            if image is None:
                return _error(404, f"{urn} not found", "NOT_FOUND")
            if image["status"] == "PROCESSING":
                if image["polls_left"] > 0:
                    image["polls_left"] -= 1
                else:
                    image["status"] = "AVAILABLE"
            return answer_json(200, {"id": urn, "owner": image["owner"], "status": image["status"]})

    # --- posts -----------------------------------------------------------------------------
    def create_post(self, request: Request, grant: dict[str, Any]) -> Answer:
        body = request.json()
        if not isinstance(body, dict):
            return _error(
                400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT"
            )
        missing = [
            f"ERROR :: /{name} :: field is required but not found and has no default value"
            for name in ("author", "commentary", "visibility", "distribution", "lifecycleState")
            if name not in body
        ]
        if missing:
            return _error(422, "\n".join(missing))
        author = body["author"]
        if not self._may_write_as(grant, author):
            return self._denied("partnerApiPostsExternal.CREATE.20260501")
        if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN"):
            return _error(422, "ERROR :: /visibility :: invalid enum value")
        if (body["distribution"] or {}).get("feedDistribution") not in ("MAIN_FEED", "NONE"):
            return _error(422, "ERROR :: /distribution/feedDistribution :: invalid enum value")
        if body["lifecycleState"] not in ("PUBLISHED", "DRAFT"):
            return _error(422, "ERROR :: /lifecycleState :: invalid enum value")
        commentary = str(body["commentary"])
        if len(shown_text(commentary)) > MAX_COMMENTARY:
            return _error(
                422,
                f"ERROR :: /commentary :: length of commentary exceeds the maximum of "
                f"{MAX_COMMENTARY} characters",
            )
        content = body.get("content") or {}
        if "media" in content:
            described = [content["media"]]
        elif "multiImage" in content:
            described = list((content["multiImage"] or {}).get("images") or [])
            if not 2 <= len(described) <= 20:
                return _error(
                    422, "ERROR :: /content/multiImage/images :: must have 2 to 20 images"
                )
        else:
            described = []
        with self.lock:
            for item in described:
                image = self.images.get(str(item.get("id")))
                if image is None or image["owner"] != author:
                    return _error(400, f"Image {item.get('id')} does not exist for {author}")
                if image["status"] != "AVAILABLE":
                    return _error(400, f"Image {item.get('id')} is {image['status']}")
                if len(str(item.get("altText") or "")) > MAX_ALT_TEXT:
                    return _error(422, f"ERROR :: altText :: longer than {MAX_ALT_TEXT} characters")
            twin = next(
                (
                    p
                    for p in self.posts
                    if p["author"] == author
                    and p["commentary"] == commentary
                    and p["createdAt"] >= (time.time() - DUPLICATE_WINDOW) * 1000
                ),
                None,
            )
            if twin is not None:
                return _error(422, f"Content is a duplicate of {twin['id']}", "DUPLICATE_POST")
            urn = self._store_post(author, commentary, content or None, created=time.time())
        return 201, {"x-restli-id": urn, "x-linkedin-id": urn}, b""

    def _store_post(
        self,
        author: str,
        little: str,
        content: dict[str, Any] | None,
        *,
        created: float,
        kind: str = "share",
    ) -> str:
        urn = f"urn:li:{kind}:{next(self._ids)}"
        millis = int(created * 1000)
        post = {
            "id": urn,
            "author": author,
            "commentary": little,
            "shown": shown_text(little),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"},
            "lifecycleState": "PUBLISHED",
            "createdAt": millis,
            "lastModifiedAt": millis,
            "publishedAt": millis,
        }
        if content:
            post["content"] = content
        self.posts.append(post)
        self.activities[urn] = f"urn:li:activity:{next(self._ids)}"
        self.posts.sort(key=lambda p: p["createdAt"], reverse=True)
        return urn

    def posts_by_author(self, request: Request, grant: dict[str, Any]) -> Answer:
        if request.param("q") != "author":
            return _error(400, "Invalid finder for posts")
        author = request.param("author") or ""
        if not self._may_read_as(grant, author):
            return self._denied("partnerApiPostsExternal.FINDER-author.20260501")
        count = min(int(request.param("count") or 10), 100)
        start = int(request.param("start") or 0)
        key = "createdAt" if request.param("sortBy") == "CREATED" else "lastModifiedAt"
        with self.lock:
            found = sorted(
                (p for p in self.posts if p["author"] == author),
                key=lambda p: p[key],
                reverse=True,
            )
        elements = [
            {k: v for k, v in post.items() if k != "shown"}
            | {"commentary": _as_stored(post["commentary"])}
            for post in found[start : start + count]
        ]
        paging = {"start": start, "count": count, "links": [], "total": len(found)}
        return answer_json(200, {"paging": paging, "elements": elements})

    # --- comments --------------------------------------------------------------------------
    def _may_read_as(self, grant: dict[str, Any], author: str) -> bool:
        if author == self.person_urn:
            return "r_member_social" in grant["scopes"]
        if author.startswith("urn:li:organization:"):
            org_id = author.rsplit(":", 1)[1]
            return bool(grant["scopes"] & ORG_READ_SCOPES) and org_id in self.roles
        return False

    def comments_on(self, request: Request, grant: dict[str, Any]) -> Answer:
        target = unquote(request.path[len("/rest/socialActions/") : -len("/comments")])
        start = int(request.param("start") or 0)
        count = min(int(request.param("count") or DEFAULT_COMMENTS_COUNT), MAX_COMMENTS_COUNT)
        if self.comment_page_hook is not None:
            self.comment_page_hook(target, start)
        with self.lock:
            if target.startswith("urn:li:comment:"):
                parent = next((c for c in self.comments if c["urn"] == target), None)
                post_urn = parent["post"] if parent else ""
                listed = [c for c in self.comments if c["parent"] == target]
            else:
                post_urn = self._post_of(target)
                listed = [c for c in self.comments if c["post"] == post_urn and not c["parent"]]
            post = next((p for p in self.posts if p["id"] == post_urn), None)
            if post is None:
                return _error(404, f"{target} not found", "NOT_FOUND")
            if not self._may_read_as(grant, post["author"]):
                return self._denied("partnerApiSocialActions.GET_ALL.20260501")
            newest_first = self.comment_order == "newest_first"
            listed.sort(key=lambda c: (c["created"], c["id"]), reverse=newest_first)
            elements = [self._comment_element(c) for c in listed[start : start + count]]
        path = f"/rest/socialActions/{quote(target, safe='')}/comments"
        links = []
        if start + count < len(listed):
            query = urlencode({"start": start + count, "count": count})
            links.append({"type": "application/json", "rel": "next", "href": f"{path}?{query}"})
        if start > 0:
            query = urlencode({"start": max(0, start - count), "count": count})
            links.append({"type": "application/json", "rel": "prev", "href": f"{path}?{query}"})
        paging = {"start": start, "count": count, "links": links, "total": len(listed)}
        return answer_json(200, {"paging": paging, "elements": elements})

    def _post_of(self, target: str) -> str:
        """The post a share, ugcPost or activity URN names (the URN itself when none)."""
        return next((post for post, act in self.activities.items() if act == target), target)

    def comment_one(self, request: Request, grant: dict[str, Any]) -> Answer:
        """GET /rest/socialActions/{target}/comments/{id}: one comment under `target`."""
        encoded, comment_id = request.path[len("/rest/socialActions/") :].split("/comments/")
        target, comment_id = unquote(encoded), unquote(comment_id)
        with self.lock:
            comment = next(
                (
                    c
                    for c in self.comments
                    if c["id"] == comment_id and target in (c["post"], c["activity"], c["parent"])
                ),
                None,
            )
            post = next((p for p in self.posts if comment and p["id"] == comment["post"]), None)
            if comment is None or post is None:
                return _error(404, f"urn:li:comment:({target},{comment_id}) not found", "NOT_FOUND")
            if not self._may_read_as(grant, post["author"]):
                return self._denied("partnerApiSocialActions.GET-comments.20260501")
            element = self._comment_element(comment)
        return answer_json(200, element)

    def _comment_element(self, comment: dict[str, Any]) -> dict[str, Any]:
        stamp = {"actor": comment["actor"], "time": comment["created"]}
        element: dict[str, Any] = {
            "actor": comment["actor"],
            "commentUrn": comment["urn"],
            "$URN": comment["urn"],
            "id": comment["id"],
            "created": stamp,
            "lastModified": stamp,
            "message": {"attributes": [], "text": comment["text"]},
            "object": comment["activity"],
            "likesSummary": {"totalLikes": 0, "aggregatedTotalLikes": 0, "selectedLikes": []},
        }
        if comment["parent"]:
            element["parentComment"] = comment["parent"]
        if self.comment_summaries:
            replies = sum(1 for c in self.comments if c["parent"] == comment["urn"])
            element["commentsSummary"] = {
                "selectedComments": [],
                "totalFirstLevelComments": replies,
                "aggregatedTotalComments": replies,
            }
        return element

    # --- replies ---------------------------------------------------------------------------
    def create_comment(self, request: Request, grant: dict[str, Any]) -> Answer:
        target = unquote(request.path[len("/rest/socialActions/") : -len("/comments")])
        body = request.json()
        if not isinstance(body, dict):
            return _error(
                400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT"
            )
        message = body.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        missing = [
            f"ERROR :: /{name} :: field is required but not found and has no default value"
            for name, value in (("actor", body.get("actor")), ("object", body.get("object")))
            if not value
        ]
        if not isinstance(text, str):
            missing.append("ERROR :: /message/text :: field is required but not found")
        if missing:
            return _error(422, "\n".join(missing))
        actor = str(body["actor"])
        if not self._may_write_as(grant, actor):
            return self._denied("partnerApiSocialActions.CREATE-comments.20260501")
        if len(text) > MAX_COMMENT:
            return _error(422, f"ERROR :: /message/text :: longer than {MAX_COMMENT} characters")
        with self.lock:
            post, parent, refused = self._comment_target(target, body)
            if refused is not None:
                return refused
            comment = self._store_comment(post, text, actor, int(time.time() * 1000), parent)
            element = self._comment_element(comment)
        headers = {"x-restli-id": comment["id"]}
        if self.comment_answer == "header":
            return 201, headers, b""
        if self.comment_answer == "none":
            return 201, {}, b""
        status, json_headers, payload = answer_json(201, element)
        if self.comment_answer == "both":
            json_headers |= headers
        return status, json_headers, payload

    def _comment_target(self, target: str, body: dict[str, Any]) -> tuple[str, str, Answer | None]:
        """(the post, the parent comment or "", a refusal) of a new comment on `target`."""
        parent = ""
        if target.startswith("urn:li:comment:"):
            above = next((c for c in self.comments if c["urn"] == target), None)
            if above is None:
                return "", "", _error(404, f"{target} not found", "NOT_FOUND")
            if above["parent"]:
                return "", "", _error(422, "ERROR :: /parentComment :: nested too deep")
            if body.get("parentComment") != target:
                return (
                    "",
                    "",
                    _error(422, "ERROR :: /parentComment :: must be the comment commented on"),
                )
            post_urn, parent = above["post"], target
        else:
            post_urn = target
            if body.get("parentComment"):
                return (
                    "",
                    "",
                    _error(
                        422, "ERROR :: /parentComment :: not available for first-level comments"
                    ),
                )
        if not any(p["id"] == post_urn for p in self.posts):
            return "", "", _error(404, f"{target} not found", "NOT_FOUND")
        if body["object"] not in (post_urn, self.activities.get(post_urn)):
            return "", "", _error(422, f"ERROR :: /object :: {body['object']} is not {target}")
        return post_urn, parent, None

    # --- engagement ------------------------------------------------------------------------
    def _summary(self, urn: str) -> dict[str, Any] | None:
        """What socialActions says of the post or comment `urn`; None when there is none."""
        if any(p["id"] == urn for p in self.posts):
            under = [c for c in self.comments if c["post"] == urn]
            first_level = [c for c in under if not c["parent"]]
        elif any(c["urn"] == urn for c in self.comments):
            under = first_level = [c for c in self.comments if c["parent"] == urn]
        else:
            return None
        likes = self.likes.get(urn, 0)
        return {
            "$URN": f"urn:li:socialActions:{urn}",
            "target": urn,
            "likesSummary": {
                "selectedLikes": [],
                "aggregatedTotalLikes": likes,
                "likedByCurrentUser": False,
                "totalLikes": likes,
            },
            "commentsSummary": {
                "selectedComments": [],
                "aggregatedTotalComments": len(under),
                "totalFirstLevelComments": len(first_level),
            },
        }

    def _may_read_figures(self, grant: dict[str, Any], urn: str) -> bool:
        post_urn = next((c["post"] for c in self.comments if c["urn"] == urn), urn)
        post = next((p for p in self.posts if p["id"] == post_urn), None)
        return post is None or self._may_read_as(grant, post["author"])

    def social_actions_one(self, request: Request, grant: dict[str, Any]) -> Answer:
        urn = unquote(request.path[len("/rest/socialActions/") :])
        with self.lock:
            if not self._may_read_figures(grant, urn):
                return self._denied("partnerApiSocialActions.GET.20260501")
            summary = self._summary(urn)
        if summary is None:
            return _error(404, f"{urn} not found", "NOT_FOUND")
        return answer_json(200, summary)

    def social_actions_batch(self, request: Request, grant: dict[str, Any]) -> Answer:
        urns = _list_param(request.param("ids"))
        if urns is None:
            return _error(400, "ids must be List(…) of URNs", "ILLEGAL_ARGUMENT")
        if not grant["scopes"] & (ORG_READ_SCOPES | {"r_member_social"}):
            return self._denied("partnerApiSocialActions.BATCH_GET.20260501")
        results, statuses, errors = {}, {}, {}
        with self.lock:
            for urn in urns:
                if not self._may_read_figures(grant, urn):
                    statuses[urn] = 403
                    errors[urn] = {"status": 403, "message": "Not enough permissions"}
                    continue
                summary = self._summary(urn)
                if summary is None:
                    statuses[urn] = 404
                    errors[urn] = {"status": 404, "message": f"{urn} not found"}
                else:
                    statuses[urn] = 200
                    results[urn] = summary
        return answer_json(200, {"results": results, "statuses": statuses, "errors": errors})

    def share_statistics(self, request: Request, grant: dict[str, Any]) -> Answer:
        if request.param("q") != "organizationalEntity":
            return _error(400, "Invalid finder for organizationalEntityShareStatistics")
        org = request.param("organizationalEntity") or ""
        org_id = org.rsplit(":", 1)[-1]
        if (
            "rw_organization_admin" not in grant["scopes"]
            or self.roles.get(org_id) != "ADMINISTRATOR"
        ):
            return self._denied("organizationalEntityShareStatistics.FINDER-organizationalEntity")
        asked = {"share": request.param("shares"), "ugcPost": request.param("ugcPosts")}
        elements = []
        with self.lock:
            for kind, value in asked.items():
                urns = _list_param(value) if value is not None else []
                if urns is None:
                    return _error(400, "shares and ugcPosts must be List(…) of URNs")
                for index, urn in enumerate(urns):
                    if not urn.startswith(f"urn:li:{kind}:"):
                        return _error(400, f"ERROR :: /{kind}s/{index} :: not a {kind} URN")
                    post = next((p for p in self.posts if p["id"] == urn), None)
                    if post is not None and post["author"] == org:
                        elements.append(
                            {
                                "organizationalEntity": org,
                                kind: urn,
                                "totalShareStatistics": self._share_totals(urn),
                            }
                        )
        paging = {"start": 0, "count": len(elements), "links": []}
        return answer_json(200, {"paging": paging, "elements": elements})

    def _share_totals(self, urn: str) -> dict[str, Any]:
        impressions = self.impressions.get(urn, 0)
        likes = self.likes.get(urn, 0)
        comments = sum(1 for c in self.comments if c["post"] == urn)
        reshares = self.reshares.get(urn, 0)
        clicks = self.clicks.get(urn, 0)
        engaged = likes + comments + reshares + clicks
        return {
            "uniqueImpressionsCount": impressions // 2,
            "shareCount": reshares,
            "shareMentionsCount": 0,
            "engagement": engaged / impressions if impressions else 0.0,
            "clickCount": clicks,
            "likeCount": likes,
            "impressionCount": impressions,
            "commentMentionsCount": 0,
            "commentCount": comments,
        }


def _list_param(value: str | None) -> list[str] | None:
    """The URNs of a Rest.li List(…) (as the query string decodes it); None if it is not one.
    Commas inside a URN's own parentheses (a comment URN) do not split it."""
    if not value or not value.startswith("List(") or not value.endswith(")"):
        return None
    items, depth, current = [], 0, ""
    for char in value[len("List(") : -1]:
        if char == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    items.append(current)
    return [item for item in items if item]
