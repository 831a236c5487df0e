"""The matcher every content-comparing reconcile uses (networks.channels.matching)."""

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from networks.channels.base import ReconcileHints
from networks.channels.errors import AmbiguousMatch
from networks.channels.matching import (
    CLOCK_SKEW,
    Listed,
    comparable,
    find,
    parse_time,
    text_from_html,
)

from ...publishing.networks.mastodon_server import MastodonServer

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SINCE = NOW - timedelta(minutes=2)
WINDOW = timedelta(days=3)


def listed(external_id: str, text: str, *, ago: float = 30, images: int | None = 0) -> Listed:
    return Listed(
        external_id,
        text,
        created_at=NOW - timedelta(seconds=ago),
        media_count=images,
        external_url=f"https://network.example/{external_id}",
    )


def search(text: str, posts: list[Listed], **hints):
    values = {"since": SINCE, "media_count": 0} | hints
    return find(text, posts, hints=ReconcileHints(**values), network="Net", window=WINDOW, now=NOW)


# --- what the networks do to a text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        # A server that cannot resolve a mention keeps "@user@domain"; one that can shows "@user".
        ("cc @mission_control@mastodon.example", "cc @mission_control"),
        ("cc @mission_control", "cc @Mission_Control@mastodon.example"),
        # X wraps every link in t.co; Mastodon keeps it, others expand it.
        ("Read https://example.org/report", "Read https://t.co/abc123XYZ"),
        ("Read example.org/report", "Read http://www.example.org/report/"),
        # Entities decoded by the channel, white space and paragraphs folded.
        ("Fish & chips <3", "Fish & chips <3"),
        ("One.\n\nTwo.\nThree.", "One. Two. Three."),
        ("  spaced   out  ", "spaced out"),
        # Trailing hashtags moved, reordered, re-cased.
        ("Launch day. #Space #NASA", "Launch day.\n\n#nasa #space"),
        # Composed and decomposed accents.
        ("café", "cafe\u0301"),
    ],
)
def test_rewritten_texts_compare_equal(ours, theirs):
    a, b = comparable(ours), comparable(theirs)
    assert (a.body, a.tags) == (b.body, b.tags)


def test_a_mastodon_status_reads_back_as_its_text():
    content = (
        '<p>Thanks <span class="h-card"><a href="https://other.example/@friend" '
        'class="u-url mention">@<span>friend</span></a></span> &amp; '
        "@mission_control@mastodon.example!<br />Details: "
        '<a href="https://example.org/launches/2026/friday" rel="nofollow noopener" '
        'target="_blank"><span class="invisible">https://</span><span class="ellipsis">'
        'example.org/launches/2026/fri</span><span class="invisible">day</span></a></p>'
        '<p><a href="https://m.example/tags/space" class="mention hashtag" rel="tag">#<span>'
        "Space</span></a></p>"
    )

    assert text_from_html(content).split() == [
        *["Thanks", "@friend", "&", "@mission_control@mastodon.example!", "Details:"],
        "https://example.org/launches/2026/friday",
        "#Space",
    ]


def test_links_to_different_addresses_are_not_the_same_post():
    assert comparable("See https://example.org/a").links != comparable("See example.org/b").links
    assert comparable("See https://t.co/xyz").links == (None,)


# --- what find answers ----------------------------------------------------------------------


def test_one_clear_match_is_the_post():
    ours = listed("2", "Launch day @mission_control")

    assert search("Launch day @mission_control@mastodon.example", [listed("1", "Other"), ours]) == (
        ours
    )


def test_no_match_at_all_is_none():
    assert search("Launch day.", [listed("1", "Something else entirely.")]) is None


def test_two_clear_matches_are_ambiguous_with_both_as_candidates():
    with pytest.raises(AmbiguousMatch) as caught:
        search("Launch day.", [listed("1", "Launch day."), listed("2", "Launch  day.")])

    candidates = caught.value.candidates
    assert [c.external_id for c in candidates] == ["1", "2"]
    assert [c.why for c in candidates] == ["same text", "same text"]
    assert candidates[0].external_url == "https://network.example/1"
    assert candidates[0].created_at == (NOW - timedelta(seconds=30)).isoformat()
    assert "2 posts with this text" in str(caught.value)


