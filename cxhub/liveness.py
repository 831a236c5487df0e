"""Each Celery worker says it is alive every few seconds (a Heartbeat row of its own), so that
dispatch notices a dead worker from its missing heartbeat within seconds and takes back what
it had claimed: the broker's visibility timeout no longer bounds recovery
(publishing/dispatch/sweep.py, sweep_stuck). A worker that stops cleanly removes its row; a
killed one leaves it to go stale.
"""

import contextlib
import logging
import os
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from .models import Heartbeat
from .services import heartbeat_record

log = logging.getLogger("cxhub.liveness")

PREFIX = "worker:"
_state: dict[str, object] = {"identity": "", "stop": None}


def identity() -> str:
    """This worker's name for its heartbeat and its attempts ("celery@host:<main pid>"), set in
    the main process before the pool forks, so its pool processes carry it too; "" outside a
    worker."""
    return str(_state["identity"])


def worker_label(hostname: str | None) -> str:
    """What a task records as the worker of an attempt: the worker and the process sending."""
    return f"{identity() or hostname or 'local'}/{os.getpid()}"


def owner_of(label: str) -> str:
    """The worker identity in an attempt's label ("" for labels from before heartbeats)."""
    return label.rpartition("/")[0]


def on_worker_init(hostname: str) -> None:
    _state["identity"] = f"{hostname}:{os.getpid()}"[: 200 - len(PREFIX)]


def start() -> None:
    """In the worker's main process once it is ready: beat every CXHUB_WORKER_BEAT_SECONDS."""
    if not identity() or _state["stop"] is not None:
        return
    stop = threading.Event()
    _state["stop"] = stop
    name = PREFIX + identity()
    every = float(settings.CXHUB_WORKER_BEAT_SECONDS)

    def beat() -> None:
        while not stop.is_set():
            try:
                heartbeat_record(name=name)
            except DatabaseError:  # the database is away: the next beat tries again
                log.warning("heartbeat not written", exc_info=True)
                close_old_connections()
            stop.wait(every)
        with contextlib.suppress(DatabaseError):
            Heartbeat.objects.filter(name=name).delete()
        connection.close()

    threading.Thread(target=beat, name="cxhub-worker-heartbeat", daemon=True).start()


def stop() -> None:
    """On a clean shutdown: stop beating and remove the row (a worker gone on purpose is not
    a lost one)."""
    event = _state["stop"]
    if isinstance(event, threading.Event):
        event.set()
    with contextlib.suppress(DatabaseError):
        Heartbeat.objects.filter(name=PREFIX + identity()).delete()


def worker_status() -> dict:
    """Informational: when a worker last ran the heartbeat task (it does not fail the check)."""
    beat = Heartbeat.objects.filter(name="worker").first()
    if beat is None:
        return {"status": "never seen"}
    age = (timezone.now() - beat.seen_at).total_seconds()
    stale = age > 3 * settings.CXHUB_HEARTBEAT_SECONDS
    return {"status": "stale" if stale else "ok", "last_seen_seconds_ago": round(age, 1)}
