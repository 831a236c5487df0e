"""A network that answers from a script (`FeedChannel`), for the ingestion engine's own rules;
the channels' reading of each real API is tested against the networks' test servers
(tests/publishing/networks/test_inbound_*.py)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from networks import channels as channel_registry
from networks.channels import Inbound, InboundPage
from networks.channels.mastodon import MastodonChannel
from networks.models import Channel

from ..factories import SocialAccountFactory

# The networks' test servers and the accounts connected to them, for the end-to-end tests of
# the inbox (test_networks_end_to_end.py). Imported, not named in pytest_plugins: pytest takes
# pytest_plugins only from the top-level conftest, where it would reach the whole suite. The
# networks' autouse fixture (loopback_allowed) is left out on purpose: the module that talks to
# the servers imports it, so the other inbox tests keep their settings.
from ..publishing.networks.conftest import (  # noqa: F401
    bluesky_account,
    bluesky_server,
    facebook_account,
    graph_server,
    instagram_account,
    linkedin_account,
    linkedin_server,
    mastodon_account,
    mastodon_server,
    x_account,
    x_server,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def inbound(n: int, **overrides) -> Inbound:
    values = {
        "network_id": str(n),
        "kind": "mention",
        "text": f"Message number {n} about the launch.",
        "created_at": T0 + timedelta(minutes=n),
        "author_handle": f"person{n}@example.social",
    }
    values.update(overrides)
    return Inbound(**values)


@dataclass
class FeedChannel(MastodonChannel):
    """Answers fetch_inbound from `pages`: the cursor is the index of the next page; each call
    is recorded with the cursor it was given. A page may be an exception to raise instead."""

    pages: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    # items_gone: the network ids it no longer has (or an exception to raise), and what it asked.
    gone: object = field(default_factory=set)
    asked: list = field(default_factory=list)
    hears_back = True

    def items_gone(self, account, network_ids):
        self.asked.append(sorted(network_ids))
        if isinstance(self.gone, Exception):
            raise self.gone
        return set(network_ids) & set(self.gone)

    def fetch_inbound(self, account, cursor, *, limit=40):
        self.calls.append(cursor)
        index = int(cursor or 0)
        if index >= len(self.pages):
            return InboundPage(items=[], cursor=cursor)
        page = self.pages[index]
        if isinstance(page, Exception):
            raise page
        return InboundPage(items=page, cursor=str(index + 1), more=index + 1 < len(self.pages))


@pytest.fixture
def feed(monkeypatch):
    channel = FeedChannel()
    monkeypatch.setitem(channel_registry._CHANNELS, "mastodon", channel)
    return channel


@pytest.fixture
def account(org):
    return SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@north", external_id="100"
    )
