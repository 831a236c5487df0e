"""Tokens through the dispatch engine, for every network: an expired access token is renewed
and the post goes out; a token the person revoked (and cannot be renewed) leaves the account
"needs reconnect", its target held (not failed), and the people who can act told."""

import pytest

from accounts.models import Notification
from audit.models import AuditEvent
from networks.models import AccountStatus, SocialAccount
from publishing.dispatch import claim, common, send
from publishing.models import PostTarget, TargetStatus

from ...integration.dispatch_support import approved_post

NETWORKS = ["mastodon", "bluesky", "x", "facebook", "instagram", "linkedin"]
RENEWABLE = ["bluesky", "x", "linkedin"]


def _server(request, network):
    name = "graph_server" if network in ("facebook", "instagram") else f"{network}_server"
    return request.getfixturevalue(name)


def _expire(network, server, account):
    """The access token runs out (as time would); a refresh token still works where there is one."""
    token = account.access_token
    if network == "bluesky":
        server.expire_access_tokens()
    elif network in ("x", "linkedin", "facebook", "instagram"):
        server.expire(token)
    else:  # Mastodon tokens do not expire: a 401 is a revocation
        server.fail_next("statuses", "401")


def _revoke(network, server, account):
    """The person removed cxhub's access at the network: every token of the grant is dead."""
    token = account.access_token
    if network == "bluesky":
        server.expire_access_tokens()
        server.revoke_refresh_tokens()
    elif network == "x":
        server.revoke_grant(account.external_id)
    elif network == "linkedin":
        server.expire(token)
        server.fail_next("token", "401")
    elif network in ("facebook", "instagram"):
        server.invalidate(token)
    else:
        server.fail_next("statuses", "401")


def _post(request, network, author, org):
    account = request.getfixturevalue(f"{network}_account")
    body = "Launch window opens at dawn."
    if network == "instagram":
        request.getfixturevalue("public_image_link")
        media = request.getfixturevalue("one_square_image")
        post = approved_post(author=author, team=org["north"], accounts=[account], body=body)
        post.post_media.create(media=media, position=0)
        from publishing.content import canonical_content, hash_content

        fresh = type(post).objects.prefetch_related("targets", "post_media__media").get(pk=post.pk)
        fresh.content_hash = fresh.approved_content_hash = hash_content(canonical_content(fresh))
        fresh.save(update_fields=["content_hash", "approved_content_hash"])
    else:
        post = approved_post(author=author, team=org["north"], accounts=[account], body=body)
    claim.dispatch_due()
    return account, PostTarget.objects.get(post=post)


@pytest.fixture
def one_square_image(author, org):
    from .conftest import _jpeg, upload

    return upload(author, org, _jpeg(1080, 1080, (20, 40, 90)), "The pad at dawn.", "pad.jpg")


@pytest.fixture
def public_image_link(settings, live_server):
    settings.CXHUB_PUBLIC_URL = live_server.url


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("network", RENEWABLE)
def test_an_expired_token_is_renewed_and_the_post_goes_out(request, network, author, org):
    server = _server(request, network)
    account, target = _post(request, network, author, org)
    old = account.access_token
    _expire(network, server, account)

    assert send.publish_target(target_id=target.pk) == "published"

    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED and target.external_id
    account = SocialAccount.objects.get(pk=account.pk)
    assert account.status == AccountStatus.CONNECTED
    assert account.access_token != old
    assert AuditEvent.objects.filter(
        action="social_account.token_refreshed", object_id=str(account.pk)
    ).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("network", NETWORKS)
def test_a_revoked_token_holds_the_target_and_asks_for_a_reconnect(request, network, author, org):
    server = _server(request, network)
    account, target = _post(request, network, author, org)
    _revoke(network, server, account)

    assert send.publish_target(target_id=target.pk) == "auth_expired"

    target.refresh_from_db()
    assert (target.status, target.held_reason) == (TargetStatus.HELD, common.HOLD_ACCOUNT)
    assert SocialAccount.objects.get(pk=account.pk).status == AccountStatus.NEEDS_RECONNECT
    assert AuditEvent.objects.filter(
        action="social_account.needs_reconnect", object_id=str(account.pk)
    ).exists()
    assert Notification.objects.filter(user=author, post_id=target.post_id).exists()
    # Nothing more is sent for it until someone reconnects.
    assert claim.dispatch_due().queued == []


@pytest.mark.django_db
def test_the_periodic_renewal_takes_instagram_tokens_which_renew_without_a_refresh_token(
    instagram_account, graph_server
):
    from datetime import timedelta

    from django.utils import timezone

    from networks.services import social_accounts_refresh_expiring

    SocialAccount.objects.filter(pk=instagram_account.pk).update(
        expires_at=timezone.now() + timedelta(minutes=30)
    )
    old = instagram_account.access_token
    assert social_accounts_refresh_expiring()["renewed"] == 1
    account = SocialAccount.objects.get(pk=instagram_account.pk)
    assert account.access_token != old
    assert account.expires_at > timezone.now() + timedelta(days=30)
