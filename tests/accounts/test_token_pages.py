"""The API token pages: a person lists, makes (seeing the secret once) and revokes their tokens;
an administrator sees and revokes those of the people in their subtree, and no one else's."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken, Role
from audit.models import AuditEvent

from ..factories import UserFactory, grant


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _issue(user, name="script", **options) -> tokens.IssuedToken:
    return tokens.api_token_create(user=user, name=name, by=user, **options)


@pytest.fixture
def north_admin(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.ADMIN)
    return user


def _no_inline_script(html: str) -> None:
    """What a strict Content-Security-Policy would block: inline scripts and on* handlers."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "an on* event handler"


def test_my_tokens_are_listed_without_secrets(author, outsider):
    mine = _issue(author, name="Weekly report", read_only=True)
    theirs = _issue(outsider, name="Their script")

    response = _client(author).get("/tokens/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Weekly report" in html and mine.token.prefix in html
    assert "Read-only" in html
    assert "Their script" not in html and theirs.token.prefix not in html
    assert mine.secret not in html and mine.token.secret_hash not in html
    _no_inline_script(html)


def test_a_new_token_is_shown_once(author):
    client = _client(author)

    response = client.post(
        "/tokens/", {"name": "CI pipeline", "expires_in_days": "30", "read_only": "on"}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=author)
    assert token.name == "CI pipeline" and token.read_only
    assert abs((token.expires_at - timezone.now() - timedelta(days=30)).total_seconds()) < 60
    html = response.content.decode()
    secret = re.search(r'id="new-token-value"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*id="new-token-value"', html
    )
    assert secret, "the new token is not on the page"
    assert html.count(secret.group(1)) == 1
    assert "shown only this once" in html
    assert AuditEvent.objects.filter(action="auth.token_issued", actor=author).exists()
    _no_inline_script(html)
    # Never again.
    again = client.get("/tokens/").content.decode()
    assert secret.group(1) not in again
    assert token.prefix in again


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "expires_in_days": "30"}, "name"),
        ({"name": "x", "expires_in_days": "9999"}, "expires_in_days"),
        ({"name": "x", "expires_in_days": "0"}, "expires_in_days"),
        ({"name": "x", "expires_in_days": "soon"}, "expires_in_days"),
    ],
)
def test_bad_input_is_refused_beside_its_field(author, data, field):
    response = _client(author).post("/tokens/", data)

    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_i_revoke_my_token_after_confirming(author):
    issued = _issue(author, name="Old laptop")
    client = _client(author)

    confirm = client.get(f"/tokens/{issued.token.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Old laptop" in confirm.content.decode()
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None

    response = client.post(f"/tokens/{issued.token.pk}/revoke/", follow=True)

    assert response.redirect_chain[-1][0] == "/tokens/"
    assert "Revoked the token" in response.content.decode()
    issued.token.refresh_from_db()
    assert issued.token.revoked_by == author
    again = client.post(f"/tokens/{issued.token.pk}/revoke/", follow=True)
    assert "revoked already" in again.content.decode()


def test_someone_elses_token_page_is_404(author, outsider, approver):
    issued = _issue(author)
    for stranger in (outsider, approver):
        client = _client(stranger)
        assert client.get(f"/tokens/{issued.token.pk}/revoke/").status_code == 404
        assert client.post(f"/tokens/{issued.token.pk}/revoke/").status_code == 404
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_an_admin_sees_and_revokes_the_tokens_of_their_people_only(
    author, approver, outsider, north_admin, org
):
    alices = _issue(author, name="Alice's script")
    bobs = _issue(approver, name="Bob's script")
    charlies = _issue(outsider, name="Charlie's script")
    grant(approver, org["south"], Role.APPROVER)  # bob now also works for South
    expired = _issue(author, name="Expired one", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now())
    client = _client(north_admin)

    page = client.get("/tokens/people/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice&#x27;s script" in html and alices.token.prefix in html
    for hidden in (bobs, charlies, expired):
        assert hidden.token.prefix not in html
    assert alices.secret not in html
    _no_inline_script(html)
    response = client.post(f"/tokens/{alices.token.pk}/revoke/", follow=True)
    assert response.redirect_chain[-1][0] == "/tokens/people/"
    alices.token.refresh_from_db()
    assert alices.token.revoked_by == north_admin
    for hidden in (bobs, charlies):
        assert client.post(f"/tokens/{hidden.token.pk}/revoke/").status_code == 404


def test_the_people_page_is_for_admins(author):
    response = _client(author).get("/tokens/people/")
    assert response.status_code == 403
    assert "Only administrators" in response.content.decode()


def test_the_navigation_links_the_token_pages(author, north_admin):
    html = _client(author).get("/").content.decode()
    assert 'href="/tokens/"' in html and 'href="/tokens/people/"' not in html
    html = _client(north_admin).get("/").content.decode()
    assert 'href="/tokens/"' in html and 'href="/tokens/people/"' in html


@pytest.mark.parametrize("count", [2, 30])
def test_the_token_pages_cost_the_same_queries(
    author, north_admin, count, django_assert_num_queries
):
    grant(author, north_admin.memberships.get().team, Role.APPROVER)
    ApiToken.objects.bulk_create(
        ApiToken(
            user=author,
            name=f"t{n}",
            prefix=f"cxh_{n:08d}",
            secret_hash=f"{n:064x}",
            expires_at=timezone.now() + timedelta(days=1),
        )
        for n in range(count)
    )
    mine, theirs = _client(author), _client(north_admin)
    mine.get("/tokens/")
    theirs.get("/tokens/people/")  # sessions warmed

    # session, user, tokens, roles (navigation), approvals waiting, unread count
    with django_assert_num_queries(6):
        assert len(mine.get("/tokens/").context["items"]) == count
    # session, user, roles (admin check), tokens with owners, roles (navigation), approvals
    # waiting, unread count
    with django_assert_num_queries(7):
        assert len(theirs.get("/tokens/people/").context["items"]) == count
