"""The attack today's chain could not see, played for real (issue 13, "What must be shown"): a
copy of the database taken with pg_dump before some events, restored with pg_restore after a
checkpoint that covered them was witnessed, then new events added through the application (its
own processes, on the restored copy, as the application role) and sealed and signed with the
application's own key. The restored database is a perfectly self-consistent log; only the
witness, which kept the checkpoints it saw, can tell that it is another history.

tests/audit/test_tampering.py plays the same attack inside one database with SQL (and on
SQLite); this one takes the administrator's real tools and a second database.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

from audit.services import record
from tests.audit.test_tampering import add_events, checkpoint
from tests.integration.dispatch_harness import database_url, with_database_name

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]

# The application on the restored copy: new events through the app's writer, each in the
# transaction of its change, as a service records them.
APP_WRITES = """
from django.db import transaction
from accounts.models import User
from audit.services import record
lead = User.objects.get(username="lena")
for n in range(100, 106):
    with transaction.atomic():
        record(actor=lead, action="post.approved", data={"n": n})
"""


def owner_env() -> dict[str, str]:
    """The database administrator's environment: the tables' owner (not the app role the suite
    sets through PGOPTIONS, tests/dbroles.py)."""
    env = dict(os.environ)
    env.pop("PGOPTIONS", None)
    return env


def libpq_args(settings_dict: dict, name: str) -> list[str]:
    return [
        "-h",
        settings_dict.get("HOST") or "127.0.0.1",
        "-p",
        str(settings_dict.get("PORT") or 5432),
        "-U",
        settings_dict.get("USER") or "postgres",
        "-d",
        name,
    ]


def run(args: list[str], *, env: dict[str, str], check: bool = True):
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture
def witness(tmp_path, settings):
    path = tmp_path / "witness"
    path.mkdir()
    settings.CXHUB_AUDIT_WITNESS_DIR = str(path)
    return path


@pytest.fixture
def restored_name():
    """The name of the second database the dump is restored into; dropped after the test."""
    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_restored"
    admin = libpq_args(settings_dict, "postgres")
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    run(["psql", *admin, "-qc", drop], env=owner_env())
    yield name
    run(["psql", *admin, "-qc", drop], env=owner_env())


def test_a_dump_restored_after_its_events_were_witnessed_is_refused(
    witness, restored_name, lead, tmp_path
):
    settings_dict = connection.settings_dict
    dump = tmp_path / "before.dump"

    # Three events, sealed and signed; the witness keeps that checkpoint.
    add_events(lead, 3)
    checkpoint()
    # The administrator's copy, taken now (pg_dump's custom format, as backups are).
    run(
        ["pg_dump", "-Fc", "-f", str(dump), *libpq_args(settings_dict, settings_dict["NAME"])],
        env=owner_env(),
    )
    # Five more events, sealed and signed: the witness now holds checkpoints of 3 and 8.
    add_events(lead, 5, start=3)
    checkpoint()
    assert sorted(len(path.read_text()) > 0 for path in witness.iterdir()) == [True, True]

    # The copy restored into a database of its own, with the owner's tools.
    admin = libpq_args(settings_dict, "postgres")
    run(["psql", *admin, "-qc", f'CREATE DATABASE "{restored_name}"'], env=owner_env())
    run(
        ["pg_restore", "--exit-on-error", *libpq_args(settings_dict, restored_name), str(dump)],
        env=owner_env(),
    )

    # The application runs on the restored copy (as the app role: os.environ's PGOPTIONS) and
    # writes, seals and signs, with its own key; the witness directory is its witness still.
    app_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": with_database_name(database_url(settings_dict), restored_name),
        "CXHUB_AUDIT_WITNESS_DIR": str(witness),
    }
    run([sys.executable, "manage.py", "shell", "-c", APP_WRITES], env=app_env)
    run([sys.executable, "manage.py", "audit_checkpoint"], env=app_env)

    # On its own the restored database is a good log of 9 events: nothing in it is wrong.
    alone = run([sys.executable, "manage.py", "audit_verify"], env=app_env)
    assert "audit tree OK: 9 events recomputed" in alone.stdout

    # Against what the witness saw, it is refused, and the difference is named.
    against = run(
        [sys.executable, "manage.py", "audit_verify", "--witness", str(witness)],
        env=app_env,
        check=False,
    )
    assert against.returncode != 0, against.stdout
    message = against.stdout + against.stderr
    assert (
        f"rewritten: the log does not extend the checkpoint of 8 events held by witness "
        f"{witness}; the checkpoint of 3 events still matches: an event among leaves 3–7"
    ) in message
    assert f"fork: the checkpoint of 8 events held by witness {witness}" in message

    # The original database, which the witness vouches for, still verifies against it.
    with transaction.atomic():
        record(actor=lead, action="post.submitted", data={"n": 8})
    checkpoint()
    original = run(
        [sys.executable, "manage.py", "audit_verify", "--witness", str(witness)],
        env={**app_env, "DATABASE_URL": database_url(settings_dict)},
        check=False,
    )
    # The witness now also holds the restored copy's checkpoint of 9 events, which the original
    # (9 events too, but another ninth) contradicts: the fork is named from both sides.
    assert original.returncode != 0
    said = original.stdout + original.stderr
    assert (
        f"rewritten: the log does not extend the checkpoint of 9 events held by witness "
        f"{witness}; the checkpoint of 8 events still matches: the event at leaf 8"
    ) in said
    assert f"fork: the checkpoint of 9 events held by witness {witness}" in said
