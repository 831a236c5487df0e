"""Plain-language check: the Flesch–Kincaid grade of an English text.

grade = 0.39 × (words / sentences) + 11.8 × (syllables / words) − 15.59
(Kincaid et al., 1975). Syllables are estimated from vowel groups, which is what every common
implementation does; it is a guide for writers, not a verdict.
"""

import re

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_URL = re.compile(r"https?://\S+|www\.\S+")
MIN_WORDS = 20  # shorter texts give meaningless grades


def syllables(word: str) -> int:
    word = word.lower()
    if len(word) <= 3:
        return 1
    word = re.sub(r"(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$", "", word)
    word = re.sub(r"^y", "", word)
    return max(1, len(re.findall(r"[aeiouy]{1,2}", word)))


def reading_grade(text: str) -> float | None:
    """The grade, or None for a text too short to judge."""
    text = _URL.sub(" ", text or "")
    text = re.sub(r"[#@]\w+", " ", text)
    words = _WORD.findall(text)
    if len(words) < MIN_WORDS:
        return None
    sentences = max(1, len(_SENTENCE_END.findall(text.strip() + " ")))
    syllable_count = sum(syllables(word) for word in words)
    return 0.39 * (len(words) / sentences) + 11.8 * (syllable_count / len(words)) - 15.59
