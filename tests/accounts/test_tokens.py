"""API tokens (issue 12, item 4): issued as hashes and shown once, named, expiring, optionally
read-only, listed without secrets, revoked by their owner or an administrator above them, and
refused (401) once expired, revoked, unknown or their owner deactivated."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient

from accounts import tokens
from accounts.authentication import ApiTokenAuthentication, hash_secret
from accounts.models import ApiToken, Role
from audit.hashing import event_leaf
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, NotAllowed

from ..dbroles import as_owner
from ..factories import PASSWORD, UserFactory, grant


def _anonymous() -> APIClient:
    return APIClient()


def _with(secret: str, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
    return client


def _issue(user, **options) -> tokens.IssuedToken:
    return tokens.api_token_create(
        user=user, name=options.pop("name", "script"), by=user, **options
    )


def _obtain(**body):
    return _anonymous().post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD, **body}, format="json"
    )


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """The token endpoint's rate (10/min) is counted in the cache: each test starts afresh."""
    cache.clear()


@pytest.fixture
def north_admin(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.ADMIN)
    return user


# Issuing -----------------------------------------------------------------------------------------
def test_the_token_endpoint_issues_a_named_expiring_token_shown_once(author, settings):
    response = _obtain(name="Weekly report")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "id", "name", "prefix", "expires_at", "read_only"}
    assert body["name"] == "Weekly report"
    assert body["read_only"] is False
    assert body["token"].startswith(body["prefix"] + "_")
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(pk=body["id"])
    expected = timezone.now() + timedelta(days=settings.CXHUB_API_TOKEN_DAYS)
    assert abs((token.expires_at - expected).total_seconds()) < 60
    # Only the hash is kept: nothing stored reads back as the secret.
    assert token.secret_hash == hash_secret(body["token"])
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(body["token"] in str(value) for value in row.values())
    # It works.
    me = _with(body["token"]).get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_each_call_issues_a_new_token_and_both_work(author):
    first, second = _obtain().json(), _obtain().json()

    assert first["token"] != second["token"]
    assert first["id"] != second["id"]
    assert first["name"] == "API token"
    for secret in (first["token"], second["token"]):
        assert _with(secret).get("/api/v1/me/").status_code == 200


def test_a_lifetime_and_read_only_scope_can_be_asked_for(author):
    body = _obtain(expires_in_days=7, read_only=True).json()

    expires_at = ApiToken.objects.get(pk=body["id"]).expires_at
    assert abs((expires_at - (timezone.now() + timedelta(days=7))).total_seconds()) < 60
    assert body["read_only"] is True


@pytest.mark.parametrize("days", [366, 0, -3, "soon", 10**12])
def test_a_lifetime_outside_the_limits_is_refused_naming_the_field(author, days):
    response = _obtain(expires_in_days=days)

    assert response.status_code == 400
    assert "expires_in_days" in response.json()["extra"]["fields"]
    assert not ApiToken.objects.exists()


def test_the_maximum_lifetime_comes_from_settings(author, settings):
    settings.CXHUB_API_TOKEN_MAX_DAYS = 30
    settings.CXHUB_API_TOKEN_DAYS = 10

    refused = _obtain(expires_in_days=31)
    assert refused.status_code == 400
    assert "30 days" in refused.json()["extra"]["fields"]["expires_in_days"][0]
    with pytest.raises(ApplicationError) as error:
        _issue(author, expires_in_days=31)
    assert "expires_in_days" in error.value.extra["fields"]
    default = _obtain().json()
    expires_at = ApiToken.objects.get(pk=default["id"]).expires_at
    assert abs((expires_at - (timezone.now() + timedelta(days=10))).total_seconds()) < 60


def test_issuing_is_audited_naming_the_token_but_never_its_secret(author):
    body = _obtain(name="CI").json()

    event = AuditEvent.objects.get(action="auth.token_issued")
    assert event.actor_id == author.pk
    assert event.object_id == str(body["id"])
    assert event.data["prefix"] == body["prefix"]
    assert event.data["name"] == "CI"
    # cxh_<prefix>_<random>: the random part may hold "_" itself, so split from the left.
    secret_part = body["token"].split("_", 2)[2]
    stored = event_leaf(event).decode()  # every field the trail keeps, as the tree hashes it
    assert body["token"] not in stored and secret_part not in stored
    assert hash_secret(body["token"]) not in stored


