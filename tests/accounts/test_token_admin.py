"""API tokens in the Django admin: a person deactivated there loses their tokens for good, and
operators list tokens (never a secret or hash) and revoke them through the service."""

from datetime import UTC, datetime

from django.urls import reverse
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import ApiToken
from audit.models import AuditEvent
from tests.factories import UserFactory


def _works(secret: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client.get("/api/v1/me/").status_code == 200


def test_deactivating_a_person_in_the_admin_revokes_their_tokens(admin_client, db):
    # given a person with two tokens
    user = UserFactory(username="erin", date_joined=datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    secrets = [tokens.api_token_create(user=user, name=n, by=user).secret for n in ("a", "b")]
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {
        **{name: value for name, value in form.initial.items() if value is not None},
        "username": "erin",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "09:00:00",
        "last_login_0": "",
        "last_login_1": "",
        "groups": [],
        "user_permissions": [],
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        data.pop(flag, None)  # unticked: deactivated
    # when an operator deactivates them
    response = admin_client.post(url, data)
    # then their tokens are revoked (not only refused while inactive), each recorded
    assert response.status_code == 302, response.content.decode()[:3000]
    user.refresh_from_db()
    assert not user.is_active
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="auth.token_revoked").count() == 2
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert not any(_works(secret) for secret in secrets)


def test_the_token_admin_lists_tokens_without_secrets_and_revokes(admin_client, author):
    issued = tokens.api_token_create(user=author, name="CI", by=author)

    listing = admin_client.get(reverse("admin:accounts_apitoken_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert issued.token.prefix in html
    assert issued.secret not in html and issued.token.secret_hash not in html
    detail = admin_client.get(reverse("admin:accounts_apitoken_change", args=[issued.token.pk]))
    assert detail.status_code == 200
    assert issued.token.secret_hash not in detail.content.decode()

    response = admin_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [issued.token.pk]},
    )

    assert response.status_code == 302
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert not _works(issued.secret)
