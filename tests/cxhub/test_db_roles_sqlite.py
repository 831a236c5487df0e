"""On SQLite there are no roles to split: db_roles says so, and migrate runs as before."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection


@pytest.mark.django_db
def test_db_roles_says_it_needs_postgresql():
    if connection.vendor == "postgresql":
        pytest.skip("tests/cxhub/test_db_roles.py covers PostgreSQL")

    with pytest.raises(CommandError, match="database roles need PostgreSQL"):
        call_command("db_roles", app_role="cxhub_app", verbosity=0)


@pytest.mark.django_db
def test_db_roles_wants_a_role_name(settings):
    settings.CXHUB_DB_APP_ROLE = ""

    with pytest.raises(CommandError, match="--app-role or CXHUB_DB_APP_ROLE"):
        call_command("db_roles", verbosity=0)
