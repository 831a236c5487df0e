"""`manage.py audit_tree_build`: fold the audit events not yet in the Merkle tree into it, in seq
order; idempotent (a second run adds nothing), so it also catches the tree up after a restore."""

from django.core.management.base import BaseCommand, CommandError

from audit.merkle_store import MerkleStoreError, merkle_build_from_events, merkle_root


class Command(BaseCommand):
    help = (
        "Add every audit event not yet in the Merkle tree to it (leaf i is the event of seq "
        "i + 1) and print the tree's size and root. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Events read and appended per batch (default 2000).",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            before, after = merkle_build_from_events(batch_size=batch_size)
        except MerkleStoreError as error:
            raise CommandError(str(error)) from error
        root = merkle_root(size=after)
        self.stdout.write(f"audit tree: {after} leaves ({after - before} added), root {root.hex()}")
