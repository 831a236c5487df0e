"""The sealer's queue gives way to a horizon (issue 13, the cost of recording).

A writer used to insert a queue row (AuditUnsealed) beside each event, which the sealer then
deleted: a second insert, index entry and dead row for every audited change. Now the sealer finds
new events itself, above a horizon kept in the tree head (audit.sealer, "The horizon"):

* ``horizon``: every event at or below it is a leaf; set here from the queue (the first queued
  seq, less one) or, with nothing queued, from the last event in the tree.
* On PostgreSQL the writer takes its seq through ``audit_next_seq()``, which gives the
  transaction its id before it takes the number: then "every transaction that was running when
  the sequence stood at L has ended" tells the sealer that no event at or below L is still to
  come.
* The index on ``at`` becomes a BRIN index on PostgreSQL: events arrive in time order, so block
  range summaries find a period (the audit page's since/until) at a fraction of a B-tree's cost
  on every insert. Elsewhere it stays a B-tree. Both are made here, outside the model's state.
"""

from django.db import migrations, models

NEXT_SEQ_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_next_seq() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- The transaction's id first, then the number (audit.sealer, "The horizon").
    PERFORM pg_current_xact_id();
    RETURN nextval('{sequence}'::regclass);
END;
$$;
"""


def set_horizon(apps, schema_editor):
    alias = schema_editor.connection.alias
    AuditUnsealed = apps.get_model("audit", "AuditUnsealed")
    AuditLeaf = apps.get_model("audit", "AuditLeaf")
    AuditTreeHead = apps.get_model("audit", "AuditTreeHead")
    first_queued = (
        AuditUnsealed.objects.using(alias).order_by("seq").values_list("seq", flat=True).first()
    )
    if first_queued is not None:
        horizon = first_queued - 1
    else:
        horizon = (
            AuditLeaf.objects.using(alias)
            .order_by("-event_id")
            .values_list("event_id", flat=True)
            .first()
        ) or 0
    AuditTreeHead.objects.using(alias).update(horizon=horizon)


def create_next_seq(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditevent', 'seq')")
        [sequence] = cursor.fetchone()
    schema_editor.execute(NEXT_SEQ_FUNCTION.replace("{sequence}", sequence))


def drop_next_seq(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_next_seq()")


def at_index(apps, schema_editor):
    method = "brin" if schema_editor.connection.vendor == "postgresql" else "btree"
    using = " USING brin" if method == "brin" else ""
    schema_editor.execute(f'CREATE INDEX audit_event_at ON audit_auditevent{using} ("at")')


def drop_at_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS audit_event_at")


def requeue(apps, schema_editor):
    """Backwards: every event above the horizon not yet a leaf goes back into the queue."""
    alias = schema_editor.connection.alias
    AuditTreeHead = apps.get_model("audit", "AuditTreeHead")
    head = AuditTreeHead.objects.using(alias).first()
    schema_editor.execute(
        "INSERT INTO audit_auditunsealed (seq) SELECT e.seq FROM audit_auditevent e "
        "WHERE e.seq > %s AND NOT EXISTS "
        "(SELECT 1 FROM audit_auditleaf l WHERE l.event_seq = e.seq)",
        [head.horizon if head is not None else 0],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0006_lean_event_writes"),
    ]

    operations = [
        migrations.AddField(
            model_name="audittreehead",
            name="horizon",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="audittreehead",
            name="next_horizon",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="audittreehead",
            name="next_horizon_xmax",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(set_horizon, requeue),
        migrations.DeleteModel(name="AuditUnsealed"),
        migrations.RunPython(create_next_seq, drop_next_seq),
        migrations.RemoveIndex(model_name="auditevent", name="audit_event_at"),
        migrations.RunPython(at_index, drop_at_index),
    ]
