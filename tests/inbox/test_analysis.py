"""The signals on an inbox item (inbox/analysis.py): its language, its sentiment and the watch
terms it mentions. No database: the module is pure Python."""

import math
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inbox import analysis
from inbox.analysis import (
    DETECTABLE_LANGUAGES,
    NOT_SCORED,
    Sentiment,
    detect_language,
    fold,
    matching_terms,
    register_analyser,
    score_sentiment,
    scored_languages,
)

ROOT = Path(__file__).resolve().parents[2]

# A reply to a council about its bins, in the languages a public body meets.
REPLIES = {
    "en": "Thanks for the quick answer, the bins were collected this morning!",
    "fr": "Merci pour la réponse rapide, les poubelles ont été ramassées ce matin !",
    "es": "¡Gracias por la respuesta tan rápida! Ya recogieron la basura esta mañana.",
    "de": "Danke für die schnelle Antwort, der Müll wurde heute früh abgeholt!",
    "it": "Grazie per la risposta veloce, i rifiuti sono stati ritirati stamattina!",
    "pt": "Obrigado pela resposta rápida, o lixo foi recolhido esta manhã!",
    "nl": "Bedankt voor het snelle antwoord, het afval is vanochtend opgehaald!",
    "pl": "Dziękuję za szybką odpowiedź, śmieci zostały odebrane dziś rano!",
    "sv": "Tack för det snabba svaret, soporna hämtades i morse!",
    "ro": "Mulțumesc pentru răspunsul rapid, gunoiul a fost ridicat azi-dimineață!",
    "tr": "Hızlı cevabınız için teşekkürler, çöpler bu sabah toplandı!",
    "el": "Ευχαριστώ για τη γρήγορη απάντηση, τα σκουπίδια μαζεύτηκαν σήμερα το πρωί!",
    "uk": "Дякую за швидку відповідь, сміття вивезли сьогодні вранці!",
    "ar": "شكرا على الرد السريع، تم جمع القمامة هذا الصباح!",
    "zh": "谢谢你们的快速回复，垃圾今天早上已经收走了！",
}


class FixedAnalyser:
    """Scores every text the same: for testing the registry and the labels."""

    def __init__(self, languages, value):
        self.languages = languages
        self.value = value
        self.texts = []

    def score(self, text):
        self.texts.append(text)
        return self.value


@pytest.fixture
def analysers(monkeypatch):
    """The analyser registry, restored after the test (VADER for English only)."""
    monkeypatch.setattr(analysis, "_analysers", dict(analysis._analysers))


# Language ----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", REPLIES)
def test_it_names_the_language_of_a_reply(language):
    assert detect_language(REPLIES[language]) == language


def test_links_mentions_hashtags_and_emoji_do_not_sway_the_language():
    # given French words among English hashtags, handles and a link
    text = (
        "@NewYorkCityHall @alice@mastodon.social #BreakingNews #CityCouncilUpdate "
        "Merci pour la réponse rapide 🙏👍🏽 https://example.org/the/latest/news/today"
    )

    # then
    assert detect_language(text) == "fr"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀👍🏽❤️",
        "https://example.org/news",
        "@cityhall @alice.bsky.social",
        "#census #recensement",
        "123 !!! ???",
        "@cityhall 👏 https://t.co/x #respect",
    ],
)
def test_a_text_without_words_is_in_no_language_whatever_was_declared(text):
    assert detect_language(text) == ""
    assert detect_language(text, declared="en") == ""


@pytest.mark.parametrize("text", ["ok", "lol", "merci", "Bedankt!", "Why?"])
def test_a_text_too_short_to_tell_is_in_no_language_when_none_was_declared(text):
    assert detect_language(text) == ""


@pytest.mark.parametrize(("text", "declared"), [("ok", "en"), ("merci", "fr"), ("Kiitos", "fi")])
def test_a_text_too_short_to_tell_keeps_its_declared_language(text, declared):
    assert detect_language(text, declared=declared) == declared


def test_the_detector_overrides_a_declaration_it_is_confident_against():
    # given German text from a client that declares English by default
    text = "Hallo zusammen, wie geht es euch heute?"

    # then
    assert detect_language(text, declared="en") == "de"


