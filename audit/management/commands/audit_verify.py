"""`manage.py audit_verify`: recompute the audit chain; exit 1 naming the first broken link."""

import json

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
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print the result as one JSON object on stdout (exit status 1 still when broken).",
        )

    def handle(self, *args, batch_size: int, as_json: bool = False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = verify_chain(batch_size=batch_size)
        if as_json:
            self.stdout.write(_as_json(result))
        if not result.ok:
            # Printed to stderr by Django, with exit status 1.
            raise CommandError(
                f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
                f"({result.count} events verified before it)"
            )
        if not as_json:
            self.stdout.write(
                f"audit chain OK: {result.count} events verified "
                f"({result.events_per_second:.0f} events/s)"
            )


def _as_json(result) -> str:
    return json.dumps(
        {
            "ok": result.ok,
            "count": result.count,
            "seconds": round(result.seconds, 6),
            "events_per_second": round(result.events_per_second, 1),
            "broken_seq": result.broken_seq,
            "reason": result.reason,
        }
    )
