"""The rules that turn claims into roles: how they match, the sign-in service applying them,
the admin writing them through the services (audited), and the preview of who would get what."""

import json

import pytest
from django.test import Client

from accounts.models import Membership, Role, User
from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from sso import selectors, services
from sso.models import Grant, Identity, RoleRule
from tests.factories import UserFactory, grant


def rule(**fields) -> RoleRule:
    return RoleRule(**{"claim": "groups", "operator": "equals", "provider": "", **fields})


@pytest.mark.parametrize(
    ("claims", "fields", "matches"),
    [
        ({"groups": ["a", "cx-north"]}, {"value": "cx-north"}, True),
        ({"groups": ["cx-north-2"]}, {"value": "cx-north"}, False),
        ({"groups": ["cx-north-2"]}, {"value": "north", "operator": "contains"}, True),
        ({"groups": "cx-north"}, {"value": "cx-north"}, True),
        ({"groups": "CX-NORTH"}, {"value": "cx-north"}, False),
        (
            {"email": "a@north.example"},
            {"claim": "email", "value": "@north", "operator": "contains"},
            True,
        ),
        ({"realm": {"roles": ["lead"]}}, {"claim": "realm.roles", "value": "lead"}, True),
        ({"realm": {"roles": ["lead"]}}, {"claim": "realm", "value": "lead"}, False),
        ({"staff": True}, {"claim": "staff", "value": "true"}, True),
        ({}, {"value": "x"}, False),
        ({"groups": ["x"]}, {"value": "x", "provider": "saml"}, False),
    ],
)
def test_how_a_rule_matches(claims, fields, matches):
    assert selectors.rule_matches(rule(**fields), claims, "oidc") is matches


def test_a_rule_with_a_bad_field_is_refused_naming_it(org):
    with pytest.raises(ApplicationError) as refused:
        services.sso_rule_create(claim=" ", value="v", team=org["hq"], role="boss", by=None)

    assert set(refused.value.extra["fields"]) == {"claim", "role"}


def sign_in(subject="s-1", **claims):
    return services.sso_sign_in(
        provider="oidc",
        issuer="https://idp.example",
        subject=subject,
        claims={"preferred_username": "olga", **claims},
        address="192.0.2.7",
    )


def test_a_new_person_gets_a_free_username_and_no_secret_is_kept(org):
    UserFactory(username="olga")

    user = sign_in(groups=["x"], access_token="at-123", client_secret="cs")

    assert user.username == "olga-2"
    assert Identity.objects.get(user=user).claims == {"preferred_username": "olga", "groups": ["x"]}


@pytest.mark.parametrize(
    ("allowed", "verified", "linked"),
    [(False, True, False), (True, True, True), (True, False, False)],
)
def test_an_existing_person_is_linked_by_email_only_when_allowed(
    org, settings, allowed, verified, linked
):
    existing = UserFactory(username="olga.k", email="olga@agency.example")
    settings.CXHUB_SSO_LINK_BY_EMAIL = allowed

    user = sign_in(email="olga@agency.example", email_verified=verified)

    assert (user.pk == existing.pk) is linked


def test_a_deprovisioned_person_the_provider_accepts_again_comes_back(org):
    services.sso_rule_create(claim="groups", value="n", team=org["north"], role="drafter", by=None)
    user = sign_in(groups=["n"])
    services.sso_user_deprovision(identity=Identity.objects.get(user=user), reason="gone")
    user.refresh_from_db()
    assert not user.is_active and not user.memberships.exists()

    again = sign_in(groups=["n"])

    assert again.pk == user.pk and again.is_active
    assert set(again.memberships.values_list("role", flat=True)) == {"drafter"}
    event = AuditEvent.objects.filter(action="sso.login").latest("seq")
    assert event.data["reactivated"] is True


def test_a_role_held_by_hand_is_neither_marked_nor_taken_by_the_rules(org):
    services.sso_rule_create(claim="groups", value="n", team=org["north"], role="drafter", by=None)
    user = sign_in(groups=[])
    grant(user, org["north"], Role.DRAFTER)

    sign_in(groups=["n"])
    sign_in(groups=[])

    assert Membership.objects.filter(user=user, team=org["north"], role="drafter").exists()
    assert not Grant.objects.exists()


