"""`manage.py sandbox_surge --watch ID [--posts N]`: a surge of angry posts about a made-up scam
on a sandbox watch, so that its alert fires (listening/sandbox.py)."""

from django.core.management.base import BaseCommand, CommandError

from listening import sandbox
from listening.models import Watch


class Command(BaseCommand):
    help = "Send a surge of negative posts about a made-up scam to a sandbox watch."

    def add_arguments(self, parser):
        parser.add_argument("--watch", type=int, required=True, help="The sandbox watch's id.")
        parser.add_argument("--posts", type=int, default=80, help="How many posts (default 80).")
        parser.add_argument(
            "--minutes", type=int, default=3, help="Spread over the last N minutes (default 3)."
        )

    def handle(self, *args, watch: int, posts: int, minutes: int, **options):
        if posts < 1 or minutes < 1:
            raise CommandError("--posts and --minutes must be at least 1.")
        row = Watch.objects.filter(pk=watch).select_related("team").first()
        if row is None:
            raise CommandError(f"No watch with id {watch}.")
        if not row.sandbox:
            raise CommandError(
                f"Watch {watch} ({row.name}) reads real networks; "
                "a surge goes to sandbox watches only."
            )
        hits, raised = sandbox.surge(row, posts=posts, minutes=minutes)
        self.stdout.write(f"{hits} posts added to watch {row.pk} ({row.name}).")
        for alert in raised:
            self.stdout.write(f"Alert {alert.pk} raised: {alert.get_kind_display()}.")
        if not raised:
            self.stdout.write("No new alert (one may be open already: see /api/v1/alerts/).")
