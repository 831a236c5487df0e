"""Tampering with the audit trail, played as the database administrator (``dba_sql``: raw SQL
with the append-only triggers off), each caught and named by `audit_verify` against the
checkpoints a witness directory holds (issue 13, "What must be shown")."""

import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from audit import sealer
from audit.checkpoint import NoteSigner, checkpoint_body, sign_note_with
from audit.merkle_store import event_leaf_hash, merkle_append, merkle_root
from audit.models import AuditCheckpoint, AuditEvent, AuditLeaf, AuditTreeHead
from audit.services import record
from audit.verify_log import Source, verify_log

POSTGRES_JSON = "CAST(%s AS jsonb)"


def add_events(actor, count: int, start: int = 0, action: str = "post.submitted") -> None:
    for n in range(start, start + count):
        with transaction.atomic():
            record(actor=actor, action=action, data={"n": n})


def checkpoint() -> None:
    call_command("audit_checkpoint", stdout=StringIO())


def verify(*args) -> str:
    """audit_verify's output; it must succeed."""
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def refused(*args) -> str:
    """audit_verify's error message; it must fail."""
    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", *args, stdout=StringIO())
    return str(failure.value)


@pytest.fixture
def witness(tmp_path, settings):
    path = tmp_path / "witness"
    path.mkdir()
    settings.CXHUB_AUDIT_WITNESS_DIR = str(path)
    return path


@pytest.fixture
def log(witness, lead):
    """Eight events in the tree, leaf i the i-th; the witness holds checkpoints of 3 and 8."""
    add_events(lead, 3)
    checkpoint()
    add_events(lead, 5, start=3)
    checkpoint()
    seqs = list(AuditLeaf.objects.order_by("index").values_list("event_id", flat=True))
    assert len(seqs) == 8 and len(list(witness.iterdir())) == 2
    return seqs


def raw(seq: int, column: str):
    expression = (
        f"{column}::text" if column == "data" and connection.vendor == "postgresql" else column
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression} FROM audit_auditevent WHERE seq = %s", [seq])  # noqa: S608
        return cursor.fetchone()[0]


def set_column(dba_sql, seq: int, column: str, value) -> None:
    placeholder = POSTGRES_JSON if column == "data" and connection.vendor == "postgresql" else "%s"
    dba_sql(f"UPDATE audit_auditevent SET {column} = {placeholder} WHERE seq = %s", [value, seq])  # noqa: S608


def swap(dba_sql, first: int, second: int, columns: list[str]) -> None:
    for column in columns:
        a, b = raw(first, column), raw(second, column)
        set_column(dba_sql, first, column, b)
        set_column(dba_sql, second, column, a)


def remove_tail(dba_sql, keep: int) -> None:
    """Remove the events after the first ``keep`` leaves, their leaves and nodes, and set the
    tree head back to the root of ``keep`` leaves: a tail removed with the head rewound."""
    root = merkle_root(size=keep)
    gone = list(AuditLeaf.objects.filter(index__gte=keep).values_list("event_id", flat=True))
    dba_sql('DELETE FROM audit_auditleaf WHERE "index" >= %s', [keep])
    dba_sql(f"DELETE FROM audit_auditevent WHERE seq IN ({','.join(map(str, gone))})")  # noqa: S608
    # A node at level l, index i covers leaves [i * 2**l, (i + 1) * 2**l): gone if it reaches keep.
    for level in range(64):
        dba_sql(
            'DELETE FROM audit_merklenode WHERE level = %s AND ("index" + 1) * %s > %s',
            [level, 2**level, keep],
        )
        if 2**level > keep * 2:
            break
    AuditTreeHead.objects.update(size=keep, root=root)


def remove_checkpoints_above(dba_sql, size: int) -> None:
    dba_sql(
        "DELETE FROM audit_auditwitnessdelivery WHERE checkpoint_id IN "
        "(SELECT id FROM audit_auditcheckpoint WHERE size > %s)",
        [size],
    )
    dba_sql("DELETE FROM audit_auditcheckpoint WHERE size > %s", [size])


def rebuild_tree(dba_sql) -> None:
    """What a careful attacker does after an edit: the stored tree, leaf hashes and head all
    recomputed from the events as they now are."""
    dba_sql("DELETE FROM audit_merklenode")
    events = {event.seq: event for event in AuditEvent.objects.all()}
    seqs = AuditLeaf.objects.order_by("index").values_list("event_id", flat=True)
    size = merkle_append(leaf_hashes=[event_leaf_hash(events[s]) for s in seqs], start_index=0)
    AuditTreeHead.objects.update(size=size, root=merkle_root(size=size))