# Presenting a token ------------------------------------------------------------------------------
def test_bearer_is_accepted_as_well_as_token(author):
    secret = _issue(author).secret
    assert _with(secret, "Bearer").get("/api/v1/me/").status_code == 200
    assert _with(secret, "bearer").get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Token cxh_abcdefgh_" + "A" * 43,  # the right shape, no such token
        "Token " + "0" * 40,  # a key of the old format, no such token
        "Token not-a-token",
        "Token",
        "Token two parts",
    ],
)
def test_unknown_or_malformed_tokens_are_refused_with_401(author, header):
    _issue(author)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_token_with_a_right_prefix_but_wrong_secret_is_refused(author):
    secret = _issue(author).secret
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")

    assert _with(forged).get("/api/v1/me/").status_code == 401


def test_an_expired_token_is_refused_saying_so(author):
    secret = _issue(author, expires_in_days=1).secret

    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = _with(secret).get("/api/v1/me/")

    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_a_revoked_token_is_refused_at_once(author):
    issued = _issue(author)
    client = _with(issued.secret)
    assert client.get("/api/v1/me/").status_code == 200

    tokens.api_token_revoke(token=issued.token, by=author)

    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_a_deactivated_person_loses_their_tokens_at_once(author):
    secret = _issue(author).secret
    author.is_active = False
    author.save(update_fields=["is_active"])

    response = _with(secret).get("/api/v1/me/")

    assert response.status_code == 401
    assert "deactivated" in response.json()["message"]


def test_a_read_only_token_reads_but_is_refused_403_on_writes(author):
    issued = _issue(author, read_only=True)
    client = _with(issued.secret)

    assert client.get("/api/v1/me/").status_code == 200
    for method, url in (
        ("post", "/api/v1/notifications/read/"),
        ("post", f"/api/v1/auth/tokens/{issued.token.pk}/revoke/"),
        ("post", "/api/v1/posts/"),
        ("delete", f"/api/v1/posts/{issued.token.pk}/"),
    ):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 403, (method, url)
        assert "read-only" in response.json()["message"]
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_a_token_of_full_scope_may_write(author):
    client = _with(_issue(author).secret)
    assert client.post("/api/v1/notifications/read/", {}, format="json").status_code == 200


