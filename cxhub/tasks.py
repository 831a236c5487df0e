"""Project-wide periodic tasks."""

from celery import shared_task

from . import services


@shared_task(name="cxhub.tasks.heartbeat")
def heartbeat() -> None:
    """Proves that beat schedules and a worker runs: /healthz and the dashboard show its age."""
    services.heartbeat_record(name="worker")
