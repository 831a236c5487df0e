"""The inbox's items matched against the watch terms of their account's team (issue 17's third
signal, from listening's watches through inbox.hooks.watch_terms)."""

import pytest

from inbox.models import InboundItem
from inbox.services import items_store
from listening import services
from networks.models import Channel

from ..factories import SocialAccountFactory
from ..inbox.conftest import inbound

pytestmark = pytest.mark.django_db


def test_items_carry_the_watch_terms_of_their_team_and_the_teams_above(org, lead, client):
    services.watch_create(
        by=lead,
        team_id=org["hq"].pk,
        values={"name": "Census", "terms": ["census", "fake text*"], "hashtags": ["Census2026"]},
    )
    paused = services.watch_create(
        by=lead, team_id=org["north"].pk, values={"name": "Old", "terms": ["ferry"]}
    )
    services.watch_update(by=lead, watch=paused, values={"active": False})
    services.watch_create(by=lead, team_id=org["south"].pk, values={"name": "S", "terms": ["pool"]})
    north = SocialAccountFactory(team=org["north_centre"], channel=Channel.MASTODON, handle="@nc")

    items_store(
        account=north,
        items=[
            inbound(1, text="Is this census text real? Looks like fake texts #census2026"),
            inbound(2, text="When does the ferry or the pool open?"),
        ],
    )

    terms = dict(InboundItem.objects.values_list("network_id", "watch_terms"))
    assert terms == {"1": ["census", "fake text*", "#Census2026"], "2": []}
    client.force_login(lead)
    [first] = [
        row for row in client.get("/api/v1/inbox/").json()["results"] if row["network_id"] == "1"
    ]
    assert first["watch_terms"] == ["census", "fake text*", "#Census2026"]
