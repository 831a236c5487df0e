"""The suite's PostgreSQL pass runs the application as a restricted role, as production should.

pytest-django creates and migrates the test database as the connecting user (the owner); then
the role of `manage.py db_roles` is granted there, and every libpq connection of this process and
of the processes it starts (workers, `manage.py` runs: they inherit the environment) begins with
`SET ROLE` to it through PGOPTIONS. SET ROLE is a test harness device only: a session can step
back with SET ROLE NONE, which is what the flush between transactional tests and the tests that
play the database administrator do (`as_owner`). Production connects as the role itself.
"""

import importlib
import io
import os
from contextlib import contextmanager

from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.backends.postgresql.operations import DatabaseOperations

TEST_APP_ROLE = "cxhub_test_app"

_TRUNCATE_TRIGGERS = {
    **importlib.import_module("audit.migrations.0004_truncate_and_roles").TRUNCATE_TRIGGERS,
    **importlib.import_module("audit.migrations.0005_tree_sealer").TRUNCATE_TRIGGERS,
}

_state = {"active": False, "pgoptions": None, "flush": None}


def app_role_active() -> bool:
    return _state["active"]


def app_role_start() -> None:
    """Grant the test role in the test database and connect as it from now on."""
    if connection.vendor != "postgresql":
        return
    call_command("db_roles", app_role=TEST_APP_ROLE, login=False, stdout=io.StringIO())
    _state["pgoptions"] = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{_state['pgoptions'] or ''} -c role={TEST_APP_ROLE}".strip()
    _state["flush"] = DatabaseOperations.execute_sql_flush
    DatabaseOperations.execute_sql_flush = _flush_as_owner
    _state["active"] = True
    connections.close_all()


def app_role_stop() -> None:
    """Back to the connecting user, so pytest-django can drop the test database."""
    if not _state["active"]:
        return
    if _state["pgoptions"] is None:
        os.environ.pop("PGOPTIONS", None)
    else:
        os.environ["PGOPTIONS"] = _state["pgoptions"]
    DatabaseOperations.execute_sql_flush = _state["flush"]
    _state["active"] = False
    connections.close_all()


@contextmanager
def as_owner(using: str = "default"):
    """Within the block, this connection acts as the connecting user (the tables' owner), as a
    database administrator would; the app role comes back after."""
    conn = connections[using]
    if conn.vendor != "postgresql" or not _state["active"]:
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("SET ROLE NONE")
    try:
        yield
    finally:
        if not conn.needs_rollback and not _in_failed_transaction(conn):
            with conn.cursor() as cursor:
                cursor.execute("RESET ROLE")  # back to PGOPTIONS' role


def _in_failed_transaction(conn) -> bool:
    import psycopg

    raw = conn.connection
    return raw is not None and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def _flush_as_owner(self, sql_list):
    """The flush between transactional tests: as the owner, with the TRUNCATE triggers of the
    audit tables switched off for this one transaction (ALTER TABLE takes an exclusive lock, so
    no other session sees them off)."""
    quote = self.quote_name
    with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
        cursor.execute("SET ROLE NONE")
        for table, trigger in _TRUNCATE_TRIGGERS.items():
            cursor.execute(f"ALTER TABLE {quote(table)} DISABLE TRIGGER {quote(trigger)}")
        _state["flush"](self, sql_list)
        for table, trigger in _TRUNCATE_TRIGGERS.items():
            cursor.execute(f"ALTER TABLE {quote(table)} ENABLE TRIGGER {quote(trigger)}")
        cursor.execute("RESET ROLE")
