"""The database as a second line behind the application: on PostgreSQL, migrations run as the
tables' owner and the application as a role that may read and write rows but not change the
tables themselves (README, "Database roles").

In PostgreSQL only a table's owner (or a superuser) may ALTER it, DISABLE TRIGGER on it, DROP
it; TRUNCATE takes a privilege the application role is not given. So the append-only triggers on
the audit events hold against the application's own connection, whatever a bug or an attacker
in the application sends.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connections, transaction

# What the application may do on every table (and future ones, through default privileges).
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APP_SEQUENCE_PRIVILEGES = "USAGE, SELECT"
# Tables whose rows the application only adds: UPDATE and DELETE are taken back.
APPEND_ONLY_TABLES = (
    "audit_auditevent",
    "audit_auditleaf",
    "audit_merklenode",
    "audit_auditcheckpoint",
)
# Tables the application only reads: the migration record is the owner's.
READ_ONLY_TABLES = ("django_migrations",)

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseRoleError(Exception):
    """The database roles are not as the split needs them; the message says what to do."""


def role_name_valid(name: str) -> bool:
    return bool(ROLE_NAME.match(name))


@contextmanager
def db_owner_connection(alias: str = "default") -> Iterator[None]:
    """Within the block, the `alias` connection goes to CXHUB_MIGRATE_DATABASE_URL (the owner's
    URL) when it is set; otherwise nothing changes."""
    owner = getattr(settings, "CXHUB_MIGRATE_DATABASE", None)
    if alias != "default" or not owner:
        yield
        return
    connection = connections[alias]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        {key: owner.get(key) or "" for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}
        | {"OPTIONS": owner.get("OPTIONS") or {}}
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def db_migration_role_check(*, alias: str = "default", app_role: str = "") -> None:
    """Refuse to migrate as the application's role: as CXHUB_DB_APP_ROLE, or as a role that does
    not own the tables already there (nor is a member of their owner, nor a superuser)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, r.rolsuper, t.tableowner, "
            "t.tableowner IS NOT NULL AND pg_has_role(current_user, t.tableowner, 'USAGE') "
            "FROM pg_roles r LEFT JOIN pg_tables t "
            "ON t.schemaname = current_schema() AND t.tablename = 'django_migrations' "
            "WHERE r.rolname = current_user"
        )
        user, superuser, owner, owner_member = cursor.fetchone()
    fix = (
        "Migrations run as the owner of the tables: set CXHUB_MIGRATE_DATABASE_URL to the "
        "owner's URL (README, Database roles)."
    )
    if app_role and user == app_role:
        raise DatabaseRoleError(
            f"migrate refused: connected as {user!r}, the application's role "
            f"(CXHUB_DB_APP_ROLE), which may not change the tables. {fix}"
        )
    if owner is not None and not superuser and not owner_member:
        raise DatabaseRoleError(
            f"migrate refused: connected as {user!r}, which does not own the tables "
            f"(their owner is {owner!r}); it looks like the application's role. {fix}"
        )


