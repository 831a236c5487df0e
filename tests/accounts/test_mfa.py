"""The second factor through the real views: TOTP enrolment and sign-in with codes computed here
from the secret the page shows (RFC 6238, written out below, not the server's code), recovery
codes, passkey-free enforcement on pages, the admin and token issuance."""

import base64
import hashlib
import hmac
import io
import re
import struct

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import (
    AuthenticatorApp,
    LoginFailure,
    RecoveryCode,
    RecoveryCodeDevice,
    Role,
)
from audit.models import AuditEvent

from ..factories import PASSWORD, UserFactory, grant


@pytest.fixture(autouse=True)
def mfa_for_leads_and_admins(settings):
    settings.CXHUB_MFA_REQUIRED_ROLES = ["lead", "admin"]
    settings.CXHUB_MFA_REQUIRED_FOR_ALL = False


@pytest.fixture
def clock():
    """Time stands still unless a test moves it: TOTP steps and back-off are exact."""
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as traveller:
        yield traveller


def totp(secret: str, at: float) -> str:
    """RFC 6238 with SHA-1, 30-second steps and 6 digits, from the base32 secret."""
    secret = secret.replace(" ", "").upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at // 30)), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{number:06d}"


def now() -> float:
    return timezone.now().timestamp()


def sign_in(client: Client, username: str):
    return client.post("/login/", {"username": username, "password": PASSWORD})


def enrol_totp(client: Client) -> str:
    """Add an authenticator app through the pages; returns its secret as the page shows it."""
    page = client.get("/security/totp/")
    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.content.decode()).group(1)
    response = client.post("/security/totp/", {"code": totp(secret, now()), "name": "Phone"})
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == "/security/"
    return secret


def events(action: str):
    return AuditEvent.objects.filter(action=action)


@pytest.fixture
def admin(org):
    user = UserFactory(username="adam", is_staff=True)
    grant(user, org["hq"], Role.ADMIN)
    return user


# Enrolment and sign-in ----------------------------------------------------------------------
def test_a_lead_enrols_an_app_and_then_signs_in_with_its_code(lead, clock):
    client = Client()
    response = sign_in(client, "lena")
    # No device yet: the password is enough to reach the enrolment page, and nothing else.
    assert response.status_code == 302
    assert client.get("/").url.startswith("/security/?next=/")

    secret = enrol_totp(client)
    assert AuthenticatorApp.objects.get(user=lead).confirmed
    assert events("mfa.device_added").get().data["kind"] == "totp"
    assert client.get("/").status_code == 200  # the enrolment verified this session

    client.post("/logout/")
    clock.shift(31)
    response = sign_in(client, "lena")
    assert response.status_code == 302
    assert response.url == "/login/verify/?next=%2F"
    assert client.get("/posts/").url == "/login/verify/?next=%2Fposts%2F"

    page = client.get(response.url)
    assert page.status_code == 200
    assert 'name="method" value="totp"' in page.content.decode()

    response = client.post(
        "/login/verify/", {"method": "totp", "code": totp(secret, now()), "next": "/posts/"}
    )
    assert response.status_code == 302
    assert response.url == "/posts/"
    assert client.get("/").status_code == 200
    assert events("mfa.verified").filter(actor=lead).exists()
    # The sign-in is recorded once, when it completes.
    assert events("auth.login").filter(actor=lead).count() == 2


