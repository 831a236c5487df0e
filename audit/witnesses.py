"""Witnesses: every signed checkpoint sent somewhere the database's writers cannot change, so
that `manage.py audit_verify --witness` can later prove the log only ever grew.

Design note
-----------
* The sealer queues one AuditWitnessDelivery row per configured witness in the checkpoint's
  transaction (``queue_deliveries``): an outbox. ``deliver_pending`` sends them after the commit
  (from the sealer's task and from ``manage.py audit_checkpoint``), oldest checkpoint first, a
  bounded number per run, each under its row's lock so two runs never send one twice. A failed
  send stays pending with attempts + 1 and last_error, and is retried on the next run.
* Three witnesses, each set by the environment (cxhub/settings.py):
  - ``directory`` (CXHUB_AUDIT_WITNESS_DIR, meant for a separate mount or object store): each
    checkpoint is its own file, the signed note verbatim, named
    ``checkpoint-<size, 20 digits>-<first 16 hex of the root>-<first 8 hex of SHA-256(note)>.txt``
    (two checkpoints of one size, e.g. a forced one, both stay). Written to a temporary file in
    the same directory, synced, then hard-linked to its name, which fails if the name exists:
    an exclusive rename, so a file is never overwritten (a retry finding its own file already
    there counts as delivered; a different file under the name is an error).
  - ``webhook`` (CXHUB_AUDIT_WITNESS_WEBHOOK_URL and _SECRET): the note POSTed as
    ``text/plain; charset=utf-8`` with ``X-Cxhub-Signature: t=<unix time>,v1=<hex>``, the hex
    being HMAC-SHA256 under the secret of ``<t>.`` followed by the body's bytes (``signature``
    and ``signature_valid`` below say it exactly, for the receiving records system). Any 2xx is
    a delivery.
  - ``email`` (CXHUB_AUDIT_WITNESS_EMAILS): not every checkpoint but the latest one at a
    cadence (CXHUB_AUDIT_WITNESS_EMAIL_SECONDS): a checkpoint is queued for the auditors when the
    last one queued for them is older than the cadence by checkpoint time; if several wait
    (mail was down), only the newest is sent and the older rows are dropped (it covers them).
"""

import hashlib
import hmac
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from .models import AuditCheckpoint, AuditWitnessDelivery

DIRECTORY = "directory"
WEBHOOK = "webhook"
EMAIL = "email"
DELIVER_BATCH = 100  # deliveries per run: a long outage drains over a few runs
SIGNATURE_HEADER = "X-Cxhub-Signature"
ERROR_LENGTH = 2000


class WitnessError(Exception):
    """A witness did not take a checkpoint; the message says why."""


def configured_witnesses() -> list[str]:
    """The names of the witnesses this installation sends checkpoints to."""
    names = []
    if settings.CXHUB_AUDIT_WITNESS_DIR:
        names.append(DIRECTORY)
    if settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL:
        names.append(WEBHOOK)
    if settings.CXHUB_AUDIT_WITNESS_EMAILS:
        names.append(EMAIL)
    return names


def _email_due(checkpoint: AuditCheckpoint) -> bool:
    last = (
        AuditWitnessDelivery.objects.filter(witness=EMAIL)
        .exclude(checkpoint=checkpoint)
        .order_by("-checkpoint__at")
        .values_list("checkpoint__at", flat=True)
        .first()
    )
    cadence = timedelta(seconds=settings.CXHUB_AUDIT_WITNESS_EMAIL_SECONDS)
    return last is None or checkpoint.at - last >= cadence


def queue_deliveries(checkpoint: AuditCheckpoint, *, every_witness: bool = False) -> None:
    """One delivery row per configured witness, in the checkpoint's transaction; the e-mail
    witness only when its cadence is due (or ``every_witness``, for audit_checkpoint)."""
    names = [
        name
        for name in configured_witnesses()
        if name != EMAIL or every_witness or _email_due(checkpoint)
    ]
    AuditWitnessDelivery.objects.bulk_create(
        [AuditWitnessDelivery(checkpoint=checkpoint, witness=name) for name in names],
        ignore_conflicts=True,
    )


# The witnesses ---------------------------------------------------------------------------------
def checkpoint_filename(checkpoint: AuditCheckpoint) -> str:
    note_digest = hashlib.sha256(checkpoint.note.encode("utf-8")).hexdigest()[:8]
    root = bytes(checkpoint.root).hex()[:16]
    return f"checkpoint-{checkpoint.size:020d}-{root}-{note_digest}.txt"


