"""OpenID Connect sign-in against a real provider (django-oidc-provider in its own process, see
oidc_idp/): just-in-time creation with the roles the rules give, roles following the groups,
deprovisioning at the next request that checks, and refusals audited."""

import pytest
from django.test import Client

from accounts.models import Membership, Role, User
from accounts.tokens import api_token_create
from audit.models import AuditEvent
from sso import services
from sso.models import Grant, Identity

from ..factories import grant
from .conftest import new_username, oidc_sign_in

pytestmark = pytest.mark.integration


def actions(since: int = 0) -> list[str]:
    return list(
        AuditEvent.objects.filter(seq__gt=since).order_by("seq").values_list("action", flat=True)
    )


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def roles(user) -> set[tuple[str, str]]:
    return set(Membership.objects.filter(user=user).values_list("team__slug", "role"))


@pytest.fixture
def rules(org):
    services.sso_rule_create(
        claim="groups", value="cx-north-drafters", team=org["north"], role=Role.DRAFTER, by=None
    )
    services.sso_rule_create(
        claim="groups",
        operator="contains",
        value="approvers",
        team=org["north_centre"],
        role=Role.APPROVER,
        by=None,
    )
    services.sso_rule_create(
        claim="email", value="boss@agency.example", team=org["hq"], role=Role.LEAD, by=None
    )


def test_the_login_page_shows_the_button_only_when_configured(db, settings, oidc_idp):
    settings.CXHUB_OIDC_ISSUER = ""
    page = Client().get("/login/")
    assert b"Sign in with" not in page.content
    assert Client().get("/sso/oidc/login/").status_code == 404

    settings.CXHUB_OIDC_ISSUER = oidc_idp.issuer
    settings.CXHUB_OIDC_CLIENT_ID = "cxhub-tests"
    settings.CXHUB_OIDC_NAME = "Agency ID"
    page = Client().get("/login/")
    assert b"Sign in with Agency ID" in page.content
    assert b'href="/sso/oidc/login/"' in page.content


def test_a_first_sign_in_creates_the_person_with_the_roles_the_rules_give(oidc, rules):
    username = new_username()
    sub = oidc.person(username, groups=["cx-north-drafters", "staff"])
    client = Client()
    before = last_seq()

    answer = oidc_sign_in(client, oidc, username)

    assert answer.status_code == 302 and answer["Location"] == "/"
    user = User.objects.get(username=username)
    assert (user.email, user.display_name) == (
        f"{username}@agency.example",
        f"{username.title()} Tester",
    )
    assert not user.has_usable_password()
    assert roles(user) == {("north", Role.DRAFTER)}
    identity = Identity.objects.get(user=user)
    assert (identity.provider, identity.issuer, identity.subject) == ("oidc", oidc.issuer, sub)
    assert identity.claims["groups"] == ["cx-north-drafters", "staff"]
    assert identity.refresh_token and "refresh" not in str(identity.claims)
    assert Grant.objects.filter(identity=identity).count() == 1
    recorded = actions(before)
    for action in (
        "sso.user_created",
        "membership.granted",
        "sso.roles_changed",
        "sso.login",
        "auth.login",
    ):
        assert action in recorded
    assert client.get("/").status_code == 200


def test_changed_groups_change_the_roles_at_the_next_sign_in_and_hand_given_ones_stay(
    oidc, rules, org
):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    oidc_sign_in(Client(), oidc, username)
    user = User.objects.get(username=username)
    grant(user, org["south"], Role.DRAFTER)  # by hand
    oidc.person(username, groups=["regional-approvers"])
    before = last_seq()

    oidc_sign_in(Client(), oidc, username)

    assert roles(user) == {("north-centre", Role.APPROVER), ("south", Role.DRAFTER)}
    event = AuditEvent.objects.get(seq__gt=before, action="sso.roles_changed")
    assert event.data["granted"] == [{"team": org["north_centre"].pk, "role": "approver"}]
    assert event.data["revoked"] == [{"team": org["north"].pk, "role": "drafter"}]
    assert User.objects.filter(username__startswith=username).count() == 1


def test_a_person_removed_at_the_provider_loses_access_at_the_next_request_that_checks(
    oidc, rules, org, settings
):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    client = Client()
    oidc_sign_in(client, oidc, username)
    user = User.objects.get(username=username)
    grant(user, org["south"], Role.DRAFTER)  # by hand
    issued = api_token_create(user=user, name="laptop", by=user)
    oidc.remove(username)

    # Within the re-check interval nobody asks the provider.
    settings.CXHUB_SSO_RECHECK_SECONDS = 300
    assert client.get("/").status_code == 200

    settings.CXHUB_SSO_RECHECK_SECONDS = 0
    before = last_seq()
    answer = client.get("/")

    assert answer.status_code == 302 and answer["Location"] == "/login/"
    user.refresh_from_db()
    assert not user.is_active
    assert roles(user) == {("south", Role.DRAFTER)}
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    event = AuditEvent.objects.get(seq__gt=before, action="sso.deprovisioned")
    assert event.data["revoked"] == [{"team": org["north"].pk, "role": "drafter"}]
    assert event.data["tokens_revoked"] == 1
    assert client.get("/").status_code == 302
    api = Client(HTTP_AUTHORIZATION=f"Token {issued.secret}").get("/api/v1/me/")
    assert api.status_code == 401


