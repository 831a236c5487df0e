"""What every channel shares: its limits, how it counts text, and the checks that turn a draft
into a list of problems a person can act on. Pure Python: no models, no database, no network.

A channel is one network behind one interface. Publishing (`publish`, `reconcile`,
`refresh_token`) joins this same class later; until then those raise NotImplementedError. The
images a channel is given are prepared by the caller (publishing.media_services.fit_to_limits
makes one fit a channel's limits).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from django.conf import settings

from . import text as textutil
from .errors import PermanentError

PILLOW_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP"})

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Limits:
    """A network's published limits. Per-account differences (a Mastodon server's own
    `max_characters`) are a copy made with `dataclasses.replace`, passed to `validate`."""

    max_text: int
    # Human words for what max_text counts: "characters", "graphemes", "weighted characters".
    text_unit: str
    max_text_bytes: int | None
    max_media: int
    # Pillow format names, among PILLOW_FORMATS.
    media_formats: frozenset[str]
    max_image_bytes: int
    # GIFs have their own, larger limit on some networks (X); None: max_image_bytes applies.
    max_gif_bytes: int | None = None
    max_image_width: int | None = None
    max_image_height: int | None = None
    max_image_pixels: int | None = None
    # width / height
    min_aspect_ratio: float | None = None
    max_aspect_ratio: float | None = None
    # Longest alt text, in the channel's alt-text unit; None: no published limit.
    max_alt_text: int | None = None
    # False: the network has no alt text at all, so none is asked for.
    alt_text_supported: bool = True
    requires_media: bool = False
    max_hashtags: int | None = None
    max_mentions: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.media_formats) - PILLOW_FORMATS
        if unknown:
            raise ValueError(
                f"Unknown media formats {sorted(unknown)}; use {sorted(PILLOW_FORMATS)}"
            )
        if not isinstance(self.media_formats, frozenset):
            object.__setattr__(self, "media_formats", frozenset(self.media_formats))
        if (
            self.min_aspect_ratio is not None
            and self.max_aspect_ratio is not None
            and self.min_aspect_ratio > self.max_aspect_ratio
        ):
            raise ValueError("min_aspect_ratio is above max_aspect_ratio")


@dataclass(frozen=True)
class MediaInfo:
    """What validation needs to know about one image (the rendition that will be sent)."""

    format: str  # Pillow format name: "JPEG", "PNG", "GIF", "WEBP"
    width: int
    height: int
    bytes: int
    alt_text: str = ""
    animated: bool = False


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a post for one network.

    `code` is stable, for machines; `message` is for people and carries the numbers; `field`
    names what to fix: "body", "media", or "media[0]", "media[0].alt_text" (indexes from 0,
    while messages say "image 1" for people).
    """

    code: str
    severity: Severity
    message: str
    field: str


@dataclass(frozen=True)
class ReconcileHints:
    """What dispatch knows that narrows a search for a post that may have gone out."""

    # When this target was first tried: a post made before it (less the clock skew a network
    # may have) is not ours.
    since: datetime | None = None
    # How many images the post carries.
    media_count: int | None = None
    # External ids already recorded for other targets on the same account: never ours.
    known_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OAuthSpec:
    """Where and how a network runs the OAuth 2 authorization-code grant (RFC 6749 §4.1)."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    # RFC 7636 PKCE with S256 (X requires it; harmless where it is accepted).
    pkce: bool = False
    # RFC 7009 revocation endpoint, or "" where the network has none.
    revoke_url: str = ""
    # How the client proves itself at the token endpoint: "body" (client_id and
    # client_secret in the form) or "basic" (HTTP Basic, RFC 6749 §2.3.1).
    client_auth: Literal["body", "basic"] = "body"
    # Extra query parameters of the authorize request, and the scope separator.
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    scope_separator: str = " "


@dataclass(frozen=True)
class OAuthClient:
    """cxhub's registration with a network (or with one Mastodon server)."""

    client_id: str
    client_secret: str = ""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Identity:
    """One account the person may connect after authorising: who it is on the network.

    `tokens` is set where the account has tokens of its own (a Facebook Page's page token, an
    Instagram account reached through its Page); otherwise the user tokens of the grant are
    stored. `settings` holds what the channel needs later (e.g. the instance's limits)."""

    handle: str
    external_id: str
    display_name: str = ""
    tokens: TokenSet | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


InboundKind = Literal["reply", "mention", "comment", "message"]


