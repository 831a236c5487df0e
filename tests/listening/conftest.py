"""Listening's fixtures: a watch on North about the census, and public posts made to measure."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Role
from listening import services
from networks.channels import PublicPost

from ..factories import UserFactory, grant

# The networks' test servers and the accounts connected to them, for the collection tests
# (test_collection.py). Imported, not named in pytest_plugins (as tests/inbox/conftest.py does).
from ..publishing.networks.conftest import (  # noqa: F401
    mastodon_account,
    mastodon_server,
    x_account,
    x_server,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def public(
    text: str = "The census form is online", *, at: datetime = T0, **overrides
) -> PublicPost:
    values = {
        "network_id": str(next(_ids)),
        "text": text,
        "created_at": at,
        "author_handle": f"person{next(_ids)}@example.social",
        "language": "en",
    }
    values.update(overrides)
    return PublicPost(**values)


def stream(
    count: int, *, start: datetime, minutes: float, text: str = "census form done"
) -> list[PublicPost]:
    """`count` posts evenly over `minutes` from `start`, each by its own author."""
    step = timedelta(minutes=minutes) / max(count, 1)
    return [public(f"{text} {n}", at=start + step * n) for n in range(count)]


@pytest.fixture
def north_lead(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD)
    return user


@pytest.fixture
def watch(org, north_lead):
    return services.watch_create(
        by=north_lead,
        team_id=org["north"].pk,
        values={"name": "Census", "terms": ["census"], "networks": ["x"]},
    )
