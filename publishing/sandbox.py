"""Sandbox: publishes nowhere and keeps what would have gone out (demo and training accounts).
Its rules are the webhook's, so a sandboxed post behaves like a real one. It is a channel of
networks/channels kept here, beside the feed it writes to: publishing registers it with the
channels at start-up (apps.PublishingConfig.ready).

Each publication is a SandboxPublication row keyed by the target's idempotency key, so sending
twice stores one row, and reconcile simply looks for it. The account's feed page shows them.
"""

from collections.abc import Sequence
from typing import Any

from django.urls import reverse

from networks.channels.base import ReconcileHints
from networks.channels.http import Published
from networks.channels.webhook import WebhookChannel

from .models import PostTarget, SandboxPublication


def _published(publication) -> Published:
    feed = reverse("sandbox-feed", args=[publication.social_account_id])
    return Published(
        external_id=f"sandbox-{publication.pk}",
        external_url=f"{feed}#publication-{publication.pk}",
    )


class SandboxChannel(WebhookChannel):
    name = "sandbox"
    label = "Sandbox"

    def publish(
        self, account: Any, text: str, media: Sequence[Any], *, idempotency_key: str
    ) -> Published:
        target = PostTarget.objects.filter(idempotency_key=idempotency_key).first()
        publication, _created = SandboxPublication.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "social_account": account,
                "target": target,
                "text": text,
                "media": list(media),
            },
        )
        return _published(publication)

    def reconcile(
        self,
        account: Any,
        text: str,
        *,
        idempotency_key: str,
        hints: ReconcileHints | None = None,
    ) -> Published | None:
        publication = SandboxPublication.objects.filter(idempotency_key=idempotency_key).first()
        return None if publication is None else _published(publication)
