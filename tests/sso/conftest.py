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
