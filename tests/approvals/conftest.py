"""Posts submitted for approval (the two-stage chain fixture lives in tests/conftest.py)."""

import pytest

from publishing import services

from ..factories import SocialAccountFactory


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north"], handle="@north")


@pytest.fixture
def submitted(org, author, north_account):
    def make(body="Launch window opens at dawn.", **kwargs):
        post = services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=body,
            targets=[services.TargetInput(social_account_id=north_account.pk)],
            **kwargs,
        )
        return services.post_submit(post=post, by=author)

    return make
