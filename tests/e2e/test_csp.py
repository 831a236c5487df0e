"""Pages under the Content-Security-Policy in the real browser: the API docs (Swagger UI, whose
inline script carries the nonce) render, styles moved out of the templates still apply, and the
violation watch every browser test runs under (conftest.watch_csp) does catch a violation."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from ..factories import PASSWORD, UserFactory
from .conftest import TIMEOUT_MS, login, watch_csp

pytestmark = pytest.mark.browser


def test_the_api_docs_render_under_the_csp(page, live_server, lead):
    login(page, live_server, "lena", PASSWORD)
    response = page.goto(f"{live_server.url}/api/docs/")

    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'nonce-" in policy
    expect(page.get_by_role("heading", name="cxhub API")).to_be_visible()
    expect(page.get_by_text("/api/v1/media/", exact=True).first).to_be_visible()
    # The page fixture fails the test on any CSP violation while Swagger UI ran.


def test_the_team_tree_is_still_indented_by_depth(page, live_server, lead):
    login(page, live_server, "lena", PASSWORD)
    page.goto(f"{live_server.url}/teams/")

    def indent(name: str) -> str:
        item = page.get_by_role("listitem").filter(has_text=name).first
        return item.evaluate("el => getComputedStyle(el).marginLeft")

    # depth 1 → .5rem, 2 → 1.5rem, 3 → 2.5rem (16 px a rem)
    assert [indent("HQ"), indent("North"), indent("North Centre")] == ["8px", "24px", "40px"]


def test_the_watch_catches_an_inline_script_the_policy_refuses(browser, live_server, db):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    violations = watch_csp(context)
    page = context.new_page()
    # The real login page, with an inline script slipped in: our policy must refuse it.
    page.route(
        f"{live_server.url}/login/",
        lambda route: route.fulfill(
            response=(fetched := route.fetch()),
            body=fetched.text().replace("</main>", "<script>document.title='x'</script></main>"),
        ),
    )
    page.goto(f"{live_server.url}/login/")
    expect(page).not_to_have_title("x")
    page.wait_for_function("() => true")  # let the console message through the protocol
    context.close()

    assert any("script-src" in violation for violation in violations), violations


def test_the_admin_pages_run_under_the_csp(page, live_server, db):
    """Django's admin: index, every list and every add form, with their widgets' scripts."""
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))

    for url in urls:
        response = page.goto(f"{live_server.url}{url}")
        assert response.status in (200, 403), url  # 403: a model nobody adds by hand
        page.wait_for_load_state("load")
    # The page fixture fails the test on any CSP violation on these pages.