def test_a_clear_match_wins_over_near_ones():
    ours = listed("2", "Launch day at dawn.")

    assert search("Launch day at dawn.", [listed("1", "Launch day at dawn!!"), ours]) == ours


@pytest.mark.parametrize(
    ("theirs", "images", "why"),
    [
        ("Launch day at dawn.", 1, "same text, 1 image instead of 2"),
        ("Launch day at dawn. https://example.org/b", 2, "same text, a different link"),
        ("Launch day at dawn!", 2, "text differs: 9"),
    ],
)
def test_a_near_match_alone_is_ambiguous(theirs, images, why):
    text = "Launch day at dawn." + (" https://example.org/a" if "example" in theirs else "")

    with pytest.raises(AmbiguousMatch) as caught:
        search(text, [listed("1", theirs, images=images)], media_count=2)

    [candidate] = caught.value.candidates
    assert candidate.why.startswith(why)


def test_an_image_count_the_network_does_not_give_does_not_stand_in_the_way():
    ours = listed("1", "Launch day.", images=None)

    assert search("Launch day.", [ours], media_count=3) == ours


def test_posts_before_the_first_try_less_the_clock_skew_are_left_out():
    early = listed("1", "Launch day.", ago=(NOW - SINCE + CLOCK_SKEW).total_seconds() + 1)
    within_skew = listed("2", "Launch day.", ago=(NOW - SINCE + CLOCK_SKEW).total_seconds() - 1)

    assert search("Launch day.", [early]) is None
    assert search("Launch day.", [early, within_skew]) == within_skew


def test_without_a_first_try_the_channels_window_bounds_the_search():
    old = listed("1", "Launch day.", ago=WINDOW.total_seconds() + 60)
    recent = listed("2", "Launch day.", ago=3600)

    found = find("Launch day.", [old, recent], hints=None, network="Net", window=WINDOW, now=NOW)

    assert found == recent


def test_ids_other_targets_hold_are_never_ours():
    held, ours = listed("1", "Launch day."), listed("2", "Launch day.")

    assert search("Launch day.", [held, ours], known_ids=frozenset({"1"})) == ours
    assert search("Launch day.", [held], known_ids=frozenset({"1"})) is None


def test_times_are_read_as_networks_write_them():
    moment = datetime(2026, 11, 24, 7, 20, 17, tzinfo=UTC)
    assert parse_time("2026-11-24T07:20:17+0000") == moment  # Graph API
    assert parse_time("2026-11-24T07:20:17.000Z") == moment  # X, Mastodon
    assert parse_time(1_795_504_817_000) == moment  # LinkedIn, milliseconds
    assert parse_time("yesterday") is None and parse_time(None) is None


# --- properties -------------------------------------------------------------------------------

# Words mixing scripts, emoji, combining marks and HTML's special characters, and the entities
# networks rewrite (mentions, links, hashtags), separated by white space as people write them.
plain = st.lists(
    st.sampled_from(["a", "Launch", "é", "e\u0301", "日", "👍🏽", "&", "<", ".", "!", "(", "'"]),
    min_size=1,
    max_size=4,
).map("".join)
entities = st.sampled_from(
    [
        "#Space",
        "#tag",
        "@friend@other.example",
        "@mission_control@mastodon.example",
        "@north",
        "https://example.org/path?q=1",
        "example.com",
    ]
)
spaces = st.sampled_from([" ", "\n", "\n\n", "  "])
texts = st.lists(st.tuples(plain | entities, spaces), max_size=12).map(
    lambda words: "".join(word + space for word, space in words)
)
server = MastodonServer()


@given(texts)
def test_any_text_is_a_clear_match_for_itself(text):
    post = listed("1", text)
    assert search(text, [post]) == post


@given(texts)
def test_any_text_is_found_as_mastodon_renders_it(text):
    post = listed("1", text_from_html(server.render(text)))
    assert search(text, [post]) == post


@given(texts, st.sampled_from([" ", "\n", "  ", "\n\n", "\t"]))
def test_white_space_never_tells_posts_apart(text, space):
    post = listed("1", text.replace(" ", space))
    assert search(text, [post]) == post


@given(texts)
def test_a_different_word_is_never_a_clear_match(text):
    changed = listed("1", text + " Postponed")
    # Alike enough, it is shown to a person (AmbiguousMatch); never taken as ours.
    with contextlib.suppress(AmbiguousMatch):
        assert search(text, [changed]) is None
