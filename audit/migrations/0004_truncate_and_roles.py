"""On PostgreSQL, a statement-level trigger refusing TRUNCATE of the audit events and of the chain
head, for everyone, the tables' owner included.

The row-level trigger of 0002 refuses UPDATE and DELETE, but TRUNCATE fires no row triggers: it
emptied the trail in one statement. The application's role has no TRUNCATE privilege either
(`manage.py db_roles`, README "Database roles"); this trigger also stops the owner's careless
TRUNCATE. Only the owner or a superuser can switch it off (ALTER TABLE ... DISABLE TRIGGER), which
is what the test suite does around its flush between transactional tests (tests/dbroles.py).

SQLite has no TRUNCATE (Django flushes it with DELETE); there the models' refusals stay the guard.
"""

from django.db import migrations

# No percent signs below: the schema editor runs statements through psycopg's client-side
# formatting (see 0002).
CREATE_TRIGGERS = """
CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = 'audit tables are append-only: TRUNCATE of ' || TG_TABLE_NAME || ' refused';
END;
$$;
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
CREATE TRIGGER audit_auditevent_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
DROP TRIGGER IF EXISTS audit_auditchainhead_no_truncate ON audit_auditchainhead;
CREATE TRIGGER audit_auditchainhead_no_truncate
    BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditchainhead_no_truncate ON audit_auditchainhead;
DROP FUNCTION IF EXISTS audit_refuse_truncate();
"""

# The triggers of this migration and 0002, by table: what the test suite's flush switches off.
TRUNCATE_TRIGGERS = {
    "audit_auditevent": "audit_auditevent_no_truncate",
    "audit_auditchainhead": "audit_auditchainhead_no_truncate",
}


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGERS)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_merkle"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
    ]
