"""Make replies, mentions and comments arrive on a sandbox account (inbox/sandbox.py)."""

from django.core.management.base import BaseCommand, CommandError

from cxhub.errors import ApplicationError
from networks.models import SocialAccount

from ...sandbox import TEXTS, sandbox_inbound


class Command(BaseCommand):
    help = (
        "Make N replies, mentions or comments arrive on a sandbox account's inbox, as if the "
        "public had answered (replies to what it published where it has published)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", type=int, required=True, help="the sandbox account's id")
        parser.add_argument("--count", type=int, default=10, help="how many items (1–10,000)")
        parser.add_argument("--sentiment", choices=sorted(TEXTS), help="only items of this feeling")
        parser.add_argument("--seed", type=int, help="the same items for the same seed")

    def handle(self, *args, **options):
        account = SocialAccount.objects.select_related("team").filter(pk=options["account"]).first()
        if account is None:
            raise CommandError(f"No social account has the id {options['account']}.")
        try:
            stored = sandbox_inbound(
                account=account,
                count=options["count"],
                sentiment=options["sentiment"],
                seed=options["seed"],
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(stored.added)} items arrived in {account.handle}'s inbox.")
