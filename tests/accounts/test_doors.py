"""The door policy (issue 12, item 3) through the real views: the sign-in page, the admin (which
signs in through it) and the token endpoint share one throttle that counts by person and client
address together, slows down before it locks, limits spraying per address, reads a trusted
proxy's X-Forwarded-For and no one else's, and writes every step to the audit trail."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test import RequestFactory
from rest_framework.test import APIClient

from accounts import doors
from accounts.models import LoginFailure
from audit.models import AuditEvent

from ..factories import PASSWORD, UserFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOME = "198.51.100.10"  # the person's own address
ATTACKER = "203.0.113.66"
PROXY = "10.0.0.2"


def events(action: str, **data):
    found = AuditEvent.objects.filter(action=action).order_by("seq")
    return [event for event in found if all(event.data.get(k) == v for k, v in data.items())]


def sign_in(client, username, password, address, *, url="/login/", **headers):
    return client.post(
        url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def fail_until_locked(client, username, address, clock, **headers) -> list[int]:
    """Wrong passwords as `username` from `address`, waiting out each slowdown as a patient
    attacker would, until the pair is locked; returns the waits asked for on the way."""
    waits = []
    for _ in range(50):
        response = sign_in(client, username, "wrong-guess", address, **headers)
        if response.status_code == 429:
            wait = int(response["Retry-After"])
            if wait > 60:  # the lockout (the window), not a slowdown
                return waits + [wait]
            waits.append(wait)
            clock.shift(timedelta(seconds=wait))
        else:
            assert response.status_code == 200
    raise AssertionError("never locked")


# Slow down, then lock -----------------------------------------------------------------------------
def test_a_pair_is_slowed_down_then_locked_for_the_window_then_free(client, author, clock):
    # Given the defaults: slowdown after 3 failures (5 s, doubling), lock at 5, window 15 min
    for _ in range(3):
        assert sign_in(client, "alice", "wrong", ATTACKER).status_code == 200

    # When the attacker tries at once: refused unchecked (even the right password), told to wait
    refused = sign_in(client, "alice", PASSWORD, ATTACKER)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "5"
    assert b"Try again in 5 seconds" in refused.content
    assert signed_in_as(client) is None
    clock.shift(timedelta(seconds=5))
    assert sign_in(client, "alice", "wrong", ATTACKER).status_code == 200
    assert sign_in(client, "alice", "wrong", ATTACKER)["Retry-After"] == "10"
    clock.shift(timedelta(seconds=10))
    assert sign_in(client, "alice", "wrong", ATTACKER).status_code == 200

    # Then the fifth failure locks the pair for the window; a refused try is never checked
    checked = []
    user_login_failed.connect(lambda **kw: checked.append(kw), weak=False, dispatch_uid="t")
    try:
        assert sign_in(client, "alice", "wrong", ATTACKER).status_code == 429
    finally:
        user_login_failed.disconnect(dispatch_uid="t")
    assert checked == []
    locked = sign_in(client, "alice", PASSWORD, ATTACKER)
    assert locked.status_code == 429
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    assert b"Too many failed sign-ins" in locked.content
    # Refused tries are not counted: still five failures, slowdown and lockout recorded once
    assert LoginFailure.objects.filter(username="alice").count() == 5
    assert len(events("auth.login_failed", username="alice")) == 5
    [slowdown] = events("auth.slowdown")
    assert slowdown.data | {"wait_seconds": 5} == {
        "scope": "pair",
        "username": "alice",
        "address": ATTACKER,
        "method": "password",
        "failures": 3,
        "wait_seconds": 5,
    }
    [lockout] = events("auth.lockout")
    assert (lockout.data["scope"], lockout.data["address"], lockout.data["failures"]) == (
        "pair",
        ATTACKER,
        5,
    )

    # And once the window has passed since the first failure, the pair may try again
    clock.shift(timedelta(seconds=int(locked["Retry-After"])))
    assert sign_in(client, "alice", PASSWORD, ATTACKER).status_code == 302
    assert events("auth.login")[-1].data == {"address": ATTACKER, "method": "password"}


# A stranger cannot lock a person out ------------------------------------------------------------
def test_failures_from_one_address_do_not_lock_the_person_out_from_another(author, clock):
    attacker, alice = APIClient(), APIClient()
    fail_until_locked(attacker, "alice", ATTACKER, clock)
    assert sign_in(attacker, "alice", PASSWORD, ATTACKER).status_code == 429

    # Alice, at her own address, signs in on the page and gets a token at once
    assert sign_in(alice, "alice", PASSWORD, HOME).status_code == 302
    token = alice.post(
        "/api/v1/auth/token/",
        {"username": "alice", "password": PASSWORD},
        format="json",
        REMOTE_ADDR=HOME,
    )
    assert token.status_code == 200
    assert [e.data for e in events("auth.login")] == [
        {"address": HOME, "method": "password"},
        {"address": HOME, "method": "token"},
    ]
    # Her success forgot only her own pair's failures: the attacker's stay locked
    assert sign_in(APIClient(), "alice", PASSWORD, ATTACKER).status_code == 429


def test_the_page_and_the_token_endpoint_share_one_throttle(author, clock, settings):
    settings.LOGIN_SLOWDOWN_AFTER = 5
    api = APIClient()
    for _ in range(3):
        sign_in(api, "alice", "wrong", ATTACKER)
    for _ in range(2):
        response = api.post(
            "/api/v1/auth/token/",
            {"username": "alice", "password": "wrong"},
            format="json",
            REMOTE_ADDR=ATTACKER,
        )
        assert response.status_code == 400
    refused = api.post(
        "/api/v1/auth/token/",
        {"username": "alice", "password": PASSWORD},
        format="json",
        REMOTE_ADDR=ATTACKER,
    )
    assert refused.status_code == 429
    assert refused.json()["extra"]["retry_after_seconds"] == int(refused["Retry-After"])
    assert "token" not in refused.json()
    assert [e.data["method"] for e in events("auth.login_failed")] == ["password"] * 3 + [
        "token"
    ] * 2
    assert sign_in(api, "alice", PASSWORD, ATTACKER).status_code == 429


def test_case_variants_of_a_name_count_as_one(author, clock, settings):
    settings.LOGIN_SLOWDOWN_AFTER = 5
    for name in ("alice", "Alice", "ALICE", " alice", "aLiCe"):
        sign_in(APIClient(), name, "wrong", ATTACKER)
    assert sign_in(APIClient(), "alice", PASSWORD, ATTACKER).status_code == 429


# Spraying -----------------------------------------------------------------------------------------
def test_an_address_failing_across_many_usernames_is_held_back_there_only(
    client, author, outsider, clock, settings
):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    # Given one guess each at four names from one address (no pair near its own limit)
    for name in ("alice", "bob", "root", "nobody"):
        assert sign_in(client, name, "Spring2026!", ATTACKER).status_code == 200

    # Then that address may try no one, not even with a right password …
    refused = sign_in(client, "charlie", PASSWORD, ATTACKER)
    assert refused.status_code == 429
    assert 14 * 60 < int(refused["Retry-After"]) <= 15 * 60
    [lockout] = events("auth.lockout")
    assert lockout.data["scope"] == "address"
    assert (lockout.data["address"], lockout.data["failures"]) == (ATTACKER, 4)
    # … while the people themselves sign in from elsewhere
    assert sign_in(APIClient(), "alice", PASSWORD, HOME).status_code == 302
    assert sign_in(APIClient(), "charlie", PASSWORD, HOME).status_code == 302


# Proxies ------------------------------------------------------------------------------------------
def test_a_trusted_proxys_forwarded_for_is_honoured(author, clock, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # Given everyone arrives through the proxy, and an attacker fails until locked
    fail_until_locked(
        APIClient(), "alice", PROXY, clock, HTTP_X_FORWARDED_FOR=f"{ATTACKER}, 10.0.0.9"
    )
    assert {e.data["address"] for e in events("auth.login_failed")} == {ATTACKER}

    # Then alice, through the same proxy from her own address, is not held back
    alice = APIClient()
    response = sign_in(alice, "alice", PASSWORD, PROXY, HTTP_X_FORWARDED_FOR=HOME)
    assert response.status_code == 302
    assert events("auth.login")[-1].data["address"] == HOME
    # And the attacker, whose proxy says where they are, still is
    again = sign_in(APIClient(), "alice", PASSWORD, PROXY, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert again.status_code == 429


def test_an_untrusted_peers_forwarded_for_is_ignored(author, clock, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_SLOWDOWN_AFTER = 5
    # Given an attacker writing a fresh X-Forwarded-For on every try
    for n in range(5):
        forged = f"192.0.2.{n + 1}"
        response = sign_in(
            APIClient(), "alice", "wrong", ATTACKER, HTTP_X_FORWARDED_FOR=f"{PROXY}, {forged}"
        )
        assert response.status_code == 200
    # Then every failure counted against the attacker's own address, which is now locked
    assert {e.data["address"] for e in events("auth.login_failed")} == {ATTACKER}
    locked = sign_in(APIClient(), "alice", PASSWORD, ATTACKER, HTTP_X_FORWARDED_FOR=HOME)
    assert locked.status_code == 429


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # No proxy trusted, or an untrusted peer: the peer, whatever it forwards.
        (ATTACKER, "192.0.2.1", ATTACKER),
        # A trusted peer: the first untrusted address from the right.
        (PROXY, "192.0.2.1", "192.0.2.1"),
        (PROXY, "192.0.2.1, 192.0.2.2", "192.0.2.2"),
        (PROXY, "192.0.2.1, 192.0.2.2, 10.0.0.7", "192.0.2.2"),
        # Ports and brackets as proxies write them; IPv4 mapped into IPv6 as IPv4.
        (PROXY, "192.0.2.4:51234", "192.0.2.4"),
        (PROXY, "[2001:db8::5]:443", "2001:db8::5"),
        (PROXY, "2001:db8::6", "2001:db8::6"),
        (PROXY, "::ffff:192.0.2.8", "192.0.2.8"),
        ("::ffff:10.0.0.3", "192.0.2.9", "192.0.2.9"),
        # Every hop trusted (a health check through the proxy): the leftmost.
        (PROXY, "10.0.0.8, 10.0.0.7", "10.0.0.8"),
        (PROXY, "", PROXY),
        # Garbage from a trusted hop: stop at the last hop we can vouch for.
        (PROXY, "192.0.2.1, unknown, 10.0.0.7", "10.0.0.7"),
        (PROXY, "evil.example", PROXY),
        # No usable peer at all.
        ("", "192.0.2.1", None),
    ],
)
def test_client_address(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert doors.client_address(request) == expected


# The admin ----------------------------------------------------------------------------------------
def test_the_admin_has_no_login_of_its_own(client, root):
    # The admin's login page sends people to the site's, and back to where they were going
    response = client.get("/admin/login/?next=/admin/accounts/team/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/accounts/team/"
    followed = client.get("/admin/", follow=True)
    assert followed.redirect_chain[-1][0] == "/login/?next=/admin/"
    # A password sent to it is never checked
    posted = sign_in(client, "root", PASSWORD, HOME, url="/admin/login/")
    assert posted.status_code == 302
    assert signed_in_as(client) is None
    assert not events("auth.login") and not events("auth.login_failed")


def test_the_admin_sign_in_is_throttled_and_audited(client, root, clock):
    # Given an attacker who guessed at the admin's password until locked
    fail_until_locked(client, "root", ATTACKER, clock)
    # Then neither the site's page nor the admin's lets the right password in from there
    assert sign_in(client, "root", PASSWORD, ATTACKER, url="/login/?next=/admin/").status_code == (
        429
    )
    sign_in(client, "root", PASSWORD, ATTACKER, url="/admin/login/")
    assert signed_in_as(client) is None
    assert client.get("/admin/", REMOTE_ADDR=ATTACKER).status_code == 302
    # And every step is in the trail
    assert len(events("auth.login_failed", username="root", address=ATTACKER)) == 5
    assert len(events("auth.slowdown", username="root")) == 1
    assert len(events("auth.lockout", username="root")) == 1

    # While root, at their own address, signs in through the admin's way and uses it
    admin = APIClient()
    page = admin.get("/admin/", follow=True, REMOTE_ADDR=HOME)
    assert page.redirect_chain[-1][0] == "/login/?next=/admin/"
    response = admin.post(
        "/login/",
        {"username": "root", "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR=HOME,
    )
    assert response["Location"] == "/admin/"
    assert admin.get("/admin/").status_code == 200
    assert events("auth.login")[-1].actor_id == root.pk
    # Signing out of the admin is the site's audited sign-out
    admin.post("/admin/logout/", REMOTE_ADDR=HOME)
    assert signed_in_as(admin) is None
    assert events("auth.logout")[-1].data == {"address": HOME}


def test_the_admin_changes_ones_own_password_on_the_sites_page(client, root):
    client.force_login(root)
    response = client.get("/admin/password_change/")
    assert (response.status_code, response["Location"]) == (302, "/password/")


def test_a_signed_in_person_who_may_not_use_the_admin_is_told_so(client, author):
    client.force_login(author)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 403
    assert b"may not use the admin" in response.content
    # No redirect loop between the admin and the sign-in page
    assert client.get("/admin/", follow=True).status_code == 403


def test_the_admin_login_does_not_send_people_elsewhere(client, root):
    client.force_login(root)
    response = client.get("/admin/login/?next=https://evil.example/")
    assert response["Location"] == "/admin/"


# Sign-out, and the ways in that are never locked --------------------------------------------------
def test_signing_out_is_audited(client, author):
    sign_in(client, "alice", PASSWORD, HOME)
    client.post("/logout/", REMOTE_ADDR=HOME)
    [logout] = events("auth.logout")
    assert (logout.actor_id, logout.data) == (author.pk, {"address": HOME})


def test_a_form_without_a_password_guesses_nothing(client, author):
    client.post("/login/", {"username": "alice", "password": ""})
    assert not LoginFailure.objects.exists()


def test_sso_and_second_factor_failures_are_audited_but_never_counted(author, settings):
    # Only password tries are counted: a lockout can never stand between a person and a working
    # identity provider or authenticator.
    settings.LOGIN_SLOWDOWN_AFTER = 1
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 1
    request = RequestFactory().post("/", REMOTE_ADDR=ATTACKER)
    for method in ("oidc", "saml", "totp", "webauthn", "recovery_code"):
        doors.sign_in_failed(request=request, username="alice", method=method)
    assert doors.sign_in_wait(request=request, username="alice") == 0
    assert not LoginFailure.objects.exists()
    assert [e.data["method"] for e in events("auth.login_failed")] == [
        "oidc",
        "saml",
        "totp",
        "webauthn",
        "recovery_code",
    ]
    assert not events("auth.lockout")


@pytest.mark.django_db(transaction=True)
def test_failures_at_the_same_moment_record_the_lockout_once(settings):
    # Given a pair one failure short of its lock, and six more failing at once, each on its own
    # connection
    settings.LOGIN_SLOWDOWN_AFTER = 50
    settings.LOGIN_FAILURE_LIMIT = 5
    request = RequestFactory().post("/login/", REMOTE_ADDR=ATTACKER)
    for _ in range(4):
        doors.sign_in_failed(request=request, username="alice", method="password")
    start = threading.Barrier(6, timeout=30)
    errors: list[BaseException] = []

    def attacker():
        try:
            start.wait()
            doors.sign_in_failed(request=request, username="alice", method="password")
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attacker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then every failure counted, and the lockout that the fifth started was recorded once
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    assert LoginFailure.objects.count() == 10
    assert len(events("auth.lockout")) == 1
    assert doors.sign_in_wait(request=request, username="alice") > 0