# The admin -------------------------------------------------------------------------------------
@pytest.fixture
def operator(db):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_rules_written_in_the_admin_are_audited(operator, org):
    add = operator.post(
        "/admin/sso/rolerule/add/",
        {
            "provider": "",
            "claim": "groups",
            "operator": "equals",
            "value": "north",
            "team": org["north"].pk,
            "role": "drafter",
        },
    )
    assert add.status_code == 302, add.content
    made = RoleRule.objects.get()
    change = operator.post(
        f"/admin/sso/rolerule/{made.pk}/change/",
        {
            "provider": "oidc",
            "claim": "groups",
            "operator": "equals",
            "value": "north",
            "team": org["north"].pk,
            "role": "approver",
        },
    )
    assert change.status_code == 302, change.content
    delete = operator.post(f"/admin/sso/rolerule/{made.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 302

    assert list(
        AuditEvent.objects.filter(action__startswith="sso.rule")
        .order_by("seq")
        .values_list("action", flat=True)
    ) == ["sso.rule_created", "sso.rule_changed", "sso.rule_deleted"]
    changed = AuditEvent.objects.get(action="sso.rule_changed")
    assert (changed.data["before"]["role"], changed.data["after"]["role"]) == (
        "drafter",
        "approver",
    )
    assert not RoleRule.objects.exists()


def test_the_preview_shows_who_would_get_what_from_pasted_claims(operator, org):
    services.sso_rule_create(
        claim="groups", value="north", team=org["north"], role="drafter", by=None
    )
    services.sso_rule_create(claim="groups", value="hq", team=org["hq"], role="lead", by=None)

    page = operator.post(
        "/admin/sso/rolerule/preview/",
        {"provider": "oidc", "claims": json.dumps({"sub": "new", "groups": ["north", "other"]})},
    )

    assert page.status_code == 200
    text = page.content.decode()
    assert "A new person" in text
    assert "drafter on North" in text and "lead on HQ" not in text


def test_the_preview_of_a_recent_sign_in_shows_what_would_change(operator, org):
    services.sso_rule_create(
        claim="groups", value="north", team=org["north"], role="drafter", by=None
    )
    services.sso_rule_create(
        claim="groups", value="south", team=org["south"], role="approver", by=None
    )
    user = sign_in(groups=["north"])
    grant(user, org["hq"], Role.LEAD)
    RoleRule.objects.filter(value="north").update(value="north-renamed")
    identity = Identity.objects.get(user=user)
    Identity.objects.filter(pk=identity.pk).update(claims={"groups": ["south"]})

    page = operator.post(
        "/admin/sso/rolerule/preview/", {"provider": "oidc", "identity": identity.pk}
    )

    text = page.content.decode()
    assert f"Signs in as <strong>{user.username}</strong>" in text
    assert '<li class="granted">approver on South</li>' in text
    assert '<li class="revoked">drafter on North</li>' in text
    assert "lead on HQ" in text  # kept: given by hand
    assert set(Membership.objects.filter(user=user).values_list("role", flat=True)) == {
        "drafter",
        "lead",
    }


def test_the_preview_names_bad_json_instead_of_failing(operator, org):
    page = operator.post("/admin/sso/rolerule/preview/", {"provider": "oidc", "claims": "{groups"})

    assert page.status_code == 200
    assert "Not valid JSON" in page.content.decode()


def test_the_admin_lists_rules_and_identities(operator, org):
    sign_in(groups=["x"])
    assert operator.get("/admin/sso/rolerule/").status_code == 200
    assert operator.get("/admin/sso/identity/").status_code == 200
    identity = Identity.objects.get()
    answer = operator.post(
        "/admin/sso/identity/", {"action": "deprovision", "_selected_action": [identity.pk]}
    )
    assert answer.status_code == 302
    assert not User.objects.get(pk=identity.user_id).is_active
    assert AuditEvent.objects.filter(action="sso.deprovisioned").exists()
    # An admin's decision is not undone by the provider.
    with pytest.raises(services.SignInRefused):
        sign_in(groups=["x"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_persons_first_sign_in_twice_at_once_makes_one_person(monkeypatch):
    """Two first sign-ins of one person racing (two tabs, a double click): the one that loses
    the race takes the identity the other made, instead of a 500 on the unique constraint."""
    import threading

    from django.db import connection

    first_link = services._link_by_email
    raced = []

    def other_request_wins_meanwhile(claims):
        if not raced:
            raced.append(True)

            def other():
                try:
                    sign_in()
                finally:
                    connection.close()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(60)
            assert not thread.is_alive()
        return first_link(claims)

    monkeypatch.setattr(services, "_link_by_email", other_request_wins_meanwhile)
    user = sign_in()

    assert raced
    assert Identity.objects.filter(subject="s-1").count() == 1
    assert User.objects.filter(username__istartswith="olga").count() == 1
    assert Identity.objects.get(subject="s-1").user == user
    assert AuditEvent.objects.filter(action="sso.user_created").count() == 1
    assert AuditEvent.objects.filter(action="sso.login").count() == 2


def test_rotating_token_keys_re_encrypts_the_sso_refresh_tokens(db, settings):
    """`manage.py rotate_token_keys` covers the refresh tokens kept for re-checking people with
    the provider: once the old key is dropped they still read back."""
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from accounts import crypto

    def use(*token_keys):
        settings.TOKEN_KEYS = list(token_keys)
        crypto._cipher.cache_clear()

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use(old)
    try:
        services.sso_sign_in(
            provider="oidc",
            issuer="https://idp.example",
            subject="s-9",
            claims={"preferred_username": "olga"},
            address=None,
            refresh_token="refresh-me",
        )
        before = Identity.objects.get(subject="s-9").refresh_token_encrypted
        use(new, old)
        out = io.StringIO()
        call_command("rotate_token_keys", stdout=out)
        assert "1 single sign-on identities" in out.getvalue()
        use(new)
        identity = Identity.objects.get(subject="s-9")
        assert identity.refresh_token_encrypted != before
        assert identity.refresh_token == "refresh-me"
        assert AuditEvent.objects.filter(action="sso.refresh_tokens_rotated").count() == 1
    finally:
        crypto._cipher.cache_clear()