def test_a_declaration_the_detector_rules_out_is_dropped_rather_than_guessed():
    # given Spanish too short for a confident answer, declared as English
    text = "Me encanta esta iniciativa"

    # then it is neither English nor a guess, but it is Spanish when declared so
    assert detect_language(text, declared="en") == ""
    assert detect_language(text) == ""
    assert detect_language(text, declared="es") == "es"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("en-GB", "en"), ("pt_BR", "pt"), ("FR", "fr"), (" de ", "de"), ("iw", "he"), ("nb", "no")],
)
def test_a_declared_tag_counts_for_its_primary_language(declared, expected):
    assert detect_language("ok", declared=declared) == expected


@pytest.mark.parametrize("declared", ["und", "zxx", "qme", "english", "e", "12", "ελ"])
def test_a_declaration_that_is_no_iso_639_1_code_is_ignored(declared):
    assert detect_language("ok", declared=declared) == ""


def test_a_declared_language_the_detector_does_not_know_is_kept():
    # given Esperanto, which the detector is not built for
    assert "eo" not in DETECTABLE_LANGUAGES

    # then the author's word stands
    assert detect_language("Dankon", declared="eo") == "eo"


def test_the_detector_only_names_the_languages_it_is_built_for():
    # given Galician-looking and Catalan-looking texts, and a rare language's text
    texts = [*REPLIES.values(), "Bon dia a tothom", "Moitas grazas", "Bonjorno a tuti"]

    # then every answer is one of them, or nothing
    assert {detect_language(text) for text in texts} <= DETECTABLE_LANGUAGES | {""}


def test_threads_share_the_detector_and_get_the_same_answers():
    # given the answers one at a time
    texts = list(REPLIES.values()) * 8
    expected = [detect_language(text) for text in texts]

    # when eight threads ask at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(detect_language, texts))

    # then
    assert answers == expected


def test_a_lazy_value_is_built_once_when_threads_ask_together():
    # given a slow build, and eight threads that ask for it at the same moment
    builds = []
    barrier = threading.Barrier(8)

    def build():
        builds.append(1)
        threading.Event().wait(0.05)
        return object()

    lazy = analysis._OncePerProcess(build)

    def ask(_):
        barrier.wait()
        return lazy.get()

    # when
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(ask, range(8)))

    # then
    assert len(builds) == 1
    assert all(value is values[0] for value in values)


