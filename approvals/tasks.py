"""Thin periodic task of the approvals app."""

from celery import shared_task

from . import services


@shared_task(name="approvals.tasks.escalate_overdue")
def escalate_overdue() -> int:
    return services.escalate_overdue()
