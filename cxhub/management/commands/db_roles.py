"""Create and grant the application's PostgreSQL role; run as the tables' owner, after `migrate`.

    CXHUB_MIGRATE_DATABASE_URL=postgres://owner@db/cxhub manage.py db_roles --app-role cxhub_app

Idempotent. The role may read and write rows (audit events: only read and add) but, not owning
the tables, cannot alter them, switch their triggers off, drop or truncate them.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cxhub.dbroles import DatabaseRoleError, db_app_role_grant, db_owner_connection


class Command(BaseCommand):
    help = "Create/grant the application's restricted PostgreSQL role (run as the owner)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--app-role",
            default="",
            help="the application's role (default: CXHUB_DB_APP_ROLE)",
        )
        parser.add_argument(
            "--no-login",
            dest="login",
            action="store_false",
            help="create the role NOLOGIN (for SET ROLE only); default LOGIN",
        )
        parser.add_argument("--database", default="default")

    def handle(self, *args, app_role: str, login: bool, database: str, **options) -> None:
        app_role = app_role or getattr(settings, "CXHUB_DB_APP_ROLE", "")
        if not app_role:
            raise CommandError("name the application's role: --app-role or CXHUB_DB_APP_ROLE")
        try:
            with db_owner_connection(database):
                report = db_app_role_grant(alias=database, app_role=app_role, login=login)
        except DatabaseRoleError as exc:
            raise CommandError(str(exc)) from None
        for line in report:
            self.stdout.write(line)
