"""Sign-in, sign-out, the dashboard and the navigation each kind of user gets."""

from accounts.models import LoginFailure

from ..factories import PASSWORD


def test_login_page_signs_in_and_lands_on_the_dashboard(client, author):
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content

    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert b"Drafter</strong> of North" in dashboard.content


def test_login_follows_a_safe_next_but_not_an_outside_one(client, author):
    response = client.post(
        "/login/?next=/teams/", {"username": "alice", "password": PASSWORD, "next": "/teams/"}
    )
    assert response["Location"] == "/teams/"
    client.post("/logout/")
    response = client.post(
        "/login/", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_wrong_password_gives_the_forms_error_and_is_recorded(client, author):
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Wrong username or password" in response.content
    assert b'role="alert"' in response.content
    assert LoginFailure.objects.filter(username="alice").count() == 1
    assert "_auth_user_id" not in client.session


def test_repeated_failures_are_throttled_even_with_the_right_password(client, author, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_SLOWDOWN_AFTER = 3
    for _ in range(3):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_throttling_counts_per_address_too(client, author, outsider, settings):
    # Failures across many usernames from one address (spraying) hold back that address.
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    for name in ("x1", "x2", "x3"):
        client.post("/login/", {"username": name, "password": "wrong"})
    response = client.post("/login/", {"username": "charlie", "password": PASSWORD})
    assert response.status_code == 429


def test_a_successful_login_clears_that_users_failures(client, author, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    client.post("/login/", {"username": "alice", "password": "wrong"})
    client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert not LoginFailure.objects.filter(username="alice").exists()


def test_pages_need_a_login(client, db):
    for url in ("/", "/teams/", "/accounts/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_logout_ends_the_session(client, author):
    client.force_login(author)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_navigation_follows_roles(client, author, lead):
    client.force_login(author)
    page = client.get("/").content.decode()
    assert 'href="/accounts/"' in page
    assert "Audit trail" not in page

    client.force_login(lead)
    page = client.get("/").content.decode()
    assert "Audit trail" in page
    assert 'href="/accounts/"' not in page


def test_account_page_lists_only_what_the_user_may_see(client, outsider, north_account):
    client.force_login(outsider)
    page = client.get("/accounts/").content.decode()
    assert north_account.handle not in page


def test_healthz_names_a_broker_that_is_down(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down: broker"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False


def test_healthz_names_a_database_that_is_down(client, db, monkeypatch):
    from django.db import OperationalError

    class Unreachable:
        vendor = "unreachable"

        def cursor(self):
            raise OperationalError("connection refused")

    # Only the health check's view of the database is cut; the test's own connection stays.
    monkeypatch.setattr("cxhub.health.connection", Unreachable())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down: database"
    assert "connection refused" in response.json()["checks"]["database"]["detail"]
