"""The signals on each inbox item, worked out offline: the language it is written in, its
sentiment, and which of the organisation's watch terms it mentions.

Pure Python (no models, no database, no network), so ingestion, the sandbox and the tests call
it alike. The language detector and the sentiment analyser are built on first use, once per
process, and shared by its threads.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

import regex

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

T = TypeVar("T")


class _OncePerProcess(Generic[T]):
    """A value built on first use, and only once even when several threads ask at the same
    moment: the detector's model costs half a second and ~100 MB, so it must not be built twice,
    nor at import, which every web process does whether or not it ever reads an item."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value


# Language ----------------------------------------------------------------------------------

# The languages a public body's inbox meets: the EU's official ones (Maltese included), the
# other national and regional languages of Europe, and those of the communities that public
# services in Europe and North America most often answer. Limiting the detector to them keeps it
# from naming a rare neighbour (Aragonese for Spanish, Venetian for Italian) for a short reply:
# on 901 labelled texts of 20 characters or fewer (Django's own translations in 20 languages,
# and replies written for the test), accuracy rose from 77% with all of py3langid's languages to
# 83% with these.
_EU_OFFICIAL = "bg cs da de el en es et fi fr ga hr hu it lt lv mt nl pl pt ro sk sl sv"
_EUROPE_OTHER = "ca eu gl cy gd lb is no sq sr bs mk"
_COMMUNITIES = "ar fa ps ur hi bn pa ta zh ja ko vi tl ru uk tr so sw am ku he id ms th"
DETECTABLE_LANGUAGES: frozenset[str] = frozenset(
    f"{_EU_OFFICIAL} {_EUROPE_OTHER} {_COMMUNITIES}".split()
)

# The detector is trusted over the author's declaration from this probability on: measured,
# 99.8% of the texts it named at or above 0.7 were right (74% of all texts reached it; half of
# those of 20 characters or fewer). Its probabilities fall with the length of the text, so a
# reply too short to tell ("ok", "merci") stays below it.
CONFIDENT = 0.7

# Below this probability the detector rules a declared language out. It is about half of an even
# share among the detectable languages, so a text with nothing to go on ("ok") keeps its
# declaration, while one plainly in another language does not: measured with every text declared
# "en" (a client's default), wrong answers fell from 23% to 8% at no cost to right declarations.
NOT_RULED_OUT = 0.01

# Codes that networks still send for languages whose ISO 639-1 code changed, and Norwegian
# Bokmål, which the detector knows as Norwegian ("no").
_CODE_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "nb": "no"}

# An address is no language: links, and any word with an @ in it (a mention on X, a handle on
# Bluesky or the fediverse, an e-mail address). Hashtags are often English whatever the text is.
_ADDRESSES = regex.compile(r"https?://\S+|www\.\S+|\S*@\S+")
_HASHTAGS = regex.compile(r"#\w+")
# Emoji and other symbols, with the joiners, selectors and keycaps that build emoji sequences.
_SYMBOLS = regex.compile(r"[\p{S}\p{C}\p{Me}\uFE0E\uFE0F]+")
_LETTER = regex.compile(r"\p{L}")
# Between a language tag's parts: "pt-BR", "zh_Hant".
_TAG_SEPARATOR = regex.compile(r"[-_]")


def detect_language(text: str, *, declared: str = "") -> str:
    """The ISO 639-1 code of the language `text` is written in, or "" when it cannot be told.

    `declared` is what the network says the author chose (any case, a region allowed: "pt-BR").
    The rule, in order:
    1. a text with no letters once links, mentions, hashtags and emoji are taken out is in no
       language, whatever was declared: "";
    2. the detector's answer when it is CONFIDENT: clients often declare a default rather than
       what was written;
    3. the declaration, unless the detector rules it out (NOT_RULED_OUT): it is the author's
       word, and short texts give the detector too little to contradict it;
    4. otherwise "": never a guess, since a wrong language sends the text to the wrong analyser.
    """
    content = _language_content(text)
    if not _LETTER.search(content):
        return ""
    identifier = _language_identifier.get()
    best, probability = identifier.classify(content)
    if probability >= CONFIDENT:
        return best
    claim = _iso_639_1(declared)
    if claim and _probability_of(claim, content, identifier) >= NOT_RULED_OUT:
        return claim
    return ""


def _language_content(text: str) -> str:
    """The words of `text`, without what is written the same in every language."""
    text = _ADDRESSES.sub(" ", text)
    text = _HASHTAGS.sub(" ", text)
    text = _SYMBOLS.sub(" ", text)
    return " ".join(text.split())


