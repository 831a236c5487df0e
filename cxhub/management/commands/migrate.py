"""Django's `migrate`, run as the tables' owner: through CXHUB_MIGRATE_DATABASE_URL when it is
set, and refused outright when connected as the application's role (README, Database roles)."""

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate

from cxhub.dbroles import DatabaseRoleError, db_migration_role_check, db_owner_connection


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        database = options["database"]
        with db_owner_connection(database):
            try:
                db_migration_role_check(
                    alias=database, app_role=getattr(settings, "CXHUB_DB_APP_ROLE", "")
                )
            except DatabaseRoleError as exc:
                raise CommandError(str(exc)) from None
            return super().handle(*args, **options)
