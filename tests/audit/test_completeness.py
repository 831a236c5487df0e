"""Completeness of the audit trail (issue 7, item 1): every service of every app records its event.

The services are found by introspection: every public function defined in a service module
(SERVICE_MODULES, and OPTIONAL_MODULES when they can be imported). Each runs through a small
realistic scenario (SCENARIOS); every table but the trail's own is fingerprinted before and after
the call (row count and a hash of every column of every row, so any insert, delete, or change of
status, updated_at or anything else shows), and a call that changed a row without adding an
AuditEvent fails. A service without a scenario fails too, telling its author to write one.
"""

import hashlib
import importlib
import inspect
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from guardian.shortcuts import assign_perm
from PIL import Image

from accounts import doors, passwords
from accounts import services as accounts
from accounts import tokens as api_tokens
from accounts.mfa import services as mfa
from accounts.models import LoginFailure, Membership, Role
from approvals import services as approvals
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStage,
    ApprovalStep,
    Decision,
)
from audit import sealer
from audit.models import AuditEvent
from audit.services import record
from audit.verify import event_rules, verify_events_present
from networks import services as networks
from networks import tokens as network_tokens
from networks.channels import get_channel
from networks.channels.base import MediaInfo
from networks.models import SocialAccount
from publishing import media_services
from publishing import services as publishing
from publishing.models import Post, PostStatus, PostTarget, PublishingFreeze, TargetStatus

from ..factories import PASSWORD, UserFactory, grant

SERVICE_MODULES = (
    "accounts.services",
    "accounts.doors",
    "accounts.passwords",
    "accounts.tokens",
    "accounts.mfa.services",
    "networks.services",
    "networks.tokens",
    "publishing.services",
    "publishing.media_services",
    "approvals.services",
    "sso.services",
    "inbox.services",
    "inbox.replies",
    "inbox.responses",
    "listening.services",
    "listening.alerts",
    "listening.webhooks",
)
# Built alongside this test; covered automatically once they import, never skipped in silence.
OPTIONAL_MODULES = (
    "publishing.dispatch.claim",
    "publishing.dispatch.start",
    "publishing.dispatch.send",
    "publishing.dispatch.outcome",
    "publishing.dispatch.sweep",
    "publishing.dispatch.common",
    "publishing.freezes",
    "approvals.policies",
)


