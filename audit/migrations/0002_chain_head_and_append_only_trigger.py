"""The chain head row, and on PostgreSQL a trigger refusing UPDATE and DELETE of audit events
(TRUNCATE stays allowed: the test framework flushes tables with it)."""

from django.db import migrations

GENESIS_HASH = "0" * 64

# No percent signs below: PostgreSQL's schema editor runs every statement through psycopg's
# client-side formatting, so RAISE's placeholder syntax is avoided.
CREATE_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE =
        'audit events are append-only: ' || TG_OP || ' of audit_auditevent refused';
END;
$$;
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


def create_chain_head(apps, schema_editor):
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    AuditChainHead.objects.using(schema_editor.connection.alias).get_or_create(
        id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
    )


def create_trigger(apps, schema_editor):
    # RunSQL has no vendor switch; SQLite relies on the model's refusals alone.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
