"""The shared text helpers."""

import pytest

from networks.channels import text as textutil


def urls(text: str, **kwargs) -> list[str]:
    return [span.text for span in textutil.find_urls(text, **kwargs)]


def test_it_finds_scheme_urls_and_bare_domains():
    text = "See https://example.org/a?b=1, www.example.com and gov.uk."
    assert urls(text) == ["https://example.org/a?b=1", "www.example.com", "gov.uk"]


def test_without_bare_domains_only_scheme_urls_are_found():
    assert urls("example.com and http://example.net", bare_domains=False) == ["http://example.net"]


def test_a_url_stops_before_cjk_text():
    assert urls("見てhttps://example.jp/aです") == ["https://example.jp/a"]


def test_a_scheme_alone_is_not_a_url():
    assert urls("https:// is a prefix") == []


@pytest.mark.parametrize("text", ["readme.txt", "press@example.com", "v1.2.3", "#example.com"])
def test_these_are_not_urls(text):
    assert urls(text) == []


def test_emoji_sequences_are_whole():
    family = "👩\u200d👩\u200d👧\u200d👦"
    spans = textutil.find_emoji_sequences(f"a{family}b🇫🇷c1️⃣")
    assert [s.text for s in spans] == [family, "🇫🇷", "1️⃣"]


def test_hashtags_and_mentions_skip_urls_and_email_addresses():
    text = "#one #two https://example.com/#frag press@example.org @alice #2024"
    assert textutil.find_hashtags(text) == ["#one", "#two"]
    assert textutil.find_mentions(text) == ["@alice"]


def test_grapheme_count_and_utf8_length():
    assert textutil.grapheme_count("e\u0301🇫🇷") == 2
    assert textutil.utf8_length("e\u0301🇫🇷") == 1 + 2 + 8