def resign_checkpoints(dba_sql, signer: NoteSigner) -> None:
    """Replace the database's checkpoints by ones of the rebuilt tree, signed by ``signer``."""
    sizes = sorted(set(AuditCheckpoint.objects.values_list("size", flat=True)))
    dba_sql("DELETE FROM audit_auditwitnessdelivery")
    dba_sql("DELETE FROM audit_auditcheckpoint")
    for size in sizes:
        root = merkle_root(size=size)
        body = checkpoint_body(signer.name, size, root, ("time 2025-01-01T00:00:00.000000Z",))
        AuditCheckpoint.objects.create(
            size=size, root=root, at="2025-01-01T00:00:00Z", note=sign_note_with(body, [signer])
        )


# The honest log -----------------------------------------------------------------------------------
def test_an_honest_log_extends_every_witnessed_checkpoint(log, witness):
    output = verify("--witness", str(witness))

    assert output.startswith("audit chain OK: 0 events verified")
    assert "audit tree OK: 8 events recomputed" in output
    assert "extends 2 witnessed checkpoints and the database's 2" in output
    assert output.rstrip().endswith("events/s)")


def test_the_json_report_lists_the_witnesses_checkpoints(log, witness):
    report = json.loads(verify("--witness", str(witness), "--json"))

    assert (report["ok"], report["tree_ok"]) == (True, True)
    assert report["tree"]["size"] == 8
    assert [(c["size"], c["status"]) for c in report["tree"]["checkpoints"]] == [
        (3, "extended"),
        (8, "extended"),
    ]
    assert report["events_per_second"] > 0


# The twelve tamperings --------------------------------------------------------------------------
def test_1_a_payload_edit_is_named(log, witness, dba_sql):
    set_column(dba_sql, log[4], "data", '{"n": 400}')

    message = refused("--witness", str(witness))

    assert message.startswith("audit tree BROKEN")
    assert f"event seq {log[4]} (leaf 4) was rewritten" in message
    assert (
        f"rewritten: the log does not extend the checkpoint of 8 events held by witness "
        f"{witness}, the database; the checkpoint of 3 events still matches: an event among "
        f"leaves 3–7 (seq {log[3]} to seq {log[7]})"
    ) in message


def test_2_an_actor_edit_is_named(log, witness, dba_sql, outsider):
    set_column(dba_sql, log[1], "actor_id", outsider.pk)
    set_column(dba_sql, log[1], "actor_name", "charlie")

    message = refused("--witness", str(witness))

    assert f"event seq {log[1]} (leaf 1) was rewritten" in message
    assert "the log does not extend the checkpoint of 3 events" in message
    assert "no earlier checkpoint matches: an event among leaves 0–2" in message


def test_3_an_event_deleted_from_the_middle_is_a_gap(log, witness, dba_sql):
    dba_sql('DELETE FROM audit_auditleaf WHERE "index" = 4')
    dba_sql("DELETE FROM audit_auditevent WHERE seq = %s", [log[4]])

    message = refused("--witness", str(witness))

    assert "gap: leaf 4 is missing from the tree (their events removed)" in message
    assert "the log does not extend the checkpoint of 8 events" in message
    assert "among leaves 3–7" in message


def test_4_a_removed_tail_with_the_head_rewound_is_named(log, witness, dba_sql):
    remove_tail(dba_sql, keep=6)
    remove_checkpoints_above(dba_sql, 6)
    # In the database alone, nothing shows: the head, tree and leaves agree.
    assert "audit tree OK: 6 events recomputed" in verify()

    message = refused("--witness", str(witness))

    assert (
        f"removed tail: the log has 6 events, but witness {witness} holds a checkpoint of 8: "
        "the last 2 events were removed"
    ) in message


def test_5_two_events_reordered_are_named(log, witness, dba_sql):
    swap(dba_sql, log[5], log[6], ["action", "data", "actor_id", "actor_name"])

    message = refused("--witness", str(witness))

    assert f"event seq {log[5]} (leaf 5) was rewritten" in message
    assert f"event seq {log[6]} (leaf 6) was rewritten" in message


