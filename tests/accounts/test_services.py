"""Writes of teams, memberships and social accounts: each refuses what is wrong with a message
naming the field, and each change records exactly one audit event (refusals record none)."""

import pytest

from accounts import services
from accounts.models import Membership, Role, Team
from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from networks.models import Channel, SocialAccount
from tests.factories import UserFactory


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("seq")


# Teams -------------------------------------------------------------------------------------------
def test_team_create_adds_a_child_below_its_parent_and_records_it(org, lead):
    # when a team is created below North
    team = services.team_create(name="North Coast", parent=org["north"], by=lead)
    # then it sits below North in the tree, with a slug from its name
    assert team.slug == "north-coast"
    assert Team.objects.get_parent(team) == org["north"]
    assert team.path.startswith(org["north"].path)
    # and one event says so
    (event,) = events("team.created")
    assert event.actor == lead
    assert event.team_id == team.pk
    assert event.object_id == str(team.pk)
    assert event.data["parent"] == org["north"].pk


def test_team_create_without_a_parent_makes_a_root(db):
    team = services.team_create(name="Agency", by=None)
    assert team.is_root()
    assert events("team.created").count() == 1


def test_team_create_refuses_a_taken_slug(org):
    # when a second team would get North's slug
    with pytest.raises(ApplicationError) as excinfo:
        services.team_create(name="North", parent=org["hq"], by=None)
    # then it is refused naming the field, and nothing is recorded
    assert "slug" in excinfo.value.extra["fields"]
    assert Team.objects.filter(slug="north").count() == 1
    assert not events("team.created").exists()


def test_team_create_refuses_a_blank_name(org):
    with pytest.raises(ApplicationError) as excinfo:
        services.team_create(name="   ", parent=org["hq"], by=None)
    assert "name" in excinfo.value.extra["fields"]
    assert not events("team.created").exists()


# Memberships -------------------------------------------------------------------------------------
def test_membership_grant_gives_the_role_and_records_it(org, lead):
    # given someone new
    user = UserFactory(username="dora")
    # when a lead makes them an approver of South
    membership = services.membership_grant(user=user, team=org["south"], role="approver", by=lead)
    # then they are, and one event says so
    assert Membership.objects.get(user=user).role == Role.APPROVER
    (event,) = events("membership.granted")
    assert event.actor == lead
    assert event.team_id == org["south"].pk
    assert event.object_id == str(membership.pk)
    assert event.data["role"] == "approver"


def test_membership_grant_is_idempotent(org, author):
    # when the author's existing role is granted again
    existing = Membership.objects.get(user=author)
    membership = services.membership_grant(
        user=author, team=org["north"], role=Role.DRAFTER, by=None
    )
    # then nothing changes and nothing more is recorded
    assert membership == existing
    assert Membership.objects.filter(user=author).count() == 1
    assert not events("membership.granted").exists()


def test_membership_grant_refuses_an_unknown_role_naming_the_field(org):
    user = UserFactory()
    # when a role that does not exist is granted
    with pytest.raises(ApplicationError) as excinfo:
        services.membership_grant(user=user, team=org["north"], role="overlord", by=None)
    # then the error names the field and the allowed values, and nothing is written
    assert "overlord" in excinfo.value.message
    assert "role" in excinfo.value.extra["fields"]
    assert "drafter" in excinfo.value.extra["fields"]["role"][0]
    assert not Membership.objects.filter(user=user).exists()
    assert not events("membership.granted").exists()


def test_membership_revoke_removes_the_role_and_records_it(org, author, lead):
    # given the author's membership
    membership = Membership.objects.get(user=author)
    membership_id = membership.pk
    # when it is revoked
    services.membership_revoke(membership=membership, by=lead)
    # then it is gone, and one event names it
    assert not Membership.objects.filter(pk=membership_id).exists()
    (event,) = events("membership.revoked")
    assert event.object_type == "accounts.membership"
    assert event.object_id == str(membership_id)
    assert event.team_id == org["north"].pk
    assert event.data["username"] == "alice"