def test_a_wrong_code_is_refused_and_counted_but_the_right_one_still_works(lead, clock):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    client.post("/logout/")
    clock.shift(31)
    sign_in(client, "lena")

    wrong = f"{(int(totp(secret, now())) + 1) % 1_000_000:06d}"
    response = client.post("/login/verify/", {"method": "totp", "code": wrong})
    assert response.status_code == 400
    assert "Wrong or expired code." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert client.get("/").status_code == 302
    assert events("mfa.failed").count() == 1
    # Through the one door: audited as a failed sign-in, never counted towards the lockout.
    assert events("auth.login_failed").filter(data__method="totp").count() == 1
    assert not LoginFailure.objects.filter(username="lena").exists()

    # Right away even the right code waits out the device's back-off (1 s after one failure) …
    response = client.post("/login/verify/", {"method": "totp", "code": totp(secret, now())})
    assert response.status_code == 429
    # … and then works.
    clock.shift(2)
    response = client.post("/login/verify/", {"method": "totp", "code": totp(secret, now())})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_many_wrong_codes_never_lock_the_person_out_of_a_working_factor(lead, clock, settings):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    client.post("/logout/")
    sign_in(client, "lena")
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 3):
        clock.shift(600)  # past the back-off each time (it doubles up to django-otp's cap)
        client.post("/login/verify/", {"method": "totp", "code": "000000"})
    failed = events("auth.login_failed").filter(data__method="totp")
    assert failed.count() >= settings.LOGIN_FAILURE_LIMIT
    assert not LoginFailure.objects.filter(username="lena").exists()

    clock.shift(3600)
    response = client.post("/login/verify/", {"method": "totp", "code": totp(secret, now())})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_drafter_who_enrolled_is_asked_for_the_code_though_not_required(author, clock):
    client = Client()
    sign_in(client, "alice")
    assert client.get("/").status_code == 200  # not required, nothing enrolled
    enrol_totp(client)
    client.post("/logout/")
    response = sign_in(client, "alice")
    assert response.url.startswith("/login/verify/")


def test_the_next_address_after_verifying_stays_on_this_site(lead, clock):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    client.post("/logout/")
    clock.shift(31)
    sign_in(client, "lena")
    response = client.post(
        "/login/verify/",
        {"method": "totp", "code": totp(secret, now()), "next": "https://evil.example/"},
    )
    assert response.url == "/"


def test_verify_without_a_code_names_the_field(lead, clock):
    client = Client()
    sign_in(client, "lena")
    enrol_totp(client)
    client.post("/logout/")
    sign_in(client, "lena")
    response = client.post("/login/verify/", {"method": "totp", "code": ""})
    assert response.status_code == 400
    assert 'id="totp-code-error"' in response.content.decode()
    assert not events("mfa.failed").exists()


# Recovery codes ------------------------------------------------------------------------------
def make_recovery_codes(client: Client) -> list[str]:
    response = client.post("/security/recovery-codes/")
    assert response.status_code == 200
    codes = re.findall(r"<code>([0-9a-z-]{19})</code>", response.content.decode())
    assert len(codes) == 10
    return codes


