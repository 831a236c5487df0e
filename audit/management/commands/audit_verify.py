"""`manage.py audit_verify`: recompute the audit chain; exit 1 naming the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain and report the first broken link (exit status 1)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Events read per query (default 2000); memory stays constant.",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = verify_chain(batch_size=batch_size)
        if not result.ok:
            # Printed to stderr by Django, with exit status 1.
            raise CommandError(
                f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
                f"({result.count} events verified before it)"
            )
        self.stdout.write(
            f"audit chain OK: {result.count} events verified "
            f"({result.events_per_second:.0f} events/s)"
        )