def _probability_of(language: str, content: str, identifier: LanguageIdentifier) -> float:
    """How likely the detector finds it that `content` is in `language`; 1.0 for a language it
    does not know, which it cannot rule out. A second pass over the text (rank() costs about
    twice classify()), taken only for the quarter of texts the detector is unsure of."""
    if language not in DETECTABLE_LANGUAGES:
        return 1.0
    return dict(identifier.rank(content))[language]


def _iso_639_1(code: str) -> str:
    """The primary language of a tag ("en-GB", "pt_BR", "FR") as ISO 639-1, "" if it is none."""
    primary = _TAG_SEPARATOR.split(code.strip(), maxsplit=1)[0].lower()
    primary = _CODE_ALIASES.get(primary, primary)
    if len(primary) == 2 and primary.isascii() and primary.isalpha():
        return primary
    return ""


def _build_language_identifier() -> LanguageIdentifier:
    # Imported here, not at the top: py3langid brings numpy and its model, which a process that
    # never reads an item should not load.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # norm_probs gives probabilities (summing to 1 over the languages) that CONFIDENT can be
    # compared with. set_languages is the only call that changes the identifier, and it happens
    # here, before any thread can see it; rank() only reads the model and allocates its own
    # scores, so one identifier is safely shared.
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(sorted(DETECTABLE_LANGUAGES))
    return identifier


_language_identifier = _OncePerProcess(_build_language_identifier)


# Sentiment ---------------------------------------------------------------------------------

SentimentLabel = Literal["positive", "neutral", "negative", "not_scored"]

# VADER's own thresholds on its compound score, used for every analyser so labels compare.
POSITIVE_FROM = 0.05
NEGATIVE_FROM = -0.05


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one text: a label, and the compound score (-1..1) behind it, None when
    the text was not scored."""

    label: SentimentLabel
    score: float | None


NOT_SCORED = Sentiment(label="not_scored", score=None)


class SentimentAnalyser(Protocol):
    """Scores texts in some languages: `score` answers -1 (most negative) to 1 (most positive),
    like VADER's compound score, for a text in one of `languages` (ISO 639-1 codes)."""

    languages: Collection[str]

    def score(self, text: str) -> float: ...


# One analyser per language. Registration happens at start-up (an AppConfig.ready()); reads
# after that only look up, so no lock is needed.
_analysers: dict[str, SentimentAnalyser] = {}


def register_analyser(analyser: SentimentAnalyser) -> None:
    """Make `analyser` the one that scores its languages. It replaces an analyser registered
    earlier for the same language, so a deployment can put a better one in VADER's place."""
    codes = [_iso_639_1(code) for code in analyser.languages]
    if not codes or not all(codes):
        raise ValueError(f"{analyser!r} must name its languages as ISO 639-1 codes")
    for code in codes:
        _analysers[code] = analyser


def scored_languages() -> frozenset[str]:
    """The languages an analyser scores (for the inbox's filters and explanations)."""
    return frozenset(_analysers)


def score_sentiment(text: str, language: str) -> Sentiment:
    """The sentiment of `text`, written in `language` (ISO 639-1, "" when unknown): scored by the
    language's analyser, or NOT_SCORED when no analyser reads that language, none is known, or
    nothing is left to score; never guessed through another language's analyser."""
    analyser = _analysers.get(_iso_639_1(language))
    # Links and handles are names, not opinions ("@HappyCity", "@bad_news_bot").
    content = " ".join(_ADDRESSES.sub(" ", text).split())
    if analyser is None or not content:
        return NOT_SCORED
    score = float(analyser.score(content))
    if not -1.0 <= score <= 1.0:  # NaN fails this too
        raise ValueError(f"{analyser!r} scored {score}, outside -1..1")
    return Sentiment(label=_label(score), score=score)


def _label(score: float) -> SentimentLabel:
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_FROM:
        return "negative"
    return "neutral"


def _build_vader() -> SentimentIntensityAnalyzer:
    # Imported here: the analyser reads its two lexicons (~550 kB) from the installed package when
    # built, which only a process that scores English should pay for. It needs no network.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


_vader = _OncePerProcess(_build_vader)


class VaderAnalyser:
    """English, by VADER (vaderSentiment): a lexicon and rules tuned for social media, which
    reads emoji, capitals, "!!!", "but" and negations. polarity_scores only reads the lexicons,
    so one analyser is shared by every thread."""

    languages: Collection[str] = frozenset({"en"})

    def score(self, text: str) -> float:
        return float(_vader.get().polarity_scores(text)["compound"])

    def __repr__(self) -> str:
        return "VaderAnalyser()"


