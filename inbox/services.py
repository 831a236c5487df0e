"""Every write of the inbox: storing what a network sent (ingestion and the sandbox both come
here), and the triage of an item (assign, status). One function per use case, each in a
transaction and each recording its audit event."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import record
from cxhub.errors import ApplicationError, InvalidTransition
from networks.channels import Inbound
from networks.models import SocialAccount
from networks.selectors import social_accounts_for
from publishing.models import PostTarget

from . import analysis
from .models import ITEM_TRANSITIONS, InboundItem, IngestState, ItemKind, ItemStatus, Sentiment

# Longest values kept in the columns of the same length (a network may send longer).
_LIMITS = {"author_handle": 300, "author_name": 300, "author_id": 300, "url": 2000}


@dataclass(frozen=True)
class Stored:
    """What one store did: the ids of the rows it added and of those it marked deleted."""

    added: list[int]
    marked_deleted: list[int]


def items_store(
    *, account: SocialAccount, items: Sequence[Inbound], cursor: str | None = None
) -> Stored:
    """Keep what a network sent for `account`: new items are added with their signals
    (language, sentiment) and linked to our target when they answer one; items already kept are
    left as they are, except that one the network now says was deleted is marked so (never
    removed). With `cursor`, the account's ingestion cursor moves in the same transaction, so a
    run stopped at any point starts again where its last stored page ended. One audit event for
    the store, naming every row it added or marked."""
    fresh = _unique(items)
    # The signals are read before the transaction: they cost CPU, not locks.
    rows = {item.network_id: _row(account, item) for item in fresh}
    with transaction.atomic():
        kept = dict(
            InboundItem.objects.filter(account=account, network_id__in=list(rows)).values_list(
                "network_id", "deleted_upstream"
            )
        )
        new = [row for network_id, row in rows.items() if network_id not in kept]
        _link_targets(account, new)
        InboundItem.objects.bulk_create(new, ignore_conflicts=True)
        added = list(
            InboundItem.objects.filter(
                account=account, network_id__in=[row.network_id for row in new]
            ).values_list("pk", flat=True)
        )
        gone = [
            item.network_id
            for item in fresh
            if item.deleted and item.network_id in kept and not kept[item.network_id]
        ]
        marked = []
        if gone:
            marked = list(
                InboundItem.objects.filter(account=account, network_id__in=gone).values_list(
                    "pk", flat=True
                )
            )
            InboundItem.objects.filter(pk__in=marked).update(
                deleted_upstream=True, updated_at=timezone.now()
            )
        if cursor is not None:
            IngestState.objects.filter(account=account).update(cursor=cursor)
        if added or marked:
            record(
                actor=None,
                action="inbox.items_received",
                obj=account,
                team=account.team,
                data={"items": sorted(added), "marked_deleted": sorted(marked)},
            )
    return Stored(added=sorted(added), marked_deleted=sorted(marked))


def _unique(items: Sequence[Inbound]) -> list[Inbound]:
    """One per network id (a page edge may repeat one): the last word wins (deleted or not)."""
    return list({item.network_id: item for item in items if item.network_id}.values())


def _row(account: SocialAccount, item: Inbound) -> InboundItem:
    language = analysis.detect_language(item.text, declared=item.language)
    sentiment = analysis.score_sentiment(item.text, language)
    return InboundItem(
        account=account,
        network_id=item.network_id[:500],
        kind=item.kind if item.kind in ItemKind.values else ItemKind.MENTION,
        author_handle=(item.author_handle or "unknown")[: _LIMITS["author_handle"]],
        author_name=item.author_name[: _LIMITS["author_name"]],
        author_id=item.author_id[: _LIMITS["author_id"]],
        text=item.text,
        url=_web_url(item.url),
        posted_at=item.created_at,
        thread_id=item.thread_id[:500],
        in_reply_to_id=item.in_reply_to_id[:500],
        language=language,
        declared_language=item.language[:16],
        sentiment=sentiment.label if sentiment.label in Sentiment.values else Sentiment.NOT_SCORED,
        sentiment_score=sentiment.score,
        raw=dict(item.raw),
        deleted_upstream=item.deleted,
    )


def _web_url(url: str) -> str:
    """A link a person may open: a web address from the network, anything else dropped."""
    url = (url or "").strip()
    if len(url) > _LIMITS["url"] or not url.lower().startswith(("https://", "http://")):
        return ""
    return url


def _link_targets(account: SocialAccount, rows: list[InboundItem]) -> None:
    """Each new row that answers one of our published targets on the account (or sits in its
    conversation) points at it; a "mention" that answers ours is a reply. One query."""
    ids = {row.in_reply_to_id for row in rows if row.in_reply_to_id}
    ids |= {row.thread_id for row in rows if row.thread_id}
    if not ids:
        return
    ours = dict(
        PostTarget.objects.filter(social_account=account, external_id__in=list(ids))
        .exclude(external_id="")
        .values_list("external_id", "pk")
    )
    for row in rows:
        target_id = ours.get(row.in_reply_to_id) or ours.get(row.thread_id)
        if target_id is None:
            continue
        row.target_id = target_id
        if row.kind == ItemKind.MENTION and row.in_reply_to_id in ours:
            row.kind = ItemKind.REPLY


# Triage ---------------------------------------------------------------------------------------
def _locked(item: InboundItem) -> InboundItem:
    return InboundItem.objects.select_for_update().select_related("account__team").get(pk=item.pk)


@transaction.atomic
def item_assign(*, item: InboundItem, assignee: User | None, by: User) -> InboundItem:
    """Give the item to a person who may see its account (or to nobody: None)."""
    item = _locked(item)
    if assignee is not None and not (
        assignee.is_active
        and social_accounts_for(user=assignee).filter(pk=item.account_id).exists()
    ):
        raise ApplicationError(
            f"{assignee.get_username()} cannot see {item.account.handle}'s inbox.",
            {"fields": {"assignee": ["Someone with a role over the item's account."]}},
        )
    before = item.assignee_id
    new = assignee.pk if assignee is not None else None
    if before == new:
        return item
    item.assignee = assignee
    item.save(update_fields=["assignee", "updated_at"])
    record(
        actor=by,
        action="inbox.item_assigned",
        obj=item,
        team=item.account.team,
        data={"from": before, "to": new},
    )
    return item


@transaction.atomic
def item_set_status(*, item: InboundItem, status: str, by: User | None) -> InboundItem:
    """Move the item to `status` (models.ITEM_TRANSITIONS): closing keeps the time, reopening
    clears it. The same status again changes nothing and records nothing."""
    if status not in ItemStatus.values:
        raise ApplicationError(
            f"Unknown status {status!r}.",
            {"fields": {"status": [f"One of {', '.join(ItemStatus.values)}."]}},
        )
    item = _locked(item)
    if item.status == status:
        return item
    if status not in ITEM_TRANSITIONS[item.status]:
        raise InvalidTransition(f"A {item.status} item cannot become {status}.")
    before = item.status
    item.status = status
    item.closed_at = timezone.now() if status == ItemStatus.CLOSED else None
    item.save(update_fields=["status", "closed_at", "updated_at"])
    record(
        actor=by,
        action="inbox.item_status_changed",
        obj=item,
        team=item.account.team,
        data={"from": before, "to": status},
    )
    return item


def item_close(*, item: InboundItem, by: User | None) -> InboundItem:
    return item_set_status(item=item, status=ItemStatus.CLOSED, by=by)
