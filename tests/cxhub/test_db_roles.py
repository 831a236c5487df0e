"""The database as a second line (README, "Database roles"): on PostgreSQL the suite runs the app
as the restricted role of `manage.py db_roles` (tests/dbroles.py), which may add audit events
but not change, remove, truncate, alter, untrigger or drop them; the owner, who migrates, is
refused TRUNCATE by the trigger."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from audit import sealer
from audit.models import AuditEvent
from audit.services import record
from audit.verify import verify_chain
from cxhub.dbroles import db_app_role_grant

from ..dbroles import TEST_APP_ROLE, as_owner

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def _as_app(sql: str) -> None:
    """Run `sql` as the app role, in a savepoint so the test's transaction survives a refusal."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def _one(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@pytest.fixture
def events(org, lead):
    with transaction.atomic():
        for n in range(3):
            record(actor=lead, action="team.renamed", obj=org["north"], data={"n": n})
    return AuditEvent.objects.count()


def test_the_suite_runs_the_app_as_the_restricted_role(db):
    current, session, superuser = _one(
        "SELECT current_user, session_user, rolsuper FROM pg_roles WHERE rolname = current_user"
    )
    assert current == TEST_APP_ROLE
    assert session != TEST_APP_ROLE  # the owner connects; PGOPTIONS sets the role
    assert not superuser
    # It owns nothing here, and is not a member of the owner.
    (owned,) = _one(
        "SELECT count(*) FROM pg_class WHERE relowner = "
        "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
    )
    assert owned == 0
    assert _one("SELECT pg_has_role(current_user, %s, 'MEMBER')", [session]) == (False,)


def test_the_app_role_adds_an_event(org, lead):
    with transaction.atomic():
        event = record(actor=lead, action="team.renamed", obj=org["north"])

    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert verify_chain().ok


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'post.deleted'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent CASCADE",
        "TRUNCATE audit_auditchainhead",
    ],
    ids=["update", "delete", "truncate-events", "truncate-head"],
)
def test_the_app_role_may_not_change_or_remove_events(events, sql):
    with pytest.raises(DatabaseError, match="permission denied for table audit_"):
        _as_app(sql)

    assert AuditEvent.objects.count() == events
    assert verify_chain().ok


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_truncate",
        "ALTER TABLE audit_auditchainhead DISABLE TRIGGER audit_auditchainhead_no_truncate",
        "DROP TRIGGER audit_auditevent_append_only ON audit_auditevent",
        "DROP TRIGGER audit_auditevent_no_truncate ON audit_auditevent",
        "ALTER TABLE audit_auditevent ADD COLUMN note text",
        "ALTER TABLE audit_auditevent OWNER TO CURRENT_USER",
        "DROP TABLE audit_auditevent CASCADE",
        "DROP FUNCTION audit_auditevent_append_only() CASCADE",
    ],
    ids=[
        "disable-trigger",
        "disable-all-triggers",
        "disable-truncate-trigger",
        "disable-head-trigger",
        "drop-trigger",
        "drop-truncate-trigger",
        "alter-table",
        "take-ownership",
        "drop-table",
        "drop-function",
    ],
)
def test_the_app_role_may_not_alter_untrigger_or_drop_the_table(events, sql):
    with pytest.raises(DatabaseError, match="must be owner of"):
        _as_app(sql)

    # The trigger is still on: the owner is still refused an UPDATE.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), as_owner():
        _as_app("UPDATE audit_auditevent SET action = 'x'")


def test_the_app_role_may_not_create_a_trigger_of_its_own(events):
    # A BEFORE INSERT trigger could rewrite events as they come: TRIGGER is not granted.
    with pytest.raises(DatabaseError, match="must be owner of|permission denied"):
        _as_app(
            "CREATE TRIGGER rewrite BEFORE INSERT ON audit_auditevent FOR EACH ROW "
            "EXECUTE FUNCTION audit_auditevent_append_only()"
        )


