"""The demo organisation of `make run`."""

import json
from io import StringIO

from django.core.management import call_command

from accounts.models import Membership, Role, Team, User
from audit.models import AuditEvent
from networks.models import Channel, SocialAccount


def _seed_json() -> dict:
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_seed_builds_the_agency_with_every_role_and_network(db):
    demo = _seed_json()

    assert Team.objects.count() >= 10
    hq = Team.objects.get(slug="hq")

    def children(team):
        return Team.objects.filter(depth=team.depth + 1, path__startswith=team.path)

    regions = children(hq).exclude(slug="national-desk")
    assert regions.count() == 3
    assert all(children(region).count() == 2 for region in regions)
    assert len(demo["people"]) >= 12
    assert {p["role"] for p in demo["people"]} == set(Role.values)
    assert SocialAccount.objects.count() >= 20
    networks = {"mastodon", "bluesky", "x", "facebook", "instagram", "linkedin", "webhook"}
    assert networks <= set(SocialAccount.objects.values_list("channel", flat=True))
    for person in demo["people"]:
        assert User.objects.get(username=person["username"]).check_password(person["password"])
    # Built through the services: audited.
    assert AuditEvent.objects.filter(action="team.created").count() == Team.objects.count()


def test_seed_twice_adds_nothing(db):
    first = _seed_json()
    counts = (
        Team.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        SocialAccount.objects.count(),
        AuditEvent.objects.count(),
    )
    second = _seed_json()
    assert counts == (
        Team.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        SocialAccount.objects.count(),
        AuditEvent.objects.count(),
    )
    assert first == second


def test_the_national_desk_drafts_for_one_regional_account(db):
    _seed_json()
    desk = User.objects.get(username="desk")
    granted = SocialAccount.objects.get(channel=Channel.MASTODON, handle="@agency_north")
    assert desk.has_perm("networks.draft_socialaccount", granted)
    other = SocialAccount.objects.get(channel=Channel.X, handle="@AgencyNorth")
    assert not desk.has_perm("networks.draft_socialaccount", other)


def test_seed_prints_logins(db):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "drafter.north" in text
    assert "password: cxhub-demo-2026" in text
