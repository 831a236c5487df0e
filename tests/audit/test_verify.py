import hashlib
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.hashing import event_hash
from audit.models import AuditChainHead, AuditEvent
from audit.verify import verify_chain

from .conftest import build_legacy_chain

ROOT = Path(__file__).resolve().parents[2]


def verify_command(*args):
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def test_an_empty_chain_verifies(db):
    assert verify_command().startswith("audit chain OK: 0 events verified")


@pytest.mark.parametrize("batch_size", ["1", "2", "2000"])
def test_a_recorded_chain_verifies(legacy_chain, batch_size):
    output = verify_command("--batch-size", batch_size)

    assert output.startswith("audit chain OK: 5 events verified (")
    assert output.rstrip().endswith("events/s)")


def test_it_reads_the_chain_in_keyset_batches(legacy_chain, django_assert_num_queries):
    # Rows below seq 1; batches [1, 2], [3, 4], [5]; the head.
    with django_assert_num_queries(5) as queries:
        result = verify_chain(batch_size=2)

    assert result.ok and result.count == 5
    assert "OFFSET" not in " ".join(q["sql"] for q in queries.captured_queries).upper()


@pytest.mark.parametrize(
    "change",
    [
        "action = 'post.deleted'",
        'data = \'{"text": "Goodbye"}\'',
        "actor_name = 'mallory'",
        "object_id = '999'",
    ],
)
def test_it_detects_an_altered_payload(legacy_chain, dba_sql, change):
    dba_sql(f"UPDATE audit_auditevent SET {change} WHERE seq = 3")  # noqa: S608

    result = verify_chain()

    assert not result.ok
    assert (result.broken_seq, result.reason) == (3, "hash mismatch: payload altered")
    assert result.count == 2
    with pytest.raises(CommandError, match=r"BROKEN at seq 3: hash mismatch: payload altered"):
        verify_command()


def test_it_detects_a_rehashed_forgery_at_the_next_link(legacy_chain, dba_sql):
    # Someone alters event 3 and recomputes its own hash: the link from event 4 breaks.
    forged = AuditEvent.objects.get(seq=3)

    forged_hash = event_hash(
        prev_hash=forged.prev_hash,
        seq=3,
        at=forged.at,
        actor_id=forged.actor_id,
        actor_name=forged.actor_name,
        action="post.deleted",
        object_type=forged.object_type,
        object_id=forged.object_id,
        team_id=forged.team_id,
        data=forged.data,
    )
    dba_sql(
        "UPDATE audit_auditevent SET action = 'post.deleted', hash = %s WHERE seq = 3",
        [forged_hash],
    )

    result = verify_chain()

    assert (result.broken_seq, result.reason) == (4, "prev_hash does not match the previous event")


def test_it_detects_a_row_removed_from_the_middle(legacy_chain, dba_sql):
    dba_sql("DELETE FROM audit_auditevent WHERE seq = 3")

    result = verify_chain()

    assert (result.broken_seq, result.reason) == (3, "gap: seq 3 missing (row removed)")
    with pytest.raises(CommandError, match=r"BROKEN at seq 3: gap: seq 3 missing"):
        verify_command()


def test_it_detects_the_last_row_removed_through_the_chain_head(legacy_chain, dba_sql):
    dba_sql("DELETE FROM audit_auditevent WHERE seq = 5")

    result = verify_chain()

    assert result.broken_seq == 5
    assert result.reason == (
        f"chain head says seq 5 / hash {legacy_chain[4].hash} "
        f"but the last event is seq 4 / hash {legacy_chain[3].hash}"
    )
    assert result.count == 4
    with pytest.raises(CommandError, match=r"BROKEN at seq 5: chain head says seq 5"):
        verify_command()


def test_it_detects_every_row_removed_through_the_chain_head(legacy_chain, dba_sql):
    dba_sql("DELETE FROM audit_auditevent")

    result = verify_chain()

    assert result.broken_seq == 1
    assert result.reason.endswith("but the last event is no event at all")


def test_it_detects_reordered_rows(legacy_chain, dba_sql):
    # Swap the seqs of events 2 and 3 (through a free value: seq is unique).
    dba_sql("UPDATE audit_auditevent SET seq = -2 WHERE seq = 2")
    dba_sql("UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
    dba_sql("UPDATE audit_auditevent SET seq = 3 WHERE seq = -2")

    result = verify_chain()

    assert (result.broken_seq, result.reason) == (2, "prev_hash does not match the previous event")
    with pytest.raises(CommandError, match=r"BROKEN at seq 2: prev_hash does not match"):
        verify_command()


def test_it_detects_a_row_moved_out_of_the_chain(legacy_chain, dba_sql):
    dba_sql("UPDATE audit_auditevent SET seq = 0 WHERE seq = 5")

    result = verify_chain()

    assert (result.broken_seq, result.reason) == (0, "seq 0 is outside the chain (it starts at 1)")


def test_it_detects_a_tampered_chain_head(legacy_chain):
    AuditChainHead.objects.update(hash=hashlib.sha256(b"forged").hexdigest())

    result = verify_chain()

    assert result.broken_seq == 5
    assert result.reason.startswith("chain head says seq 5 / hash ")


def test_it_detects_a_missing_chain_head(legacy_chain):
    AuditChainHead.objects.all().delete()

    result = verify_chain()

    assert (result.broken_seq, result.count) == (5, 5)
    assert result.reason.startswith("chain head is missing but the last event is seq 5")


def _database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    password = f":{quote(settings['PASSWORD'], safe='')}" if settings["PASSWORD"] else ""
    return (
        f"postgres://{quote(settings['USER'], safe='')}{password}@{settings['HOST']}"
        f":{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def _run_verify() -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["DATABASE_URL"] = _database_url()
    return subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_naming_the_first_broken_link(org, author, lead):
    build_legacy_chain(
        [{"actor": author, "action": "post.submitted", "data": {"n": n}} for n in range(3)]
    )

    done = _run_verify()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("audit chain OK: 3 events verified (")

    # The head still vouches for a fourth event: as if it had been deleted.
    AuditChainHead.objects.update(seq=4)
    done = _run_verify()
    assert done.returncode == 1
    assert done.stdout == ""
    assert "audit chain BROKEN at seq 4: chain head says seq 4" in done.stderr


def test_the_command_prints_json_when_asked(legacy_chain):
    report = json.loads(verify_command("--json"))

    assert report["ok"] is True
    assert report["count"] == 5
    assert report["broken_seq"] is None
    assert report["events_per_second"] > 0


def test_the_json_report_names_the_broken_link_and_still_fails(legacy_chain, dba_sql):
    dba_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    out = StringIO()

    with pytest.raises(CommandError, match="BROKEN at seq 3"):
        call_command("audit_verify", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert (report["ok"], report["broken_seq"], report["count"]) == (False, 3, 2)
    assert report["reason"].startswith("gap: seq 3 missing")
