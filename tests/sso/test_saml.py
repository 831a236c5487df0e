"""SAML 2.0 sign-in against a real IdP (pysaml2's Server in its own process, see saml_idp/):
just-in-time creation with the roles the rules give, roles following the attributes at the next
sign-in, forged and replayed answers refused and audited, Single Logout."""

import base64

import pytest
from django.test import Client

from accounts.models import Membership, Role, User
from audit.models import AuditEvent
from sso import services
from sso.models import Identity

from ..factories import grant
from .conftest import new_username, saml_response, saml_sign_in

pytestmark = pytest.mark.integration


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def roles(user) -> set[tuple[str, str]]:
    return set(Membership.objects.filter(user=user).values_list("team__slug", "role"))


@pytest.fixture
def rules(org):
    services.sso_rule_create(
        provider="saml",
        claim="eduPersonAffiliation",
        value="staff",
        team=org["north"],
        role=Role.DRAFTER,
        by=None,
    )
    services.sso_rule_create(
        claim="eduPersonAffiliation", value="faculty", team=org["hq"], role=Role.APPROVER, by=None
    )


def test_the_login_page_shows_the_saml_button_when_configured(saml):
    page = Client().get("/login/")

    assert b"Sign in with Agency SAML" in page.content
    assert b'href="/sso/saml/login/"' in page.content


def test_a_first_sign_in_creates_the_person_with_the_roles_the_rules_give(saml, rules):
    name = new_username()
    saml.person(name, groups=["staff", "member"])
    client = Client()
    before = last_seq()

    answer = saml_sign_in(client, saml)

    assert answer.status_code == 302, answer.content
    identity = Identity.objects.get(provider="saml", subject=f"id-{name}")
    user = identity.user
    assert identity.issuer == saml.entity_id
    assert (user.email, user.display_name) == (f"{name}@agency.example", f"{name.title()} Tester")
    assert roles(user) == {("north", Role.DRAFTER)}
    recorded = set(AuditEvent.objects.filter(seq__gt=before).values_list("action", flat=True))
    assert {"sso.user_created", "sso.roles_changed", "sso.login", "auth.login"} <= recorded
    assert client.get("/").status_code == 200


def test_changed_attributes_change_the_roles_at_the_next_sign_in(saml, rules, org):
    name = new_username()
    saml.person(name, groups=["staff"])
    saml_sign_in(Client(), saml)
    user = Identity.objects.get(subject=f"id-{name}").user
    grant(user, org["south"], Role.LEAD)  # by hand

    saml.person(name, groups=["faculty"])
    saml_sign_in(Client(), saml)
    assert roles(user) == {("hq", Role.APPROVER), ("south", Role.LEAD)}

    # Gone from every group at the IdP: no SSO role left after the next sign-in.
    saml.person(name, groups=[])
    saml_sign_in(Client(), saml)
    assert roles(user) == {("south", Role.LEAD)}


def _tampered(value: str, old: str, new: str) -> str:
    xml = base64.b64decode(value).decode()
    assert old in xml
    return base64.b64encode(xml.replace(old, new).encode()).decode()


def test_a_tampered_answer_is_refused_and_audited(saml, rules):
    name = new_username()
    saml.person(name, groups=["staff"])
    client = Client()
    _, fields = saml_response(client, saml)
    fields["SAMLResponse"] = _tampered(fields["SAMLResponse"], "staff", "faculty")
    before = last_seq()

    answer = client.post("/sso/saml/acs/", fields)

    assert answer.status_code == 403
    assert not User.objects.filter(username=name).exists()
    event = AuditEvent.objects.get(seq__gt=before, action="sso.login_failed")
    assert event.data["provider"] == "saml"
    assert event.data["reason"].startswith("SignatureError")
    assert client.get("/").status_code == 302


def test_an_answer_signed_by_an_impostor_is_refused(saml, rules):
    name = new_username()
    saml.person(name, groups=["faculty"], rogue=True)
    client = Client()
    before = last_seq()

    answer = saml_sign_in(client, saml)

    assert answer.status_code == 403
    assert not Identity.objects.filter(subject=f"id-{name}").exists()
    event = AuditEvent.objects.get(seq__gt=before, action="sso.login_failed")
    assert event.data["reason"].startswith("SignatureError")


def test_an_answer_replayed_is_refused(saml, rules):
    name = new_username()
    saml.person(name, groups=["staff"])
    client = Client()
    _, fields = saml_response(client, saml)
    assert client.post("/sso/saml/acs/", fields).status_code == 302

    thief = Client()
    before = last_seq()
    assert thief.post("/sso/saml/acs/", fields).status_code == 403
    event = AuditEvent.objects.get(seq__gt=before, action="sso.login_failed")
    assert event.data["reason"].startswith("UnsolicitedResponse")
    assert client.post("/sso/saml/acs/", fields).status_code == 403


def test_single_logout_from_the_idp_ends_the_session(saml, rules):
    name = new_username()
    saml.person(name, groups=["staff"])
    client = Client()
    saml_sign_in(client, saml)
    assert client.get("/").status_code == 200
    before = last_seq()

    location = saml.logout_location(name)
    answer = client.get(location.replace("http://testserver", ""))

    assert answer.status_code == 302
    assert answer["Location"].startswith(saml.url)
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(seq__gt=before, action="auth.logout").exists()


def test_a_saml_session_lasts_at_most_the_configured_time(saml, rules, settings):
    settings.CXHUB_SAML_SESSION_SECONDS = 900
    saml.person(new_username(), groups=["staff"])
    client = Client()

    saml_sign_in(client, saml)

    assert client.session.get_expiry_age() == 900


def test_an_idp_whose_metadata_cannot_be_had_is_a_clear_failure(saml, settings):
    settings.CXHUB_SAML_IDP_METADATA_URL = "http://127.0.0.1:9/metadata"
    before = last_seq()

    answer = Client().get("/sso/saml/login/")

    assert answer.status_code == 502
    assert b"metadata cannot be loaded" in answer.content
    assert AuditEvent.objects.filter(seq__gt=before, action="sso.login_failed").exists()