TREE_TABLES = ("audit_auditleaf", "audit_merklenode", "audit_auditcheckpoint")


@pytest.fixture
def sealed(events):
    """The events in the tree with a signed checkpoint: rows in every append-only table."""
    sealer.seal()
    return {table: _one(f"SELECT count(*) FROM {table}")[0] for table in TREE_TABLES}  # noqa: S608


@pytest.mark.parametrize("table", TREE_TABLES)
@pytest.mark.parametrize(
    "sql",
    ["UPDATE {table} SET {column} = {column}", "DELETE FROM {table}", "TRUNCATE {table} CASCADE"],
    ids=["update", "delete", "truncate"],
)
def test_the_app_role_may_not_change_or_remove_the_tree(sealed, table, sql):
    column = {"audit_auditleaf": "event_seq", "audit_merklenode": "hash"}.get(table, "note")

    with pytest.raises(DatabaseError, match=f"permission denied for table {table}"):
        _as_app(sql.format(table=table, column=column))

    assert _one(f"SELECT count(*) FROM {table}")[0] == sealed[table] > 0  # noqa: S608


@pytest.mark.parametrize("table", TREE_TABLES)
@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE {table} DISABLE TRIGGER {table}_append_only",
        "ALTER TABLE {table} DISABLE TRIGGER USER",
        "ALTER TABLE {table} DISABLE TRIGGER {table}_no_truncate",
        "DROP TRIGGER {table}_append_only ON {table}",
        "ALTER TABLE {table} OWNER TO CURRENT_USER",
        "DROP TABLE {table} CASCADE",
    ],
    ids=[
        "disable-trigger",
        "disable-all",
        "disable-truncate-trigger",
        "drop-trigger",
        "own",
        "drop",
    ],
)
def test_the_app_role_may_not_untrigger_or_drop_the_tree(sealed, table, sql):
    with pytest.raises(DatabaseError, match="must be owner of"):
        _as_app(sql.format(table=table))

    # The triggers are still on: the owner is still refused a DELETE and a TRUNCATE.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), as_owner():
        _as_app(f"DELETE FROM {table}")  # noqa: S608
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), as_owner():
        _as_app("SET CONSTRAINTS ALL IMMEDIATE")
        _as_app(f"TRUNCATE {table} CASCADE")


def test_the_owner_is_refused_truncate_by_the_trigger(events):
    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE of audit_auditevent"),
        transaction.atomic(),
        as_owner(),
    ):
        _as_app("SET CONSTRAINTS ALL IMMEDIATE")
        _as_app("TRUNCATE audit_auditevent CASCADE")

    assert AuditEvent.objects.count() == events


def test_migrate_refuses_the_app_role(db):
    with pytest.raises(CommandError, match="migrate refused: connected as 'cxhub_test_app'"):
        call_command("migrate", verbosity=0)


def test_migrate_refuses_the_role_named_by_cxhub_db_app_role(db, settings):
    settings.CXHUB_DB_APP_ROLE = TEST_APP_ROLE

    with pytest.raises(CommandError, match="the application's role \\(CXHUB_DB_APP_ROLE\\)"):
        call_command("migrate", verbosity=0)


def test_tables_made_later_are_granted_by_default_privileges(db):
    with as_owner():  # a later migration, as the owner
        _as_app("CREATE TABLE cxhub_probe_later (id bigint GENERATED BY DEFAULT AS IDENTITY)")

    _as_app("INSERT INTO cxhub_probe_later DEFAULT VALUES")
    _as_app("UPDATE cxhub_probe_later SET id = id")
    _as_app("DELETE FROM cxhub_probe_later")
    with pytest.raises(DatabaseError, match="permission denied"):
        _as_app("TRUNCATE cxhub_probe_later")
    with pytest.raises(DatabaseError, match="must be owner"):
        _as_app("DROP TABLE cxhub_probe_later")


