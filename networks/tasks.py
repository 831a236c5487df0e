"""Thin tasks of the networks app."""

from celery import shared_task

from .services import social_accounts_refresh_expiring


@shared_task(name="networks.tasks.refresh_expiring_tokens", acks_late=True)
def refresh_expiring_tokens() -> dict:
    return social_accounts_refresh_expiring()
