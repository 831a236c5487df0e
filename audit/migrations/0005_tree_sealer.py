"""The Merkle tree takes over from the hash chain (issue 13).

* ``seq`` becomes the events' primary key, taken from the database's sequence in the writer's
  transaction: no chain head to lock. The old ``id`` goes; the seqs stay as they were, and the
  sequence continues after the largest.
* ``prev_hash`` / ``hash`` are kept for the events of the closed chain and left blank after it;
  the chain head is frozen where it stands (verify_chain checks the chain up to it).
* The sealer's tables: the unsealed events (every event not yet in the tree), the leaves (which
  event is leaf i), the tree head (the sealer's lock), the checkpoints and their deliveries to the
  witnesses. Existing events go into the queue, after the leaves that ``audit_tree_build`` may
  already have written (leaf i was then the event of seq i + 1).
* On PostgreSQL, the leaves, nodes and checkpoints are append-only like the events (row triggers
  refusing UPDATE and DELETE, statement triggers refusing TRUNCATE).
"""

import django.db.models.deletion
from django.db import migrations, models

APPEND_ONLY = ("audit_auditleaf", "audit_merklenode", "audit_auditcheckpoint")

# No percent signs below: the schema editor runs statements through psycopg's client-side
# formatting (see 0002).
CREATE_TRIGGERS = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = 'audit tables are append-only: ' || TG_OP || ' of ' || TG_TABLE_NAME
            || ' refused';
END;
$$;
""" + "".join(
    f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
"""
    for table in APPEND_ONLY
)

DROP_TRIGGERS = "".join(
    f"""
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""
    for table in APPEND_ONLY
) + "DROP FUNCTION IF EXISTS audit_append_only();"

# The TRUNCATE triggers this migration adds, by table: what the test suite's flush switches off
# (with those of 0004).
TRUNCATE_TRIGGERS = {table: f"{table}_no_truncate" for table in APPEND_ONLY}


def continue_sequence(apps, schema_editor):
    """The identity column starts at 1: move it past the seqs already taken."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'seq'), "
            "COALESCE(MAX(seq), 0) + 1, false) FROM audit_auditevent"
        )


def queue_existing_events(apps, schema_editor):
    quote = schema_editor.quote_name
    MerkleNode = apps.get_model("audit", "MerkleNode")
    alias = schema_editor.connection.alias
    size = MerkleNode.objects.using(alias).filter(level=0).count()
    # The leaves audit_tree_build wrote (leaf i = event of seq i + 1), then the rest in the queue.
    schema_editor.execute(
        f"INSERT INTO audit_auditleaf ({quote('index')}, event_seq) "
        f"SELECT {quote('index')}, {quote('index')} + 1 FROM audit_merklenode WHERE level = 0"
    )
    schema_editor.execute(
        "INSERT INTO audit_auditunsealed (seq) SELECT seq FROM audit_auditevent WHERE seq > %s",
        [size],
    )
    AuditTreeHead = apps.get_model("audit", "AuditTreeHead")
    AuditTreeHead.objects.using(alias).get_or_create(id=1, defaults={"size": 0, "root": b""})


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGERS)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_truncate_and_roles"),
    ]

    operations = [
        migrations.RemoveField(model_name="auditevent", name="id"),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
        migrations.RunPython(continue_sequence, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.CreateModel(
            name="AuditUnsealed",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
            ],
        ),
        migrations.CreateModel(
            name="AuditLeaf",
            fields=[
                ("index", models.BigIntegerField(primary_key=True, serialize=False)),
                (
                    "event",
                    models.OneToOneField(
                        db_column="event_seq",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="leaf",
                        to="audit.auditevent",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="AuditTreeHead",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("size", models.BigIntegerField(default=0)),
                ("root", models.BinaryField(default=b"", max_length=32)),
                ("sealed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="audit_tree_head_singleton"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("size", models.BigIntegerField(db_index=True)),
                ("root", models.BinaryField(max_length=32)),
                ("at", models.DateTimeField()),
                ("note", models.TextField()),
            ],
            options={"ordering": ["-size", "-id"]},
        ),
        migrations.CreateModel(
            name="AuditWitnessDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("witness", models.CharField(max_length=100)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                (
                    "checkpoint",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deliveries",
                        to="audit.auditcheckpoint",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("checkpoint", "witness"), name="audit_witness_delivery_once"
                    )
                ],
            },
        ),
        migrations.RunPython(queue_existing_events, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