def _import(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(name), ""
    except ImportError as error:
        return None, f"{type(error).__name__}: {error}"


def service_modules() -> tuple[list[ModuleType], dict[str, str]]:
    """The modules to walk, and the optional ones that could not be imported (with why)."""
    modules = [importlib.import_module(name) for name in SERVICE_MODULES]
    missing = {}
    for name in OPTIONAL_MODULES:
        module, why = _import(name)
        if module is None:
            missing[name] = why
        else:
            modules.append(module)
    return modules, missing


def discovered_services() -> dict[str, Callable]:
    """Every public function defined in a service module (imports from elsewhere left out),
    as "module.function"."""
    found = {}
    for module in service_modules()[0]:
        for name, value in vars(module).items():
            if (
                inspect.isfunction(value)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


# The world the scenarios run in ------------------------------------------------------------------
class World:
    """The shared cast plus a North policy and account, and shortcuts to a post in each state."""

    def __init__(self, org, author, approver, lead, outsider, monkeypatch):
        self.org, self.author, self.approver = org, author, approver
        self.lead, self.outsider, self.monkeypatch = lead, outsider, monkeypatch
        self.admin = UserFactory(username="adam")
        grant(self.admin, org["hq"], Role.ADMIN)
        self.account = networks.social_account_create(
            team=org["north"],
            channel="mastodon",
            handle="@north",
            base_url="https://social.example",
            access_token="access-token",
            refresh_token="refresh-token",
            by=self.admin,
        )
        self.policy = ApprovalPolicy.objects.create(name="North chain", team=org["north"])
        ApprovalStage.objects.create(
            policy=self.policy,
            order=1,
            name="Regional check",
            decider_team=org["north"],
            decider_role=Role.APPROVER,
        )

    def draft(self, body: str = "Launch window opens at dawn.") -> Post:
        return publishing.post_create(
            by=self.author,
            team_id=self.org["north"].pk,
            body=body,
            targets=[publishing.TargetInput(social_account_id=self.account.pk)],
        )

    def in_review(self) -> Post:
        return publishing.post_submit(post=self.draft(), by=self.author)

    def request(self, post: Post) -> ApprovalRequest:
        return ApprovalRequest.objects.get(post=post, status="open")

    def approved(self) -> Post:
        post = self.in_review()
        approvals.decide(request=self.request(post), by=self.approver, verdict="approve")
        post.refresh_from_db()
        return post

    def queued_target(self) -> PostTarget:
        from publishing.dispatch import claim

        post = self.approved()
        claim.dispatch_due(now=timezone.now() + timedelta(seconds=1))
        return PostTarget.objects.get(post=post)


@pytest.fixture
def world(org, author, approver, lead, outsider, monkeypatch):
    return World(org, author, approver, lead, outsider, monkeypatch)


# Scenarios ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """`prepare(world)` sets the scene (not measured) and returns the call (measured).

    - `records`: actions the call must record (at least these).
    - `changes`: whether the call must change rows (guards against a scenario that exercises
      nothing); logout changes no row but must still record its event.
    - `reads`: a read: it must change nothing and record nothing.
    """

    prepare: Callable[[World], Callable[[], object]]
    records: frozenset[str] = field(default_factory=frozenset)
    changes: bool = True
    reads: bool = False


def writes(*actions: str, changes: bool = True):
    def register(prepare):
        return Scenario(prepare, frozenset(actions), changes=changes)

    return register


def reads(prepare):
    return Scenario(prepare, reads=True)


def _atomic(call: Callable[[], object]) -> Callable[[], object]:
    """For services that run inside their caller's transaction (the caller's is modelled)."""

    def run():
        with transaction.atomic():
            return call()

    return run


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (11, 87, 164)).save(buffer, "PNG")
    return SimpleUploadedFile("square.png", buffer.getvalue(), content_type="image/png")


# accounts.services
@writes("team.created")
def _team_create(w):
    return lambda: accounts.team_create(name="East", parent=w.org["hq"], by=w.admin)


@writes("membership.granted")
def _membership_grant(w):
    return lambda: accounts.membership_grant(
        user=w.outsider, team=w.org["south"], role=Role.APPROVER, by=w.admin
    )


@writes("membership.revoked")
def _membership_revoke(w):
    membership = Membership.objects.get(user=w.author, team=w.org["north"], role=Role.DRAFTER)
    return lambda: accounts.membership_revoke(membership=membership, by=w.admin)


# networks.services and networks.tokens
@writes("social_account.created")
def _social_account_create(w):
    return lambda: networks.social_account_create(
        team=w.org["south"], channel="bluesky", handle="south.bsky.social", by=w.admin
    )


@writes("social_account.drafting_granted")
def _social_account_grant_drafting(w):
    return lambda: networks.social_account_grant_drafting(
        account=w.account, user=w.outsider, by=w.admin
    )


@writes("social_account.drafting_revoked")
def _social_account_revoke_drafting(w):
    assign_perm("networks.draft_socialaccount", w.outsider, w.account)
    return lambda: networks.social_account_revoke_drafting(
        account=w.account, user=w.outsider, by=w.admin
    )


@writes("social_account.tokens_rotated")
def _social_account_rotate_tokens(w):
    return lambda: network_tokens.social_account_rotate_tokens(by=w.admin)


@writes("social_account.token_refreshed")
def _social_accounts_refresh_expiring(w):
    from networks.channels.base import TokenSet

    class Renewing:
        renews_with_access_token = False

        def refresh_token(self, account):
            network_tokens.social_account_tokens_refresh(
                account=account, renew=lambda refresh: TokenSet(access_token="renewed")
            )

    SocialAccount.objects.filter(pk=w.account.pk).update(
        expires_at=timezone.now() + timedelta(minutes=5)
    )
    w.monkeypatch.setattr(networks, "get_channel", lambda name: Renewing())
    return lambda: networks.social_accounts_refresh_expiring()


@reads
def _social_account_may_connect(w):
    return lambda: networks.social_account_may_connect(by=w.admin, team=w.org["north"])


@reads
def _social_account_may_reconnect(w):
    return lambda: networks.social_account_may_reconnect(by=w.author, account=w.account)


@writes("social_account.reconnected", "social_account.targets_released")
def _social_account_connect(w):
    from publishing.dispatch import common

    post = w.approved()
    PostTarget.objects.filter(post=post).update(
        status=TargetStatus.HELD, held_reason=common.HOLD_ACCOUNT
    )
    w.account.status = "needs_reconnect"
    w.account.save(update_fields=["status"])
    return lambda: networks.social_account_connect(
        by=w.author,
        team=w.org["north"],
        channel="mastodon",
        base_url="https://social.example",
        handle="@north",
        external_id="109",
        access_token="new-access-token",
        network_settings={"instance": {"configuration": {}}},
    )


@writes("social_account.disconnected")
def _social_account_disconnect(w):
    # No registration is kept for social.example: nothing is sent, the tokens are forgotten.
    return lambda: networks.social_account_disconnect(account=w.account, by=w.admin)


@writes("social_account.needs_reconnect")
def _social_account_needs_reconnect(w):
    return _atomic(
        lambda: networks.social_account_needs_reconnect(
            account_id=w.account.pk, error="The access token is invalid"
        )
    )


@writes("oauth_app.registered")
def _oauth_app_register(w):
    return lambda: network_tokens.oauth_app_register(
        channel="mastodon",
        base_url="https://social.example",
        redirect_uri="https://cxhub.example/accounts/connect/callback/",
        client_id="client-id",
        client_secret="client-secret",
    )


@writes("oauth_app.secrets_rotated")
def _oauth_app_rotate_secrets(w):
    network_tokens.oauth_app_register(
        channel="mastodon",
        base_url="https://social.example",
        redirect_uri="https://cxhub.example/accounts/connect/callback/",
        client_id="client-id",
        client_secret="client-secret",
    )
    return lambda: network_tokens.oauth_app_rotate_secrets(by=w.admin)


@writes("social_account.token_refreshed")
def _social_account_tokens_refresh(w):
    from networks.channels.base import TokenSet

    return lambda: network_tokens.social_account_tokens_refresh(
        account=w.account, renew=lambda refresh: TokenSet(access_token="new-" + refresh)
    )


# accounts.doors and accounts.passwords
def _request(path: str = "/login/"):
    request = RequestFactory().post(path, REMOTE_ADDR="192.0.2.1")
    request.session = {}
    return request


@reads
def _client_address(w):
    return lambda: doors.client_address(_request())


@reads
def _sign_in_wait(w):
    LoginFailure.objects.create(username="alice", address="192.0.2.1", at=timezone.now())
    return lambda: doors.sign_in_wait(request=_request(), username="alice")


@writes("auth.login_failed", "auth.slowdown")
def _sign_in_failed(w):
    for _ in range(2):
        LoginFailure.objects.create(username="alice", address="192.0.2.1", at=timezone.now())
    return lambda: doors.sign_in_failed(request=_request(), username="alice", method="password")


@writes("auth.login")
def _sign_in_succeeded(w):
    LoginFailure.objects.create(username="alice", address="192.0.2.1", at=timezone.now())
    return lambda: doors.sign_in_succeeded(request=_request(), user=w.author, method="password")


@writes("auth.logout", changes=False)
def _sign_out_recorded(w):
    return lambda: doors.sign_out_recorded(request=_request(), user=w.author)


@writes("auth.password_changed")
def _password_change(w):
    return lambda: passwords.password_change(
        request=_request("/password/"),
        user=w.author,
        old_password=PASSWORD,
        new_password="plum-orbit-lantern-42",
    )


@writes("auth.password_reset_requested")
def _password_reset_request(w):
    return lambda: passwords.password_reset_request(
        request=_request("/password/reset/"), email=w.author.email
    )


@writes("auth.password_reset_sent", changes=False)
def _password_reset_send(w):
    return lambda: passwords.password_reset_send(
        email=w.author.email, base_url="https://cxhub.example"
    )


def _reset_link(user) -> tuple[str, str]:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.http import urlsafe_base64_encode

    return urlsafe_base64_encode(str(user.pk).encode()), default_token_generator.make_token(user)


@reads
def _password_reset_user(w):
    uidb64, token = _reset_link(w.author)
    return lambda: passwords.password_reset_user(uidb64=uidb64, token=token)


@writes("auth.password_reset")
def _password_reset_complete(w):
    uidb64, token = _reset_link(w.author)
    return lambda: passwords.password_reset_complete(
        request=_request(), uidb64=uidb64, token=token, new_password="plum-orbit-lantern-42"
    )


# accounts.tokens
@writes("auth.token_issued")
def _api_token_create(w):
    return lambda: api_tokens.api_token_create(
        user=w.author, name="Weekly report", expires_in_days=30, read_only=True, by=w.author
    )


@writes("auth.token_revoked")
def _api_token_revoke(w):
    issued = api_tokens.api_token_create(user=w.author, name="CI", by=w.author)
    return lambda: api_tokens.api_token_revoke(token=issued.token, by=w.admin)


@writes("auth.token_revoked")
def _api_tokens_revoke_all(w):
    for name in ("CI", "laptop"):
        api_tokens.api_token_create(user=w.author, name=name, by=w.author)
    return lambda: api_tokens.api_tokens_revoke_all(user=w.author, by=w.admin, reason="left")


# accounts.mfa.services
def _totp_device(user):
    from accounts.models import AuthenticatorApp

    device = AuthenticatorApp(user=user, name="Phone", confirmed=True)
    device.set_key("3132333435363738393031323334353637383930")
    device.save()
    return device


def _totp_code(device) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key):06d}"


def _passkey(user):
    from django_otp_webauthn.models import WebAuthnCredential

    return WebAuthnCredential.objects.create(
        user=user, name="", credential_id=b"credential", public_key=b"key", aaguid="0" * 32
    )


@writes("mfa.verified")
def _mfa_code_verify(w):
    device = _totp_device(w.lead)
    return lambda: mfa.mfa_code_verify(user=w.lead, method="totp", code=_totp_code(device))


@writes("mfa.device_added")
def _mfa_totp_confirm(w):
    from django_otp.oath import totp

    key = "3132333435363738393031323334353637383930"
    code = f"{totp(bytes.fromhex(key)):06d}"
    return lambda: mfa.mfa_totp_confirm(user=w.lead, key=key, code=code, name="Phone")


@writes("mfa.device_added")
def _mfa_passkey_added(w):
    device = _passkey(w.lead)
    return lambda: mfa.mfa_passkey_added(user=w.lead, device=device)


@writes("mfa.verified", changes=False)
def _mfa_passkey_verified(w):
    device = _passkey(w.lead)
    return lambda: mfa.mfa_passkey_verified(user=w.lead, device=device)


@writes("mfa.failed", changes=False)
def _mfa_passkey_failed(w):
    return lambda: mfa.mfa_passkey_failed(user=w.lead, reason="credential_not_found")


@writes("mfa.recovery_codes_generated")
def _mfa_recovery_codes_generate(w):
    _totp_device(w.lead)
    return lambda: mfa.mfa_recovery_codes_generate(user=w.lead)


@writes("mfa.device_removed")
def _mfa_device_remove(w):
    device = _totp_device(w.lead)
    mfa.mfa_recovery_codes_generate(user=w.lead)
    return lambda: mfa.mfa_device_remove(user=w.lead, device=device)


@writes("mfa.app_keys_rotated")
def _mfa_app_keys_rotate(w):
    _totp_device(w.lead)
    return lambda: mfa.mfa_app_keys_rotate(by=None)


@writes("mfa.failed", "auth.login_failed")
def _mfa_token_check(w):
    from django.test import RequestFactory

    _totp_device(w.lead)
    request = RequestFactory().post("/api/v1/auth/token/")

    def call():
        with pytest.raises(mfa.SecondFactorWrong):
            mfa.mfa_token_check(request=request, user=w.lead, code="000000x")

    return call


# publishing.services
@writes("post.created")
def _post_create(w):
    return lambda: w.draft()


@writes("post.created")
def _reply_create(w):
    return lambda: publishing.reply_create(
        by=w.author,
        team_id=w.org["north"].pk,
        social_account_id=w.account.pk,
        body="Thank you, the launch is at dawn.",
        in_reply_to={"network_id": "109", "thread_id": "100", "raw": {"id": "109"}},
    )


# inbox: what came back and its triage
def _item(w, network_id: str = "109"):
    from inbox.models import InboundItem

    return InboundItem.objects.create(
        account=w.account,
        network_id=network_id,
        kind="mention",
        author_handle="amira@example.social",
        text="When does the visitor centre open?",
        posted_at=timezone.now(),
    )


@writes("inbox.items_received")
def _items_store(w):
    from inbox import services as inbox
    from networks.channels import Inbound

    item = Inbound(
        network_id="110",
        kind="mention",
        text="Is the launch still on?",
        created_at=timezone.now(),
        author_handle="ben@example.social",
    )
    return lambda: inbox.items_store(account=w.account, items=[item], cursor="110")


@writes("inbox.items_gone")
def _items_mark_gone(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.items_mark_gone(account=w.account, item_ids=[item.pk])


@writes("inbox.item_assigned")
def _item_assign(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.item_assign(item=item, assignee=w.approver, by=w.author)


@writes("inbox.item_status_changed")
def _item_set_status(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.item_set_status(item=item, status="waiting", by=w.author)


@writes("inbox.item_status_changed")
def _item_close(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.item_close(item=item, by=w.author)


@reads
def _tag_name(w):
    from inbox import services as inbox

    return lambda: inbox.tag_name("  Census-Scam ")


@writes("inbox.item_tagged")
def _item_tag(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.item_tag(item=item, name="census-scam", by=w.author)


@writes("inbox.item_untagged")
def _item_untag(w):
    from inbox import services as inbox

    item = _item(w)
    inbox.item_tag(item=item, name="census-scam", by=w.author)
    return lambda: inbox.item_untag(item=item, name="census-scam", by=w.author)


@writes("inbox.item_note_added")
def _item_note_add(w):
    from inbox import services as inbox

    item = _item(w)
    return lambda: inbox.item_note_add(item=item, text="Asked the centre.", by=w.author)


@writes("inbox.item_assigned")
def _items_bulk_assign(w):
    from inbox import services as inbox

    ids = [_item(w, "1").pk, _item(w, "2").pk]
    return lambda: inbox.items_bulk_assign(item_ids=ids, assignee=w.approver, by=w.author)


@writes("inbox.item_tagged")
def _items_bulk_tag(w):
    from inbox import services as inbox

    ids = [_item(w, "1").pk, _item(w, "2").pk]
    return lambda: inbox.items_bulk_tag(item_ids=ids, name="press", by=w.author)


@writes("inbox.item_status_changed")
def _items_bulk_close(w):
    from inbox import services as inbox

    ids = [_item(w, "1").pk, _item(w, "2").pk]
    return lambda: inbox.items_bulk_close(item_ids=ids, by=w.author)


@writes("inbox.reply_drafted", "post.created", "inbox.item_status_changed")
def _item_reply_create(w):
    from inbox import replies

    item = _item(w)
    return lambda: replies.item_reply_create(item=item, by=w.author, body="It opens at nine.")


@writes("inbox.item_answered")
def _items_answered(w):
    from inbox import replies

    item = _item(w)
    post = replies.item_reply_create(item=item, by=w.author, body="It opens at nine.")
    target = post.targets.get()
    PostTarget.objects.filter(pk=target.pk).update(
        status=TargetStatus.PUBLISHED, published_at=timezone.now(), external_id="111"
    )
    target.refresh_from_db()
    return _atomic(lambda: replies.items_answered(targets=[target]))


@writes("post.edited")
def _post_update(w):
    post = w.draft()
    return lambda: publishing.post_update(post=post, by=w.author, body="Launch at noon.")


@writes("post.submitted", "approval.requested")
def _post_submit(w):
    post = w.draft()
    return lambda: publishing.post_submit(post=post, by=w.author)


@writes("post.cancelled")
def _post_cancel(w):
    post = w.in_review()
    return lambda: publishing.post_cancel(post=post, by=w.author, reason="Not needed")


@writes("post.created", "post.duplicated")
def _post_duplicate(w):
    post = w.draft()
    return lambda: publishing.post_duplicate(post=post, by=w.author)


@writes("post.approved")
def _post_approved(w):
    post = w.in_review()
    return lambda: publishing.post_approved(
        post=post, content_hash=post.content_hash, by=w.approver
    )


@writes("post.changes_requested")
def _post_changes_requested(w):
    post = w.in_review()
    return _atomic(
        lambda: publishing.post_changes_requested(post=post, by=w.approver, comment="Shorter")
    )


@writes("post.rejected")
def _post_rejected(w):
    post = w.in_review()
    return _atomic(lambda: publishing.post_rejected(post=post, by=w.approver, comment="No"))


@writes("post.submitted")
def _post_submit_for_break_glass(w):
    post = w.draft()
    return _atomic(lambda: publishing.post_submit_for_break_glass(post=post, by=w.lead))


@writes("post.released_now")
def _post_release_now(w):
    post = w.approved()
    Post.objects.filter(pk=post.pk).update(status=PostStatus.NEEDS_RESCHEDULE)
    return _atomic(lambda: publishing.post_release_now(post=post, by=w.lead))


# publishing.media_services
@writes("media.uploaded")
def _media_upload(w):
    return lambda: media_services.media_upload(
        by=w.author, file=_png(), alt_text="A blue rectangle", team_id=w.org["north"].pk
    )


@reads
def _fit_to_limits(w):
    data = _png().read()
    info = MediaInfo(format="PNG", width=64, height=48, bytes=len(data), alt_text="A rectangle")
    return lambda: media_services.fit_to_limits(data, info, get_channel("mastodon").limits)


# approvals.services
@writes("approval.requested")
def _request_open(w):
    post = w.draft()
    Post.objects.filter(pk=post.pk).update(status=PostStatus.IN_REVIEW)
    post.refresh_from_db()
    return _atomic(lambda: approvals.request_open(post=post, by=w.author))


@writes("approval.superseded")
def _requests_supersede(w):
    post = w.in_review()
    return _atomic(lambda: approvals.requests_supersede(post=post, by=w.author, reason="edited"))


@reads
def _is_eligible(w):
    step = ApprovalStep.objects.get(request__post=w.in_review(), order=1)
    return lambda: approvals.is_eligible(step=step, user=w.approver)


@writes("approval.approve", "post.approved")
def _decide(w):
    request = w.request(w.in_review())
    return lambda: approvals.decide(request=request, by=w.approver, verdict="approve")


@writes("approval.escalated")
def _escalate_overdue(w):
    post = w.in_review()
    ApprovalStep.objects.filter(request__post=post).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )
    return lambda: approvals.escalate_overdue()


@writes("post.break_glass", "post.approved")
def _break_glass(w):
    post = w.in_review()
    return lambda: approvals.break_glass(
        post=post, by=w.lead, justification="A safety warning that cannot wait for sign-off."
    )


# publishing.dispatch's stages (optional)
@reads
def _backoff_seconds(w):
    from publishing.dispatch import outcome

    return lambda: outcome.backoff_seconds(3, retry_after=10)


@writes("dispatch.claimed")
def _dispatch_due(w):
    from publishing.dispatch import claim

    w.approved()
    return lambda: claim.dispatch_due(now=timezone.now() + timedelta(seconds=1))


class _Network:
    """The network, answering every publish with a post of its own."""

    def publish(self, account, text, media, *, idempotency_key):
        from networks.channels.http import Published

        return Published("109", f"https://social.example/@north/{idempotency_key[:8]}", 200)

    def reconcile(self, account, text, *, idempotency_key, hints=None):
        return None

    def render(self, text):
        return text


@writes("target.published", "post.published")
def _publish_target(w):
    from publishing.dispatch import send, start

    target = w.queued_target()
    for module in (start, send):  # the text is rendered at start, sent at send
        w.monkeypatch.setattr(module, "get_channel", lambda name: _Network())
    return lambda: send.publish_target(target_id=target.pk, worker="test:1")


@writes("target.published", "post.published")
def _publish_targets(w):
    from publishing.dispatch import send, start

    target = w.queued_target()
    for module in (start, send):  # the text is rendered at start, sent at send
        w.monkeypatch.setattr(module, "get_channel", lambda name: _Network())
    return lambda: send.publish_targets(target_ids=[target.pk], worker="test:1")


@writes("dispatch.swept")
def _sweep_stuck(w):
    from publishing.dispatch import sweep

    target = w.queued_target()
    PostTarget.objects.filter(pk=target.pk).update(
        status=TargetStatus.SENDING, sending_started_at=timezone.now() - timedelta(days=1)
    )
    return lambda: sweep.sweep_stuck()


@reads
def _leads_everything(w):
    from publishing import freezes

    return lambda: freezes.leads_everything(user=w.lead)


@writes("freeze.created")
def _freeze_create(w):
    from publishing import freezes

    w.approved()
    return lambda: freezes.freeze_create(by=w.lead, scope="everything", reason="Election day")


@writes("freeze.lifted")
def _freeze_lift(w):
    from publishing import freezes

    freeze = freezes.freeze_create(by=w.lead, scope="everything", reason="Election day")
    return lambda: freezes.freeze_lift(freeze=freeze, by=w.lead, reason="Results are out")


def _held_by_freeze(w) -> Post:
    from publishing import freezes

    post = w.approved()
    freezes.freeze_create(by=w.lead, scope="everything", reason="Election day")
    return post


@writes("post.held_rescheduled")
def _held_post_reschedule(w):
    from publishing import freezes

    post = _held_by_freeze(w)
    return lambda: freezes.held_post_reschedule(
        post=post, by=w.lead, scheduled_at=timezone.now() + timedelta(hours=3), reason="Later"
    )


@reads
def _held_post_get(w):
    from publishing import freezes

    post = _held_by_freeze(w)
    return lambda: freezes.held_post_get(user=w.lead, post_id=post.pk)


@reads
def _held_posts_for(w):
    from publishing import freezes

    _held_by_freeze(w)
    return lambda: freezes.held_posts_for(user=w.lead)


@writes("social_account.targets_released")
def _targets_release_for_account(w):
    from publishing.dispatch import common, sweep

    post = w.approved()
    PostTarget.objects.filter(post=post).update(
        status=TargetStatus.HELD, held_reason=common.HOLD_ACCOUNT
    )
    return lambda: sweep.targets_release_for_account(account=w.account, by=w.admin)


@writes("target.decided", "post.published")
def _target_decide(w):
    from publishing.dispatch import common, sweep
    from publishing.models import Post, PostStatus

    post = w.approved()
    Post.objects.filter(pk=post.pk).update(status=PostStatus.PUBLISHING)
    PostTarget.objects.filter(post=post).update(
        status=TargetStatus.HELD,
        held_reason=common.HOLD_DECISION,
        reconcile_candidates=[{"external_id": "109", "external_url": "", "text": "Hi"}],
    )
    target = PostTarget.objects.get(post=post)
    return lambda: sweep.target_decide(
        target=target, by=w.lead, decision="published", external_id="109"
    )


@reads
def _freezes_for(w):
    from publishing import freezes

    freezes.freeze_create(by=w.lead, scope="everything", reason="Election day")
    return lambda: list(freezes.freezes_for(user=w.lead))


@reads
def _freeze_get(w):
    from publishing import freezes

    freeze = freezes.freeze_create(by=w.lead, scope="everything", reason="Election day")
    return lambda: freezes.freeze_get(user=w.lead, freeze_id=freeze.pk)


@reads
def _sandbox_account_get(w):
    from publishing.dispatch import send

    return lambda: send.sandbox_account_get(user=w.author, account_id=w.account.pk)


@reads
def _sandbox_feed(w):
    from publishing.dispatch import send

    return lambda: list(send.sandbox_feed(account=w.account))


# approvals.policies (optional)
def _stages(w, team):
    from approvals.policies import StageInput

    return [StageInput(name="Check", decider_team_id=team.pk, decider_role=Role.APPROVER)]


@writes("approval_policy.created")
def _policy_create(w):
    from approvals import policies

    return lambda: policies.policy_create(
        by=w.admin, name="South chain", team_id=w.org["south"].pk, stages=_stages(w, w.org["south"])
    )


@reads
def _policy_may_manage(w):
    from approvals import policies

    return lambda: policies.policy_may_manage(by=w.admin, policy=w.policy)


@writes("approval_policy.changed")
def _policy_update(w):
    from approvals import policies

    return lambda: policies.policy_update(
        policy=w.policy, by=w.admin, name="North chain (2025)", stages=_stages(w, w.org["north"])
    )


@writes("approval_policy.deleted")
def _policy_delete(w):
    from approvals import policies

    return lambda: policies.policy_delete(policy=w.policy, by=w.admin)


@reads
def _policies_for(w):
    from approvals import policies

    return lambda: list(policies.policies_for(user=w.admin))


# sso.services
def _sso_identity(w, *, groups=("north-desk",)):
    from sso import services as sso

    sso.sso_rule_create(
        claim="groups", value="north-desk", team=w.org["north"], role="drafter", by=w.admin
    )
    user = sso.sso_sign_in(
        provider="oidc",
        issuer="https://idp.example",
        subject="sub-1",
        claims={"preferred_username": "olga", "groups": list(groups)},
        address="192.0.2.1",
        refresh_token="refresh-1",
    )
    return user.sso_identities.get()


@writes("sso.user_created", "sso.roles_changed", "sso.login", "membership.granted")
def _sso_sign_in(w):
    from sso import services as sso

    sso.sso_rule_create(
        claim="groups", value="north-desk", team=w.org["north"], role="drafter", by=w.admin
    )
    return lambda: sso.sso_sign_in(
        provider="oidc",
        issuer="https://idp.example",
        subject="sub-1",
        claims={"preferred_username": "olga", "groups": ["north-desk"], "access_token": "x"},
        address="192.0.2.1",
    )


@writes("sso.login_failed", changes=False)
def _sso_sign_in_failed(w):
    from sso import services as sso

    return lambda: sso.sso_sign_in_failed(provider="saml", reason="SignatureError", address=None)


@writes("sso.deprovisioned", "membership.revoked")
def _sso_user_deprovision(w):
    from sso import services as sso

    identity = _sso_identity(w)
    return lambda: sso.sso_user_deprovision(identity=identity, reason="gone", by=w.admin)


@writes("sso.refresh_tokens_rotated")
def _sso_refresh_tokens_rotate(w):
    from sso import services as sso

    _sso_identity(w)
    return lambda: sso.sso_refresh_tokens_rotate(by=None)


@writes("sso.deprovisioned")
def _sso_identity_recheck(w):
    from sso import services as sso

    identity = _sso_identity(w)
    return lambda: sso.sso_identity_recheck(
        identity=identity, check=lambda i: sso.CheckResult("gone", detail="invalid_grant")
    )


@writes("sso.rule_created")
def _sso_rule_create(w):
    from sso import services as sso

    return lambda: sso.sso_rule_create(
        claim="groups", value="hq-leads", team=w.org["hq"], role="lead", by=w.admin
    )


@writes("sso.rule_changed")
def _sso_rule_update(w):
    from sso import services as sso

    rule = sso.sso_rule_create(
        claim="groups", value="hq", team=w.org["hq"], role="lead", by=w.admin
    )
    return lambda: sso.sso_rule_update(
        rule=rule, claim="groups", value="hq-leads", team=w.org["hq"], role="lead", by=w.admin
    )


@writes("sso.rule_deleted")
def _sso_rule_delete(w):
    from sso import services as sso

    rule = sso.sso_rule_create(
        claim="groups", value="hq", team=w.org["hq"], role="lead", by=w.admin
    )
    return lambda: sso.sso_rule_delete(rule=rule, by=w.admin)


# Listening ----------------------------------------------------------------------------------
def _watch(w):
    from listening import services as listening

    return listening.watch_create(
        by=w.lead, team_id=w.org["north"].pk, values={"name": "Census", "terms": ["census"]}
    )


def _found(text="census text asks for bank details"):
    from networks.channels import PublicPost

    return PublicPost(
        network_id=f"p{timezone.now().timestamp()}",
        text=text,
        created_at=timezone.now(),
        author_handle="someone@example.social",
    )


def _alert(w):
    from listening import alerts
    from listening import services as listening

    watch = _watch(w)
    listening.claim_create(by=w.lead, watch=watch, claim="Fake fines", terms=["bank details"])
    stored = listening.posts_store(watch=watch, network="mastodon", posts=[_found()])
    [alert] = alerts.claims_matched(watch, stored.claims)
    return alert


@writes("listening.watch_created")
def _watch_create(w):
    from listening import services as listening

    return lambda: listening.watch_create(
        by=w.lead, team_id=w.org["north"].pk, values={"name": "Census", "terms": ["census"]}
    )


@writes("listening.watch_changed")
def _watch_update(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.watch_update(
        by=w.lead, watch=watch, values={"terms": ["census", "scam"]}
    )


@writes("listening.claim_created")
def _claim_create(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.claim_create(
        by=w.lead, watch=watch, claim="Fake fines", terms=["pay a fine"]
    )


@writes("listening.claim_changed")
def _claim_set_active(w):
    from listening import services as listening

    claim = listening.claim_create(by=w.lead, watch=_watch(w), claim="Fake fines", terms=["fine"])
    return lambda: listening.claim_set_active(by=w.lead, claim=claim, active=False)


@writes("listening.posts_found")
def _posts_store(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.posts_store(watch=watch, network="mastodon", posts=[_found()])


@writes("listening.purged")
def _watch_purge(w):
    from listening import services as listening
    from listening.models import Watch

    watch = _watch(w)
    listening.posts_store(watch=watch, network="mastodon", posts=[_found("census today")])
    Watch.objects.filter(pk=watch.pk).update(retention_days=1)
    watch.refresh_from_db()
    return lambda: listening.watch_purge(watch=watch, now=timezone.now() + timedelta(days=2))


@reads
def _retention_cutoff(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.retention_cutoff(watch)


@reads
def _listening_networks(w):
    from listening import services as listening

    return listening.listening_networks


@reads
def _may_manage(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.may_manage(user=w.author, watch=watch)


@reads
def _wanted_sources(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.wanted_sources(watch)


@reads
def _watch_rules(w):
    from listening import services as listening

    watch = _watch(w)
    return lambda: listening.watch_rules(watch)


@reads
def _window_of(w):
    from listening import alerts

    watch = _watch(w)
    return lambda: alerts.window_of(watch, timezone.now())


@writes("listening.alert_raised")
def _evaluate(w):
    from listening import alerts
    from listening import services as listening
    from listening.models import Watch

    watch = _watch(w)
    now = timezone.now()
    Watch.objects.filter(pk=watch.pk).update(listening_since=now - timedelta(hours=3))
    watch.refresh_from_db()
    posts = [_found("census day") for _ in range(40)]
    posts = [p.__class__(**{**p.__dict__, "network_id": f"s{n}"}) for n, p in enumerate(posts)]
    listening.posts_store(watch=watch, network="mastodon", posts=posts)
    return lambda: alerts.evaluate(watch, now=now)


@writes("listening.alert_raised")
def _claims_matched(w):
    from listening import alerts
    from listening import services as listening

    watch = _watch(w)
    listening.claim_create(by=w.lead, watch=watch, claim="Fake fines", terms=["bank details"])
    stored = listening.posts_store(watch=watch, network="mastodon", posts=[_found()])
    return lambda: alerts.claims_matched(watch, stored.claims)


def _delivery(w):
    from listening import webhooks
    from listening.models import AlertDelivery

    alert = _alert(w)
    w.monkeypatch.setattr(webhooks, "_send_later", lambda delivery_id: None)
    watch = alert.watch
    watch.webhook_url = "https://chat.example/hooks/1"
    watch.save()
    return AlertDelivery.objects.create(
        alert=alert, url=watch.webhook_url, key=uuid.uuid4(), next_at=timezone.now()
    )


@writes("listening.webhook_set")
def _watch_set_webhook(w):
    from listening import webhooks

    watch = _watch(w)
    w.monkeypatch.setattr(webhooks, "check_server", lambda url, what: None)
    return lambda: webhooks.watch_set_webhook(
        by=w.lead, watch=watch, url="https://chat.example/hooks/1"
    )


@writes("listening.alert_raised", changes=False)
def _delivery_queue(w):
    # Runs inside the raising of an alert (alerts._raise), whose event covers the row it adds.
    from listening import webhooks

    alert = _alert(w)
    w.monkeypatch.setattr(webhooks, "_send_later", lambda delivery_id: None)
    alert.watch.webhook_url = "https://chat.example/hooks/1"
    alert.watch.save()

    def call():
        with transaction.atomic():
            record(actor=None, action="listening.alert_raised", obj=alert, team=alert.watch.team)
            return webhooks.delivery_queue(alert)

    return call


@reads
def _body_of(w):
    from listening import webhooks

    delivery = _delivery(w)
    return lambda: webhooks.body_of(delivery)


@reads
def _signature(w):
    from listening import webhooks

    return lambda: webhooks.signature("secret", "1700000000", b"{}")


@reads
def _backoff_seconds_webhook(w):
    from listening import webhooks

    return lambda: webhooks.backoff_seconds(3)


@writes("listening.alert_delivery_failed")
def _deliver(w):
    from listening import webhooks

    delivery = _delivery(w)
    w.monkeypatch.setattr(settings, "CXHUB_LISTENING_WEBHOOK_ATTEMPTS", 1)
    # chat.example does not resolve here: no answer, and the one try allowed is spent.
    return lambda: webhooks.deliver(delivery_id=delivery.pk)


@reads
def _deliveries_due(w):
    from listening import webhooks

    _delivery(w)
    return lambda: webhooks.deliveries_due()


def _response(w):
    from inbox import responses

    return responses.response_create(
        by=w.lead, team_id=w.org["hq"].pk, title="Scam texts", body="We never ask by text."
    )


@writes("inbox.response_created")
def _response_create(w):
    from inbox import responses

    return lambda: responses.response_create(
        by=w.lead, team_id=w.org["hq"].pk, title="Scam texts", body="We never ask by text."
    )


@writes("inbox.response_changed")
def _response_update(w):
    from inbox import responses

    response = _response(w)
    return lambda: responses.response_update(by=w.lead, response=response, active=False)


@reads
def _responses_for(w):
    from inbox import responses

    _response(w)
    return lambda: list(responses.responses_for(team=w.org["north"]))


@writes("listening.alert_post_drafted", "post.created")
def _alert_draft_post(w):
    from listening import alerts

    alert = _alert(w)
    response = _response(w)
    return lambda: alerts.alert_draft_post(
        alert=alert, by=w.author, response_id=response.pk, account_ids=[w.account.pk]
    )


@writes("listening.alert_reply_drafted")
def _alert_reply_create(w):
    from listening import alerts
    from listening.models import Hit

    alert = _alert(w)
    hit = Hit.objects.filter(watch=alert.watch).first()
    x_account = networks.social_account_create(
        team=w.org["north"],
        channel="x",
        handle="@north_x",
        base_url="https://api.x.com",
        access_token="access-token",
        by=w.admin,
    )
    hit.post.network = "x"
    hit.post.save()
    return lambda: alerts.alert_reply_create(
        alert=alert, by=w.author, post_id=hit.post_id, account_id=x_account.pk, body="Hello"
    )


@reads
def _inbox_watch_terms(w):
    from listening import services as listening

    _watch(w)
    return lambda: listening.inbox_watch_terms(team=w.org["north"])


@writes("listening.alert_freeze", "freeze.created")
def _alert_freeze_topic(w):
    from listening import alerts
    from listening.models import Watch

    alert = _alert(w)
    Watch.objects.filter(pk=alert.watch_id).update(topic_tags=["census"])
    return lambda: alerts.alert_freeze_topic(alert=alert, by=w.lead, reason="Until answered.")


@reads
def _may_act(w):
    from listening import alerts

    alert = _alert(w)
    return lambda: alerts.may_act(user=w.author, alert=alert)


@writes("listening.alert_acknowledged")
def _alert_acknowledge(w):
    from listening import alerts

    alert = _alert(w)
    return lambda: alerts.alert_acknowledge(alert=alert, by=w.lead)


@writes("listening.alert_closed")
def _alert_close(w):
    from listening import alerts

    alert = _alert(w)
    return lambda: alerts.alert_close(alert=alert, by=w.lead, note="Answered.")


SCENARIOS: dict[str, Scenario] = {
    "accounts.services.team_create": _team_create,
    "accounts.services.membership_grant": _membership_grant,
    "accounts.services.membership_revoke": _membership_revoke,
    "networks.services.social_account_create": _social_account_create,
    "networks.services.social_account_grant_drafting": _social_account_grant_drafting,
    "networks.services.social_account_revoke_drafting": _social_account_revoke_drafting,
    "networks.tokens.social_account_rotate_tokens": _social_account_rotate_tokens,
    "networks.tokens.social_account_tokens_refresh": _social_account_tokens_refresh,
    "networks.services.social_accounts_refresh_expiring": _social_accounts_refresh_expiring,
    "networks.services.social_account_may_connect": _social_account_may_connect,
    "networks.services.social_account_may_reconnect": _social_account_may_reconnect,
    "networks.services.social_account_connect": _social_account_connect,
    "networks.services.social_account_disconnect": _social_account_disconnect,
    "networks.services.social_account_needs_reconnect": _social_account_needs_reconnect,
    "networks.tokens.oauth_app_register": _oauth_app_register,
    "networks.tokens.oauth_app_rotate_secrets": _oauth_app_rotate_secrets,
    "accounts.doors.client_address": _client_address,
    "accounts.doors.sign_in_wait": _sign_in_wait,
    "accounts.doors.sign_in_failed": _sign_in_failed,
    "accounts.doors.sign_in_succeeded": _sign_in_succeeded,
    "accounts.doors.sign_out_recorded": _sign_out_recorded,
    "accounts.passwords.password_change": _password_change,
    "accounts.passwords.password_reset_request": _password_reset_request,
    "accounts.passwords.password_reset_send": _password_reset_send,
    "accounts.passwords.password_reset_user": _password_reset_user,
    "accounts.passwords.password_reset_complete": _password_reset_complete,
    "accounts.tokens.api_token_create": _api_token_create,
    "accounts.tokens.api_token_revoke": _api_token_revoke,
    "accounts.tokens.api_tokens_revoke_all": _api_tokens_revoke_all,
    "accounts.mfa.services.mfa_code_verify": _mfa_code_verify,
    "accounts.mfa.services.mfa_totp_confirm": _mfa_totp_confirm,
    "accounts.mfa.services.mfa_passkey_added": _mfa_passkey_added,
    "accounts.mfa.services.mfa_passkey_verified": _mfa_passkey_verified,
    "accounts.mfa.services.mfa_passkey_failed": _mfa_passkey_failed,
    "accounts.mfa.services.mfa_recovery_codes_generate": _mfa_recovery_codes_generate,
    "accounts.mfa.services.mfa_device_remove": _mfa_device_remove,
    "accounts.mfa.services.mfa_app_keys_rotate": _mfa_app_keys_rotate,
    "accounts.mfa.services.mfa_token_check": _mfa_token_check,
    "publishing.services.post_create": _post_create,
    "publishing.services.reply_create": _reply_create,
    "publishing.services.post_update": _post_update,
    "inbox.services.items_store": _items_store,
    "inbox.services.items_mark_gone": _items_mark_gone,
    "inbox.services.item_assign": _item_assign,
    "inbox.services.item_set_status": _item_set_status,
    "inbox.services.item_close": _item_close,
    "inbox.services.tag_name": _tag_name,
    "inbox.services.item_tag": _item_tag,
    "inbox.services.item_untag": _item_untag,
    "inbox.services.item_note_add": _item_note_add,
    "inbox.services.items_bulk_assign": _items_bulk_assign,
    "inbox.services.items_bulk_tag": _items_bulk_tag,
    "inbox.services.items_bulk_close": _items_bulk_close,
    "inbox.replies.item_reply_create": _item_reply_create,
    "inbox.replies.items_answered": _items_answered,
    "publishing.services.post_submit": _post_submit,
    "publishing.services.post_cancel": _post_cancel,
    "publishing.services.post_duplicate": _post_duplicate,
    "publishing.services.post_approved": _post_approved,
    "publishing.services.post_changes_requested": _post_changes_requested,
    "publishing.services.post_rejected": _post_rejected,
    "publishing.services.post_submit_for_break_glass": _post_submit_for_break_glass,
    "publishing.services.post_release_now": _post_release_now,
    "publishing.media_services.media_upload": _media_upload,
    "publishing.media_services.fit_to_limits": _fit_to_limits,
    "approvals.services.request_open": _request_open,
    "approvals.services.requests_supersede": _requests_supersede,
    "approvals.services.is_eligible": _is_eligible,
    "approvals.services.decide": _decide,
    "approvals.services.escalate_overdue": _escalate_overdue,
    "approvals.services.break_glass": _break_glass,
    "publishing.dispatch.outcome.backoff_seconds": _backoff_seconds,
    "publishing.dispatch.claim.dispatch_due": _dispatch_due,
    "publishing.dispatch.send.publish_target": _publish_target,
    "publishing.dispatch.send.publish_targets": _publish_targets,
    "publishing.dispatch.sweep.sweep_stuck": _sweep_stuck,
    "publishing.freezes.leads_everything": _leads_everything,
    "publishing.freezes.freeze_create": _freeze_create,
    "publishing.freezes.freeze_lift": _freeze_lift,
    "publishing.freezes.held_post_reschedule": _held_post_reschedule,
    "publishing.freezes.held_post_get": _held_post_get,
    "publishing.freezes.held_posts_for": _held_posts_for,
    "publishing.dispatch.sweep.targets_release_for_account": _targets_release_for_account,
    "publishing.dispatch.sweep.target_decide": _target_decide,
    "publishing.freezes.freezes_for": _freezes_for,
    "publishing.freezes.freeze_get": _freeze_get,
    "publishing.dispatch.send.sandbox_account_get": _sandbox_account_get,
    "publishing.dispatch.send.sandbox_feed": _sandbox_feed,
    "approvals.policies.policy_create": _policy_create,
    "approvals.policies.policy_may_manage": _policy_may_manage,
    "approvals.policies.policy_update": _policy_update,
    "approvals.policies.policy_delete": _policy_delete,
    "approvals.policies.policies_for": _policies_for,
    "sso.services.sso_sign_in": _sso_sign_in,
    "sso.services.sso_sign_in_failed": _sso_sign_in_failed,
    "sso.services.sso_user_deprovision": _sso_user_deprovision,
    "sso.services.sso_identity_recheck": _sso_identity_recheck,
    "sso.services.sso_refresh_tokens_rotate": _sso_refresh_tokens_rotate,
    "sso.services.sso_rule_create": _sso_rule_create,
    "sso.services.sso_rule_update": _sso_rule_update,
    "sso.services.sso_rule_delete": _sso_rule_delete,
    "listening.services.watch_create": _watch_create,
    "listening.services.watch_update": _watch_update,
    "listening.services.claim_create": _claim_create,
    "listening.services.claim_set_active": _claim_set_active,
    "listening.services.posts_store": _posts_store,
    "listening.services.listening_networks": _listening_networks,
    "listening.services.watch_purge": _watch_purge,
    "listening.services.retention_cutoff": _retention_cutoff,
    "listening.services.may_manage": _may_manage,
    "listening.services.wanted_sources": _wanted_sources,
    "listening.services.watch_rules": _watch_rules,
    "listening.alerts.window_of": _window_of,
    "listening.alerts.evaluate": _evaluate,
    "listening.alerts.claims_matched": _claims_matched,
    "listening.webhooks.watch_set_webhook": _watch_set_webhook,
    "listening.webhooks.delivery_queue": _delivery_queue,
    "listening.webhooks.body_of": _body_of,
    "listening.webhooks.signature": _signature,
    "listening.webhooks.backoff_seconds": _backoff_seconds_webhook,
    "listening.webhooks.deliver": _deliver,
    "listening.webhooks.deliveries_due": _deliveries_due,
    "listening.alerts.may_act": _may_act,
    "listening.alerts.alert_acknowledge": _alert_acknowledge,
    "listening.alerts.alert_close": _alert_close,
    "listening.alerts.alert_draft_post": _alert_draft_post,
    "listening.services.inbox_watch_terms": _inbox_watch_terms,
    "listening.alerts.alert_reply_create": _alert_reply_create,
    "listening.alerts.alert_freeze_topic": _alert_freeze_topic,
    "inbox.responses.response_create": _response_create,
    "inbox.responses.response_update": _response_update,
    "inbox.responses.responses_for": _responses_for,
}


# The database's state, table by table ------------------------------------------------------------
def _tables() -> list:
    """Every table of the project and its libraries except the audit trail's own."""
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label != "audit" and model._meta.managed and not model._meta.proxy
    ]


