"""No API token is readable in a dump of the database (issue 12, "What must be shown").

Tokens are issued through the real endpoint (and one old plaintext key is moved over by the
migration), committed, and the whole database is dumped the ways an operator or an attacker
would: `manage.py dumpdata` in its own process on either backend; on SQLite the database file
itself and SQLite's own SQL dump; on PostgreSQL `pg_dump`. No secret may appear in any of them,
while each dump is shown to hold the tokens' rows (their prefixes and hashes), so a dump that
missed the table cannot pass.
"""

import importlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import tokens
from accounts.authentication import hash_secret
from accounts.models import ApiToken

from ..dbroles import as_owner
from ..factories import PASSWORD

REPO = Path(__file__).resolve().parents[2]
DUMP_TIMEOUT = 300  # a bound for a hung process on a loaded machine, not a wait

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "8f14e45fceea167a5a36dedd4bea2543c9f0f895"


class _Editor:
    connection = connection

    def execute(self, sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)


def _move_an_old_plaintext_key(user) -> None:
    """rest_framework.authtoken's table with one key, moved over by the real migration code."""
    quote_name = connection.ops.quote_name
    created_type = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
    with as_owner():  # a migration's work, as the tables' owner
        _old_tokens_moved(user, quote_name, created_type)


def _old_tokens_moved(user, quote_name, created_type) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote_name('authtoken_token')} ({quote_name('key')} varchar(40) "
            f"PRIMARY KEY, {quote_name('created')} {created_type} NOT NULL, "
            f"{quote_name('user_id')} bigint NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO {quote_name('authtoken_token')} VALUES (%s, %s, %s)",
            [OLD_KEY, timezone.now(), user.pk],
        )
    if connection.vendor == "sqlite":
        # As in a database that has held the key for long: it is in the file, not only the log.
        _checkpoint(Path(connection.settings_dict["NAME"]))
    migration = importlib.import_module("accounts.migrations.0007_api_tokens")
    migration.move_plaintext_tokens(apps, _Editor())


def _checkpoint(path: Path) -> None:
    """Copy SQLite's write-ahead log into the database file and empty the log."""
    checkpointer = sqlite3.connect(path)
    try:
        busy, _, _ = checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpointer.close()
    assert busy == 0, "the checkpoint could not finish: a reader held the database"


@pytest.fixture
def issued(author) -> list[str]:
    """Secrets of: a token from the endpoint, a read-only one, a revoked one, an old key."""
    cache.clear()
    client = APIClient()
    secrets = []
    for body in ({"name": "report"}, {"read_only": True}, {"name": "to revoke"}):
        response = client.post(
            "/api/v1/auth/token/",
            {"username": "alice", "password": PASSWORD, **body},
            format="json",
        )
        assert response.status_code == 200, response.content
        secrets.append(response.json()["token"])
    tokens.api_token_revoke(token=ApiToken.objects.get(name="to revoke"), by=author)
    # Each works, so each was really issued (and last_used_at written).
    for secret in secrets[:2]:
        user = APIClient()
        user.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        assert user.get("/api/v1/me/").status_code == 200
    # Last, so that no later write happens to reuse (and so overwrite) the pages it freed.
    _move_an_old_plaintext_key(author)
    assert ApiToken.objects.filter(secret_hash=hash_secret(OLD_KEY)).exists()
    return [*secrets, OLD_KEY]


def _searchable(secret: str) -> list[str]:
    """The secret, and its random part alone (as a column split apart would hold it)."""
    # cxh_<prefix>_<random>: split from the left, as the random part may hold "_" itself (split
    # from the right, a short tail of it was "found" in a binary file by chance).
    return [secret, secret.split("_", 2)[-1]]


def _assert_hidden(dump: str, secrets: list[str], where: str) -> None:
    assert dump, f"{where} is empty"
    for token in ApiToken.objects.all():  # the dump did hold the tokens' rows
        assert token.prefix in dump, f"{where} misses token {token.prefix}: not a full dump"
        assert token.secret_hash in dump, f"{where} misses the hash of {token.prefix}"
    for secret in secrets:
        for needle in _searchable(secret):
            assert needle not in dump, f"a token's secret is readable in {where}"


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_dumpdata_shows_no_token(issued):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "dumpdata", "--format", "json", "--indent", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=DUMP_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert '"model": "accounts.apitoken"' in result.stdout
    _assert_hidden(result.stdout, issued, "manage.py dumpdata")


def test_pg_dump_shows_no_token(issued):
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump is for PostgreSQL; this run is on SQLite (see the SQLite dumps)")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("the pg_dump binary is missing (Debian: apt-get install postgresql-client)")
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    result = subprocess.run(
        [
            pg_dump,
            "--host",
            db["HOST"] or "127.0.0.1",
            "--port",
            str(db["PORT"] or 5432),
            "--username",
            db["USER"] or "postgres",
            "--no-owner",
            db["NAME"],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=DUMP_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "accounts_apitoken" in result.stdout
    _assert_hidden(result.stdout, issued, "pg_dump")


def test_the_sqlite_file_and_its_sql_dump_show_no_token(issued):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite files are for SQLite; this run is on PostgreSQL (see pg_dump)")
    path = Path(connection.settings_dict["NAME"])
    reader = sqlite3.connect(path)
    try:
        sql = "\n".join(reader.iterdump())
    finally:
        reader.close()
    _assert_hidden(sql, issued, "SQLite's SQL dump")
    # The bytes on disk, write-ahead log included: what a copied file would give away. Once
    # SQLite has checkpointed (on its own every 1000 pages, here at once) the old key's pages,
    # freed by the migration, must hold zeros, not the key.
    _checkpoint(path)
    raw = b"".join(
        candidate.read_bytes() for candidate in (path, Path(f"{path}-wal")) if candidate.exists()
    )
    for secret in issued:
        for needle in _searchable(secret):
            assert needle.encode() not in raw, "a token's secret is in the database file"