# Social accounts ---------------------------------------------------------------------------------
def test_social_account_create_stores_encrypted_tokens_and_records_no_token(org, lead):
    # when an account is connected with tokens
    account = services.social_account_create(
        team=org["north"],
        channel=Channel.MASTODON,
        handle=" @north ",
        base_url="https://social.example",
        access_token="secret-access",
        refresh_token="secret-refresh",
        by=lead,
    )
    # then it is stored with a trimmed handle and readable tokens
    account.refresh_from_db()
    assert account.handle == "@north"
    assert account.access_token == "secret-access"
    assert account.refresh_token == "secret-refresh"
    # and one event names the account, never the tokens
    (event,) = events("social_account.created")
    assert event.team_id == org["north"].pk
    assert event.object_id == str(account.pk)
    assert "secret" not in str(event.data)
    assert account.access_token_encrypted not in str(event.data)


def test_social_account_create_refuses_a_duplicate(org):
    # given an account already connected
    services.social_account_create(
        team=org["north"], channel="mastodon", handle="@dup", base_url="https://m.example", by=None
    )
    # when the same handle on the same network is connected again, by another team even
    with pytest.raises(ApplicationError) as excinfo:
        services.social_account_create(
            team=org["south"],
            channel="mastodon",
            handle="@dup",
            base_url="https://m.example",
            by=None,
        )
    # then it is refused naming the field, and only the first was recorded
    assert "handle" in excinfo.value.extra["fields"]
    assert SocialAccount.objects.filter(handle="@dup").count() == 1
    assert events("social_account.created").count() == 1


def test_the_same_handle_on_another_server_is_another_account(org):
    for base_url in ("https://one.example", "https://two.example"):
        services.social_account_create(
            team=org["north"], channel="mastodon", handle="@same", base_url=base_url, by=None
        )
    assert SocialAccount.objects.filter(handle="@same").count() == 2
    assert events("social_account.created").count() == 2


def test_social_account_create_refuses_an_unknown_channel(org):
    # when the network is not one we know
    with pytest.raises(ApplicationError) as excinfo:
        services.social_account_create(team=org["north"], channel="myspace", handle="@x", by=None)
    # then it is refused naming the field, and nothing is written or recorded
    assert "channel" in excinfo.value.extra["fields"]
    assert not SocialAccount.objects.exists()
    assert not events("social_account.created").exists()


def test_social_account_create_refuses_a_blank_handle(org):
    with pytest.raises(ApplicationError) as excinfo:
        services.social_account_create(team=org["north"], channel="x", handle="  ", by=None)
    assert "handle" in excinfo.value.extra["fields"]
    assert not events("social_account.created").exists()


def test_granting_and_revoking_drafting_are_recorded(org, outsider, lead, north_account):
    # when a lead grants then revokes drafting on one account
    services.social_account_grant_drafting(account=north_account, user=outsider, by=lead)
    services.social_account_revoke_drafting(account=north_account, user=outsider, by=lead)
    # then each is one event on the account's team, naming the person
    for action in ("social_account.drafting_granted", "social_account.drafting_revoked"):
        (event,) = events(action)
        assert event.actor == lead
        assert event.team_id == org["north_centre"].pk
        assert event.data["username"] == "charlie"


def test_rotating_tokens_is_recorded_once_per_batch_naming_the_accounts(org):
    created = [
        services.social_account_create(
            team=org["north"], channel="bluesky", handle=f"@a{n}", access_token="t", by=None
        )
        for n in range(3)
    ]
    services.social_account_create(team=org["north"], channel="bluesky", handle="@none", by=None)
    assert services.social_account_rotate_tokens(batch_size=2) == 3
    first, second = events("social_account.tokens_rotated")
    assert first.data["accounts"] + second.data["accounts"] == [a.pk for a in created]
