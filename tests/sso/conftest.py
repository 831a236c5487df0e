"""The real identity providers of the SSO tests, one process each for the whole session, and
cxhub configured to use them."""

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from django.core.cache import cache

from .processes import running

CALLBACK = "http://testserver/sso/oidc/callback/"
CLIENT_ID = "cxhub-tests"
CLIENT_SECRET = "client-secret-" + "s" * 20


@dataclass
class OidcIdp:
    url: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/openid"

    def person(self, username: str, *, groups=(), email: str = "", password: str = "pw-1") -> str:
        """Make or change a person there; returns their `sub`."""
        answer = requests.post(
            f"{self.url}/test/people/",
            json={
                "username": username,
                "password": password,
                "groups": list(groups),
                "email": email or f"{username}@agency.example",
                "first_name": username.title(),
                "last_name": "Tester",
            },
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["sub"]

    def remove(self, username: str) -> None:
        requests.post(f"{self.url}/test/people/{username}/remove/", timeout=10).raise_for_status()

    def browser(self, username: str, password: str = "pw-1") -> requests.Session:
        """The person's browser, signed in at the provider."""
        session = requests.Session()
        page = session.get(f"{self.url}/login/", timeout=10)
        token = re.search(r'csrfmiddlewaretoken value="([^"]+)"', page.text).group(1)
        answer = session.post(
            f"{self.url}/login/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text
        return session


@pytest.fixture(scope="session")
def oidc_idp(tmp_path_factory):
    directory = tmp_path_factory.mktemp("oidc-idp")
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.sso.oidc_idp.settings",
        "OIDC_IDP_DIR": str(directory),
        "OIDC_IDP_CLIENT_ID": CLIENT_ID,
        "OIDC_IDP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_IDP_REDIRECT_URIS": CALLBACK,
    }
    with running("tests.sso.oidc_idp.serve", directory, env) as url:
        yield OidcIdp(url)


@pytest.fixture
def oidc(oidc_idp, settings, db):
    """cxhub configured for the provider, as the environment would (discovery included)."""
    settings.CXHUB_OIDC_ISSUER = oidc_idp.issuer
    settings.CXHUB_OIDC_CLIENT_ID = CLIENT_ID
    settings.CXHUB_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.CXHUB_OIDC_NAME = "Agency ID"
    settings.CXHUB_OIDC_SCOPES = "openid email profile groups"
    cache.clear()
    yield oidc_idp
    cache.clear()


def oidc_sign_in(client, idp: OidcIdp, username: str, *, next_url: str = ""):
    """Through the real views: cxhub sends the browser to the provider, the provider (where the
    person is signed in) answers with a code, cxhub's callback takes it. Returns the callback's
    response."""
    start = client.get("/sso/oidc/login/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.content
    assert start["Location"].startswith(idp.issuer + "/authorize")
    answer = idp.browser(username).get(start["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(CALLBACK), back
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")


def new_username() -> str:
    return "p" + secrets.token_hex(4)


# SAML -------------------------------------------------------------------------------------------
@dataclass
class SamlIdp:
    url: str
    directory: object

    @property
    def entity_id(self) -> str:
        return f"{self.url}/metadata"

    def person(self, name_id: str, *, groups=(), rogue: bool = False, **attributes) -> None:
        """The person the IdP signs in next (rogue: signed with a key it never published)."""
        values = {
            "uid": [name_id],
            "mail": [f"{name_id}@agency.example"],
            "givenName": [name_id.title()],
            "sn": ["Tester"],
            "displayName": [f"{name_id.title()} Tester"],
            "eduPersonAffiliation": list(groups),
            **{k: list(v) for k, v in attributes.items()},
        }
        answer = requests.post(
            f"{self.url}/test/person",
            json={"person": {"name_id": f"id-{name_id}", "attributes": values}, "rogue": rogue},
            timeout=10,
        )
        answer.raise_for_status()

    def logout_location(self, name_id: str) -> str:
        answer = requests.get(
            f"{self.url}/test/logout", params={"name_id": f"id-{name_id}"}, timeout=10
        )
        answer.raise_for_status()
        return answer.json()["location"]


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory):
    from .keys import make_key_pair

    directory = tmp_path_factory.mktemp("saml-idp")
    idp_key, idp_cert = make_key_pair(directory, "idp")
    rogue_key, rogue_cert = make_key_pair(directory, "rogue")
    make_key_pair(directory, "sp")
    env = {
        "SAML_IDP_KEY": str(idp_key),
        "SAML_IDP_CERT": str(idp_cert),
        "SAML_IDP_ROGUE_KEY": str(rogue_key),
        "SAML_IDP_ROGUE_CERT": str(rogue_cert),
    }
    with running("tests.sso.saml_idp.serve", directory, env) as url:
        yield SamlIdp(url, directory)


@pytest.fixture
def saml(saml_idp, settings, db):
    """cxhub configured for the IdP (its metadata fetched from its address), and the IdP told
    cxhub's metadata, as an administrator would register the service provider."""
    from django.test import Client

    settings.CXHUB_SAML_IDP_METADATA_URL = saml_idp.entity_id
    settings.CXHUB_SAML_SP_KEY_FILE = str(saml_idp.directory / "sp.key")
    settings.CXHUB_SAML_SP_CERT_FILE = str(saml_idp.directory / "sp.crt")
    settings.CXHUB_SAML_NAME = "Agency SAML"
    metadata = Client().get("/sso/saml/metadata/")
    assert metadata.status_code == 200, metadata.content
    requests.post(
        f"{saml_idp.url}/test/sp-metadata", data=metadata.content, timeout=10
    ).raise_for_status()
    return saml_idp


def saml_form(html: str) -> tuple[str, dict]:
    action = re.search(r'action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))
    return action, fields


def saml_response(client, idp: SamlIdp) -> tuple[str, dict]:
    """cxhub's request taken to the IdP; the form the IdP answers with (action, fields)."""
    start = client.get("/sso/saml/login/")
    assert start.status_code == 302, start.content
    assert start["Location"].startswith(f"{idp.url}/sso/redirect?SAMLRequest=")
    page = requests.get(start["Location"], timeout=10)
    assert page.status_code == 200, page.text
    return saml_form(page.text)


def saml_sign_in(client, idp: SamlIdp):
    action, fields = saml_response(client, idp)
    assert urlsplit(action).path == "/sso/saml/acs/"
    return client.post("/sso/saml/acs/", fields)