@dataclass(frozen=True)
class Inbound:
    """One reply, mention, comment or message that came back, as the network gave it.

    Ids are the network's own (a Mastodon status id, a Bluesky at:// URI, an X post id). Where an
    item answers a post, `in_reply_to_id` is the id of the post it answers (ours or anyone's) and
    `thread_id` the conversation's root; both are "" where the network gives none."""

    network_id: str
    kind: InboundKind
    text: str
    created_at: datetime
    author_handle: str
    author_name: str = ""
    author_id: str = ""
    url: str = ""
    thread_id: str = ""
    in_reply_to_id: str = ""
    # The language the author or the network declared ("en", "fr"), "" when none; ours is
    # detected from the text as well (inbox.signals).
    language: str = ""
    # The network says the item was deleted (or hidden) since it was first seen.
    deleted: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundPage:
    """What one call for what came back returned: the items (any order), the cursor to start the
    next call from (the one given, when nothing new came), and whether more is waiting now."""

    items: Sequence[Inbound]
    cursor: str
    more: bool = False


@dataclass(frozen=True)
class ReplyTo:
    """The item a post answers, as the network gave it (an Inbound kept by the inbox): its id,
    its conversation's root, and its payload, from which a channel takes what its reply needs
    (Bluesky's CIDs, a Facebook comment's post)."""

    network_id: str
    thread_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Engagement:
    """What a network says of one of our posts at one moment; None where it gives no figure
    (impressions and clicks need an analytics permission most networks reserve)."""

    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None
    impressions: int | None = None
    clicks: int | None = None
    # The post is no longer on the network (deleted there): no figures will come again.
    deleted: bool = False


ListenKind = Literal["search", "hashtag", "account"]


@dataclass(frozen=True)
class PublicQuery:
    """What one listening source asks a network for: public posts the network's search finds for
    `text` ("search": words or a phrase, as the author typed them), posts carrying the hashtag
    `text` ("hashtag", without its #), or posts written by the account `text` ("account": a
    handle as the network writes it). `languages` narrows the search where the network can
    ("en", "fr"); empty asks for every language. The network's answer is a first sieve only:
    listening matches every post it keeps against the watch's own rules again."""

    kind: ListenKind
    text: str
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublicPost:
    """One public post a listening query found, as the network gave it, with the figures it
    showed at that moment (None where it shows none)."""

    network_id: str
    text: str
    created_at: datetime
    author_handle: str
    author_name: str = ""
    author_id: str = ""
    url: str = ""
    # The language the author or the network declared, "" when none (ours is detected too).
    language: str = ""
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublicPage:
    """What one listening call returned: the posts (any order), the cursor to start the next call
    from (the one given, when nothing new came), and whether more is waiting now."""

    posts: Sequence[PublicPost]
    cursor: str
    more: bool = False


def _n(value: int) -> str:
    return f"{value:,}"


def _plural(value: int, unit: str) -> str:
    return f"{value:,} {unit}" if value == 1 else f"{value:,} {unit}s"


def _size(value: int) -> str:
    return f"{value:,} bytes ({value / 1_000_000:.1f} MB)"


def _ratio(value: float) -> str:
    return f"{value:.2f}:1"


