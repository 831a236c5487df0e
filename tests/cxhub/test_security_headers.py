"""Every URL cxhub serves answers with its security headers: the Content-Security-Policy (no
'unsafe-inline', scripts from our origin or with the response's nonce), the Permissions-Policy,
and the headers Django's middleware set (nosniff, referrer policy, framing, opener policy; HSTS
over HTTPS). Pages are found by walking the URL patterns, so a page added later is checked too."""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from publishing.services import TargetInput, post_create

from ..factories import UserFactory

EXPECTED_CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},  # plus the nonce, when the page used it
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
}
EXPECTED_PERMISSIONS = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "publickey-credentials-get=(self), publickey-credentials-create=(self)"
)
NONCE = re.compile(r"'nonce-[A-Za-z0-9+/]{22}==?'")


def parsed_csp(header: str) -> dict[str, set[str]]:
    policy = {}
    for directive in filter(None, (part.strip() for part in header.split(";"))):
        name, *sources = directive.split()
        policy[name] = set(sources)
    return policy


def assert_security_headers(response, url: str) -> None:
    headers = response.headers
    assert "Content-Security-Policy" in headers, url
    policy = parsed_csp(headers["Content-Security-Policy"])
    nonces = {source for source in policy.get("script-src", ()) if NONCE.fullmatch(source)}
    policy["script-src"] = policy.get("script-src", set()) - nonces
    assert policy == EXPECTED_CSP, url
    assert len(nonces) <= 1, url
    assert "unsafe-inline" not in headers["Content-Security-Policy"], url
    assert headers.get("Permissions-Policy") == EXPECTED_PERMISSIONS, url
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("Referrer-Policy") == "same-origin", url
    assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", url
    if "text/html" in headers.get("Content-Type", ""):
        assert headers.get("X-Frame-Options") == "DENY", url


def _patterns(resolvers, prefix=""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # the admin's URLs are regexes: its pages are listed below
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


@pytest.fixture
def world(org, author, lead, north_account):
    post = post_create(
        by=author,
        team_id=org["north"].pk,
        body="Opening hours over the holidays",
        targets=[TargetInput(social_account_id=north_account.pk)],
    )
    return {
        "team_id": org["north"].pk,
        "account_id": north_account.pk,
        "post_id": post.pk,
        "target_id": post.targets.first().pk,
        "channel": "mastodon",
        "kind": "thumb",
        "extension": "jpg",
    }


def every_url(world) -> list[str]:
    urls = []
    for pattern in _patterns(get_resolver().url_patterns):
        path = re.sub(
            r"<(?:(\w+):)?(\w+)>",
            lambda match: str(world.get(match.group(2), "1" if match.group(1) == "int" else "x")),
            pattern,
        )
        urls.append("/" + path)
    urls.append(reverse("admin:index"))
    urls.append(reverse("admin:login"))
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return urls


def test_every_url_answers_a_signed_in_lead_with_the_security_headers(world, lead):
    client = Client()
    client.force_login(lead)
    urls = every_url(world)
    assert len(urls) > 60  # the walk found the site

    statuses = {}
    for url in urls:
        response = client.get(url)
        statuses[url] = response.status_code
        assert response.status_code < 500, url
        assert_security_headers(response, url)
    # Mostly real pages, not only refusals: the walk's ids are real ones.
    assert sum(status == 200 for status in statuses.values()) > 30, statuses


def test_the_admin_pages_answer_a_superuser_with_the_security_headers(world):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)

    for url in every_url(world):
        if url.startswith("/admin/"):
            response = client.get(url)
            # 403: no adding here; 405: signing out is a POST (the site's audited sign-out).
            assert response.status_code in (200, 302, 403, 405), url
            assert_security_headers(response, url)


def test_the_login_page_answers_anyone_with_the_security_headers(db):
    response = Client().get(reverse("login"))

    assert response.status_code == 200
    assert_security_headers(response, "/login/")


def test_a_refused_upload_carries_the_security_headers_too(db):
    response = Client().post(
        "/api/v1/media/", b"", content_type="multipart/form-data", CONTENT_LENGTH="999999999999"
    )

    assert response.status_code == 413
    assert_security_headers(response, "/api/v1/media/ (413)")


def test_over_https_the_transport_security_header_is_set_as_well(db, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True

    response = Client().get(reverse("login"), secure=True)

    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert_security_headers(response, "/login/ (https)")
