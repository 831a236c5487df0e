"""LinkedIn receives its text in the "little" format, reserved characters escaped."""

import pytest

from networks.channels import get_channel
from networks.channels.linkedin import RESERVED

linkedin = get_channel("linkedin")


@pytest.mark.parametrize("char", sorted("|{}@[]()<>#\\*_~"))
def test_render_escapes_every_reserved_character(char):
    assert linkedin.render(f"a{char}b") == f"a\\{char}b"


def test_the_reserved_set_is_the_documented_one():
    assert frozenset("|{}@[]()<>#\\*_~") == RESERVED


def test_render_leaves_plain_text_unchanged():
    text = "Our new clinic opens on Monday, 9:00–17:00. Everyone welcome! Ça va? 日本語 👍🏽"
    assert linkedin.render(text) == text


def test_render_escapes_a_realistic_post():
    assert linkedin.render("Opening hours (new) #health @NHS") == (
        "Opening hours \\(new\\) \\#health \\@NHS"
    )


def test_render_doubles_a_backslash():
    assert linkedin.render("C:\\temp") == "C:\\\\temp"


def test_other_channels_receive_the_text_unchanged():
    text = "Opening hours (new) #health @NHS_uk *today*"
    for name in ["mastodon", "bluesky", "x", "facebook", "instagram", "webhook", "sandbox"]:
        assert get_channel(name).render(text) == text


def test_linkedin_counts_the_text_as_written_up_to_3000():
    assert linkedin.validate("(" * 3000, []) == []
    [problem] = linkedin.validate("a" * 3001, [])
    assert problem.message == "The text is 3,001 characters; LinkedIn allows 3,000 (1 too many)."