class Channel:
    """One network's rules. Subclasses set `name`, `label` and `limits`, and override `count`
    (and `render`) where the network counts (or receives) text its own way."""

    name: ClassVar[str]
    label: ClassVar[str]
    limits: ClassVar[Limits]
    # How the browser's counter must count: "characters" (code points), "graphemes" or
    # "x-weighted" (twitter-text v3).
    counting: ClassVar[str] = "characters"
    # Every URL counts as this many units, whatever its length; None: URLs count as written.
    url_weight: ClassVar[int | None] = None
    # Whether bare domains ("example.com") count as URLs for url_weight.
    bare_domain_urls: ClassVar[bool] = False
    # Whether "@user@server" counts only as "@user" (Mastodon).
    mentions_count_local_part: ClassVar[bool] = False
    alt_text_unit: ClassVar[str] = "characters"
    # How an account is connected: "oauth2" (authorization code), "app_password" (Bluesky),
    # "none" (webhook, sandbox: set up by an admin, no sign-in).
    connect_method: ClassVar[str] = "oauth2"
    # True where the person types the server (a Mastodon instance, a Bluesky PDS).
    needs_server: ClassVar[bool] = False
    # True where a still-valid access token is itself exchanged for a new one (Instagram's
    # long-lived User tokens), so an account without a refresh token can still be renewed.
    renews_with_access_token: ClassVar[bool] = False
    # The network's API origin; settings.CXHUB_NETWORK_BASE_URLS may point it elsewhere (the
    # tests' servers). Stored on each account as its base_url.
    default_base_url: ClassVar[str] = ""

    # --- counting -----------------------------------------------------------------------------

    def count(self, text: str) -> int:
        """The text's length as the network counts it (code points by default)."""
        return len(text)

    def text_bytes(self, text: str) -> int:
        return textutil.utf8_length(text)

    def alt_text_length(self, alt_text: str) -> int:
        return len(alt_text)

    def render(self, text: str) -> str:
        """The text as the network will receive it."""
        return text

    def counter_spec(self, limits: Limits | None = None) -> dict[str, Any]:
        """What the compose page's live counter needs, as JSON-able data."""
        limits = limits or self.limits
        return {
            "channel": self.name,
            "label": self.label,
            "max": limits.max_text,
            "unit": limits.text_unit,
            "counting": self.counting,
            "url_weight": self.url_weight,
            "bare_domain_urls": self.bare_domain_urls,
            "mentions_count_local_part": self.mentions_count_local_part,
            "max_bytes": limits.max_text_bytes,
        }

    # --- validation ---------------------------------------------------------------------------

    def validate(
        self, text: str, media: Sequence[MediaInfo], *, limits: Limits | None = None
    ) -> list[Problem]:
        """Every problem with `text` and `media` for this network, errors and warnings."""
        limits = limits or self.limits
        problems = self._validate_text(text, media, limits)
        problems += self._validate_media(media, limits)
        return problems

    def _validate_text(
        self, text: str, media: Sequence[MediaInfo], limits: Limits
    ) -> list[Problem]:
        problems = []
        # Where an image is required, media_required already says what is missing.
        if not text.strip() and not media and not limits.requires_media:
            problems.append(Problem("empty", "error", "The post has no text and no image.", "body"))
        length = self.count(text)
        if length > limits.max_text:
            problems.append(
                Problem(
                    "text_too_long",
                    "error",
                    f"The text is {_n(length)} {limits.text_unit}; {self.label} allows "
                    f"{_n(limits.max_text)} ({_n(length - limits.max_text)} too many).",
                    "body",
                )
            )
        if limits.max_text_bytes is not None:
            size = self.text_bytes(text)
            if size > limits.max_text_bytes:
                problems.append(
                    Problem(
                        "text_too_many_bytes",
                        "error",
                        f"The text is {_n(size)} bytes in UTF-8; {self.label} allows "
                        f"{_n(limits.max_text_bytes)} ({_n(size - limits.max_text_bytes)} too "
                        "many). Letters outside the Latin alphabet and emoji take 2 to 4 bytes "
                        "each.",
                        "body",
                    )
                )
        if limits.max_hashtags is not None:
            tags = len(textutil.find_hashtags(text))
            if tags > limits.max_hashtags:
                problems.append(
                    Problem(
                        "too_many_hashtags",
                        "error",
                        f"The text has {_n(tags)} hashtags; {self.label} allows "
                        f"{_n(limits.max_hashtags)} ({_n(tags - limits.max_hashtags)} too many).",
                        "body",
                    )
                )
        if limits.max_mentions is not None:
            mentions = len(textutil.find_mentions(text))
            if mentions > limits.max_mentions:
                problems.append(
                    Problem(
                        "too_many_mentions",
                        "error",
                        f"The text mentions {_n(mentions)} accounts; {self.label} allows "
                        f"{_n(limits.max_mentions)} ({_n(mentions - limits.max_mentions)} too "
                        "many).",
                        "body",
                    )
                )
        return problems

    def _validate_media(self, media: Sequence[MediaInfo], limits: Limits) -> list[Problem]:
        problems = []
        if limits.requires_media and not media:
            problems.append(
                Problem(
                    "media_required",
                    "error",
                    f"{self.label} needs at least one image.",
                    "media",
                )
            )
        if len(media) > limits.max_media:
            problems.append(
                Problem(
                    "too_many_media",
                    "error",
                    f"The post has {_n(len(media))} images; {self.label} allows "
                    f"{_n(limits.max_media)} ({_n(len(media) - limits.max_media)} too many).",
                    "media",
                )
            )
        for index, item in enumerate(media):
            problems += self._validate_image(index, item, limits)
        return problems

    def _validate_image(self, index: int, item: MediaInfo, limits: Limits) -> list[Problem]:
        problems = []
        field = f"media[{index}]"
        name = f"Image {index + 1}"

        def add(code: str, message: str, severity: Severity = "error", at: str = field) -> None:
            problems.append(Problem(code, severity, message, at))

        if item.format not in limits.media_formats:
            accepted = ", ".join(sorted(limits.media_formats))
            add(
                "media_format_unsupported",
                f"{name} is {item.format}; {self.label} accepts {accepted}.",
            )
        max_bytes = limits.max_image_bytes
        if item.format == "GIF" and limits.max_gif_bytes is not None:
            max_bytes = limits.max_gif_bytes
        if item.bytes > max_bytes:
            add(
                "media_too_large",
                f"{name} is {_size(item.bytes)}; {self.label} allows {_size(max_bytes)} per "
                f"{'GIF' if item.format == 'GIF' else 'image'} "
                f"({_plural(item.bytes - max_bytes, 'byte')} too many).",
            )
        dimensions = f"{_n(item.width)} × {_n(item.height)} pixels"
        if limits.max_image_width is not None and item.width > limits.max_image_width:
            add(
                "media_too_wide",
                f"{name} is {dimensions}; {self.label} allows images up to "
                f"{_n(limits.max_image_width)} pixels wide.",
            )
        if limits.max_image_height is not None and item.height > limits.max_image_height:
            add(
                "media_too_tall",
                f"{name} is {dimensions}; {self.label} allows images up to "
                f"{_n(limits.max_image_height)} pixels high.",
            )
        pixels = item.width * item.height
        if limits.max_image_pixels is not None and pixels > limits.max_image_pixels:
            add(
                "media_too_many_pixels",
                f"{name} is {dimensions} ({_n(pixels)} pixels); {self.label} allows "
                f"{_n(limits.max_image_pixels)} pixels.",
            )
        if item.width > 0 and item.height > 0:
            ratio = item.width / item.height
            low, high = limits.min_aspect_ratio, limits.max_aspect_ratio
            # A hair of tolerance so that 1080 × 1350 is exactly 4:5.
            if (low is not None and ratio < low - 1e-9) or (
                high is not None and ratio > high + 1e-9
            ):
                if low is not None and high is not None:
                    span = f"{_ratio(low)} to {_ratio(high)}"
                elif low is not None:
                    span = f"{_ratio(low)} or wider"
                else:
                    span = f"up to {_ratio(high or 0)}"
                add(
                    "media_aspect_ratio",
                    f"{name} is {dimensions}, an aspect ratio (width:height) of "
                    f"{_ratio(ratio)}; {self.label} accepts {span}.",
                )
        if limits.alt_text_supported:
            alt = item.alt_text or ""
            if not alt.strip():
                add(
                    "alt_text_missing",
                    f"{name} has no alt text. Describe it for people who cannot see it.",
                    at=f"{field}.alt_text",
                )
            elif limits.max_alt_text is not None:
                length = self.alt_text_length(alt)
                if length > limits.max_alt_text:
                    add(
                        "alt_text_too_long",
                        f"The alt text of {name.lower()} is {_n(length)} {self.alt_text_unit}; "
                        f"{self.label} allows {_n(limits.max_alt_text)} "
                        f"({_n(length - limits.max_alt_text)} too many).",
                        at=f"{field}.alt_text",
                    )
        return problems

    # --- publishing (added later) -------------------------------------------------------------

    # True where publish and reconcile take `reply_to` (the network has replies or comments).
    replies: ClassVar[bool] = False
    # Whether a reply may carry images (False where a reply is a text comment: Facebook,
    # Instagram, LinkedIn); a network that needs an image on a post never needs one on a reply.
    reply_media: ClassVar[bool] = True

    def publish(
        self,
        account: Any,
        text: str,
        media: Sequence[Any],
        *,
        idempotency_key: str,
        reply_to: "ReplyTo | None" = None,
    ) -> Any:
        """Send the post (with `reply_to`: as the network's reply to that item, or comment on
        it); raise RetryableError, PermanentError, AuthExpired or UnknownOutcome."""
        raise NotImplementedError(f"{self.label}: publish is not implemented yet")

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: "ReconcileHints | None" = None,
        reply_to: "ReplyTo | None" = None,
    ) -> Any:
        """After an unknown outcome: find whether the post (or the reply to `reply_to`) went
        out, before any retry. A Published when it did, None when it surely did not;
        AmbiguousMatch (with the candidates) when a person must decide."""
        raise NotImplementedError(f"{self.label}: reconcile is not implemented yet")

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """The figures of our posts `external_ids` (as publish stored them) on `account`: one
        entry per post the network answered for (a post it no longer has: `deleted`), read in as
        few calls as the network allows. Changes nothing; raises as fetch_inbound does."""
        raise NotImplementedError(f"{self.label}: fetch_engagement is not implemented yet")

    def refresh_token(self, account: Any) -> Any:
        """Renew the account's token and store it (accounts.tokens.store_refreshed, which locks
        the row so two workers never spend one refresh token); raise AuthExpired when the
        network refuses, RetryableError when it cannot be reached."""
        raise NotImplementedError(f"{self.label}: refresh_token is not implemented yet")

    # --- what comes back (issue 17) -----------------------------------------------------------

    # True where fetch_inbound is implemented for this network.
    hears_back: ClassVar[bool] = False

    def fetch_inbound(self, account: Any, cursor: str, *, limit: int = 40) -> InboundPage:
        """The replies, mentions and comments that came to `account` since `cursor` ("" on the
        first call: the newest page only, no back-fill of years), at most `limit` per call.
        Calls nothing that changes anything; raise RetryableError (with retry_after when the
        network says), AuthExpired or PermanentError as publish does."""
        raise NotImplementedError(f"{self.label}: fetch_inbound is not implemented yet")

    # The PublicQuery kinds this network answers (an empty set: it offers no public search or
    # timelines that listening could read), and what it cannot see, in a sentence for the lead
    # who sets up a watch.
    listens: ClassVar[frozenset[str]] = frozenset()
    listening_blind_spots: ClassVar[str] = ""

    def search_public(
        self, account: Any, query: PublicQuery, cursor: str, *, limit: int = 40
    ) -> PublicPage:
        """Public posts for `query` since `cursor`, read with `account`'s credentials: "" on the
        first call gives the newest page only (no back-fill); later calls give what is newer
        than the cursor, walking a gap longer than a page across calls (`more` says to call
        again now) so that nothing between two calls is skipped and nothing is given twice
        once its page's cursor is stored. At most `limit` posts per call. Calls nothing that
        changes anything; raises RetryableError (with retry_after when the network says),
        AuthExpired or PermanentError as fetch_inbound does."""
        raise NotImplementedError(f"{self.label} offers no public search that cxhub reads")

    def items_gone(self, account: Any, network_ids: Sequence[str]) -> set[str]:
        """Which of these items that came to `account` (ids as fetch_inbound gave them) the
        network no longer has or shows (deleted by their author, hidden, taken down), read in
        as few calls as the network allows. An item the network does not answer for clearly is
        not gone: a kept item is only ever marked, so a wrong "gone" is worse than a late one.
        Changes nothing; raises as fetch_inbound does."""
        raise NotImplementedError(f"{self.label}: items_gone is not implemented yet")

    # --- connecting ---------------------------------------------------------------------------

    def oauth_spec(self, base_url: str) -> OAuthSpec:
        """The network's OAuth endpoints for an account whose API lives at `base_url`."""
        raise NotImplementedError(f"{self.label} is not connected by OAuth")

    def oauth_client(self, base_url: str, *, redirect_uri: str) -> OAuthClient:
        """cxhub's client registration: from settings.CXHUB_OAUTH_CLIENTS by default; Mastodon
        registers itself with each server."""
        return configured_client(self)

    def identify(self, base_url: str, tokens: TokenSet) -> list[Identity]:
        """The accounts a fresh grant can publish as (one for most networks; a Facebook user
        may manage several Pages). Raise PermanentError when there is none."""
        raise NotImplementedError(f"{self.label}: identify is not implemented yet")

    def revoke(self, account: Any) -> bool:
        """Revoke the account's tokens at the network where it allows; False where it has no
        revocation (the tokens are forgotten by cxhub either way)."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def configured_client(channel: Channel) -> OAuthClient:
    """cxhub's registration with `channel`'s network, from settings.CXHUB_OAUTH_CLIENTS."""
    entry = settings.CXHUB_OAUTH_CLIENTS.get(channel.name) or {}
    client_id = str(entry.get("client_id") or "")
    if not client_id:
        raise PermanentError(
            f"cxhub is not registered with {channel.label}: set its client_id (and "
            f'client_secret) in CXHUB_OAUTH_CLIENTS, e.g. {{"{channel.name}": {{"client_id": '
            '"…", "client_secret": "…"}}.'
        )
    return OAuthClient(client_id=client_id, client_secret=str(entry.get("client_secret") or ""))
