"""Password flows (issue 12, item 7) through the real pages: change your own password, reset a
forgotten one by an e-mailed link that works once and expires, both audited and throttled; the
rules are Django's validators plus a shipped list of breached passwords (no network call)."""

import gzip
import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from rest_framework.test import APIClient

from accounts import tasks, validators
from accounts.models import LoginFailure, Notification
from audit.models import AuditEvent

from ..factories import PASSWORD, UserFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEW = "plum-orbit-lantern-42"
HOME = "198.51.100.10"


def events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def mailer(monkeypatch, django_capture_on_commit_callbacks):
    """Reset e-mails go out from a task queued on commit: run it here, as a worker would."""
    monkeypatch.setattr(
        tasks.send_password_reset, "delay", lambda **kw: tasks.send_password_reset.apply(kwargs=kw)
    )

    def ask(client, email, address=HOME):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/password/reset/", {"email": email}, REMOTE_ADDR=address)

    return ask


def signs_in(username: str, password: str) -> bool:
    response = APIClient().post("/login/", {"username": username, "password": password})
    return response.status_code == 302


def link_in(message) -> str:
    """The path of the one link in a reset e-mail."""
    [url] = re.findall(r"https?://\S+", message.body)
    return urlsplit(url).path


# Change -------------------------------------------------------------------------------------------
def test_a_person_changes_their_password_and_it_is_audited(client, author):
    client.force_login(author)
    page = client.get("/password/")
    assert page.status_code == 200
    assert b'<label for="id_old_password">Current password</label>' in page.content
    assert b'autocomplete="current-password"' in page.content
    assert b'href="/password/"' in page.content  # the menu links here

    response = client.post(
        "/password/",
        {"old_password": PASSWORD, "new_password": NEW, "new_password_again": NEW},
        REMOTE_ADDR=HOME,
    )
    assert response.status_code == 302
    # This session stays signed in; the password is the new one
    assert client.get("/").status_code == 200
    assert signs_in("alice", NEW) and not signs_in("alice", PASSWORD)
    [changed] = events("auth.password_changed")
    assert (changed.actor_id, changed.data) == (author.pk, {"address": HOME})
    # And the person is told, in case it was not them
    assert Notification.objects.filter(user=author, kind="security").count() == 1


def test_a_wrong_current_password_is_a_counted_password_try(client, author, clock, settings):
    settings.LOGIN_SLOWDOWN_AFTER = 5
    settings.LOGIN_FAILURE_LIMIT = 2
    client.force_login(author)
    wrong = {"old_password": "not-it", "new_password": NEW, "new_password_again": NEW}
    response = client.post("/password/", wrong, REMOTE_ADDR=HOME)
    assert response.status_code == 400
    assert b'id="id_old_password_error"' in response.content
    assert b"Current password: Not your current password." in response.content
    assert [e.data["method"] for e in events("auth.login_failed")] == ["password_change"]

    client.post("/password/", wrong, REMOTE_ADDR=HOME)
    # Locked: a stolen session cannot be used to guess the password
    right = {"old_password": PASSWORD, "new_password": NEW, "new_password_again": NEW}
    locked = client.post("/password/", right, REMOTE_ADDR=HOME)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert signs_in("alice", PASSWORD)
    assert not events("auth.password_changed")


def test_a_breached_password_is_refused_naming_the_field(client, author):
    client.force_login(author)
    # Not in Django's common list, but a variant the shipped breached list holds
    breached = "Mastodon2025!"
    response = client.post(
        "/password/",
        {"old_password": PASSWORD, "new_password": breached, "new_password_again": breached},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "New password: This password is known from data breaches" in html
    assert 'id="id_new_password_error"' in html
    assert re.search(r'<input[^>]*aria-describedby="[^"]*id_new_password_error', html)
    assert 'aria-invalid="true"' in html
    assert signs_in("alice", PASSWORD)


def test_two_different_new_passwords_are_refused(client, author):
    client.force_login(author)
    response = client.post(
        "/password/",
        {"old_password": PASSWORD, "new_password": NEW, "new_password_again": NEW + "x"},
    )
    assert response.status_code == 400
    assert b"New password again: The two passwords differ." in response.content


# Reset --------------------------------------------------------------------------------------------
def test_a_reset_link_works_once(client, author, mailer):
    login = client.get("/login/")
    assert b'href="/password/reset/"' in login.content  # "Forgot password?"

    response = mailer(client, "Alice@Agency.example")
    assert response.status_code == 302
    assert response["Location"] == "/password/reset/sent/"
    [message] = mail.outbox
    assert message.to == ["alice@agency.example"]
    link = link_in(message)

    # The link moves its token into the session and out of the address bar
    opened = client.get(link)
    assert opened.status_code == 302
    assert opened["Location"].endswith("/set-password/")
    form = client.get(opened["Location"])
    assert b"Choose a new password" in form.content
    done = client.post(
        opened["Location"], {"new_password": NEW, "new_password_again": NEW}, REMOTE_ADDR=HOME
    )
    assert done.status_code == 302 and done["Location"] == "/login/"
    assert signs_in("alice", NEW) and not signs_in("alice", PASSWORD)

    # Used once, the link is dead, from any browser
    again = APIClient().get(link)
    assert again.status_code == 400
    assert b"wrong, used or expired" in again.content
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="auth.password")] == [
        "auth.password_reset_requested",
        "auth.password_reset_sent",
        "auth.password_reset",
    ]
    assert events("auth.password_reset")[0].data == {"address": HOME}
    assert events("auth.password_reset_sent")[0].object_id == str(author.pk)
    # No trace of the link's token in the trail
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert not AuditEvent.objects.filter(data__icontains=token).exists()


