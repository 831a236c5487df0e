"""Thin tasks of the accounts app."""

from celery import shared_task

from .notifications import notification_send_email
from .passwords import password_reset_send


@shared_task(name="accounts.tasks.send_notification_emails", acks_late=True)
def send_notification_emails(notification_ids: list[int]) -> None:
    for notification_id in notification_ids:
        notification_send_email(notification_id=notification_id)


@shared_task(name="accounts.tasks.send_password_reset", acks_late=True)
def send_password_reset(*, email: str, base_url: str) -> int:
    return password_reset_send(email=email, base_url=base_url)
