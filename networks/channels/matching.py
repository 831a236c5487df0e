"""Whether a post a network lists is the one we sent, whatever the network did to its text: one
matcher for every channel whose reconcile compares content (Mastodon, X, Facebook Pages,
LinkedIn, Instagram). Pure Python: no models, no network.

Each channel turns what its network lists into `Listed` posts, their text as plain text (HTML
turned into text by `text_from_html`, entities decoded, its own link and mention markup undone),
and asks `find`. Both texts, ours as sent and theirs, are reduced to one comparable form:

- Unicode NFC, and white space (line breaks, paragraphs) folded to one space;
- every link stands for "a link" in the text, and its address is compared apart, without its
  scheme, "www." or trailing slash; a shortened link (t.co …) is an address unknown, which agrees
  with any: a network may shorten links, or list them expanded;
- every mention is "@user" in lower case: "@user@server" ≡ "@user" (a server shows the full form
  of an account it cannot resolve and the short one of an account it can, as a link);
- the hashtags that end the text are a set: their order, case and the break before them do not
  matter (networks move them or render them as links).

A listed post made before the target's first try less CLOCK_SKEW, or whose id another target of
the account already holds (hints.known_ids), is never ours and is not looked at. Of the others,
one is a *clear* match when its comparable text is ours, its links agree and it carries as many
images as ours (or the network did not say); a *near* match when the text is ours but the images
or links differ, or the texts are highly alike (SIMILAR) without being equal. (A post without
text, images only, matches every other one without text and as many images.) `find` answers the
one clear match; None when nothing matches at all (dispatch may send again); and raises
AmbiguousMatch, with the candidates for a person, when two or more match clearly or none clearly
but some nearly.
"""

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import regex

from . import text as textutil
from .base import ReconcileHints
from .errors import AmbiguousMatch, Candidate

# How far apart a network's clock and ours may be: a post stamped this much before our first try
# may still be ours.
CLOCK_SKEW = timedelta(minutes=5)
# Two comparable texts at least this alike (difflib's ratio), yet not equal, are a near match.
SIMILAR = 0.9
# Only the start of very long texts is measured for similarity (difflib is quadratic).
SIMILARITY_CHARS = 2_000
# Link shorteners: their addresses say nothing about where they lead.
SHORTENERS = frozenset({"t.co", "bit.ly", "buff.ly", "ow.ly", "lnkd.in", "fb.me", "tinyurl.com"})

# Stands for a link in the comparable text: a character no post contains.
_LINK = "\ufffc"
_SPACE = regex.compile(r"\s+")
# "@user" or "@user@server.example"; not inside an e-mail address or a path.
_MENTION = regex.compile(r"(?<![=/\w])[@＠](\w+(?:[.-]\w+)*)(?:[@＠][\w-]+(?:\.[\w-]+)+)?(?!\w)")
_HASHTAG = regex.compile(r"[#＃]\w*[^\W\d_]\w*")


@dataclass(frozen=True)
class Listed:
    """One post as its network lists it, reduced to what matching needs."""

    external_id: str
    # Plain text, as a person reads it on the network.
    text: str
    created_at: datetime | None = None
    # How many images it carries; None when the network did not say.
    media_count: int | None = None
    external_url: str = ""


@dataclass(frozen=True)
class Comparable:
    """A text reduced to what survives every network's rewriting."""

    body: str
    tags: frozenset[str]
    # Each link's address, in order (None: shortened, unknown).
    links: tuple[str | None, ...]

    def flat(self) -> str:
        return " ".join([self.body, *sorted(self.tags)]).strip()


def comparable(text: str) -> Comparable:
    text = textutil.nfc(text or "")
    spans = textutil.find_urls(text, bare_domains=True)
    pieces, last = [], 0
    for span in spans:
        pieces.append(_mentions_folded(text[last : span.start]))
        pieces.append(f" {_LINK} ")
        last = span.end
    pieces.append(_mentions_folded(text[last:]))
    words = _SPACE.sub(" ", "".join(pieces)).strip().split(" ")
    tags = []
    while words and _HASHTAG.fullmatch(words[-1]):
        tags.append(words.pop()[1:].casefold())
    return Comparable(
        body=" ".join(words),
        tags=frozenset(tags),
        links=tuple(_link_key(span.text) for span in spans),
    )


def _mentions_folded(text: str) -> str:
    return _MENTION.sub(lambda m: "@" + m.group(1).casefold(), text)


