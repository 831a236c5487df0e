"""`manage.py audit_verify`: recompute the closed audit chain, recompute the Merkle tree from
the events and prove it extends every signed checkpoint the witnesses hold (``--witness DIR``,
``--checkpoint FILE``) and the database's own (audit.verify_log), and check that the rows that
must be provable from the trail (published targets, decisions, freezes) each have their event;
exit 1 naming the first broken link, what differs from the checkpoints, or the rows without
their event."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain, verify_events_present
from audit.verify_log import source_from_file, sources_from_directory, verify_log


class Command(BaseCommand):
    help = (
        "Recompute the closed hash chain and the Merkle tree from the events, prove the log "
        "extends every checkpoint given (--witness, --checkpoint) and the database's own, and "
        "check that every published target, decision and freeze has its event; name what "
        "differs (exit status 1)."
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
            help="Only recompute the closed chain; skip the tree and the rows' events.",
        )
        parser.add_argument(
            "--witness",
            action="append",
            default=[],
            metavar="DIR",
            help="A witness directory: every checkpoint file in it must be extended by the log "
            "(repeatable).",
        )
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            metavar="FILE",
            help="A checkpoint (signed note) the log must extend, e.g. from an auditor's e-mail "
            "(repeatable).",
        )
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            metavar="VKEY",
            help="A verifier key to trust besides the signing key's and "
            "CXHUB_AUDIT_VERIFIER_KEYS (repeatable).",
        )

    def handle(
        self,
        *args,
        batch_size: int,
        as_json: bool = False,
        chain_only=False,
        witness=(),
        checkpoint=(),
        key=(),
        **options,
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if chain_only and (witness or checkpoint or key):
            raise CommandError(
                "--chain-only leaves the tree out: drop --witness/--checkpoint/--key"
            )
        try:
            sources = [
                *(source for path in witness for source in sources_from_directory(path)),
                *(source_from_file(path) for path in checkpoint),
            ]
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
        result = verify_chain(batch_size=batch_size)
        tree = None
        if not chain_only:
            try:
                tree = verify_log(sources=sources, keys=key, batch_size=max(batch_size, 1000))
            except ValueError as error:
                raise CommandError(str(error)) from error
        present = [] if chain_only else verify_events_present(batch_size=batch_size)
        incomplete = [rule for rule in present if rule.missing]
        if as_json:
            self.stdout.write(_as_json(result, tree, present))
        problems = [_missing_line(rule) for rule in incomplete]
        tree_lines = _tree_lines(tree)
        if not result.ok or (tree is not None and not tree.ok):
            chain_line = (
                []
                if result.ok
                else [
                    f"audit chain BROKEN at seq {result.broken_seq}: {result.reason} "
                    f"({result.count} events verified before it)"
                ]
            )
            # Printed to stderr by Django, with exit status 1.
            raise CommandError("\n".join([*chain_line, *tree_lines, *problems]))
        if not as_json:
            # Its rate last: scripts read "… events verified (N events/s)".
            rows = ""
            if present and not incomplete:
                counted = ", ".join(f"{rule.checked} {rule.label}" for rule in present)
                rows = f"{counted} each with its event; "
            self.stdout.write(
                f"audit chain OK: {result.count} events verified "
                f"({rows}{result.events_per_second:.0f} events/s)"
            )
            for line in tree_lines:
                self.stdout.write(line)
        if incomplete:
            raise CommandError("\n".join(["audit trail INCOMPLETE:", *problems]))


def _missing_line(rule) -> str:
    ids = ", ".join(str(pk) for pk in rule.missing_ids)
    more = " …" if rule.missing > len(rule.missing_ids) else ""
    return f"{rule.missing} of {rule.checked} {rule.label} have no event (ids: {ids}{more})"


def _tree_lines(tree) -> list[str]:
    """The tree's findings (warnings first when it is OK), then its summary line, rate last."""
    if tree is None:
        return []
    if not tree.ok:
        return [
            f"audit tree BROKEN: the log of {tree.leaves} events does not match what was signed:",
            *(f"- {finding.message}" for finding in tree.findings),
        ]
    witnessed = len(tree.checkpoints)
    return [
        *(f"warning: {finding.message}" for finding in tree.findings),
        f"audit tree OK: {tree.leaves} events recomputed, root {tree.root.hex()}; extends "
        f"{witnessed} witnessed checkpoints and the database's {tree.database_checkpoints} "
        f"({tree.events_per_second:.0f} events/s)",
    ]


def _as_json(result, tree, present) -> str:
    # The rate covers every event verified: the chain's and the tree's.
    count = result.count + (tree.leaves if tree is not None else 0)
    seconds = result.seconds + (tree.seconds if tree is not None else 0.0)
    return json.dumps(
        {
            "ok": result.ok
            and (tree is None or tree.ok)
            and not any(rule.missing for rule in present),
            "chain_ok": result.ok,
            "tree_ok": tree.ok if tree is not None else None,
            "count": result.count,
            "seconds": round(result.seconds, 6),
            "events_per_second": round(count / seconds if seconds > 0 else float(count), 1),
            "tree": tree.as_dict() if tree is not None else None,
            "broken_seq": result.broken_seq,
            "reason": result.reason,
            "events_present": [rule.as_dict() for rule in present],
        }
    )
