"""Bluesky: a post's text may have at most 300 grapheme clusters AND 3,000 UTF-8 bytes; links
count as written (facets point into the text, they do not shorten it).

Sources (checked 2025/2026):
- bluesky-social/atproto lexicons/app/bsky/feed/post.json: "text": {"type": "string",
  "maxLength": 3000, "maxGraphemes": 300} (lexicon string maxLength is in UTF-8 bytes).
- lexicons/app/bsky/embed/images.json: "images" maxLength 4; each image blob accept "image/*",
  "maxSize": 1000000 (bytes); "alt" is required (may be empty, but cxhub asks for a description).
  The lexicon sets no length for "alt".
- Alt-text length: the official app's limit, bluesky-social/social-app src/lib/constants.ts
  MAX_ALT_TEXT = 2000 (graphemes; it was 1000 before), since the lexicon has none.
- Formats: the app uploads JPEG, PNG and WEBP as images; an animated GIF goes as a video, which
  cxhub does not send yet, so GIF is left out.

Publishing, spoken as XRPC over requests (atproto.com, checked 2026):
- specs/xrpc: `POST /xrpc/<nsid>` with JSON, `GET` with query parameters; errors are
  `{"error": "<Name>", "message": "…"}`; 429 with `RateLimit-Limit`, `RateLimit-Remaining`,
  `RateLimit-Reset` (a Unix time in seconds) and `RateLimit-Policy` (docs.bsky.app
  "Rate Limits": 5,000 points an hour, a create costs 3; createSession 30 per 5 minutes).
- lexicons com.atproto.server.createSession (identifier + app password → accessJwt, refreshJwt,
  did, handle) and refreshSession (called with the refreshJwt as the bearer token; answers a new
  pair and retires the old refresh token). An expired access token is the error `ExpiredToken`.
  Design: the app password is used once, at connect (`sign_in`, kept by
  networks.services.social_account_connect), and never stored; the account keeps
  accessJwt/refreshJwt as its access/refresh tokens and its DID as external_id. ExpiredToken →
  refreshSession once → the call again; a refused refresh is AuthExpired (the account needs its
  app password typed again).
- com.atproto.repo.uploadBlob: the raw bytes with their Content-Type → `{"blob": …}`. A blob
  no record points to is removed by the server, so an upload is retried freely.
- com.atproto.repo.createRecord: `repo`, `collection` app.bsky.feed.post, `rkey`, `record`.
  app.bsky.feed.post's key is `tid` (specs/record-key, specs/tid: 13 characters of base32
  "sortable" encoding a 53-bit microsecond time and a 10-bit clock id). We derive the TID from
  the target's idempotency key (a hash mapped into 2023–2024, a time in the past), so every
  try of one target writes the same record key and a second create cannot make a second post.
- app.bsky.feed.post: `text`, `createdAt`, `facets` (app.bsky.richtext.facet: byte offsets
  into the UTF-8 text; #link, #mention with a DID from com.atproto.identity.resolveHandle, and
  #tag), `embed` app.bsky.embed.images with `image`, `alt` (required) and `aspectRatio`.
- Reconcile: com.atproto.repo.getRecord with the same rkey (public, no token): the record, or
  the error `RecordNotFound`. A create refused because the key is taken (the reference PDS,
  @atproto/pds 0.5, answers 500 InternalServerError for it; other servers 400) is checked the
  same way: if the record is there, the post already landed and its URI is returned. The text
  is not compared (no matcher is needed): no other post can hold the key, which is derived from
  the target's idempotency key alone. Only two answers are taken as an answer: the record (200
  with our at:// URI and a `value`), or RecordNotFound (400, or 404, with that XRPC error);
  anything else (a 5xx, a 4xx without that error, a proxy's page, a 200 without the record)
  says nothing either way and is RetryableError: asked again later, never sent blind. A create
  answered 5xx, or 400, whose record cannot be checked at once, is UnknownOutcome (issue 11).
- Links for people: https://bsky.app/profile/<handle>/post/<rkey>.

Connecting (atproto.com lexicons, docs.bsky.app "App passwords", checked 2026): Bluesky has no
OAuth client registration for cxhub to use here; a person creates an app password in the app
(Settings → Privacy and security → App passwords) and types it once.
- com.atproto.server.createSession: `identifier` (a handle or DID) + `password` → accessJwt,
  refreshJwt, `handle`, `did` (the account's permanent id: our external_id); errors
  AuthenticationRequired (wrong identifier or password), AuthFactorTokenRequired (a main
  password with two-factor sign-in: an app password avoids it), AccountTakedown.
- com.atproto.server.getSession: the session's `handle` and `did`, from the access token.
- com.atproto.server.deleteSession: "Delete the current session. Requires auth using the
  'refreshJwt' (not the 'accessJwt')": what disconnect calls.
- The PDS is the account's server: https://bsky.social for accounts hosted by Bluesky, or the
  address of a self-hosted PDS.
"""

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from ..tokens import social_account_tokens_refresh
from . import text as textutil
from .base import Channel, Identity, Limits, ReconcileHints, TokenSet
from .errors import (
    AmbiguousMatch,
    AuthExpired,
    Candidate,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from .http import (
    Published,
    check_server,
    error_for_status,
    json_or_empty,
    rate_limit_wait,
    request,
    with_status,
)
from .media_files import MediaFile, load_media

POST_COLLECTION = "app.bsky.feed.post"
MAX_BLOB_BYTES = 1_000_000
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired"})
S32 = "234567abcdefghijklmnopqrstuvwxyz"
# Derived record keys fall in [2023-01-01, 2025-01-01): a time in the past, as for a backdated
# import, never one in the future.
_TID_START_US = 1_672_531_200_000_000
_TID_SPAN_US = 2 * 365 * 24 * 3600 * 1_000_000
# social-app's mention rule: "@" after a start, space or "(", a handle with at least one dot.
_MENTION = re.compile(
    r"(?:^|(?<=[\s(]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_TAG = re.compile(r"(?:^|(?<=\s))#([^\s#\d.,;:!?'\"()][^\s#.,;:!?'\"()]{0,63})")


def record_key(idempotency_key: str) -> str:
    """The TID every try of one target writes: derived from its idempotency key alone."""
    digest = int.from_bytes(hashlib.sha256(str(idempotency_key).encode()).digest()[:8], "big")
    micros = _TID_START_US + (digest >> 10) % _TID_SPAN_US
    value = (micros << 10) | (digest & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(S32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _utf8_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class BlueskyChannel(Channel):
    name = "bluesky"
    label = "Bluesky"
    limits = Limits(
        max_text=300,
        text_unit="graphemes",
        max_text_bytes=3_000,
        max_media=4,
        media_formats=frozenset({"JPEG", "PNG", "WEBP"}),
        max_image_bytes=1_000_000,
        max_alt_text=2_000,
    )
    counting = "graphemes"
    alt_text_unit = "graphemes"
    # Connected with an app password on the account's PDS, not by OAuth.
    connect_method = "app_password"
    needs_server = True
    default_base_url = "https://bsky.social"

    def count(self, text: str) -> int:
        return textutil.grapheme_count(text)

    def alt_text_length(self, alt_text: str) -> int:
        return textutil.grapheme_count(alt_text)

    # --- publishing ---------------------------------------------------------------------------

    def create_session(self, account: Any, *, password: str) -> None:
        """Sign an existing account in again with an app password and keep the session's tokens,
        never the password (the tests' and operators' shortcut; people connect through the
        connect pages: `sign_in` and the audited service)."""
        base = _base(account)
        response = request(
            "POST",
            f"{base}/xrpc/com.atproto.server.createSession",
            changes=False,
            what="Signing in to Bluesky",
            json={"identifier": account.handle.lstrip("@"), "password": password},
        )
        data = json_or_empty(response)
        if response.status_code != 200:
            if response.status_code in (400, 401):
                raise with_status(
                    AuthExpired(f"Bluesky refused the sign-in: {_message(response)}"),
                    response.status_code,
                )
            raise _refusal(response, "Bluesky did not sign in")
        self._keep_session(account, data)

    def refresh_token(self, account: Any) -> None:
        """A new session from the refresh token (com.atproto.server.refreshSession, which
        retires the old one), stored under the account's row lock through the audited service,
        so two workers never spend the same refresh token; AuthExpired when Bluesky refuses."""
        base = _base(account)

        def renew(refresh: str) -> TokenSet:
            if not refresh:
                raise AuthExpired("The Bluesky session cannot be renewed; sign in again.")
            response = request(
                "POST",
                f"{base}/xrpc/com.atproto.server.refreshSession",
                changes=False,
                what="Renewing the Bluesky session",
                headers={"Authorization": f"Bearer {refresh}"},
            )
            if response.status_code != 200:
                if response.status_code in (400, 401):
                    raise with_status(
                        AuthExpired(
                            f"Bluesky refused to renew the session ({_message(response)}); "
                            "sign in again with an app password."
                        ),
                        response.status_code,
                    )
                raise _refusal(response, "Bluesky did not renew the session")
            data = json_or_empty(response)
            access, new_refresh = data.get("accessJwt"), data.get("refreshJwt")
            if not access or not new_refresh:
                raise RetryableError("Bluesky answered a session without its tokens")
            return TokenSet(
                access_token=str(access),
                refresh_token=str(new_refresh),
                expires_at=access_token_expiry(str(access)),
            )

        social_account_tokens_refresh(account=account, renew=renew)

    # --- connecting ---------------------------------------------------------------------------

    def sign_in(
        self, base_url: str, *, identifier: str, password: str
    ) -> tuple[TokenSet, list[Identity]]:
        """At connect: a session from an app password (used once, never stored), and the
        account it belongs to, as createSession names it."""
        base = base_url.rstrip("/")
        check_server(base, what="Bluesky server")
        response = request(
            "POST",
            f"{base}/xrpc/com.atproto.server.createSession",
            changes=False,
            what="Signing in to Bluesky",
            json={"identifier": identifier.strip().lstrip("@"), "password": password},
        )
        data = json_or_empty(response)
        if response.status_code != 200:
            if _error(response) == "AuthFactorTokenRequired":
                raise PermanentError(
                    "Bluesky asks for a sign-in code: that is the account's main password. Use "
                    "an app password (Settings → Privacy and security → App passwords)."
                )
            if response.status_code in (400, 401):
                raise with_status(
                    PermanentError(
                        f"Bluesky refused the sign-in ({_message(response)}). Check the handle "
                        "and the app password."
                    ),
                    response.status_code,
                )
            raise _refusal(response, "Bluesky did not sign in")
        access, refresh = data.get("accessJwt"), data.get("refreshJwt")
        if not access or not refresh or not data.get("did"):
            raise RetryableError("Bluesky answered a session without its tokens")
        tokens = TokenSet(
            access_token=str(access),
            refresh_token=str(refresh),
            expires_at=access_token_expiry(str(access)),
        )
        return tokens, [_identity(data)]

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        base = base_url.rstrip("/")
        check_server(base, what="Bluesky server")
        response = request(
            "GET",
            f"{base}/xrpc/com.atproto.server.getSession",
            changes=False,
            what="Reading the Bluesky session",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        if response.status_code != 200:
            raise _refusal(response, "Bluesky did not say which account this is")
        data = json_or_empty(response)
        if not data.get("did"):
            raise PermanentError("Bluesky answered getSession without a DID")
        return [_identity(data)]

    def revoke(self, account: Any) -> bool:
        """End the session at the PDS (deleteSession, with the refresh token)."""
        refresh = account.refresh_token
        if not refresh:
            return False
        response = request(
            "POST",
            f"{_base(account)}/xrpc/com.atproto.server.deleteSession",
            changes=False,
            what="Ending the Bluesky session",
            headers={"Authorization": f"Bearer {refresh}"},
        )
        return response.status_code == 200

    def _keep_session(self, account: Any, data: dict[str, Any]) -> None:
        """Store a new session through the audited, row-locked token service; a session of
        another account (another DID) than the one connected is refused, never kept."""
        access, refresh = data.get("accessJwt"), data.get("refreshJwt")
        if not access or not refresh:
            raise RetryableError("Bluesky answered a session without its tokens")
        did = str(data.get("did") or "")
        if account.external_id and did and did != account.external_id:
            raise PermanentError(
                f"This app password signs in {did}, not the connected account "
                f"{account.external_id}; nothing was changed."
            )
        tokens = TokenSet(
            access_token=str(access),
            refresh_token=str(refresh),
            expires_at=access_token_expiry(str(access)),
        )
        social_account_tokens_refresh(account=account, renew=lambda _old: tokens)

    def _call(self, account: Any, method: str, nsid: str, *, changes: bool, **kwargs: Any):
        """One authenticated XRPC call; an expired session is renewed once and the call made
        again."""
        base = _base(account)
        headers = kwargs.pop("headers", {})
        for renewed in (False, True):
            token = account.access_token
            if not token:
                raise AuthExpired("The Bluesky account has no session; sign in again.")
            response = request(
                method,
                f"{base}/xrpc/{nsid}",
                changes=changes,
                what=nsid,
                headers={**headers, "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code in (400, 401) and _error(response) in AUTH_ERRORS:
                if renewed:
                    raise with_status(
                        AuthExpired(f"Bluesky refused the new session: {_message(response)}"),
                        response.status_code,
                    )
                self.refresh_token(account)
                continue
            return response
        raise AssertionError("unreachable")

    def publish(
        self, account: Any, text: str, media: Sequence[Any], *, idempotency_key: str
    ) -> Published:
        rkey = record_key(idempotency_key)
        repo = account.external_id or account.handle.lstrip("@")
        images = [self._upload(account, item) for item in load_media(media, channel=self.name)]
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        facets = self._facets(account, text)
        if facets:
            record["facets"] = facets
        if images:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        response = self._call(
            account,
            "POST",
            "com.atproto.repo.createRecord",
            changes=True,
            json={"repo": repo, "collection": POST_COLLECTION, "rkey": rkey, "record": record},
        )
        uri = str(json_or_empty(response).get("uri") or "")
        if response.status_code == 200 and uri:
            return self._published(account, uri, rkey, 200)
        if response.status_code == 400 or response.status_code >= 500:
            # The key may be taken because an earlier try landed (a real PDS answers a taken
            # record key with 500 InternalServerError): then that is our post.
            try:
                found = self.reconcile(account, text, idempotency_key=idempotency_key)
            except (RetryableError, PermanentError) as exc:
                raise with_status(
                    UnknownOutcome(
                        f"Bluesky answered the post with HTTP {response.status_code} "
                        f"({_message(response)}), and whether it exists could not be checked: "
                        f"{exc}"
                    ),
                    response.status_code,
                ) from exc
            if found is not None:
                return found
        raise _refusal(response, "Bluesky refused the post", changes=True)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
    ) -> Published | None:
        base = _base(account)
        rkey = record_key(idempotency_key)
        repo = account.external_id or account.handle.lstrip("@")
        response = request(
            "GET",
            f"{base}/xrpc/com.atproto.repo.getRecord",
            changes=False,
            what="Looking for the post",
            params={"repo": repo, "collection": POST_COLLECTION, "rkey": rkey},
        )
        data = json_or_empty(response)
        uri = str(data.get("uri") or "")
        if (
            response.status_code == 200
            and uri.endswith(f"/{POST_COLLECTION}/{rkey}")
            and isinstance(data.get("value"), dict)
        ):
            found = self._published(account, uri, rkey, 200)
            if hints is not None and found.external_id in hints.known_ids:
                # Another target of the account holds this record: two keys met (it cannot
                # happen short of a hash collision); a person decides.
                raise AmbiguousMatch(
                    "Bluesky: the post's record is already another target's.",
                    candidates=[
                        Candidate(
                            found.external_id,
                            external_url=found.external_url,
                            text=str(data["value"].get("text") or ""),
                            created_at=str(data["value"].get("createdAt") or ""),
                            why="held by another target",
                        )
                    ],
                )
            return found
        if response.status_code in (400, 404) and _error(response) == "RecordNotFound":
            return None
        refusal = _refusal(response, "Bluesky did not say whether the post exists")
        if isinstance(refusal, RetryableError):
            raise refusal
        # Neither the record nor RecordNotFound: nothing can be concluded; ask again later.
        raise with_status(
            RetryableError(str(refusal) or "Bluesky answered getRecord without the record"),
            response.status_code,
        )

    def _published(self, account: Any, uri: str, rkey: str, status: int) -> Published:
        handle = account.handle.lstrip("@")
        return Published(
            external_id=(uri or f"at://{account.external_id or handle}/{POST_COLLECTION}/{rkey}")[
                :255
            ],
            external_url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            http_status=status,
        )

    def _upload(self, account: Any, item: MediaFile) -> dict[str, Any]:
        if len(item.data) > MAX_BLOB_BYTES:
            raise PermanentError(
                f"Image {item.position + 1} is {len(item.data):,} bytes; Bluesky takes "
                f"{MAX_BLOB_BYTES:,} at most and no smaller rendition is stored."
            )
        # An unused blob is removed by the server: an upload that timed out posted nothing.
        response = self._call(
            account,
            "POST",
            "com.atproto.repo.uploadBlob",
            changes=False,
            data=item.data,
            headers={"Content-Type": item.mime},
        )
        if response.status_code != 200:
            raise _refusal(response, "Bluesky refused an image")
        blob = json_or_empty(response).get("blob")
        if not isinstance(blob, dict):
            raise RetryableError("Bluesky answered the upload without a blob")
        image: dict[str, Any] = {"image": blob, "alt": item.alt_text}
        if item.width and item.height:
            image["aspectRatio"] = {"width": item.width, "height": item.height}
        return image

    def _facets(self, account: Any, text: str) -> list[dict[str, Any]]:
        """Links, mentions and hashtags as facets, with UTF-8 byte offsets."""
        facets: list[dict[str, Any]] = []
        taken: list[tuple[int, int]] = []

        def add(start: int, end: int, feature: dict[str, Any]) -> None:
            if any(s < end and start < e for s, e in taken):
                return
            taken.append((start, end))
            facets.append(
                {
                    "index": {
                        "byteStart": _utf8_offset(text, start),
                        "byteEnd": _utf8_offset(text, end),
                    },
                    "features": [feature],
                }
            )

        for span in textutil.find_urls(text, bare_domains=True):
            uri = span.text if "://" in span.text else f"https://{span.text}"
            add(span.start, span.end, {"$type": "app.bsky.richtext.facet#link", "uri": uri})
        for match in _MENTION.finditer(text):
            did = self._resolve_handle(account, match.group(1))
            if did:
                add(
                    match.start(),
                    match.end(),
                    {"$type": "app.bsky.richtext.facet#mention", "did": did},
                )
        for match in _TAG.finditer(text):
            add(
                match.start(),
                match.end(),
                {"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)},
            )
        facets.sort(key=lambda f: f["index"]["byteStart"])
        return facets

    def _resolve_handle(self, account: Any, handle: str) -> str | None:
        """A mention's DID, or None (the text stays, without a link) when it cannot be found."""
        try:
            response = request(
                "GET",
                f"{_base(account)}/xrpc/com.atproto.identity.resolveHandle",
                changes=False,
                what="Resolving a mention",
                params={"handle": handle.lower()},
            )
        except RetryableError:
            return None
        did = json_or_empty(response).get("did") if response.status_code == 200 else None
        return str(did) if did else None


def access_token_expiry(token: str) -> datetime | None:
    """When a session's access token expires: the `exp` claim of the JWT a PDS issues (read,
    not verified: the PDS verifies it; cxhub only plans the renewal ahead of it). None for a
    token that is not a JWT with an expiry."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (ValueError, TypeError, KeyError, OverflowError):
        return None


def _base(account: Any) -> str:
    base = (account.base_url or "").rstrip("/")
    check_server(base, what="Bluesky server")
    return base


def _identity(session: dict[str, Any]) -> Identity:
    did = str(session["did"])
    handle = str(session.get("handle") or did)
    return Identity(handle=handle, external_id=did)


def _error(response: requests.Response) -> str:
    return str(json_or_empty(response).get("error") or "")


def _message(response: requests.Response) -> str:
    data = json_or_empty(response)
    parts = [str(data.get("error") or ""), str(data.get("message") or "")]
    text = ": ".join(p for p in parts if p)
    return text or response.text[:300]


def _refusal(response: requests.Response, what: str, *, changes: bool = False) -> Exception:
    status = response.status_code
    detail = f"{what} (HTTP {status}): {_message(response)}"
    wait = rate_limit_wait(response, reset_header="RateLimit-Reset")
    return error_for_status(
        status,
        detail,
        retry_after=wait,
        expired=_error(response) in AUTH_ERRORS,
        changes=changes,
    )
