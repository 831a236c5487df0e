"""Reachability checks of what the web process depends on, for /healthz; under `make run`, also
the launcher's state of web, worker and beat."""

import json
import os
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
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


def check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    try:
        # A fresh connection to the configured URL each time: a pooled one could hide an outage.
        with app.connection_for_write(url, transport=_transport_for(url)) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
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
