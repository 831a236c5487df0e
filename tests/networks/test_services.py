"""Writes of social accounts: each refuses what is wrong with a message naming the field, and
each change records exactly one audit event (refusals record none)."""

import pytest

from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from networks.models import Channel, SocialAccount
from networks.services import (
    social_account_create,
    social_account_grant_drafting,
    social_account_revoke_drafting,
)
from networks.tokens import social_account_rotate_tokens


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("seq")


def test_social_account_create_stores_encrypted_tokens_and_records_no_token(org, lead):
    # when an account is connected with tokens
    account = social_account_create(
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
    social_account_create(
        team=org["north"], channel="mastodon", handle="@dup", base_url="https://m.example", by=None
    )
    # when the same handle on the same network is connected again, by another team even
    with pytest.raises(ApplicationError) as excinfo:
        social_account_create(
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
        social_account_create(
            team=org["north"], channel="mastodon", handle="@same", base_url=base_url, by=None
        )
    assert SocialAccount.objects.filter(handle="@same").count() == 2
    assert events("social_account.created").count() == 2


def test_social_account_create_refuses_an_unknown_channel(org):
    # when the network is not one we know
    with pytest.raises(ApplicationError) as excinfo:
        social_account_create(team=org["north"], channel="myspace", handle="@x", by=None)
    # then it is refused naming the field, and nothing is written or recorded
    assert "channel" in excinfo.value.extra["fields"]
    assert not SocialAccount.objects.exists()
    assert not events("social_account.created").exists()


def test_social_account_create_refuses_a_blank_handle(org):
    with pytest.raises(ApplicationError) as excinfo:
        social_account_create(team=org["north"], channel="x", handle="  ", by=None)
    assert "handle" in excinfo.value.extra["fields"]
    assert not events("social_account.created").exists()


def test_granting_and_revoking_drafting_are_recorded(org, outsider, lead, north_account):
    # when a lead grants then revokes drafting on one account
    social_account_grant_drafting(account=north_account, user=outsider, by=lead)
    social_account_revoke_drafting(account=north_account, user=outsider, by=lead)
    # then each is one event on the account's team, naming the person
    for action in ("social_account.drafting_granted", "social_account.drafting_revoked"):
        (event,) = events(action)
        assert event.actor == lead
        assert event.team_id == org["north_centre"].pk
        assert event.data["username"] == "charlie"


def test_rotating_tokens_is_recorded_once_per_batch_naming_the_accounts(org):
    created = [
        social_account_create(
            team=org["north"], channel="bluesky", handle=f"@a{n}", access_token="t", by=None
        )
        for n in range(3)
    ]
    social_account_create(team=org["north"], channel="bluesky", handle="@none", by=None)
    assert social_account_rotate_tokens(batch_size=2) == 3
    first, second = events("social_account.tokens_rotated")
    assert first.data["accounts"] + second.data["accounts"] == [a.pk for a in created]
