"""`manage.py audit_verify`: recompute the audit chain and check that the rows that must be
provable from it (published targets, decisions, freezes) each have their event; exit 1 naming
the first broken link or the rows without their event."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain, verify_events_present


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain and report the first broken link; check that every "
        "published target, decision and freeze has its event (exit status 1 if not)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Events (and rows) read per query (default 2000); memory stays constant.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print the result as one JSON object on stdout (exit status 1 still when broken).",
        )
        parser.add_argument(
            "--chain-only",
            action="store_true",
            help="Only recompute the chain; skip the check that rows have their events.",
        )

    def handle(self, *args, batch_size: int, as_json: bool = False, chain_only=False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = verify_chain(batch_size=batch_size)
        present = [] if chain_only else verify_events_present(batch_size=batch_size)
        incomplete = [rule for rule in present if rule.missing]
        if as_json:
            self.stdout.write(_as_json(result, present))
        problems = [_missing_line(rule) for rule in incomplete]
        if not result.ok:
            # Printed to stderr by Django, with exit status 1.
            raise CommandError(
                "\n".join(
                    [
                        f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
                        f"({result.count} events verified before it)",
                        *problems,
                    ]
                )
            )
        if not as_json:
            # One line, its rate last: scripts read "… events verified (N events/s)".
            rows = ""
            if present and not incomplete:
                counted = ", ".join(f"{rule.checked} {rule.label}" for rule in present)
                rows = f"{counted} each with its event; "
            self.stdout.write(
                f"audit chain OK: {result.count} events verified "
                f"({rows}{result.events_per_second:.0f} events/s)"
            )
        if incomplete:
            raise CommandError("\n".join(["audit trail INCOMPLETE:", *problems]))


def _missing_line(rule) -> str:
    ids = ", ".join(str(pk) for pk in rule.missing_ids)
    more = " …" if rule.missing > len(rule.missing_ids) else ""
    return f"{rule.missing} of {rule.checked} {rule.label} have no event (ids: {ids}{more})"


def _as_json(result, present) -> str:
    return json.dumps(
        {
            "ok": result.ok and not any(rule.missing for rule in present),
            "chain_ok": result.ok,
            "count": result.count,
            "seconds": round(result.seconds, 6),
            "events_per_second": round(result.events_per_second, 1),
            "broken_seq": result.broken_seq,
            "reason": result.reason,
            "events_present": [rule.as_dict() for rule in present],
        }
    )