def test_6_a_timestamp_swap_is_named(log, witness, dba_sql, lead):
    with transaction.atomic():
        record(actor=lead, action="post.submitted", data={"n": 8})  # later, so the times differ
    checkpoint()
    seqs = list(AuditLeaf.objects.order_by("index").values_list("event_id", flat=True))
    swap(dba_sql, seqs[2], seqs[8], ["at"])

    message = refused("--witness", str(witness))

    assert f"event seq {seqs[2]} (leaf 2) was rewritten" in message
    assert f"event seq {seqs[8]} (leaf 8) was rewritten" in message


def test_7_a_truncation_of_every_audit_table_is_named(log, witness, dba_sql):
    for table in (
        "audit_auditwitnessdelivery",
        "audit_auditcheckpoint",
        "audit_auditleaf",
        "audit_merklenode",
        "audit_audittreehead",
        "audit_auditevent",
    ):
        dba_sql(f"DELETE FROM {table}")  # noqa: S608
    assert "audit tree OK: 0 events recomputed" in verify()

    message = refused("--witness", str(witness))

    assert (
        f"truncated: the audit tables are empty, but witness {witness} holds a checkpoint of 8 "
        "events"
    ) in message


def test_8_a_full_recomputation_after_an_edit_is_caught_by_the_witness(log, witness, dba_sql):
    set_column(dba_sql, log[5], "data", '{"n": 500}')
    rebuild_tree(dba_sql)
    resign_checkpoints(dba_sql, NoteSigner.generate("cxhub.test/audit"))
    # The attacker's own key trusted, the database alone is self-consistent.
    attacker_key = AuditCheckpoint.objects.first().note  # (signed; its vkey is not published)
    assert attacker_key

    message = refused("--witness", str(witness))

    assert "was rewritten: its fields" not in message  # the stored tree was recomputed too
    assert (
        "the log does not extend the checkpoint of 8 events held by witness "
        f"{witness}; the checkpoint of 3 events still matches: an event among leaves 3–7 "
        f"(seq {log[3]} to seq {log[7]})"
    ) in message
    assert "the checkpoint in the database's checkpoint #" in message
    assert "is not signed by a trusted key" in message


def test_9_an_old_checkpoint_replayed_as_the_latest_is_named(log, witness, dba_sql):
    remove_tail(dba_sql, keep=3)
    remove_checkpoints_above(dba_sql, 3)

    message = refused("--witness", str(witness))

    assert (
        f"old checkpoint replayed: the database's newest checkpoint is of 3 events, but "
        f"witness {witness} holds one of 8"
    ) in message


def test_10_a_checkpoint_signed_with_another_key_is_refused(log, witness, tmp_path, dba_sql):
    forger = NoteSigner.generate("cxhub.test/audit")
    body = checkpoint_body(forger.name, 8, merkle_root(size=8), ("time 2025-01-01T00:00:00Z",))
    forged = tmp_path / "forged.txt"
    forged.write_text(sign_note_with(body, [forger]))

    message = refused("--witness", str(witness), "--checkpoint", str(forged))

    assert f"the checkpoint in checkpoint file {forged} is not signed by a trusted key" in message
    # Trusting the forger's key on purpose makes it count.
    assert "audit tree OK" in verify("--checkpoint", str(forged), "--key", forger.vkey)


def test_11_a_fork_shown_to_two_witnesses_is_named(log, witness, tmp_path, settings, dba_sql, lead):
    # The log is rewritten behind witness A's back, then shown (signed by the real key) to B.
    set_column(dba_sql, log[5], "data", '{"n": 500}')
    rebuild_tree(dba_sql)
    other = tmp_path / "witness-b"
    other.mkdir()
    settings.CXHUB_AUDIT_WITNESS_DIR = str(other)
    add_events(lead, 2, start=8)
    checkpoint()

    message = refused("--witness", str(witness), "--witness", str(other))

    assert (
        f"fork: the checkpoint of 8 events held by witness {witness}, the database and the "
        f"checkpoint of 10 events held by witness {other}, the database are both signed but "
        "cannot be one log"
    ) in message


def test_11_two_roots_for_one_size_are_a_fork(log, witness, tmp_path, dba_sql):
    signer = sealer.signers()[0]
    body = checkpoint_body(signer.name, 20, b"\x07" * 32, ("time 2025-01-01T00:00:00Z",))
    other = checkpoint_body(signer.name, 20, b"\x08" * 32, ("time 2025-01-01T00:00:00Z",))
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(sign_note_with(body, [signer]))
    second.write_text(sign_note_with(other, [signer]))

    message = refused("--checkpoint", str(first), "--checkpoint", str(second))

    assert "fork: checkpoint file" in message and "of 20 events with different roots" in message


