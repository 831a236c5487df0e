"""Text helpers shared by the channels: grapheme clusters, URLs, emoji sequences, hashtags,
mentions and UTF-8 length, each as simple as the networks' own rules allow.

Grapheme clusters use the `regex` module's \\X (Unicode extended grapheme clusters, as Bluesky's
lexicon `maxGraphemes` and Mastodon's `grapheme_length` count them).
"""

import unicodedata
from typing import NamedTuple

import regex


class Span(NamedTuple):
    start: int
    end: int
    text: str


_GRAPHEME = regex.compile(r"\X")


def grapheme_count(text: str) -> int:
    """Number of user-perceived characters (extended grapheme clusters)."""
    return sum(1 for _ in _GRAPHEME.finditer(text))


def utf8_length(text: str) -> int:
    """Length in bytes once encoded as UTF-8 (lone surrogates count as 3, as they are sent)."""
    return len(text.encode("utf-8", "surrogatepass"))


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- URLs -------------------------------------------------------------------------------------
#
# "Reasonable" detection, not a full twitter-text port: http(s)://… anywhere, and bare domains
# (including www.…) whose top-level domain is one of the common ones below. A URL stops at
# whitespace, quotes, angle brackets and CJK text, and loses trailing punctuation.

_TLD_WORDS = (
    "com org net edu gov mil int info biz name pro mobi app dev io ai co me tv cc ly gl gg "
    "to fm news blog online site website tech store shop cloud page link xyz eu asia "
    "ac ae ar at au be bg br by ca ch cl cn cz de dk ee es fi fr gr hk hr hu id ie il in is "
    "it jp ke kr lt lu lv ma mx my ng nl no nz pe ph pk pl pt ro rs ru sa se sg si sk th tr "
    "tw ua uk us vn za"
)
COMMON_TLDS = frozenset(_TLD_WORDS.split())

# twitter-text's valid_url_preceding_chars: a bare domain may not follow these.
_NOT_BEFORE_BARE = r"A-Za-z0-9@＠$#＃\-_./"
_URL_CHAR = r"[^\s<>\"'\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = "|".join(sorted(COMMON_TLDS, key=len, reverse=True))

_SCHEME_URL = regex.compile(rf"https?://{_URL_CHAR}+", regex.IGNORECASE)
_BARE_URL = regex.compile(
    rf"(?<![{_NOT_BEFORE_BARE}])(?:{_LABEL}\.)+(?:{_TLD})(?![a-z0-9-])"
    rf"(?::\d{{1,5}})?(?:[/?#]{_URL_CHAR}*)?",
    regex.IGNORECASE,
)
_TRAILING = ".,:;!?'\"*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim(url: str) -> str:
    """Drop trailing punctuation, but keep a closing bracket that closes one inside the URL
    (https://en.wikipedia.org/wiki/Foo_(bar))."""
    while url:
        last = url[-1]
        unbalanced = last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])
        if last not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


def find_urls(text: str, *, bare_domains: bool = True) -> list[Span]:
    """URLs in `text`, in order, without overlaps. With `bare_domains`, "example.com/path" and
    "www.example.org" count too (as X counts them); without, only http(s)://… (Mastodon)."""
    spans: list[Span] = []
    for match in _SCHEME_URL.finditer(text):
        url = _trim(match.group())
        if len(url) > len(match.group().split("://", 1)[0]) + 3:
            spans.append(Span(match.start(), match.start() + len(url), url))
    if bare_domains:
        for match in _BARE_URL.finditer(text):
            url = _trim(match.group())
            start, end = match.start(), match.start() + len(url)
            if url and not any(s.start < end and start < s.end for s in spans):
                spans.append(Span(start, end, url))
    return sorted(spans)


def without_spans(text: str, spans: list[Span], replacement: str = " ") -> str:
    """`text` with each span replaced (used to keep URLs out of hashtag and mention counts)."""
    out, last = [], 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(replacement)
        last = span.end
    out.append(text[last:])
    return "".join(out)


# --- Emoji sequences ---------------------------------------------------------------------------
#
# One emoji as people see it: a keycap (1️⃣), a flag (two regional indicators, or a black flag
# with tag characters for 🏴󠁧󠁢󠁳󠁣󠁴󠁿), or a pictograph with its presentation selector and skin tone,
# joined to more of them by zero-width joiners (👩‍👩‍👧‍👦).

_PICTOGRAPH = r"\p{Extended_Pictographic}[\ufe0e\ufe0f]?\p{Emoji_Modifier}?"
EMOJI_SEQUENCE = regex.compile(
    r"[0-9#*]\ufe0f?\u20e3"
    r"|\p{Regional_Indicator}{2}"
    rf"|{_PICTOGRAPH}[\U000e0020-\U000e007f]*(?:\u200d{_PICTOGRAPH})*"
    r"|\p{Emoji_Modifier}"
)
_EMOJI_PRESENTATION = regex.compile(r"\p{Emoji_Presentation}")


def find_emoji_sequences(text: str) -> list[Span]:
    """Emoji sequences in `text`. A pictograph that is text by default (©, ®, ↔ …) is an emoji
    only with the emoji presentation selector U+FE0F or inside a joined sequence."""
    spans = []
    for match in EMOJI_SEQUENCE.finditer(text):
        seq = match.group()
        if len(seq) == 1 and not _EMOJI_PRESENTATION.fullmatch(seq):
            continue
        spans.append(Span(match.start(), match.end(), seq))
    return spans


# --- Hashtags and mentions ---------------------------------------------------------------------

_HASHTAG = regex.compile(r"(?<![\w#＃&])[#＃]\w*[^\W\d]\w*")
_MENTION = regex.compile(r"(?<![\w@＠])[@＠]\w(?:[\w.]*\w)?")


def find_hashtags(text: str) -> list[str]:
    """#tags outside URLs; a tag needs a letter (#2024 alone is not one)."""
    return _HASHTAG.findall(without_spans(text, find_urls(text)))


def find_mentions(text: str) -> list[str]:
    """@handles outside URLs; an e-mail address is not a mention."""
    return _MENTION.findall(without_spans(text, find_urls(text)))
