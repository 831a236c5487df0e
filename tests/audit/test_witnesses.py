"""Witnesses (audit/witnesses.py): each checkpoint goes to a directory, a signed webhook (a real
HTTP server on 127.0.0.1 here) and the auditors' e-mail at a cadence; failures are retried;
`manage.py audit_checkpoint` signs and sends at once."""

import http.server
import json
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from audit import sealer, tasks, witnesses
from audit.checkpoint import NoteVerifier, verify_checkpoint
from audit.hashing import event_leaf
from audit.models import AuditEvent, AuditWitnessDelivery
from audit.services import record
from audit.verify_log import Source, _scan, fast_leaf, verify_log
from tests.settings import TEST_AUDIT_VERIFIER_KEY

SECRET = "webhook-secret-for-tests"
ORIGIN = "cxhub.test/audit"


def add_events(actor, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        with transaction.atomic():
            record(actor=actor, action="post.submitted", data={"n": n})


class Receiver(http.server.BaseHTTPRequestHandler):
    """The agency's records system: keeps each checkpoint whose signature checks out."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        server = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append((dict(self.headers), body))
        valid = witnesses.signature_valid(
            SECRET,
            self.headers.get(witnesses.SIGNATURE_HEADER, ""),
            body,
            now=time.time(),
            tolerance=300,
        )
        if server.fail_next:
            server.fail_next -= 1
            status = 503
        elif not valid:
            status = 401
        else:
            server.received.append(body.decode("utf-8"))
            status = 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.requests, server.received, server.fail_next = [], [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/checkpoints"
    settings.CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET = SECRET
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def witness_dir(tmp_path, settings):
    path = tmp_path / "witness"
    path.mkdir()
    settings.CXHUB_AUDIT_WITNESS_DIR = str(path)
    return path


def test_no_witness_is_configured_by_default(db):
    assert witnesses.configured_witnesses() == []


def test_the_directory_keeps_each_checkpoint_in_its_own_file(witness_dir, lead):
    add_events(lead, 2)
    first = tasks.seal()
    add_events(lead, 3, start=2)
    second = tasks.seal()

    files = sorted(witness_dir.iterdir())
    assert (first, second) == (2, 5)
    assert [path.name[:31] for path in files] == [
        "checkpoint-00000000000000000002",
        "checkpoint-00000000000000000005",
    ]
    verifier = NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)
    sizes = [verify_checkpoint(p.read_text(), [verifier], origin=ORIGIN).size for p in files]
    assert sizes == [2, 5]
    assert not AuditWitnessDelivery.objects.filter(delivered_at=None).exists()
    assert set(AuditWitnessDelivery.objects.values_list("witness", "attempts")) == {
        ("directory", 1)
    }


def test_the_directory_never_overwrites_a_file(witness_dir, lead):
    add_events(lead, 1)
    sealer.seal()
    delivery = AuditWitnessDelivery.objects.get()
    target = witness_dir / witnesses.checkpoint_filename(delivery.checkpoint)
    target.write_text("something else was here\n")

    [result] = witnesses.deliver_pending()

    assert not result.ok and "already holds a different checkpoint" in result.error
    assert target.read_text() == "something else was here\n"
    delivery.refresh_from_db()
    assert (delivery.delivered_at, delivery.attempts) == (None, 1)
    assert "already holds a different checkpoint" in delivery.last_error
    assert [path.name for path in witness_dir.iterdir()] == [target.name]  # no temporary left

    # The same note already there (a retry after a crash) counts as delivered.
    target.write_text(delivery.checkpoint.note)
    [result] = witnesses.deliver_pending()
    assert result.ok


def test_the_webhook_gets_each_checkpoint_signed(receiver, lead):
    add_events(lead, 2)
    tasks.seal()

    [(headers, body)] = receiver.requests
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers[witnesses.SIGNATURE_HEADER].startswith("t=")
    assert receiver.received == [body.decode()]
    checkpoint = verify_checkpoint(
        body.decode(), [NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)], origin=ORIGIN
    )
    assert checkpoint.size == 2
    assert AuditWitnessDelivery.objects.get().delivered_at is not None


def test_the_signature_covers_the_time_and_the_body():
    header = witnesses.signature(SECRET, 1_700_000_000, b"body\n")
    check = dict(now=1_700_000_010, tolerance=300)

    assert witnesses.signature_valid(SECRET, header, b"body\n", **check)
    assert not witnesses.signature_valid(SECRET, header, b"b0dy\n", **check)
    assert not witnesses.signature_valid("another secret", header, b"body\n", **check)
    assert not witnesses.signature_valid(
        SECRET, header, b"body\n", now=1_700_001_000, tolerance=300
    )
    assert not witnesses.signature_valid(SECRET, "t=x,v1=00", b"body\n", **check)


def test_a_failed_webhook_stays_pending_and_is_retried_next_run(receiver, lead):
    receiver.fail_next = 1
    add_events(lead, 1)
    tasks.seal()

    delivery = AuditWitnessDelivery.objects.get()
    assert (delivery.delivered_at, delivery.attempts) == (None, 1)
    assert "answered 503" in delivery.last_error
    assert receiver.received == []

    tasks.seal()  # nothing new to seal: the next run only retries

    delivery.refresh_from_db()
    assert delivery.delivered_at is not None
    assert (delivery.attempts, delivery.last_error) == (2, "")
    assert len(receiver.received) == 1


def test_a_webhook_that_does_not_answer_is_an_error(settings, lead):
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    port = server.server_port
    server.server_close()  # nothing listens there now
    settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL = f"http://127.0.0.1:{port}/"
    settings.CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET = SECRET
    add_events(lead, 1)

    tasks.seal()

    delivery = AuditWitnessDelivery.objects.get()
    assert delivery.delivered_at is None and "ConnectionError" in delivery.last_error


def test_a_wrong_secret_is_refused_by_the_receiver(receiver, settings, lead):
    settings.CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET = "not the shared one"
    add_events(lead, 1)

    tasks.seal()

    assert receiver.received == []
    assert "answered 401" in AuditWitnessDelivery.objects.get().last_error


def test_the_auditors_get_the_latest_checkpoint_at_their_cadence(settings, lead):
    settings.CXHUB_AUDIT_WITNESS_EMAILS = ["auditor@agency.example", "records@agency.example"]
    settings.CXHUB_AUDIT_WITNESS_EMAIL_SECONDS = 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        add_events(lead, 1)
        tasks.seal()
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        add_events(lead, 1, start=1)
        tasks.seal()  # within the hour: no second message

    [message] = mail.outbox
    assert message.to == ["auditor@agency.example", "records@agency.example"]
    assert "manage.py audit_verify --checkpoint" in message.body
    [(name, content, mimetype)] = message.attachments
    assert name.startswith("checkpoint-00000000000000000001-") and mimetype == "text/plain"
    assert content == AuditWitnessDelivery.objects.get(witness="email").checkpoint.note

    with time_machine.travel(start + timedelta(minutes=70), tick=False):
        add_events(lead, 1, start=2)
        tasks.seal()

    assert len(mail.outbox) == 2
    assert mail.outbox[1].attachments[0][0].startswith("checkpoint-00000000000000000003-")


def test_only_the_newest_pending_e_mail_goes_out(settings, lead):
    settings.CXHUB_AUDIT_WITNESS_EMAILS = ["auditor@agency.example"]
    settings.CXHUB_AUDIT_WITNESS_EMAIL_SECONDS = 60
    start = timezone.now()
    for minute in range(3):  # the mail was down: three checkpoints queued for the auditors
        with time_machine.travel(start + timedelta(minutes=2 * minute), tick=False):
            add_events(lead, 1, start=minute)
            sealer.seal()
    assert AuditWitnessDelivery.objects.filter(witness="email", delivered_at=None).count() == 3

    witnesses.deliver_pending()

    [message] = mail.outbox
    assert message.attachments[0][0].startswith("checkpoint-00000000000000000003-")
    assert AuditWitnessDelivery.objects.filter(witness="email").count() == 1


def test_deliveries_are_bounded_per_run(witness_dir, lead):
    for n in range(3):
        add_events(lead, 1, start=n)
        sealer.seal()

    assert len(witnesses.deliver_pending(limit=2)) == 2
    assert len(witnesses.deliver_pending(limit=2)) == 1
    assert len(list(witness_dir.iterdir())) == 3


def test_audit_checkpoint_signs_and_sends_to_every_witness(witness_dir, receiver, settings, lead):
    settings.CXHUB_AUDIT_WITNESS_EMAILS = ["auditor@agency.example"]
    add_events(lead, 2)
    out = StringIO()

    call_command("audit_checkpoint", stdout=out)

    output = out.getvalue()
    root = sealer.latest_checkpoint().root.hex()
    assert output.startswith(f"checkpoint of 2 events, root {root}\n")
    assert f"sent to directory: {witness_dir}/checkpoint-00000000000000000002-" in output
    assert f"sent to webhook: {settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL}" in output
    assert "sent to email: auditor@agency.example" in output
    assert len(receiver.received) == 1 and len(mail.outbox) == 1

    # At once again, at the same size: a new signed checkpoint, and a new file beside the first.
    call_command("audit_checkpoint", stdout=StringIO())
    assert len(list(witness_dir.iterdir())) == 2
    assert len(mail.outbox) == 2  # the command sends whatever the cadence


def test_audit_checkpoint_names_the_witness_that_failed(witness_dir, receiver, lead):
    receiver.fail_next = 1
    add_events(lead, 1)
    out = StringIO()

    with pytest.raises(CommandError, match=r"witness webhook did not take it .*answered 503"):
        call_command("audit_checkpoint", stdout=out)

    assert "sent to directory" in out.getvalue()
    assert AuditWitnessDelivery.objects.filter(witness="webhook", delivered_at=None).exists()


def test_audit_checkpoint_says_when_no_witness_is_configured(lead):
    add_events(lead, 1)
    out = StringIO()

    call_command("audit_checkpoint", stdout=out)

    assert "sent to no witness: none is configured" in out.getvalue()


def test_audit_checkpoint_needs_a_signing_key(monkeypatch, db):
    monkeypatch.setenv("CXHUB_AUDIT_SIGNING_KEY", "")

    with pytest.raises(CommandError, match="no signing key"):
        call_command("audit_checkpoint", stdout=StringIO())


# The verifier's fast leaf is the tree's leaf ----------------------------------------------------
def test_the_verifiers_leaf_is_event_leaf_byte_for_byte(org, lead):
    datas = [
        {},
        {"text": "Grüße, \u00e9t\u00e9 \u2014 \U0001f600", "quote": 'a "b" \\ c\n'},
        {"float": 2.5, "integral": 2.0, "big": 1e16, "neg": -0.0, "list": [1.0, 1.5, {"z": 3}]},
        {"nested": {"b": [None, True, False], "a": "x"}, "ctrl": "\x01\t"},
    ]
    with transaction.atomic():
        for data in datas:
            record(actor=lead, action="x.y", obj=org["north"], team=org["north"], data=data)
        record(actor=None, action="auth.login_failed", data={"username": "ëve"})
    sealer.seal()

    events = {event.seq: event for event in AuditEvent.objects.all()}
    from_scan = _scan(sizes=set(), leaves=set(range(len(events))))
    assert sorted(from_scan.seqs.values()) == sorted(events)
    assert from_scan.rewritten == []  # every recomputed leaf equals the stored one
    for event in events.values():
        assert fast_leaf(
            event.seq,
            event.at.isoformat(timespec="microseconds"),
            event.actor_id,
            event.actor_name,
            event.action,
            event.object_type,
            event.object_id,
            event.team_id,
            json.dumps(event.data),
        ) == event_leaf(event)


def test_the_records_systems_store_proves_the_log_or_names_the_change(receiver, lead, dba_sql):
    add_events(lead, 3)
    tasks.seal()
    add_events(lead, 2, start=3)
    tasks.seal()
    store = [Source("the records system", note) for note in receiver.received]
    assert len(store) == 2

    assert verify_log(sources=store).ok

    seq = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[3]
    dba_sql("UPDATE audit_auditevent SET action = 'post.withdrawn' WHERE seq = %s", [seq])
    report = verify_log(sources=store, database=False)

    assert not report.ok
    messages = [finding.message for finding in report.findings]
    assert f"event seq {seq} (leaf 3) was rewritten" in messages[0]
    assert (
        "rewritten: the log does not extend the checkpoint of 5 events held by the records "
        "system; the checkpoint of 3 events still matches"
    ) in "\n".join(messages)