def db_app_role_grant(*, alias: str = "default", app_role: str, login: bool = True) -> list[str]:
    """Create (if missing) the application's role and grant it what the application needs, on
    every table now and, through default privileges, on every table the owner makes later.
    Idempotent: run it as the owner after each `migrate`. Returns what it found and did."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise DatabaseRoleError("database roles need PostgreSQL; SQLite has no roles")
    if not role_name_valid(app_role):
        raise DatabaseRoleError(
            f"{app_role!r} is not a plain role name (lower-case letters, digits, underscores)"
        )
    quote = connection.ops.quote_name
    role = quote(app_role)
    report = []
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema(), current_database()")
        owner, schema, database = cursor.fetchone()
        if owner == app_role:
            raise DatabaseRoleError(
                f"connected as {owner!r}, the application's role itself: run db_roles as the "
                "owner of the tables (CXHUB_MIGRATE_DATABASE_URL)"
            )
        if _role_attributes(cursor, app_role) is None:
            _role_create(cursor, alias=alias, name=app_role, login=login)
            report.append(f"created role {app_role} ({'LOGIN' if login else 'NOLOGIN'})")
        _role_refuse_powers(cursor, app_role=app_role, owner=owner, schema=schema)

        owner_q, schema_q = quote(owner), quote(schema)
        for sql in (
            f"GRANT CONNECT ON DATABASE {quote(database)} TO {role}",
            f"GRANT USAGE ON SCHEMA {schema_q} TO {role}",
            # From a clean slate each time, so a privilege granted by hand does not linger.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_q} FROM {role}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_q} FROM {role}",
            f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema_q} TO {role}",
            f"GRANT {APP_SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {schema_q} TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} "
            f"GRANT {APP_TABLE_PRIVILEGES} ON TABLES TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} "
            f"GRANT {APP_SEQUENCE_PRIVILEGES} ON SEQUENCES TO {role}",
        ):
            cursor.execute(sql)
        for table in APPEND_ONLY_TABLES:
            if _table_exists(cursor, schema, table):
                cursor.execute(f"REVOKE UPDATE, DELETE ON {quote(table)} FROM {role}")
        for table in READ_ONLY_TABLES:
            if _table_exists(cursor, schema, table):
                cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON {quote(table)} FROM {role}")
        report.append(
            f"granted {app_role} {APP_TABLE_PRIVILEGES} on the tables of {database}.{schema} "
            f"and {APP_SEQUENCE_PRIVILEGES} on its sequences, now and (default privileges of "
            f"{owner}) for tables made later"
        )
        report.append(
            f"append-only for {app_role} (SELECT, INSERT): {', '.join(APPEND_ONLY_TABLES)}; "
            f"read-only: {', '.join(READ_ONLY_TABLES)}"
        )
        cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [app_role, schema])
        if cursor.fetchone()[0]:
            report.append(
                f"note: {app_role} may CREATE in schema {schema} (granted to PUBLIC?); it cannot "
                f"touch the owner's tables, but `REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC` "
                "closes it"
            )
    return report


def _role_attributes(cursor, name: str):
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
        "FROM pg_roles WHERE rolname = %s",
        [name],
    )
    return cursor.fetchone()


def _role_create(cursor, *, alias: str, name: str, login: bool) -> None:
    role = '"' + name + '"'  # a plain name (ROLE_NAME), so quoting is enough
    try:
        # A savepoint: another run creating the same role at once wins, and that is fine.
        with transaction.atomic(using=alias):
            cursor.execute(
                f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'} NOSUPERUSER NOCREATEDB "
                "NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
            )
    except DatabaseError:
        if _role_attributes(cursor, name) is None:
            raise


def _role_refuse_powers(cursor, *, app_role: str, owner: str, schema: str) -> None:
    """The role must hold none of the powers that would let it around the tables' owner."""
    superuser, createrole, createdb, bypassrls, replication = _role_attributes(cursor, app_role)
    powers = [
        label
        for label, held in (
            ("SUPERUSER", superuser),
            ("CREATEROLE", createrole),
            ("CREATEDB", createdb),
            ("BYPASSRLS", bypassrls),
            ("REPLICATION", replication),
        )
        if held
    ]
    if powers:
        raise DatabaseRoleError(
            f"role {app_role!r} holds {', '.join(powers)}: the application's role must be plain "
            f"(ALTER ROLE {app_role} NO{' NO'.join(powers)})"
        )
    cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner])
    if cursor.fetchone()[0]:
        raise DatabaseRoleError(
            f"role {app_role!r} is a member of {owner!r}, the tables' owner, so it could act as "
            f"the owner: REVOKE {owner} FROM {app_role}"
        )
    cursor.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = %s) AND n.nspname = %s",
        [app_role, schema],
    )
    owned = cursor.fetchone()[0]
    cursor.execute(
        "SELECT (SELECT datdba FROM pg_database WHERE datname = current_database()) = "
        "(SELECT oid FROM pg_roles WHERE rolname = %s)",
        [app_role],
    )
    if owned or cursor.fetchone()[0]:
        raise DatabaseRoleError(
            f"role {app_role!r} owns {'the database' if not owned else f'{owned} relations'} "
            f"here, and an owner may alter, disable triggers and drop: "
            f"REASSIGN OWNED BY {app_role} TO {owner} (as {owner} or a superuser)"
        )


def _table_exists(cursor, schema: str, table: str) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s)",
        [schema, table],
    )
    return cursor.fetchone()[0]
