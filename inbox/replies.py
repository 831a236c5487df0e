"""Answering an item: a reply is a post (publishing.services.reply_create) that carries the item
it answers, drafted, approved (by the chain the team's policies set for replies) and sent like
any post; when it goes out, the item is answered (first response) and closed.

Kept apart from services.py (the triage writes) because it is the inbox's one door into
publishing, and the handler publishing's hook calls back."""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import record
from cxhub.errors import ApplicationError
from publishing import services as publishing
from publishing.models import Post, PostTarget

from .models import InboundItem, ItemStatus


@transaction.atomic
def item_reply_create(
    *,
    item: InboundItem,
    by: User,
    body: str,
    team_id: int | None = None,
    media_ids: Sequence[int] = (),
) -> Post:
    """Draft a reply to `item` from the account it came to. The reply belongs to the account's
    team unless `team_id` names another team the person drafts for (a national desk answering for
    a region's account it was granted). An open item becomes waiting: someone is on it."""
    item = InboundItem.objects.select_for_update().select_related("account").get(pk=item.pk)
    if item.deleted_upstream:
        raise ApplicationError(
            "This item was deleted on its network: there is nothing to reply to.",
            {"fields": {"item": ["Deleted on the network."]}},
        )
    post = publishing.reply_create(
        by=by,
        team_id=team_id if team_id is not None else item.account.team_id,
        social_account_id=item.account_id,
        body=body,
        in_reply_to={"network_id": item.network_id, "thread_id": item.thread_id, "raw": item.raw},
        media_ids=media_ids,
    )
    record(
        actor=by,
        action="inbox.reply_drafted",
        obj=item,
        team=item.account.team,
        data={"post": post.pk},
    )
    if item.status == ItemStatus.OPEN:
        item.status = ItemStatus.WAITING
        item.save(update_fields=["status", "updated_at"])
        record(
            actor=by,
            action="inbox.item_status_changed",
            obj=item,
            team=item.account.team,
            data={"from": ItemStatus.OPEN, "to": ItemStatus.WAITING, "why": "reply drafted"},
        )
    return post


def items_answered(*, targets: Sequence[PostTarget]) -> int:
    """Handler of publishing.hooks.replies_published (inside the transaction that stores the
    outcomes): each item a published reply answers gets its first response time (if it had
    none) and is closed, with its event. Returns how many items it changed."""
    wanted = {
        (target.social_account_id, str(target.in_reply_to.get("network_id") or "")): target
        for target in targets
        if target.in_reply_to
    }
    if not wanted:
        return 0
    items = list(
        InboundItem.objects.select_for_update()
        .select_related("account__team")
        .filter(
            account_id__in={account for account, _ in wanted},
            network_id__in={network_id for _, network_id in wanted},
        )
        .order_by("pk")
    )
    now = timezone.now()
    changed = 0
    for item in items:
        target = wanted.get((item.account_id, item.network_id))
        if target is None:
            continue
        published_at = target.published_at or now
        before = item.status
        fields = []
        if item.first_response_at is None:
            item.first_response_at = published_at
            fields.append("first_response_at")
        if item.status != ItemStatus.CLOSED:
            item.status = ItemStatus.CLOSED
            item.closed_at = published_at
            fields += ["status", "closed_at"]
        if not fields:
            continue
        item.save(update_fields=[*fields, "updated_at"])
        record(
            actor=None,
            action="inbox.item_answered",
            obj=item,
            team=item.account.team,
            data={"post": target.post_id, "target": target.pk, "status_before": before},
        )
        changed += 1
    return changed
