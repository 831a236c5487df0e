"""Sandbox: publishes nowhere and keeps what would have gone out (demo and training accounts).
Its rules are the webhook's, so a sandboxed post behaves like a real one. It is a channel of
networks/channels kept here, beside the feed it writes to: publishing registers it with the
channels at start-up (apps.PublishingConfig.ready).

Each publication is a SandboxPublication row keyed by the target's idempotency key, so sending
twice stores one row, and reconcile simply looks for it. The account's feed page shows them.
"""

import math
from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from django.utils import timezone

from networks.channels.base import Engagement, ReconcileHints, ReplyTo
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
    # A training account answers its (generated) inbox like a real one: the reply is kept in
    # the feed as any publication is.
    replies = True

    def publish(
        self,
        account: Any,
        text: str,
        media: Sequence[Any],
        *,
        idempotency_key: str,
        reply_to: ReplyTo | None = None,
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
        reply_to: ReplyTo | None = None,
    ) -> Published | None:
        publication = SandboxPublication.objects.filter(idempotency_key=idempotency_key).first()
        return None if publication is None else _published(publication)

    def fetch_engagement(self, account: Any, external_ids: Sequence[str]) -> dict[str, Engagement]:
        """Figures that grow as a real post's do (fast in the first hours, then levelling off),
        the same for the same publication and age: the demo's post pages and reports show
        charts without a network. A publication that is not the account's is gone."""
        wanted = {
            external_id: int(external_id.removeprefix("sandbox-"))
            for external_id in external_ids
            if external_id.startswith("sandbox-") and external_id[8:].isdigit()
        }
        kept = {
            publication.pk: publication
            for publication in SandboxPublication.objects.filter(
                pk__in=list(wanted.values()), social_account=account
            )
        }
        now = timezone.now()
        figures = {}
        for external_id in external_ids:
            publication = kept.get(wanted.get(external_id, 0))
            if publication is None:
                figures[external_id] = Engagement(deleted=True)
                continue
            hours = max(0.0, (now - publication.published_at).total_seconds() / 3600)
            grown = 1 - math.exp(-hours / 6)
            reach = 200 + (publication.pk * 7919) % 1800
            figures[external_id] = Engagement(
                likes=round(reach * 0.04 * grown),
                reposts=round(reach * 0.01 * grown),
                replies=round(reach * 0.006 * grown),
                quotes=round(reach * 0.002 * grown),
                impressions=round(reach * grown),
                clicks=round(reach * 0.015 * grown),
            )
        return figures