register_analyser(VaderAnalyser())


# Watch terms -------------------------------------------------------------------------------

# Scripts written without spaces between words: a term in them matches inside a run of text,
# since no word boundary would ever be found there.
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")
_WORD_CHAR = regex.compile(r"\w")
_WORD_RUN = regex.compile(r"\w+")


def matching_terms(text: str, terms: Sequence[str]) -> list[str]:
    """The watch terms that `text` mentions, as given and in the order given, each once.

    - Case and accents do not matter, on either side: both are folded (`fold`), so "recensement"
      matches "Recensement" and "récensement", and "Zürich" matches "ZURICH".
    - Whole words: "census" matches "#census" and "census," but not "censuses" or "census2026";
      a trailing "*" makes a prefix: "census*" matches "censuses". Only the term's edges that are
      word characters need a boundary ("#census" must be a hashtag; "C++" ends where it ends),
      and none is needed in scripts written without spaces (Chinese, Japanese, Thai...).
    - A phrase's words match with any whitespace between them (spaces, line breaks, tabs).
    - Empty terms (and a lone "*") are ignored.
    """
    return term_matcher(tuple(terms)).match(text)


@lru_cache(maxsize=256)
def term_matcher(terms: tuple[str, ...]) -> TermMatcher:
    """The matcher of these terms, built once per process (a watch's terms change rarely)."""
    return TermMatcher(terms)


class TermMatcher:
    """Many terms checked against one text in about the time of one: the text is folded and cut
    into its words once, and only the terms whose first word is among them (or, for a one-word
    prefix, starts one of them) are tried with their pattern. Terms that cannot be indexed so
    (in scripts written without spaces, or with no word character) are always tried. The
    answer is `matching_terms`' answer: the index only skips terms that cannot match.

    Why the index is sound: a term's pattern needs a boundary before its first word character
    unless the term starts with a mark ("#census"), after which the text's run of word
    characters starts there too; and the run ends where the term's does (a mark, the space
    before its next word, or the boundary after its last word). So the term's first run of word
    characters is a whole word of the folded text, except for a one-word prefix term ("census*"),
    whose run only starts one."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = tuple(dict.fromkeys(terms))
        self._order = {term: index for index, term in enumerate(self.terms)}
        self._by_word: dict[str, list[str]] = {}
        self._by_prefix: dict[str, list[str]] = {}
        self._always: list[str] = []
        for term in self.terms:
            words = fold(term).split()
            if _term_pattern(term) is None:
                continue
            run = _WORD_RUN.search(words[0])
            if run is None or _UNSPACED.search(run.group()):
                self._always.append(term)
            elif (
                len(words) == 1
                and words[0].endswith("*")
                and run.end() == len(words[0].rstrip("*"))
            ):
                self._by_prefix.setdefault(run.group(), []).append(term)
            else:
                self._by_word.setdefault(run.group(), []).append(term)
        self._prefix_lengths = sorted({len(prefix) for prefix in self._by_prefix})

    def match(self, text: str) -> list[str]:
        """The terms `text` mentions, in the order given, each once."""
        folded = fold(text)
        words = set(_WORD_RUN.findall(folded))
        candidates = set(self._always)
        for word in words:
            found = self._by_word.get(word)
            if found:
                candidates.update(found)
            for length in self._prefix_lengths:
                if length > len(word):
                    break
                found = self._by_prefix.get(word[:length])
                if found:
                    candidates.update(found)
        hits = [term for term in candidates if _term_pattern(term).search(folded)]
        return sorted(hits, key=self._order.__getitem__)


def fold(text: str) -> str:
    """`text` without case or accents: casefolded, decomposed (NFKD: also turns ligatures and
    full-width forms into plain letters), and stripped of combining marks. Casefolding comes
    first since it may itself add a mark ("İ" becomes "i" with a dot above)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> regex.Pattern[str] | None:
    """The pattern that finds `term` in folded text; None for a term with nothing to find.
    Cached: an organisation's few hundred terms are checked against every item it receives."""
    words = fold(term).split()
    prefix = bool(words) and words[-1].endswith("*")
    if prefix:
        words[-1] = words[-1].rstrip("*")
        words = [word for word in words if word]
    if not words:
        return None
    body = r"\s+".join(regex.escape(word) for word in words)
    before = r"(?<!\w)" if _needs_boundary(words[0][0]) else ""
    after = r"(?!\w)" if not prefix and _needs_boundary(words[-1][-1]) else ""
    return regex.compile(before + body + after)


def _needs_boundary(char: str) -> bool:
    return bool(_WORD_CHAR.match(char)) and not _UNSPACED.match(char)