def snapshot() -> dict[str, tuple[int, str]]:
    """Per table: its row count and a hash of every column of every row, in primary-key order."""
    state = {}
    for model in _tables():
        columns = [f.attname for f in model._meta.concrete_fields]
        rows = list(model._base_manager.order_by("pk").values_list(*columns))
        state[model._meta.label] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [
        f"{label} ({before[label][0]} → {after[label][0]} rows)"
        for label in before
        if before[label] != after[label]
    ]


# The tests ---------------------------------------------------------------------------------------
def test_every_service_has_a_scenario(capsys):
    modules, unavailable = service_modules()
    found = set(discovered_services())
    walked = {module.__name__ for module in modules}
    known = {name for name in SCENARIOS if name.rsplit(".", 1)[0] in walked}
    with capsys.disabled():
        print(f"\naudit completeness: services of {', '.join(sorted(walked))} ({len(found)})")
        for name, why in unavailable.items():
            print(f"audit completeness: NOT COVERED, cannot import {name}: {why}")

    missing = sorted(found - known)
    assert not missing, (
        "These services have no completeness scenario: "
        + ", ".join(missing)
        + ". Add one to SCENARIOS in tests/audit/test_completeness.py: @writes(<the actions it "
        "records>) with a prepare function that sets the scene and returns the call, or @reads "
        "if it changes nothing."
    )
    stale = sorted(known - found)
    assert not stale, f"Scenarios for services that no longer exist: {', '.join(stale)}"