def test_a_recovery_code_works_once_and_is_kept_only_as_a_hash(lead, clock):
    client = Client()
    sign_in(client, "lena")
    enrol_totp(client)
    codes = make_recovery_codes(client)
    assert events("mfa.recovery_codes_generated").count() == 1
    stored = list(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_recoverycode")
        dumped = repr(cursor.fetchall())
    assert not any(code.replace("-", "") in dumped for code in codes)

    client.post("/logout/")
    sign_in(client, "lena")
    # Typed loosely: upper case and spaces instead of dashes.
    typed = codes[0].upper().replace("-", " ")
    response = client.post("/login/verify/", {"method": "recovery", "code": typed})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert events("mfa.recovery_code_used").get().data == {"remaining": 9}

    client.post("/logout/")
    sign_in(client, "lena")
    clock.shift(5)
    response = client.post("/login/verify/", {"method": "recovery", "code": codes[0]})
    assert response.status_code == 400
    assert client.get("/").status_code == 302
    clock.shift(5)
    assert (
        client.post("/login/verify/", {"method": "recovery", "code": codes[1]}).status_code == 302
    )


def test_new_recovery_codes_replace_the_old_set(lead, clock):
    client = Client()
    sign_in(client, "lena")
    enrol_totp(client)
    old = make_recovery_codes(client)
    make_recovery_codes(client)
    assert RecoveryCodeDevice.objects.filter(user=lead).count() == 1
    client.post("/logout/")
    sign_in(client, "lena")
    assert client.post("/login/verify/", {"method": "recovery", "code": old[0]}).status_code == 400


# Enforcement on every way in ----------------------------------------------------------------
def test_a_lead_without_a_second_factor_reaches_only_enrolment(lead):
    client = Client()
    sign_in(client, "lena")
    for path in ["/", "/posts/", "/audit/", "/teams/", "/security/recovery-codes/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.url.startswith("/security/?next="), path
    page = client.get("/security/")
    assert page.status_code == 200
    assert "Your role needs a second factor" in page.content.decode()
    assert 'aria-label="Main"' not in page.content.decode()  # no navigation to elsewhere
    # Session-authenticated API calls are refused too, as JSON.
    response = client.get("/api/v1/me/")
    assert response.status_code == 403
    assert "second factor" in response.json()["message"]


def test_an_admin_without_a_second_factor_cannot_reach_the_django_admin(admin):
    client = Client()
    sign_in(client, "adam")
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/security/")


def test_the_admin_login_door_also_leaves_the_second_factor_owed(admin, clock):
    client = Client()
    sign_in(client, "adam")
    enrol_totp(client)
    assert client.get("/admin/").status_code == 200
    client.post("/logout/")

    # The admin has no door of its own: its login page sends people to the site's.
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    response = client.post(response.url, {"username": "adam", "password": PASSWORD})
    assert response.status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith("/login/verify/")


def test_a_superuser_counts_as_an_admin(org):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    client = Client()
    sign_in(client, "root")
    assert client.get("/admin/").url.startswith("/security/")


def test_a_drafter_is_unaffected_unless_everyone_must(author, settings):
    client = Client()
    sign_in(client, "alice")
    assert client.get("/").status_code == 200

    settings.CXHUB_MFA_REQUIRED_FOR_ALL = True
    assert client.get("/").url.startswith("/security/")


def test_no_one_is_required_when_no_role_is_named(lead, settings):
    settings.CXHUB_MFA_REQUIRED_ROLES = []
    client = Client()
    sign_in(client, "lena")
    assert client.get("/").status_code == 200


# Token issuance --------------------------------------------------------------------------------
def token(data: dict):
    return APIClient().post("/api/v1/auth/token/", data, format="json")


def test_a_lead_without_a_second_factor_gets_no_token(lead):
    response = token({"username": "lena", "password": PASSWORD})
    assert response.status_code == 403
    assert "otp" in response.json()["extra"]["fields"]
    assert "token" not in response.json()


def test_a_drafter_without_a_second_factor_gets_a_token_with_the_password(author):
    assert token({"username": "alice", "password": PASSWORD}).status_code == 200


def test_the_token_endpoint_needs_the_code_of_an_enrolled_person(lead, clock):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    codes = make_recovery_codes(client)
    clock.shift(31)

    missing = token({"username": "lena", "password": PASSWORD})
    assert missing.status_code == 400
    assert missing.json()["extra"]["fields"]["otp"] == ["This field is required."]
    assert "passkeys" in missing.json()["message"]

    wrong = token({"username": "lena", "password": PASSWORD, "otp": "123456x"})
    assert wrong.status_code == 401
    assert "otp" in wrong.json()["extra"]["fields"]
    assert events("auth.login_failed").filter(data__username="lena").count() == 1
    assert not LoginFailure.objects.filter(username="lena").exists()

    clock.shift(31)
    right = token({"username": "lena", "password": PASSWORD, "otp": totp(secret, now())})
    assert right.status_code == 200
    assert right.json()["token"]

    by_recovery = token({"username": "lena", "password": PASSWORD, "otp": codes[3]})
    assert by_recovery.status_code == 200
    again = token({"username": "lena", "password": PASSWORD, "otp": codes[3]})
    assert again.status_code in (401, 429)


def test_a_wrong_password_is_answered_before_the_code_is_looked_at(lead):
    response = token({"username": "lena", "password": "nope", "otp": "000000"})
    assert response.status_code == 400
    assert "password" in response.json()["extra"]["fields"]


# Removing a device -----------------------------------------------------------------------------
def test_removing_a_device_needs_a_fresh_verification(lead, clock):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    device = AuthenticatorApp.objects.get(user=lead)
    page = client.get("/security/")
    assert f"/security/devices/totp/{device.pk}/remove/" in page.content.decode()

    clock.shift(600)
    response = client.post(f"/security/devices/totp/{device.pk}/remove/")
    assert response.url.startswith("/login/verify/")
    assert AuthenticatorApp.objects.filter(pk=device.pk).exists()

    client.post("/login/verify/", {"method": "totp", "code": totp(secret, now())})
    response = client.post(f"/security/devices/totp/{device.pk}/remove/")
    assert response.url == "/security/"
    assert not AuthenticatorApp.objects.filter(pk=device.pk).exists()
    assert events("mfa.device_removed").get().data["kind"] == "totp"
    # Without a second factor left, the lead owes one again.
    assert client.get("/").url.startswith("/security/")


def test_no_one_removes_another_persons_device(lead, author, clock):
    other = Client()
    sign_in(other, "alice")
    enrol_totp(other)
    device = AuthenticatorApp.objects.get(user=author)

    client = Client()
    sign_in(client, "lena")
    enrol_totp(client)
    response = client.post(f"/security/devices/totp/{device.pk}/remove/")
    assert response.status_code == 404
    assert AuthenticatorApp.objects.filter(pk=device.pk).exists()


def test_one_holding_a_device_adds_another_only_from_a_verified_session(lead, clock):
    client = Client()
    sign_in(client, "lena")
    enrol_totp(client)
    client.post("/logout/")
    sign_in(client, "lena")
    assert client.get("/security/totp/").url.startswith("/login/verify/")
    response = client.post("/security/passkeys/registration/begin/")
    assert response.status_code in (302, 403)


def test_an_admin_removes_a_lost_device_for_a_person_audited_and_never_sees_its_key(
    lead, clock, org
):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    person = Client()
    sign_in(person, "lena")
    enrol_totp(person)
    device = AuthenticatorApp.objects.get(user=lead)

    client = Client()
    sign_in(client, "root")
    enrol_totp(client)
    page = client.get(f"/admin/accounts/authenticatorapp/{device.pk}/change/")
    assert page.status_code == 200
    assert device.key_encrypted not in page.content.decode()
    assert device.bin_key.hex() not in page.content.decode()
    assert client.get("/admin/accounts/authenticatorapp/add/").status_code == 403

    response = client.post(f"/admin/accounts/authenticatorapp/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not AuthenticatorApp.objects.filter(pk=device.pk).exists()
    assert events("mfa_authenticator_app.deleted_in_admin").get().object_id == str(device.pk)


def test_an_apps_key_is_encrypted_at_rest_and_rotates_with_the_token_keys(lead, clock, settings):
    client = Client()
    sign_in(client, "lena")
    secret = enrol_totp(client)
    key_hex = base64.b32decode(secret.replace(" ", "")).hex()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_authenticatorapp")
        dumped = repr(cursor.fetchall())
    assert key_hex not in dumped.lower()
    assert secret.replace(" ", "") not in dumped

    old = AuthenticatorApp.objects.get(user=lead).key_encrypted
    new_key = base64.urlsafe_b64encode(b"n" * 32).decode()
    settings.TOKEN_KEYS = [new_key, *settings.TOKEN_KEYS]
    call_command("rotate_token_keys", stdout=io.StringIO())
    settings.TOKEN_KEYS = [new_key]
    app = AuthenticatorApp.objects.get(user=lead)
    assert app.key_encrypted != old
    assert app.bin_key.hex() == key_hex
    assert events("mfa.app_keys_rotated").exists()

    # and the app's codes still sign in
    client.post("/logout/")
    clock.shift(31)
    sign_in(client, "lena")
    response = client.post("/login/verify/", {"method": "totp", "code": totp(secret, now())})
    assert response.status_code == 302