def test_db_roles_is_idempotent_and_takes_back_what_was_granted_by_hand(db):
    with as_owner():
        _as_app(f"GRANT UPDATE, TRUNCATE, TRIGGER ON audit_auditevent TO {TEST_APP_ROLE}")
        call_command("db_roles", app_role=TEST_APP_ROLE, login=False, verbosity=0)
        report = db_app_role_grant(app_role=TEST_APP_ROLE, login=False)

    assert not any(line.startswith("created") for line in report)
    for privilege, held in [
        ("SELECT", True),
        ("INSERT", True),
        ("UPDATE", False),
        ("DELETE", False),
        ("TRUNCATE", False),
        ("TRIGGER", False),
        ("REFERENCES", False),
    ]:
        assert _one(
            "SELECT has_table_privilege(%s, 'audit_auditevent', %s)", [TEST_APP_ROLE, privilege]
        ) == (held,), privilege
    assert _one(
        "SELECT has_table_privilege(%s, 'django_migrations', 'INSERT')", [TEST_APP_ROLE]
    ) == (False,)
    assert _one(
        "SELECT has_table_privilege(%s, 'audit_auditchainhead', 'UPDATE')", [TEST_APP_ROLE]
    ) == (True,)


def test_db_roles_creates_a_missing_role(db):
    with as_owner():
        call_command("db_roles", app_role="cxhub_test_probe_new", verbosity=0)
        login, superuser = _one(
            "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'cxhub_test_probe_new'"
        )
    # The test's transaction takes the role away again.
    assert login and not superuser


@pytest.mark.parametrize(
    "setup, problem",
    [
        ("CREATE ROLE cxhub_test_probe SUPERUSER", "holds SUPERUSER"),
        ("CREATE ROLE cxhub_test_probe CREATEROLE", "holds CREATEROLE"),
        ("CREATE ROLE cxhub_test_probe IN ROLE {owner}", "is a member of"),
        (
            "CREATE ROLE cxhub_test_probe; "
            "ALTER TABLE audit_auditchainhead OWNER TO cxhub_test_probe",
            r"owns \d+ relations",
        ),
    ],
    ids=["superuser", "createrole", "member-of-owner", "owner-of-a-table"],
)
def test_db_roles_refuses_a_role_that_could_act_as_the_owner(db, setup, problem):
    with as_owner():
        (owner,) = _one("SELECT current_user")
        _as_app(setup.format(owner=owner))
        with pytest.raises(CommandError, match=problem):
            call_command("db_roles", app_role="cxhub_test_probe", verbosity=0)


def test_db_roles_refuses_to_run_as_the_app_role(db):
    with pytest.raises(CommandError, match="the application's role itself"):
        call_command("db_roles", app_role=TEST_APP_ROLE, verbosity=0)


def _database_url(**query) -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return url + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) if query else "")


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.integration
def test_processes_the_suite_starts_run_as_the_app_role(db):
    # Workers and manage.py runs get the test database's URL; the role comes with the
    # environment (PGOPTIONS), as their own DATABASE_URL would give it in production.
    result = _manage(
        "shell",
        "-c",
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SELECT current_user'); print(c.fetchone()[0])",
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": _database_url()},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == TEST_APP_ROLE


@pytest.mark.integration
def test_manage_py_migrate_as_the_app_role_exits_naming_the_owner_url(db):
    production = {
        "DJANGO_SETTINGS_MODULE": "cxhub.settings",
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "CXHUB_DB_APP_ROLE": TEST_APP_ROLE,
    }

    refused = _manage("migrate", env=production)
    # Through the owner's URL (here: the same user without the app role), it runs.
    done = _manage(
        "migrate",
        env={**production, "CXHUB_MIGRATE_DATABASE_URL": _database_url(options="-c role=none")},
    )

    assert refused.returncode != 0
    assert "migrate refused" in refused.stderr
    assert "CXHUB_MIGRATE_DATABASE_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert done.returncode == 0, done.stderr
    assert "No migrations to apply" in done.stdout