def test_a_person_who_only_uses_api_tokens_loses_them_at_the_next_periodic_check(
    oidc, rules, org, settings
):
    """No browser session re-checks a person who works through API tokens alone: the periodic
    task asks the provider about every active holder of a live token, so their tokens die
    within one interval of the removal."""
    from sso.tasks import recheck_token_holders

    leaver, stayer, idle = new_username(), new_username(), new_username()
    for username in (leaver, stayer, idle):
        oidc.person(username, groups=["cx-north-drafters"])
        oidc_sign_in(Client(), oidc, username)
    users = {name: User.objects.get(username=name) for name in (leaver, stayer, idle)}
    leaving = api_token_create(user=users[leaver], name="script", by=users[leaver])
    staying = api_token_create(user=users[stayer], name="script", by=users[stayer])
    oidc.remove(leaver)

    # Within the interval of their sign-in nobody is asked.
    settings.CXHUB_SSO_RECHECK_SECONDS = 300
    assert recheck_token_holders() == {"asked": 0}

    settings.CXHUB_SSO_RECHECK_SECONDS = 0
    idle_checked = Identity.objects.get(user=users[idle]).checked_at
    outcome = recheck_token_holders()

    assert outcome == {"asked": 2, "gone": 1, "active": 1}
    leaving.token.refresh_from_db()
    staying.token.refresh_from_db()
    assert leaving.token.revoked_at is not None and staying.token.revoked_at is None
    users[leaver].refresh_from_db()
    assert not users[leaver].is_active
    # One without a token is left to their sessions' checks.
    assert Identity.objects.get(user=users[idle]).checked_at == idle_checked
    assert (
        Client(HTTP_AUTHORIZATION=f"Token {leaving.secret}").get("/api/v1/me/").status_code == 401
    )
    assert (
        Client(HTTP_AUTHORIZATION=f"Token {staying.secret}").get("/api/v1/me/").status_code == 200
    )


def test_a_person_still_at_the_provider_passes_the_check_and_their_roles_follow(
    oidc, rules, settings
):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    client = Client()
    oidc_sign_in(client, oidc, username)
    user = User.objects.get(username=username)
    settings.CXHUB_SSO_RECHECK_SECONDS = 0

    assert client.get("/").status_code == 200  # spends the (rotating) refresh token
    oidc.person(username, groups=["cx-north-drafters", "hq-approvers"])
    before = last_seq()
    assert client.get("/teams/").status_code == 200  # and the next one

    assert roles(user) == {("north", Role.DRAFTER), ("north-centre", Role.APPROVER)}
    event = AuditEvent.objects.get(seq__gt=before, action="sso.roles_changed")
    assert event.data["at"] == "re-check"
    user.refresh_from_db()
    assert user.is_active


def test_an_api_call_with_the_session_of_a_removed_person_is_answered_401(oidc, rules, settings):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    client = Client()
    oidc_sign_in(client, oidc, username)
    oidc.remove(username)
    settings.CXHUB_SSO_RECHECK_SECONDS = 0

    answer = client.get("/api/v1/me/")

    assert answer.status_code == 401
    assert "no longer knows you" in answer.json()["message"]


def test_a_callback_with_a_state_of_someone_else_is_refused_and_audited(oidc):
    username = new_username()
    oidc.person(username)
    client = Client()
    client.get("/sso/oidc/login/")
    before = last_seq()

    answer = client.get("/sso/oidc/callback/?code=stolen-code&state=not-ours")

    assert answer.status_code == 403
    assert b"could not sign you in" in answer.content
    assert "sso.login_failed" in actions(before)
    assert "_auth_user_id" not in client.session


def test_a_refusal_by_the_provider_is_audited(oidc):
    client = Client()
    client.get("/sso/oidc/login/")
    state = next(iter(client.session["oidc_states"]))
    before = last_seq()

    answer = client.get(f"/sso/oidc/callback/?error=access_denied&state={state}")

    assert answer.status_code == 403
    event = AuditEvent.objects.get(seq__gt=before, action="sso.login_failed")
    assert "access_denied" in event.data["reason"]


def test_sso_is_not_blocked_by_the_password_lockout(oidc, rules, settings):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    oidc_sign_in(Client(), oidc, username)
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        Client().post("/login/", {"username": username, "password": "guess"})
    assert Client().post("/login/", {"username": username, "password": "guess"}).status_code == 429

    client = Client()
    answer = oidc_sign_in(client, oidc, username)

    assert answer.status_code == 302
    assert client.get("/").status_code == 200


def test_a_person_disabled_by_hand_in_cxhub_stays_out(oidc, rules):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    oidc_sign_in(Client(), oidc, username)
    User.objects.filter(username=username).update(is_active=False)
    before = last_seq()

    client = Client()
    answer = oidc_sign_in(client, oidc, username)

    assert answer.status_code == 403
    event = AuditEvent.objects.get(seq__gt=before, action="sso.login_failed")
    assert "disabled" in event.data["reason"]
    assert client.get("/").status_code == 302


def test_a_provider_that_cannot_be_reached_signs_nobody_out(oidc, rules, settings, caplog):
    username = new_username()
    oidc.person(username, groups=["cx-north-drafters"])
    client = Client()
    oidc_sign_in(client, oidc, username)
    settings.CXHUB_SSO_RECHECK_SECONDS = 0
    settings.CXHUB_OIDC_ENDPOINTS = {"token_endpoint": "http://127.0.0.1:9/token"}

    assert client.get("/").status_code == 200

    assert User.objects.get(username=username).is_active
    assert "provider unreachable" in caplog.text