def test_a_reset_link_expires(client, author, mailer, clock, settings):
    mailer(client, "alice@agency.example")
    link = link_in(mail.outbox[0])
    clock.shift(timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 1))
    response = client.get(link)
    assert response.status_code == 400
    assert b"This link does not work" in response.content
    assert signs_in("alice", PASSWORD)


def test_the_new_password_through_a_link_follows_the_rules(client, author, mailer):
    mailer(client, "alice@agency.example")
    set_password = client.get(link_in(mail.outbox[0]))["Location"]
    response = client.post(
        set_password, {"new_password": "Password2024!", "new_password_again": "Password2024!"}
    )
    assert response.status_code == 400
    assert b"New password: This password is known from data breaches" in response.content
    # The link still works for a better password
    ok = client.post(set_password, {"new_password": NEW, "new_password_again": NEW})
    assert ok.status_code == 302


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, db, mailer):
    response = mailer(client, "nobody@agency.example")
    assert response.status_code == 302
    assert response["Location"] == "/password/reset/sent/"
    assert mail.outbox == []
    assert not events("auth.password_reset_sent")
    assert len(events("auth.password_reset_requested")) == 1


def test_a_person_without_a_password_gets_no_link(client, db, mailer):
    user = UserFactory(username="sso-only")
    user.set_unusable_password()
    user.save()
    mailer(client, user.email)
    assert mail.outbox == []


def test_reset_requests_are_limited_per_email_and_per_address(client, author, mailer, settings):
    settings.PASSWORD_RESET_EMAIL_LIMIT = 2
    settings.PASSWORD_RESET_ADDRESS_LIMIT = 4
    # Per e-mail address, whether or not an account has it (the answer tells nothing)
    for email in ("alice@agency.example", "ghost@agency.example"):
        for _ in range(2):
            assert mailer(client, email, address="192.0.2.1").status_code == 302
        refused = mailer(client, email, address="192.0.2.2")
        assert refused.status_code == 429
        assert b"Too many reset requests" in refused.content
        assert int(refused["Retry-After"]) > 0
    assert len(mail.outbox) == 2
    # Per client address, whatever the e-mail
    assert mailer(client, "x@agency.example", address="192.0.2.1").status_code == 429
    assert mailer(client, "x@agency.example", address="192.0.2.3").status_code == 302
    lockouts = {(e.data["scope"], e.data["email"]) for e in events("auth.lockout")}
    assert lockouts == {
        ("reset_email", "alice@agency.example"),
        ("reset_email", "ghost@agency.example"),
        ("reset_address", "ghost@agency.example"),
    }


def test_a_bad_email_is_refused_naming_the_field(client, db):
    response = client.post("/password/reset/", {"email": "not an address"})
    assert response.status_code == 400
    assert b"E-mail address: Enter a valid email address." in response.content


def test_a_forged_link_is_refused(client, author):
    assert client.get("/password/reset/MQ/abc-123/").status_code == 400
    assert client.get("/password/reset/!!!/abc-123/").status_code == 400
    # The placeholder without a token in the session is no way in either
    assert client.get("/password/reset/MQ/set-password/").status_code == 400


def test_a_password_reset_forgets_the_failed_tries(client, author, mailer, settings):
    settings.LOGIN_SLOWDOWN_AFTER = 9
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    mailer(client, "alice@agency.example")
    set_password = client.get(link_in(mail.outbox[0]))["Location"]
    client.post(set_password, {"new_password": NEW, "new_password_again": NEW})
    assert not LoginFailure.objects.filter(username="alice").exists()


# The breached list --------------------------------------------------------------------------------
def test_the_shipped_list_is_sorted_and_holds_common_passwords_and_their_variants(settings):
    with gzip.open(settings.CXHUB_BREACHED_PASSWORDS_FILE, "rt") as lines:
        digests = [line.strip() for line in lines]
    assert digests == sorted(digests) and len(digests) > 40_000
    for password in ("password", "Password1", "Summer2024!", "welcome123", "Qwerty123"):
        assert validators.is_breached(password), password
    assert not validators.is_breached(NEW)


def _sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()


def test_a_bigger_list_in_hibps_format_is_searched_on_disk(tmp_path, settings, client, author):
    # Given a plain sorted file like Have I Been Pwned's ("HASH:COUNT", CRLF)
    known = ["first-of-all", "in-the-middle", NEW, "last-one"] + [f"pw{n}" for n in range(500)]
    path = tmp_path / "pwned-passwords-sha1-ordered-by-hash.txt"
    path.write_bytes(
        b"".join(f"{d}:{n}\r\n".encode() for n, d in enumerate(sorted(map(_sha1, known))))
    )
    settings.CXHUB_BREACHED_PASSWORDS_FILE = str(path)
    for password in known:
        assert validators.is_breached(password), password
    for password in ("not-in-it", "", "0", "zzzz", "Password1"):
        assert not validators.is_breached(password), password
    # … and the pages use it
    client.force_login(author)
    response = client.post(
        "/password/",
        {"old_password": PASSWORD, "new_password": NEW, "new_password_again": NEW},
    )
    assert b"known from data breaches" in response.content


def test_the_first_and_last_lines_of_a_list_are_found(tmp_path):
    digests = sorted(_sha1(p) for p in ("a1", "b2", "c3"))
    path = tmp_path / "list.txt"
    path.write_text("".join(f"{d}\n" for d in digests))
    assert all(validators._in_sorted_file(str(path), d.encode()) for d in digests), (
        "every line is found"
    )
    assert not validators._in_sorted_file(str(path), b"0" * 40)
    assert not validators._in_sorted_file(str(path), b"F" * 40)