def test_optional_service_modules_are_present():
    unavailable = service_modules()[1]
    if unavailable:
        pytest.skip(
            "not covered by the completeness test: "
            + "; ".join(f"{name} ({why})" for name, why in unavailable.items())
        )


def _scenario_ids() -> list[str]:
    return sorted(name for name in discovered_services() if name in SCENARIOS)


@pytest.mark.parametrize("service", _scenario_ids())
def test_the_service_records_its_event_when_it_changes_anything(world, service):
    scenario = SCENARIOS[service]
    call = scenario.prepare(world)
    before = snapshot()
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    call()

    changed = changed_tables(before, snapshot())
    recorded = list(AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq"))
    actions = [event.action for event in recorded]
    if scenario.reads:
        assert not changed and not recorded, (
            f"{service} is registered as a read but changed {changed} / recorded {actions}"
        )
        return
    if changed:
        assert recorded, f"{service} changed {', '.join(changed)} without an audit event"
    elif scenario.changes:
        pytest.fail(f"the scenario of {service} changed nothing: make it exercise the service")
    assert recorded, f"{service} recorded no audit event"
    assert scenario.records <= set(actions), (
        f"{service} recorded {actions}; expected at least {sorted(scenario.records)}"
    )


# audit_verify: rows that must each have their event (issue 7, item 5) -----------------------------
def verify_command(*args) -> str:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def published_and_frozen(world):
    """A post approved by bob and published, a freeze made and lifted: all through services."""
    from publishing import freezes
    from publishing.dispatch import send, start

    target = world.queued_target()
    for module in (start, send):  # the text is rendered at start, sent at send
        world.monkeypatch.setattr(module, "get_channel", lambda name: _Network())
    send.publish_target(target_id=target.pk, worker="test:1")
    freeze = freezes.freeze_create(by=world.lead, scope="everything", reason="Election day")
    freezes.freeze_lift(freeze=freeze, by=world.lead, reason="Results are out")
    return world


def test_rows_made_by_the_services_each_have_their_event(published_and_frozen):
    results = {rule.label: rule for rule in verify_events_present()}

    assert {label: (r.checked, r.missing) for label, r in results.items()} == {
        "published targets": (1, 0),
        "decisions": (1, 0),
        "freezes": (1, 0),
        "lifted freezes": (1, 0),
    }
    output = verify_command()
    assert output.startswith("audit chain OK: ")
    assert "1 published targets, 1 freezes, 1 lifted freezes, 1 decisions each with its event" in (
        output
    )
    assert output.rstrip().endswith("events/s)")


def test_rows_written_behind_the_services_back_are_named(published_and_frozen, org, lead):
    world = published_and_frozen
    # Written directly: no event says they happened.
    post = world.draft("Went out without a record")
    sneaked = PostTarget.objects.get(post=post)
    PostTarget.objects.filter(pk=sneaked.pk).update(
        status=TargetStatus.PUBLISHED, published_at=timezone.now()
    )
    request = world.request(world.in_review())
    step = request.steps.get()
    decision = Decision.objects.create(
        request=request, step=step, user=world.approver, verdict="approve", content_hash="x"
    )
    freeze = PublishingFreeze.objects.create(scope="everything", reason="quiet", created_by=lead)

    with pytest.raises(CommandError) as failure:
        verify_command()

    message = str(failure.value)
    assert message.startswith("audit trail INCOMPLETE:")
    assert f"1 of 2 published targets have no event (ids: {sneaked.pk})" in message
    assert f"1 of 2 decisions have no event (ids: {decision.pk})" in message
    assert f"1 of 2 freezes have no event (ids: {freeze.pk})" in message
    assert "lifted freezes" not in message


def test_an_event_by_someone_else_does_not_prove_a_decision(world):
    request = world.request(world.in_review())
    with transaction.atomic():
        Decision.objects.create(
            request=request,
            step=request.steps.get(),
            user=world.approver,
            verdict="approve",
            content_hash="x",
        )
        record(actor=world.lead, action="approval.approve", obj=request)

    (decisions,) = [r for r in verify_events_present() if r.label == "decisions"]

    assert (decisions.checked, decisions.missing) == (1, 1)


def test_the_json_report_lists_each_rule(published_and_frozen):
    PublishingFreeze.objects.create(
        scope="everything", reason="quiet", created_by=published_and_frozen.lead
    )
    sealed = sealer.seal().after  # the services' events, in the tree the verifier recomputes
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("audit_verify", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert (report["ok"], report["chain_ok"], report["tree_ok"]) == (False, True, True)
    freeze_row = next(r for r in report["events_present"] if r["label"] == "freezes")
    assert (freeze_row["checked"], freeze_row["missing"]) == (2, 1)
    assert report["tree"]["size"] == sealed > 0
    assert report["events_per_second"] > 0


def test_chain_only_skips_the_rows(world, lead):
    PublishingFreeze.objects.create(scope="everything", reason="quiet", created_by=lead)

    assert verify_command("--chain-only").startswith("audit chain OK: ")


@pytest.mark.parametrize("batch_size", [1, 2, 2000])
def test_rows_are_checked_in_keyset_batches(published_and_frozen, batch_size):
    for n in range(3):
        published_and_frozen.draft(f"Post {n}")
    PostTarget.objects.update(status=TargetStatus.PUBLISHED)

    results = {r.label: r for r in verify_events_present(batch_size=batch_size)}

    assert (results["published targets"].checked, results["published targets"].missing) == (4, 3)


def test_the_rules_name_actions_the_services_record():
    """The rules publishing gives (publishing/audit_rules.py) name what dispatch records."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "publishing"
    files = [*sorted((root / "dispatch").glob("*.py")), root / "freezes.py"]
    source = "".join(path.read_text() for path in files)
    for rule in event_rules():
        if rule.model.startswith("publishing."):
            assert f'action="{rule.action}"' in source, rule.action


def test_each_app_that_records_the_events_gives_its_rules():
    assert {rule.label: rule.model.split(".")[0] for rule in event_rules()} == {
        "published targets": "publishing",
        "freezes": "publishing",
        "lifted freezes": "publishing",
        "decisions": "approvals",
    }
