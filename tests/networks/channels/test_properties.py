"""Properties that hold for any text, checked with hypothesis."""

import regex
from hypothesis import given
from hypothesis import strategies as st

from networks.channels import all_channels, get_channel
from networks.channels import text as textutil
from networks.channels.linkedin import RESERVED

# Text mixing scripts, emoji pieces, combining marks, URLs and mentions.
pieces = st.sampled_from(
    [
        "a",
        " ",
        "é",
        "e\u0301",
        "日",
        "😀",
        "👍🏽",
        "\u200d",
        "🇫",
        "\ufe0f",
        "#tag",
        "@bob@example.org",
        "https://example.com/path",
        "example.com",
        ".",
        "(",
        "\\",
    ]
)
texts = st.one_of(st.text(), st.lists(pieces | st.text(max_size=3)).map("".join))


@given(texts)
def test_counts_are_never_negative(text):
    for channel in all_channels():
        assert channel.count(text) >= 0


@given(texts)
def test_a_text_too_long_problem_appears_exactly_when_the_count_exceeds_the_limit(text):
    for channel in all_channels():
        problems = {p.code for p in channel.validate(text, [])}
        assert ("text_too_long" in problems) == (channel.count(text) > channel.limits.max_text)


@given(texts)
def test_x_counts_at_least_one_per_grapheme_and_23_per_url(text):
    normal = textutil.nfc(text)
    urls = textutil.find_urls(normal)
    rest = textutil.without_spans(normal, urls, "")
    assert get_channel("x").count(text) >= textutil.grapheme_count(rest) + 23 * len(urls)


@given(texts)
def test_bluesky_graphemes_never_exceed_code_points_nor_bytes(text):
    bluesky = get_channel("bluesky")
    assert bluesky.count(text) <= len(text) <= bluesky.text_bytes(text)


@given(st.text(), st.text(alphabet="abcxyz0123456789/-", max_size=300), st.text())
def test_a_urls_length_never_changes_its_mastodon_count(before, path, after):
    mastodon = get_channel("mastodon")
    short = f"{before} https://example.com/ {after}"
    long = f"{before} https://example.com/{path} {after}"
    assert mastodon.count(long) == mastodon.count(short)


@given(texts)
def test_linkedin_render_escapes_each_reserved_character_and_nothing_else(text):
    rendered = get_channel("linkedin").render(text)
    assert regex.sub(r"\\(.)", r"\1", rendered, flags=regex.DOTALL) == text
    assert len(rendered) == len(text) + sum(char in RESERVED for char in text)