def _run_fresh(code: str) -> str:
    """Run `code` in a new interpreter (nothing built yet), from the project's root."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_module_loads_neither_model():
    loaded = _run_fresh(
        "import sys, inbox.analysis\n"
        "print(sorted(m for m in ('numpy', 'py3langid', 'vaderSentiment') if m in sys.modules))"
    )

    assert loaded == "[]"


def test_the_detector_and_the_analyser_work_without_a_network():
    # given a process in which every connection fails
    answer = _run_fresh(
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from inbox.analysis import detect_language, score_sentiment\n"
        "language = detect_language('Thanks for the quick answer, it works again!')\n"
        "print(language, score_sentiment('Thanks for the quick answer!', language).label)"
    )

    # then both are built from what the packages ship
    assert answer == "en positive"


# Sentiment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Thanks for the quick answer!", "positive"),
        ("Love this initiative 👏", "positive"),
        ("This is a disgrace #fail", "negative"),
        ("Terrible service, three weeks and no reply. 😡", "negative"),
        ("Is the office open tomorrow?", "neutral"),
    ],
)
def test_english_is_scored_by_vader(text, label):
    sentiment = score_sentiment(text, "en")

    assert sentiment.label == label
    assert -1.0 <= sentiment.score <= 1.0


def test_vader_scores_english_out_of_the_box():
    assert "en" in scored_languages()
    assert isinstance(analysis._analysers["en"], analysis.VaderAnalyser)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1.0, "positive"),
        (0.05, "positive"),
        (0.0499, "neutral"),
        (0.0, "neutral"),
        (-0.0499, "neutral"),
        (-0.05, "negative"),
        (-1.0, "negative"),
    ],
)
def test_the_label_follows_vaders_thresholds_on_the_score(analysers, value, label):
    register_analyser(FixedAnalyser({"fr"}, value))

    assert score_sentiment("Une phrase", "fr") == Sentiment(label=label, score=value)


@pytest.mark.parametrize("language", ["fr", "", "und", "xx"])
def test_a_language_no_analyser_reads_is_not_scored(language):
    # given a plainly negative English text, said to be in another language or none
    sentiment = score_sentiment("This is a disgrace, terrible, awful service", language)

    # then it is not guessed through VADER
    assert sentiment == NOT_SCORED
    assert sentiment.score is None
    assert sentiment.label == "not_scored"


@pytest.mark.parametrize("text", ["", "  ", "https://example.org/great", "@love @great"])
def test_a_text_with_nothing_left_to_score_is_not_scored(text):
    assert score_sentiment(text, "en") == NOT_SCORED


def test_mentions_and_links_do_not_colour_the_score():
    # given handles and a link made of happy words around a neutral sentence
    text = "@love @HappyCity the office opens at nine https://great.example/wonderful"

    # then
    assert score_sentiment(text, "en") == Sentiment(label="neutral", score=0.0)


def test_hashtags_count_towards_the_score():
    assert score_sentiment("The new timetable #fail", "en").label == "negative"


def test_a_language_tag_with_a_region_finds_its_analyser():
    assert score_sentiment("Thanks for the quick answer!", "en-GB").label == "positive"


def test_an_analyser_registered_for_a_language_scores_it(analysers):
    # given an analyser for French and Spanish
    analyser = FixedAnalyser(frozenset({"fr", "es"}), -0.6)

    # when
    register_analyser(analyser)

    # then it scores both, without the links and handles, and English is still VADER's
    assert score_sentiment("@mairie C'est une honte https://x.example", "fr").label == "negative"
    assert score_sentiment("Es una vergüenza", "es").score == -0.6
    assert analyser.texts == ["C'est une honte", "Es una vergüenza"]
    assert scored_languages() >= {"en", "fr", "es"}
    assert score_sentiment("Thanks for the quick answer!", "en").label == "positive"


def test_a_later_analyser_replaces_the_earlier_for_its_language(analysers):
    # when a deployment puts its own English analyser in VADER's place
    register_analyser(FixedAnalyser(["EN"], -0.9))

    # then
    assert score_sentiment("Thanks for the quick answer!", "en").score == -0.9


@pytest.mark.parametrize("languages", [[], ["french"], ["fr", "und"], [""]])
def test_an_analyser_must_name_its_languages_as_iso_codes(analysers, languages):
    with pytest.raises(ValueError, match="ISO 639-1"):
        register_analyser(FixedAnalyser(languages, 0.0))

    assert scored_languages() == {"en"}


@pytest.mark.parametrize("value", [1.5, -2.0, math.nan, math.inf])
def test_a_score_outside_minus_one_to_one_is_an_error_not_a_label(analysers, value):
    register_analyser(FixedAnalyser({"fr"}, value))

    with pytest.raises(ValueError, match="outside -1..1"):
        score_sentiment("Une phrase", "fr")


def test_sentiment_is_a_frozen_value():
    sentiment = Sentiment(label="positive", score=0.5)

    with pytest.raises(AttributeError):
        sentiment.label = "negative"


# Watch terms -------------------------------------------------------------------------------


def test_terms_match_whatever_the_case_and_accents_on_either_side():
    text = "Le RÉCENSEMENT commence à Zürich et à Saint-Étienne"

    assert matching_terms(text, ["recensement", "ZURICH", "saint-etienne"]) == [
        "recensement",
        "ZURICH",
        "saint-etienne",
    ]
    assert matching_terms("le recensement commence", ["Récensement"]) == ["Récensement"]


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Die Straße ist gesperrt", "strasse"),  # casefolding: ß is ss
        ("İstanbul belediyesi", "istanbul"),  # a capital with a dot above
        ("the ﬁre station", "fire"),  # a ligature
        ("ｃｅｎｓｕｓ day", "census"),  # full-width letters
        ("ΑΠΟΓΡΑΦΗ 2026", "απογραφή"),  # Greek, its accent folded
        ("Перепись населения начнётся", "начнется"),  # Cyrillic ё
    ],
)
def test_terms_match_across_unicode_forms(text, term):
    assert matching_terms(text, [term]) == [term]


@pytest.mark.parametrize(
    "text",
    [
        "census",
        "The census, at last.",
        "(census)",
        "«census»",
        "Census!",
        "'census'",
        "the #census starts",
        "census🎉",
        "🎉census",
        "@cityhall census",
    ],
)
def test_a_term_matches_as_a_whole_word_next_to_punctuation_and_emoji(text):
    assert matching_terms(text, ["census"]) == ["census"]


@pytest.mark.parametrize("text", ["censuses", "precensus", "census2026", "the census_bureau"])
def test_a_term_does_not_match_inside_a_longer_word(text):
    assert matching_terms(text, ["census"]) == []


def test_a_trailing_star_matches_words_that_start_with_the_term():
    text = "Censuses and the census2026 team, not the precensus one"

    assert matching_terms(text, ["census*"]) == ["census*"]
    assert matching_terms("precensus", ["census*"]) == []
    assert matching_terms("censuses", ["census**"]) == ["census**"]


def test_a_hashtag_term_matches_only_the_hashtag():
    assert matching_terms("the #Census starts", ["#census"]) == ["#census"]
    assert matching_terms("the census starts", ["#census"]) == []


def test_a_term_is_matched_literally():
    assert matching_terms("We still love C++!", ["C++"]) == ["C++"]
    assert matching_terms("a-b", ["a.b"]) == []
    assert matching_terms("price (vat)", ["(vat)"]) == ["(vat)"]


@pytest.mark.parametrize(
    "text", ["Town Hall", "town   hall", "town\nhall", "town\thall", "TOWN HALL."]
)
def test_a_phrase_matches_with_any_whitespace_between_its_words(text):
    assert matching_terms(text, ["town hall"]) == ["town hall"]


@pytest.mark.parametrize("text", ["townhall", "town-hall", "town halls", "downtown hall"])
def test_a_phrase_matches_only_its_whole_words(text):
    assert matching_terms(text, ["town hall"]) == []


def test_a_phrase_can_end_with_a_prefix():
    assert matching_terms("The town halls are shut", ["town hall*"]) == ["town hall*"]


def test_terms_in_scripts_without_spaces_match_inside_a_sentence():
    assert matching_terms("我参加了人口普查。", ["人口普查"]) == ["人口普查"]
    assert matching_terms("国勢調査に回答しました", ["国勢調査"]) == ["国勢調査"]
    assert matching_terms("สำมะโนประชากรปีนี้", ["สำมะโนประชากร"]) == ["สำมะโนประชากร"]


def test_terms_in_spaced_non_latin_scripts_match_whole_words():
    # Devanagari vowel signs are marks inside a word, not boundaries
    assert matching_terms("भारत की जनगणना", ["भारत", "जनगणना"]) == ["भारत", "जनगणना"]
    assert matching_terms("भारतीय जनगणना", ["भारत"]) == []
    # Arabic, with or without its short vowels
    assert matching_terms("التِّعْدَادُ السكاني", ["التعداد"]) == ["التعداد"]


def test_terms_come_back_as_given_in_the_order_given_each_once():
    text = "Census day: the town hall opens for the CENSUS"
    terms = ["Town Hall", "census", "parking", "census", "Census"]

    assert matching_terms(text, terms) == ["Town Hall", "census", "Census"]


def test_empty_terms_are_ignored():
    assert matching_terms("anything at all", ["", "   ", "*", "\n"]) == []


def test_no_terms_or_no_text_match_nothing():
    assert matching_terms("the census", []) == []
    assert matching_terms("", ["census"]) == []


def test_fold_removes_case_and_accents_only():
    assert fold("Crème Brûlée À LA Façon") == "creme brulee a la facon"
    assert fold("Перепись") == "перепись"


def _one_by_one(text: str, terms: list[str]) -> list[str]:
    """What matching_terms answered before it had an index: every term's pattern, in turn."""
    folded = analysis.fold(text)
    found = []
    for term in dict.fromkeys(terms):
        pattern = analysis._term_pattern(term)
        if pattern is not None and pattern.search(folded):
            found.append(term)
    return found


