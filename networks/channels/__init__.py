"""The networks cxhub publishes to, one module each behind one interface (`base.Channel`).

`get_channel(name)` takes the values of networks.models.Channel. The sandbox, which publishes
into cxhub's own feed, is kept by publishing and registered by it at start-up.
"""

from .base import (
    Channel,
    Engagement,
    Inbound,
    InboundPage,
    Limits,
    MediaInfo,
    Problem,
    PublicPage,
    PublicPost,
    PublicQuery,
    ReplyTo,
)
from .bluesky import BlueskyChannel
from .facebook import FacebookChannel
from .instagram import InstagramChannel
from .linkedin import LinkedInChannel
from .mastodon import MastodonChannel, limits_from_mastodon_instance
from .webhook import WebhookChannel
from .x import XChannel

_CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        MastodonChannel(),
        BlueskyChannel(),
        XChannel(),
        FacebookChannel(),
        InstagramChannel(),
        LinkedInChannel(),
        WebhookChannel(),
    )
}


def get_channel(name: str) -> Channel:
    """The channel for a network name ("mastodon", "x", …)."""
    try:
        return _CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(_CHANNELS))
        raise KeyError(f"No channel named {name!r}; the channels are: {known}.") from None


def register_channel(channel: Channel) -> None:
    """Add a channel that an app above keeps (publishing's sandbox), from its AppConfig.ready()."""
    _CHANNELS[channel.name] = channel


def all_channels() -> list[Channel]:
    return list(_CHANNELS.values())


__all__ = [
    "Channel",
    "Engagement",
    "Inbound",
    "InboundPage",
    "Limits",
    "MediaInfo",
    "Problem",
    "PublicPage",
    "PublicPost",
    "PublicQuery",
    "ReplyTo",
    "all_channels",
    "get_channel",
    "limits_from_mastodon_instance",
    "register_channel",
]