def _link_key(url: str) -> str | None:
    """A link's address, as comparable as it gets; None for a shortened one."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").casefold().removeprefix("www.")
    if host in SHORTENERS:
        return None
    path = unquote(parts.path).rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def _links_agree(ours: tuple[str | None, ...], theirs: tuple[str | None, ...]) -> bool:
    return len(ours) == len(theirs) and all(
        a is None or b is None or a == b for a, b in zip(ours, theirs, strict=True)
    )


def similarity(a: Comparable, b: Comparable) -> float:
    x, y = a.flat()[:SIMILARITY_CHARS], b.flat()[:SIMILARITY_CHARS]
    matcher = difflib.SequenceMatcher(None, x, y, autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR or matcher.quick_ratio() < SIMILAR:
        return matcher.quick_ratio()
    return matcher.ratio()


def _images(count: int) -> str:
    return "1 image" if count == 1 else f"{count} images"


def compare(
    ours: Comparable, theirs: Comparable, *, media: int | None, their_media: int | None
) -> tuple[str, str]:
    """("clear" | "near" | "", why) for one listed post against ours."""
    same_text = ours.body == theirs.body and ours.tags == theirs.tags
    media_differs = media is not None and their_media is not None and media != their_media
    if same_text:
        reasons = []
        if media_differs:
            reasons.append(f"{_images(their_media or 0)} instead of {media}")
        if not _links_agree(ours.links, theirs.links):
            reasons.append("a different link")
        if not reasons:
            return "clear", "same text"
        return "near", "same text, " + " and ".join(reasons)
    alike = similarity(ours, theirs)
    if alike >= SIMILAR:
        why = f"text differs: {alike:.0%} alike"
        if media_differs:
            why += f", {_images(their_media or 0)} instead of {media}"
        return "near", why
    return "", ""


def find(
    text: str,
    listed: Iterable[Listed],
    *,
    hints: ReconcileHints | None,
    network: str,
    window: timedelta,
    now: datetime | None = None,
) -> Listed | None:
    """The one listed post that is clearly ours; None when none is ours at all. Raise
    AmbiguousMatch when two or more are clearly ours, or none clearly and some nearly.

    Posts made before `hints.since` less CLOCK_SKEW (before `now - window` when dispatch gave
    no first try) and posts in `hints.known_ids` are never ours."""
    hints = hints or ReconcileHints()
    now = now or datetime.now(UTC)
    since = (hints.since - CLOCK_SKEW) if hints.since is not None else (now - window)
    ours = comparable(text)
    clear: list[tuple[Listed, str]] = []
    near: list[tuple[Listed, str]] = []
    for post in listed:
        if not post.external_id or post.external_id in hints.known_ids:
            continue
        if post.created_at is not None and post.created_at < since:
            continue
        kind, why = compare(
            ours,
            comparable(post.text),
            media=hints.media_count,
            their_media=post.media_count,
        )
        if kind == "clear":
            clear.append((post, why))
        elif kind == "near":
            near.append((post, why))
    if len(clear) == 1:
        return clear[0][0]
    if not clear and not near:
        return None
    if clear:
        summary = f"{len(clear)} posts with this text since {_when(since)}"
    else:
        summary = f"no post with this exact text since {_when(since)}, but {len(near)} alike"
    candidates = [_candidate(post, why) for post, why in clear + near]
    raise AmbiguousMatch(
        f"{network}: {summary}; cxhub cannot tell whether one is this post, so it does not "
        "send it again until a person decides.",
        candidates=candidates,
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _candidate(post: Listed, why: str) -> Candidate:
    return Candidate(
        post.external_id,
        external_url=post.external_url,
        text=post.text,
        created_at=post.created_at.isoformat() if post.created_at else "",
        why=why,
    )


def parse_time(value: object) -> datetime | None:
    """An aware datetime from an ISO 8601 string ("…Z", "…+00:00", Graph's "…+0000") or from
    milliseconds since the epoch (LinkedIn); None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip().replace("Z", "+00:00")
    if regex.search(r"[+-]\d{4}$", raw):
        raw = f"{raw[:-2]}:{raw[-2:]}"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Text(HTMLParser):
    """HTML as a person reads it: paragraphs and line breaks kept as line breaks, every tag
    dropped, entities decoded. A link's words are kept as written in it (a server's hidden
    spans included: Mastodon hides a long address's ends in spans it still sends)."""

    _BLOCKS = frozenset({"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag in self._BLOCKS:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def text_from_html(content: str) -> str:
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    return "".join(parser.out).strip()
