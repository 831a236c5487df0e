"""Posts for the shared cast: North's accounts on two networks."""

import pytest

from networks.models import Channel
from publishing import services

from ..factories import SocialAccountFactory


@pytest.fixture
def north_mastodon(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")


@pytest.fixture
def north_bluesky(org):
    return SocialAccountFactory(
        team=org["north_centre"],
        channel=Channel.BLUESKY,
        handle="north.bsky.social",
        base_url="https://bsky.social",
    )


@pytest.fixture
def make_post(org, author, approver, north_mastodon):
    def make(**overrides):
        values = {
            "by": author,
            "team_id": org["north"].pk,
            "body": "Launch window opens at dawn.",
            "targets": [services.TargetInput(social_account_id=north_mastodon.pk)],
        }
        values.update(overrides)
        return services.post_create(**values)

    return make