def send_to_directory(checkpoint: AuditCheckpoint, directory: str) -> str:
    """Write the checkpoint's note to its own new file in ``directory``; its path."""
    folder = Path(directory)
    if not folder.is_dir():
        raise WitnessError(f"the witness directory {directory} does not exist")
    target = folder / checkpoint_filename(checkpoint)
    data = checkpoint.note.encode("utf-8")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        try:
            # link() refuses an existing name, unlike rename(): nothing is ever overwritten.
            os.link(temporary, target)
        except FileExistsError:
            if target.read_bytes() != data:
                raise WitnessError(
                    f"{target} already holds a different checkpoint: left as it is"
                ) from None
    finally:
        os.unlink(temporary)
    directory_handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory_handle)  # the new name survives a crash, not only the bytes
    finally:
        os.close(directory_handle)
    return str(target)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Cxhub-Signature header's value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of
    "<timestamp>." + body under secret>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, "sha256")
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_valid(secret: str, header: str, body: bytes, *, now: float, tolerance: int) -> bool:
    """What a receiver checks: the header's HMAC matches and its time is within ``tolerance``
    seconds of ``now`` (a replayed request is refused)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, header.strip())


def send_to_webhook(checkpoint: AuditCheckpoint, url: str, secret: str) -> str:
    body = checkpoint.note.encode("utf-8")
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
    }
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.CXHUB_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise WitnessError(f"POST {url} failed: {type(error).__name__}: {error}") from error
    if not 200 <= response.status_code < 300:
        raise WitnessError(f"POST {url} answered {response.status_code}: {response.text[:200]}")
    return url


EMAIL_BODY = """\
The cxhub audit trail signed the checkpoint attached ({filename}): the Merkle tree of its first
{size} events has the root hash {root}.

Keep this message and its attachment. They prove what the trail held on {at}: anyone who can
write to cxhub's database cannot change them.

To check that the trail still extends it (nothing removed or rewritten), save the attachment
and run, on the cxhub host:

    manage.py audit_verify --checkpoint {filename} --key <the log's verifier key>

The verifier key ({origin}+...) is published by the agency; any tool that reads C2SP signed
notes (https://c2sp.org/tlog-checkpoint) can also check the attachment's signature.
"""


def send_by_email(checkpoint: AuditCheckpoint, addresses: list[str]) -> str:
    filename = checkpoint_filename(checkpoint)
    origin = checkpoint.note.split("\n", 1)[0]
    message = EmailMessage(
        subject=f"cxhub audit checkpoint: {checkpoint.size} events",
        body=EMAIL_BODY.format(
            filename=filename,
            size=checkpoint.size,
            root=bytes(checkpoint.root).hex(),
            at=checkpoint.at.isoformat(),
            origin=origin,
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=addresses,
    )
    message.attach(filename, checkpoint.note, "text/plain")
    try:
        message.send()
    except OSError as error:  # smtplib's errors are OSErrors
        raise WitnessError(f"mail to {', '.join(addresses)} failed: {error}") from error
    return ", ".join(addresses)


def send(witness: str, checkpoint: AuditCheckpoint) -> str:
    """Send ``checkpoint`` to the witness named; where it went. WitnessError when it failed."""
    if witness == DIRECTORY and settings.CXHUB_AUDIT_WITNESS_DIR:
        return send_to_directory(checkpoint, settings.CXHUB_AUDIT_WITNESS_DIR)
    if witness == WEBHOOK and settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL:
        return send_to_webhook(
            checkpoint,
            settings.CXHUB_AUDIT_WITNESS_WEBHOOK_URL,
            settings.CXHUB_AUDIT_WITNESS_WEBHOOK_SECRET,
        )
    if witness == EMAIL and settings.CXHUB_AUDIT_WITNESS_EMAILS:
        return send_by_email(checkpoint, settings.CXHUB_AUDIT_WITNESS_EMAILS)
    raise WitnessError(f"the witness {witness!r} is no longer configured")


# The outbox ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    witness: str
    checkpoint_id: int
    size: int
    ok: bool
    where: str = ""  # where it went, when ok
    error: str = ""


def _drop_superseded_emails() -> None:
    """Of the pending e-mails, only the newest checkpoint goes out: it covers the others."""
    pending = AuditWitnessDelivery.objects.filter(witness=EMAIL, delivered_at=None)
    newest = pending.order_by("-checkpoint__size", "-checkpoint_id").values("pk").first()
    if newest is not None:
        pending.exclude(pk=newest["pk"]).delete()


def deliver(delivery_id: int) -> Delivery | None:
    """Send one pending delivery under its row's lock; None if another run has it or it went."""
    with transaction.atomic():
        row = (
            AuditWitnessDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("checkpoint")
            .filter(pk=delivery_id, delivered_at=None)
            .first()
        )
        if row is None:
            return None
        row.attempts += 1
        try:
            where = send(row.witness, row.checkpoint)
        except (WitnessError, OSError) as error:  # OSError: the directory's disk or mount
            row.last_error = str(error)[:ERROR_LENGTH]
            row.save(update_fields=["attempts", "last_error"])
            return Delivery(
                row.witness, row.checkpoint_id, row.checkpoint.size, False, error=str(error)
            )
        row.delivered_at = timezone.now()
        row.last_error = ""
        row.save(update_fields=["attempts", "delivered_at", "last_error"])
        return Delivery(row.witness, row.checkpoint_id, row.checkpoint.size, True, where)


def deliver_pending(*, limit: int = DELIVER_BATCH, checkpoint: AuditCheckpoint | None = None):
    """Send up to ``limit`` undelivered checkpoints to their witnesses, oldest first (only
    ``checkpoint``'s when given); what happened to each."""
    _drop_superseded_emails()
    pending = AuditWitnessDelivery.objects.filter(delivered_at=None)
    if checkpoint is not None:
        pending = pending.filter(checkpoint=checkpoint)
    ids = list(
        pending.order_by("checkpoint__size", "checkpoint_id", "witness").values_list(
            "pk", flat=True
        )[:limit]
    )
    results = []
    for delivery_id in ids:
        result = deliver(delivery_id)
        if result is not None:
            results.append(result)
    return results
