"""Reachability checks of what the web process depends on, for /healthz; under `make run`, also
the launcher's state of web, worker and beat. For /readyz, whether this process can serve: its
database answers and is migrated, its broker answers, its static files are collected."""

import json
import os
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.files.storage import storages
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from kombu import Connection

from audit.sealer import checkpoint_lag

from .celery import app
from .run import RUNNING, STATE_FILE_NAME


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return Check("database", False, f"{type(exc).__name__}: {exc}".strip()[:300])
    return Check("database", True, connection.vendor)


def _transport_for(url: str) -> str | None:
    """The transport that serves `url`. settings.CELERY_BROKER_TRANSPORT (the embedded broker,
    cxhub/broker.py) is chosen for filesystem:// alone, but kombu would apply it to any URL."""
    if url.startswith("filesystem://"):
        return getattr(settings, "CELERY_BROKER_TRANSPORT", None)
    return Connection(url).transport_cls


def check_broker(*, retries: int = 1) -> Check:
    url = settings.CELERY_BROKER_URL
    try:
        # A fresh connection to the configured URL each time: a pooled one could hide an outage.
        with app.connection_for_write(url, transport=_transport_for(url)) as conn:
            conn.ensure_connection(max_retries=retries, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:  # kombu raises the transport's own errors
        return Check("broker", False, f"{type(exc).__name__}: {exc}".strip()[:300])
    return Check("broker", True, str(transport))


def check_audit() -> Check:
    """Every audit event must be in a signed checkpoint within the window
    (CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS): the sealer runs, and the signing key is set."""
    lag = checkpoint_lag()
    window = int(lag.window.total_seconds())
    if not lag.exceeded:
        waiting = f"oldest event waiting {lag.lag.total_seconds():.0f} s" if lag.lag else "none"
        return Check("audit", True, f"within the checkpoint window of {window} s ({waiting})")
    why = "" if lag.signing_key else "; no signing key is set (CXHUB_AUDIT_SIGNING_KEY)"
    return Check(
        "audit",
        False,
        f"an event has waited {lag.lag.total_seconds():.0f} s for a signed checkpoint, "
        f"beyond the window of {window} s{why}",
    )


def launcher_processes() -> dict | None:
    """Under `make run`: the launcher's state of web, worker and beat (cxhub/run.py). None where
    no launcher runs them (production's process manager), or where the one that wrote the file
    is gone (killed before it could remove it)."""
    try:
        state = json.loads((settings.VAR_DIR / STATE_FILE_NAME).read_text())
    except FileNotFoundError:
        return None
    try:
        os.kill(state["launcher_pid"], 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    return state["processes"]


def processes_down(processes: dict) -> list[str]:
    return [name for name, process in processes.items() if process["state"] != RUNNING]


def check_migrations() -> Check:
    """Every migration this code has is applied: a process started before `migrate` ran would
    query tables or columns that are not there yet. (The plan is read from the code and one
    query of django_migrations: a few milliseconds.)"""
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any driver error means "cannot tell", which is not ready
        return Check("migrations", False, f"{type(exc).__name__}: {exc}".strip()[:300])
    if plan:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        return Check(
            "migrations",
            False,
            f"{len(names)} not applied ({', '.join(names[:5])}{more}): run `manage.py migrate`",
        )
    return Check("migrations", True, "all applied")


def check_static() -> Check:
    """With the manifest storage (DEBUG off), every page names its files through the manifest
    `collectstatic` wrote, read when this process started: without it, pages fail."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return Check("static", True, "served from the apps' folders")
    if not storage.hashed_files:
        return Check(
            "static",
            False,
            f"no manifest in {settings.STATIC_ROOT} when this process started: run "
            "`manage.py collectstatic`, then restart",
        )
    return Check("static", True, f"{len(storage.hashed_files)} files in the manifest")


def readiness_checks() -> list[Check]:
    """What /readyz asks, each bounded in time (the database's connect timeout; one try at the
    broker within 2 s). Migrations are not asked of a database that does not answer."""
    database = check_database()
    checks = [database]
    if database.ok:
        checks.append(check_migrations())
    checks += [check_broker(retries=0), check_static()]
    return checks


_CREDENTIALS = re.compile(r"//[^/@\s]*@")


def redacted(detail: str) -> str:
    """An error's text without the user and password of any URL it quotes: /readyz is open."""
    return _CREDENTIALS.sub("//…@", detail)