def test_12_a_leaf_removed_is_a_gap(log, witness, dba_sql):
    dba_sql('DELETE FROM audit_auditleaf WHERE "index" = 2')

    message = refused("--witness", str(witness))

    assert "gap: leaf 2 is missing from the tree" in message
    assert f"gap: event seq {log[2]} is not in the tree, though the sealer had sealed" in message


def test_12_a_gap_closed_by_renumbering_the_leaves_is_named(log, witness, dba_sql):
    dba_sql('DELETE FROM audit_auditleaf WHERE "index" = 4')
    dba_sql("DELETE FROM audit_auditevent WHERE seq = %s", [log[4]])
    for index in range(5, 8):
        dba_sql('UPDATE audit_auditleaf SET "index" = %s WHERE "index" = %s', [index - 1, index])

    message = refused("--witness", str(witness))

    assert f"event seq {log[5]} (leaf 4) was rewritten" in message
    assert "removed tail: the tree head says 8 events but only 7 remain" in message


# The restored copy ------------------------------------------------------------------------------
def test_a_restored_copy_with_new_events_is_refused_by_the_witness(log, witness, dba_sql, lead):
    """A copy of the database from before events 4 to 8, restored after their checkpoint was
    witnessed, then new events added through the app: self-consistent, but another history."""
    remove_tail(dba_sql, keep=3)
    remove_checkpoints_above(dba_sql, 3)
    # The copy's tree head: its horizon below the events the sequence hands out again.
    dba_sql(
        "UPDATE audit_audittreehead SET horizon = %s, next_horizon = NULL, "
        "next_horizon_xmax = NULL",
        [log[2]],
    )
    # The restored sequence hands out the removed events' seqs again.
    if connection.vendor == "postgresql":
        dba_sql("SELECT setval(pg_get_serial_sequence('audit_auditevent', 'seq'), %s)", [log[2]])
    else:
        dba_sql("UPDATE sqlite_sequence SET seq = %s WHERE name = 'audit_auditevent'", [log[2]])
    add_events(lead, 6, start=100, action="post.approved")
    checkpoint()
    assert AuditLeaf.objects.filter(index=3).values_list("event_id", flat=True).get() == log[3]

    # The database alone is a perfectly good log of 9 events.
    assert "audit tree OK: 9 events recomputed" in verify()

    message = refused("--witness", str(witness))

    assert (
        f"rewritten: the log does not extend the checkpoint of 8 events held by witness "
        f"{witness}; the checkpoint of 3 events still matches: an event among leaves 3–7"
    ) in message
    assert f"fork: the checkpoint of 8 events held by witness {witness} and the checkpoint " in (
        message
    )


# The verifier on its own ------------------------------------------------------------------------
def test_checkpoints_from_a_webhook_store_are_checked_like_files(log):
    notes = list(AuditCheckpoint.objects.order_by("size").values_list("note", flat=True))

    report = verify_log(sources=[Source("records system", note) for note in notes])

    assert report.ok
    assert [(c["size"], c["status"]) for c in report.checkpoints] == [
        (3, "extended"),
        (8, "extended"),
    ]


@pytest.mark.parametrize("batch_size", [1, 3, 10_000])
def test_the_tree_is_read_in_keyset_batches(log, witness, dba_sql, batch_size):
    set_column(dba_sql, log[7], "action", "post.deleted")

    report = verify_log(batch_size=batch_size)

    assert [(f.kind, f.seq, f.leaf) for f in report.findings if f.seq][0] == (
        "rewritten",
        log[7],
        7,
    )


def test_a_bad_verifier_key_is_named(log):
    message = refused("--key", "not-a-key")

    assert message.startswith("--key: 'not-a-key' is not a verifier key")


def test_a_missing_witness_directory_is_named(log, tmp_path):
    assert refused("--witness", str(tmp_path / "nowhere")).endswith("not a directory")


def test_events_waiting_beyond_the_window_are_a_warning(log, lead, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    with (
        time_machine.travel(timezone.now() - timedelta(minutes=5), tick=False),
        transaction.atomic(),
    ):
        late = record(actor=lead, action="post.submitted")

    output = verify()

    assert (
        f"warning: 1 events wait for the sealer beyond the checkpoint window (60 s), the "
        f"oldest seq {late.seq} since"
    ) in output
    assert "audit tree OK: 8 events recomputed" in output


def test_a_tree_head_moved_by_hand_is_named(log):
    AuditTreeHead.objects.update(root=b"\x00" * 32)

    message = refused()

    assert "the tree head's root for 8 events is not the root the events hash to" in message