def test_the_indexed_matcher_answers_as_trying_every_term_would():
    # Words, marks, prefixes, phrases, accents and unspaced scripts, mixed at random: the index
    # may only skip terms that cannot match.
    pieces = [
        "census",
        "Census",
        "censuses",
        "recensement",
        "récensement",
        "#census",
        "@census",
        "covid-19",
        "covid",
        "C++",
        "fake",
        "text",
        "texts",
        "scam",
        "人口普查",
        "普查",
        "São",
        "sao",
        "paulo",
        "e.g.",
        "-",
        ",",
        ".",
        "#",
        "",
        "2026",
        "census2026",
    ]
    terms = [
        "census",
        "census*",
        "#census",
        "fake text*",
        "covid-19",
        "covid-*",
        "C++",
        "普查",
        "são paulo",
        "scam",
        "e.g",
        "*",
        "",
        "2026",
        "texts",
        "#cens*",
        "recens*",
    ]
    rng = random.Random(18)
    for _ in range(3000):
        text = "".join(
            rng.choice(pieces) + rng.choice([" ", "", "\n", ", ", "#"]) for _ in range(8)
        )
        chosen = rng.sample(terms, rng.randint(1, len(terms)))
        assert analysis.TermMatcher(chosen).match(text) == _one_by_one(text, chosen), (text, chosen)
