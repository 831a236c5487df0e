"""Telling people what needs them: an in-app notification per person, e-mailed by a task.

`notify` writes the rows inside the caller's transaction and queues the e-mails on commit, so a
rolled-back change tells no one, and a failed e-mail stays visible on its row for a retry.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import Notification, User


def notify(
    *,
    users: Iterable[User],
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    post_id: int | None = None,
) -> list[Notification]:
    """One message to each of `users` (each person once)."""
    return notify_many(
        [
            {
                "user": user,
                "kind": kind,
                "title": title,
                "body": body,
                "url": url,
                "post_id": post_id,
            }
            for user in users
        ]
    )


def notify_many(messages: Iterable[Mapping[str, Any]]) -> list[Notification]:
    """Several messages (each a mapping of notify's arguments with one `user`) in one insert,
    their e-mails queued as one task on commit. The same person gets a given message once."""
    seen: set[tuple[int, str, int | None]] = set()
    rows = []
    for message in messages:
        user = message["user"]
        if user is None or not user.is_active:
            continue
        key = (user.pk, message["title"], message.get("post_id"))
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            Notification(
                user=user,
                kind=message["kind"],
                title=message["title"][:300],
                body=message.get("body", ""),
                url=message.get("url", ""),
                post_id=message.get("post_id"),
                email_status=(
                    Notification.EmailStatus.PENDING
                    if user.email
                    else Notification.EmailStatus.NONE
                ),
            )
        )
    if not rows:
        return []
    created = Notification.objects.bulk_create(rows)
    pending = [n.pk for n in created if n.email_status == Notification.EmailStatus.PENDING]
    if pending:
        # The task by its name: accounts.tasks imports this module (a thin task over
        # notification_send_email), so this module does not import it back.
        task = current_app.tasks["accounts.tasks.send_notification_emails"]
        # robust: a broker that is down fails the e-mails (logged, still pending), not the work
        # whose transaction just committed
        transaction.on_commit(lambda: task.delay(pending), robust=True)
    return created


def notification_send_email(*, notification_id: int) -> bool:
    """Send one pending notification's e-mail; idempotent (a sent one is not sent again)."""
    claimed = Notification.objects.filter(
        pk=notification_id, email_status=Notification.EmailStatus.PENDING
    ).update(email_status=Notification.EmailStatus.SENT, emailed_at=timezone.now())
    if not claimed:
        return False
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    try:
        send_mail(
            subject=f"[cxhub] {notification.title}",
            message=f"{notification.body}\n\n{notification.url}".strip(),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.user.email],
        )
    except Exception as exc:  # any mail backend error: keep it visible for a retry
        Notification.objects.filter(pk=notification_id).update(
            email_status=Notification.EmailStatus.FAILED, email_error=str(exc)[:2000]
        )
        return False
    return True


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
