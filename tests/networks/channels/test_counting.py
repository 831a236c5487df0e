"""Counting text as each network counts it."""

import pytest

from networks.channels import get_channel

FAMILY = "👩\u200d👩\u200d👧\u200d👦"  # four people joined by three zero-width joiners
FLAG = "🇫🇷"
THUMB_MEDIUM = "👍🏽"
KEYCAP = "1️⃣"
SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
LONG_URL = "https://example.org/" + "a" * 180  # 200 characters

x = get_channel("x")
bluesky = get_channel("bluesky")
mastodon = get_channel("mastodon")


@pytest.mark.parametrize("emoji", [FAMILY, FLAG, THUMB_MEDIUM, KEYCAP, SCOTLAND])
def test_an_emoji_sequence_is_one_grapheme_on_bluesky_and_mastodon(emoji):
    assert bluesky.count(emoji) == 1
    assert mastodon.count(emoji) == 1


@pytest.mark.parametrize("emoji", [FAMILY, FLAG, THUMB_MEDIUM, KEYCAP, SCOTLAND, "❤️", "😀"])
def test_an_emoji_sequence_counts_two_on_x(emoji):
    assert x.count(emoji) == 2


def test_emoji_sequences_count_once_each_among_text_on_x():
    # "Hi " (3) + family (2) + " " (1) + flag (2)
    assert x.count(f"Hi {FAMILY} {FLAG}") == 8
    assert bluesky.count(f"Hi {FAMILY} {FLAG}") == 6


def test_a_text_symbol_without_emoji_presentation_weighs_one_on_x():
    assert x.count("©") == 1
    assert x.count("©\ufe0f") == 2  # with the emoji presentation selector it is an emoji


def test_a_letter_with_a_combining_accent_is_one_grapheme():
    decomposed = "e\u0301"
    assert bluesky.count(decomposed) == 1
    assert mastodon.count(decomposed) == 1


def test_x_counts_the_nfc_form():
    assert x.count("e\u0301") == x.count("\u00e9") == 1
    assert x.count("cafe\u0301") == x.count("caf\u00e9") == 4
    # No precomposed form: NFC keeps two code points, and X counts both.
    assert x.count("q\u0301") == 2


def test_cjk_characters_weigh_two_on_x_and_one_elsewhere():
    assert x.count("日本語") == 6
    assert bluesky.count("日本語") == 3
    assert mastodon.count("日本語") == 3


def test_140_cjk_characters_fill_an_x_post_exactly():
    assert x.count("日" * 140) == 280
    assert x.validate("日" * 140, []) == []


def test_141_cjk_characters_overflow_an_x_post():
    [problem] = x.validate("日" * 141, [])
    assert problem.code == "text_too_long"
    assert problem.message == "The text is 282 weighted characters; X allows 280 (2 too many)."


def test_punctuation_in_the_light_ranges_weighs_one_on_x():
    # En dash U+2013, curly quotes U+201C/U+201D, prime U+2032: all in twitter-text's ranges.
    assert x.count("\u2013\u201c\u201d\u2032") == 4
    # Ellipsis U+2026 is outside them.
    assert x.count("\u2026") == 2


def test_a_long_url_counts_23_on_x_and_mastodon():
    assert len(LONG_URL) == 200
    assert x.count(LONG_URL) == 23
    assert mastodon.count(LONG_URL) == 23
    assert x.count(f"Read {LONG_URL} now") == 5 + 23 + 4
    assert mastodon.count(f"Read {LONG_URL} now") == 5 + 23 + 4


def test_a_short_url_also_counts_23():
    assert x.count("http://a.co") == 23
    assert mastodon.count("http://a.co") == 23


def test_bluesky_counts_urls_as_written():
    assert bluesky.count(LONG_URL) == 200


@pytest.mark.parametrize(
    "url", ["example.com", "www.example.org", "gov.uk/guidance", "example.com/path?q=1"]
)
def test_x_counts_bare_domains_with_a_known_tld_as_urls(url):
    assert x.count(f"See {url}") == 4 + 23


def test_x_leaves_trailing_punctuation_out_of_a_url():
    assert x.count("See example.com.") == 4 + 23 + 1
    assert x.count("(https://example.com/a)") == 1 + 23 + 1
    assert x.count("https://en.wikipedia.org/wiki/Foo_(bar)") == 23


def test_x_does_not_take_file_names_or_email_addresses_for_urls():
    assert x.count("readme.txt") == 10
    assert x.count("write to press@example.com") == 26


def test_mastodon_gives_no_discount_to_a_bare_domain():
    assert mastodon.count("example.com/" + "a" * 100) == 112


def test_a_remote_mention_counts_only_its_local_part_on_mastodon():
    assert mastodon.count("@alice@social.example.org") == len("@alice")
    assert mastodon.count("Thanks @bob@mastodon.social and @carol!") == len(
        "Thanks @bob and @carol!"
    )


def test_an_email_address_is_not_a_mention_on_mastodon():
    assert mastodon.count("press@example.org") == len("press@example.org")


def test_text_bytes_are_utf8():
    assert bluesky.text_bytes("aé日😀") == 1 + 2 + 3 + 4
    assert bluesky.text_bytes(FAMILY) == 4 * 4 + 3 * 3
