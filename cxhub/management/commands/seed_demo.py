"""Load the demo organisation (idempotent) and print its logins, or `--json` for scripts."""

import json

from django.core.management.base import BaseCommand

from cxhub.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo agency (teams, people, social accounts) unless it exists; print it."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the organisation as JSON")

    def handle(self, *args, **options):
        demo = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(demo, indent=2))
            return
        self.stdout.write("Demo organisation ready. Sign in with any of these (same password):")
        for person in demo["people"]:
            self.stdout.write(
                f"  {person['username']:<24} {person['role']:<9} {person['team_name']}"
            )
        self.stdout.write(f"  password: {demo['people'][0]['password']}")
        self.stdout.write(
            f"{len(demo['teams'])} teams, {len(demo['social_accounts'])} social accounts."
        )
