"""The registry, the browser counter's description, the publishing stubs and the errors."""

import json

import pytest

from networks.channels import Channel, all_channels, get_channel
from networks.channels.errors import (
    AuthExpired,
    ChannelError,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.models import Channel as ChannelChoice


def test_there_is_a_channel_for_every_account_channel():
    assert {c.name for c in all_channels()} == set(ChannelChoice.values)
    for value in ChannelChoice.values:
        assert get_channel(value).name == value


def test_an_unknown_channel_is_a_key_error_naming_the_known_ones():
    with pytest.raises(KeyError, match="No channel named 'myspace'.*mastodon"):
        get_channel("myspace")


def test_every_channel_has_a_label_and_sane_limits():
    for channel in all_channels():
        assert isinstance(channel, Channel)
        assert channel.label
        assert channel.limits.max_text > 0
        assert channel.limits.max_media > 0
        assert channel.limits.media_formats


def test_the_counter_spec_is_json_and_says_how_to_count():
    for channel in all_channels():
        json.dumps(channel.counter_spec())
    assert get_channel("x").counter_spec() == {
        "channel": "x",
        "label": "X",
        "max": 280,
        "unit": "weighted characters",
        "counting": "x-weighted",
        "url_weight": 23,
        "bare_domain_urls": True,
        "mentions_count_local_part": False,
        "max_bytes": None,
    }
    bluesky = get_channel("bluesky").counter_spec()
    assert (bluesky["counting"], bluesky["max"], bluesky["max_bytes"]) == ("graphemes", 300, 3000)
    assert bluesky["url_weight"] is None
    mastodon = get_channel("mastodon").counter_spec()
    assert (mastodon["counting"], mastodon["url_weight"]) == ("graphemes", 23)
    assert mastodon["mentions_count_local_part"] is True


def test_the_counter_spec_follows_an_accounts_own_limits():
    from dataclasses import replace

    mastodon = get_channel("mastodon")
    assert mastodon.counter_spec(replace(mastodon.limits, max_text=5000))["max"] == 5000


def test_every_channel_implements_publishing_and_connecting():
    from networks.channels.base import Channel

    for channel in all_channels():
        kind = type(channel)
        assert kind.publish is not Channel.publish, channel.name
        assert kind.reconcile is not Channel.reconcile, channel.name
        if channel.connect_method == "oauth2":
            assert kind.oauth_spec is not Channel.oauth_spec, channel.name
            assert kind.identify is not Channel.identify, channel.name
            assert kind.refresh_token is not Channel.refresh_token, channel.name


def test_a_retryable_error_carries_the_wait_the_network_asked_for():
    error = RetryableError("rate limited", retry_after=30.0)
    assert error.retry_after == 30.0
    assert RetryableError("busy").retry_after is None


def test_all_channel_errors_share_one_base():
    for error_type in (RetryableError, PermanentError, AuthExpired, UnknownOutcome):
        assert issubclass(error_type, ChannelError)
