"""`manage.py audit_checkpoint`: seal what is queued, sign a checkpoint at once and send it to
every configured witness (the e-mail one too, whatever its cadence); exit 1 naming a witness
that did not take it (its delivery stays queued for the sealer's next run)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit import sealer, witnesses


class Command(BaseCommand):
    help = (
        "Seal the queued audit events, sign a checkpoint of the tree now and send it to every "
        "witness (exit status 1 naming a witness that failed)."
    )

    def handle(self, *args, **options):
        checkpoint = sealer.checkpoint_now()
        if checkpoint is None:
            raise CommandError(
                "no checkpoint signed: no signing key (set CXHUB_AUDIT_SIGNING_KEY or "
                "CXHUB_AUDIT_SIGNING_KEY_FILE)"
            )
        with transaction.atomic():
            witnesses.queue_deliveries(checkpoint, every_witness=True)
        results = witnesses.deliver_pending(checkpoint=checkpoint)
        self.stdout.write(
            f"checkpoint of {checkpoint.size} events, root {bytes(checkpoint.root).hex()}"
        )
        if not results:
            self.stdout.write(
                "sent to no witness: none is configured (CXHUB_AUDIT_WITNESS_DIR, "
                "CXHUB_AUDIT_WITNESS_WEBHOOK_URL, CXHUB_AUDIT_WITNESS_EMAILS)"
            )
        for result in results:
            if result.ok:
                self.stdout.write(f"sent to {result.witness}: {result.where}")
        failed = [result for result in results if not result.ok]
        if failed:
            raise CommandError(
                "\n".join(
                    f"witness {result.witness} did not take it (retried by the sealer): "
                    f"{result.error}"
                    for result in failed
                )
            )