# Last used, and the cost -------------------------------------------------------------------------
def _authenticate(secret: str):
    request = Request(RequestFactory().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {secret}"))
    return ApiTokenAuthentication().authenticate(request)


def test_authenticating_costs_one_query(author, django_assert_num_queries):
    issued = _issue(author)
    _authenticate(issued.secret)  # the first use writes last_used_at

    with django_assert_num_queries(1):
        user, token = _authenticate(issued.secret)

    assert user == author and token.pk == issued.token.pk


def test_last_used_is_written_at_most_once_a_minute(author, django_assert_num_queries):
    issued = _issue(author)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        with django_assert_num_queries(2):  # the token, and the first last_used_at
            _authenticate(issued.secret)
        issued.token.refresh_from_db()
        assert issued.token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        with django_assert_num_queries(1):
            _authenticate(issued.secret)
        issued.token.refresh_from_db()
        assert issued.token.last_used_at == start
    later = start + timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        with django_assert_num_queries(2):
            _authenticate(issued.secret)
        issued.token.refresh_from_db()
        assert issued.token.last_used_at == later


def test_a_stale_copy_does_not_write_over_a_fresh_last_used(author):
    """Two processes holding the same stale row: only the first UPDATE matches."""
    issued = _issue(author)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _authenticate(issued.secret)
    stale = ApiToken.objects.get(pk=issued.token.pk)
    with time_machine.travel(start + timedelta(seconds=90), tick=False):
        _authenticate(issued.secret)
    from accounts.authentication import token_touch

    token_touch(stale, start + timedelta(seconds=80))  # judged stale from its old copy
    issued.token.refresh_from_db()
    assert issued.token.last_used_at == start + timedelta(seconds=90)


# Listing ------------------------------------------------------------------------------------------
def test_the_list_shows_my_tokens_without_secrets(author, outsider):
    mine = [_issue(author, name=f"mine {n}") for n in range(3)]
    _issue(outsider, name="theirs")
    tokens.api_token_revoke(token=mine[0].token, by=author)

    response = _with(mine[1].secret).get("/api/v1/auth/tokens/")

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [t["name"] for t in body["results"]] == ["mine 2", "mine 1", "mine 0"]
    assert [t["state"] for t in body["results"]] == ["active", "active", "revoked"]
    assert {"secret_hash", "token"}.isdisjoint(body["results"][0])
    text = response.content.decode()
    for issued in mine:
        assert issued.secret not in text
        assert issued.token.secret_hash not in text


def test_the_list_is_cursor_paginated(author):
    for n in range(3):
        _issue(author, name=f"t{n}")
    client = APIClient()
    client.force_authenticate(author)

    first = client.get("/api/v1/auth/tokens/?page_size=2").json()
    assert [t["name"] for t in first["results"]] == ["t2", "t1"]
    second = client.get(first["next"]).json()
    assert [t["name"] for t in second["results"]] == ["t0"]
    assert second["next"] is None


@pytest.mark.parametrize("count", [2, 30])
def test_the_list_costs_the_same_queries(author, count, django_assert_num_queries):
    ApiToken.objects.bulk_create(
        ApiToken(
            user=author,
            name=f"t{n}",
            prefix=f"cxh_{n:08d}",
            secret_hash=f"{n:064x}",
            expires_at=timezone.now() + timedelta(days=1),
        )
        for n in range(count)
    )
    client = APIClient()
    client.force_authenticate(author)

    with django_assert_num_queries(1):
        response = client.get("/api/v1/auth/tokens/?page_size=100")

    assert len(response.json()["results"]) == count


# Revoking -----------------------------------------------------------------------------------------
def _revoke(by, token):
    client = APIClient()
    client.force_authenticate(by)
    return client.post(f"/api/v1/auth/tokens/{token.pk}/revoke/")


def test_i_revoke_my_own_token_once(author):
    issued = _issue(author)

    response = _revoke(author, issued.token)

    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert issued.token.revoked_by == author
    event = AuditEvent.objects.get(action="auth.token_revoked")
    assert event.data["prefix"] == issued.token.prefix
    assert event.object_id == str(issued.token.pk)
    again = _revoke(author, issued.token)
    assert again.status_code == 409


def test_someone_elses_token_is_404(author, outsider, approver):
    issued = _issue(author)
    for stranger in (outsider, approver):  # a sibling's drafter; a colleague of the same team
        assert _revoke(stranger, issued.token).status_code == 404
    assert _revoke(author, ApiToken(pk=999_999)).status_code == 404
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_an_admin_revokes_tokens_of_people_in_their_subtree(author, north_admin, org):
    grant(author, org["north_centre"], Role.APPROVER)  # still all inside North
    issued = _issue(author)

    response = _revoke(north_admin, issued.token)

    assert response.status_code == 200
    issued.token.refresh_from_db()
    assert issued.token.revoked_by == north_admin
    assert _with(issued.secret).get("/api/v1/me/").status_code == 401


def test_an_admin_cannot_revoke_tokens_of_someone_also_outside_their_subtree(
    author, north_admin, outsider, lead, org
):
    grant(author, org["south"], Role.APPROVER)  # alice now also works for South
    for person in (author, outsider, lead):  # partly outside; wholly outside; above North
        issued = _issue(person)
        assert _revoke(north_admin, issued.token).status_code == 404, person
        with pytest.raises(NotAllowed):
            tokens.api_token_revoke(token=issued.token, by=north_admin)


def test_an_admin_cannot_revoke_a_superusers_or_a_teamless_persons_tokens(north_admin, org):
    boss = UserFactory(username="root", is_superuser=True)
    grant(boss, org["north_centre"], Role.DRAFTER)
    loner = UserFactory(username="loner")
    for person in (boss, loner):
        assert _revoke(north_admin, _issue(person).token).status_code == 404


def test_a_superuser_may_revoke_anyones(author):
    boss = UserFactory(username="root", is_superuser=True)
    assert _revoke(boss, _issue(author).token).status_code == 200


def test_revoking_all_of_a_persons_tokens_is_audited_once_each(author, north_admin):
    live = [_issue(author, name=f"t{n}") for n in range(3)]
    tokens.api_token_revoke(token=live[0].token, by=author)

    count = tokens.api_tokens_revoke_all(user=author, by=north_admin, reason="left the agency")

    assert count == 2
    events = AuditEvent.objects.filter(action="auth.token_revoked", actor=north_admin)
    assert sorted(e.data["name"] for e in events) == ["t1", "t2"]
    assert {e.data["reason"] for e in events} == {"left the agency"}
    for issued in live:
        assert _with(issued.secret).get("/api/v1/me/").status_code == 401
    assert tokens.api_tokens_revoke_all(user=author, by=None) == 0


def test_a_deactivated_person_cannot_be_given_a_token(author):
    author.is_active = False
    author.save(update_fields=["is_active"])
    with pytest.raises(NotAllowed):
        _issue(author)


# Tokens from before: rest_framework.authtoken's plaintext keys -----------------------------------
def _migration():
    import importlib

    return importlib.import_module("accounts.migrations.0007_api_tokens")


class _Editor:
    """What the data migration uses of a schema editor, on the test's own connection (SQLite's
    real schema editor refuses to open inside the test's transaction)."""

    connection = connection

    def execute(self, sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)


def _old_table(rows):
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) PRIMARY KEY, "
            f"{quote('created')} timestamp with time zone NOT NULL, "
            f"{quote('user_id')} bigint NOT NULL)"
            if connection.vendor == "postgresql"
            else f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) "
            f"PRIMARY KEY, {quote('created')} datetime NOT NULL, {quote('user_id')} bigint "
            "NOT NULL)"
        )
        for key, user_id, created in rows:
            cursor.execute(
                f"INSERT INTO {quote('authtoken_token')} VALUES (%s, %s, %s)",
                [key, created, user_id],
            )


def test_plaintext_keys_are_moved_over_as_hashes_and_keep_working(author, settings):
    from django.apps import apps
    from django.db.migrations.recorder import MigrationRecorder

    key = "0123456789abcdef0123456789abcdef01234567"
    issued_on = timezone.now() - timedelta(days=400)
    with as_owner():  # a migration's work, as the tables' owner
        _old_table([(key, author.pk, issued_on)])
        MigrationRecorder(connection).record_applied("authtoken", "0001_initial")

        _migration().move_plaintext_tokens(apps, _Editor())

    assert "authtoken_token" not in connection.introspection.table_names()
    assert not MigrationRecorder(connection).migration_qs.filter(app="authtoken").exists()
    token = ApiToken.objects.get(user=author)
    assert token.secret_hash == hash_secret(key)
    assert key[:8] not in token.prefix
    assert abs((token.created_at - issued_on).total_seconds()) < 1
    expected = timezone.now() + timedelta(days=settings.CXHUB_API_TOKEN_DAYS)
    assert abs((token.expires_at - expected).total_seconds()) < 60
    assert _with(key).get("/api/v1/me/").status_code == 200
    with time_machine.travel(expected + timedelta(minutes=2)):
        assert _with(key).get("/api/v1/me/").status_code == 401


def test_the_move_does_nothing_without_the_old_table(author):
    from django.apps import apps

    with as_owner():
        _migration().move_plaintext_tokens(apps, _Editor())

    assert not ApiToken.objects.exists()


def test_a_default_lifetime_beyond_the_maximum_stops_start_up(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DEBUG": "1",
        "CXHUB_VAR_DIR": str(tmp_path / "var"),
        "CXHUB_API_TOKEN_DAYS": "400",
        "CXHUB_API_TOKEN_MAX_DAYS": "365",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert "CXHUB_API_TOKEN_DAYS=400 exceeds CXHUB_API_TOKEN_MAX_DAYS=365" in result.stderr
