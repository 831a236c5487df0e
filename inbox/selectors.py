"""Reads of the inbox, always scoped to the person asking: the items of the social accounts they
may see (networks.selectors.social_accounts_for: a role on the account's team or a team above,
or a grant of the account), in a fixed number of queries whatever the number of items."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet, Subquery

from accounts.models import User
from networks.selectors import social_accounts_for

from .models import InboundItem


@dataclass(frozen=True)
class ItemFilters:
    """What a list of the inbox may be narrowed to; empty fields do not narrow."""

    account_id: int | None = None
    network: str | None = None
    kinds: Sequence[str] = field(default_factory=tuple)
    statuses: Sequence[str] = field(default_factory=tuple)
    sentiments: Sequence[str] = field(default_factory=tuple)
    language: str | None = None
    # An id; 0: items given to nobody.
    assignee_id: int | None = None
    # True: items that answer one of our posts; False: the others.
    has_post: bool | None = None


def inbox_items(*, user: User, filters: ItemFilters | None = None) -> QuerySet[InboundItem]:
    """The items of the accounts `user` may see, newest received first. One query for a page:
    the account, its team, the assignee and our target are joined in (select_related)."""
    filters = filters or ItemFilters()
    accounts = social_accounts_for(user=user).values("pk")
    items = InboundItem.objects.filter(account__in=Subquery(accounts)).select_related(
        "account__team", "assignee", "target"
    )
    if filters.account_id is not None:
        items = items.filter(account_id=filters.account_id)
    if filters.network:
        items = items.filter(account__channel=filters.network)
    if filters.kinds:
        items = items.filter(kind__in=list(filters.kinds))
    if filters.statuses:
        items = items.filter(status__in=list(filters.statuses))
    if filters.sentiments:
        items = items.filter(sentiment__in=list(filters.sentiments))
    if filters.language is not None:
        items = items.filter(language=filters.language)
    if filters.assignee_id == 0:
        items = items.filter(assignee__isnull=True)
    elif filters.assignee_id is not None:
        items = items.filter(assignee_id=filters.assignee_id)
    if filters.has_post is not None:
        items = items.filter(target__isnull=not filters.has_post)
    return items.order_by("-id")


def inbox_item_get(*, user: User, item_id: int) -> InboundItem | None:
    return inbox_items(user=user).filter(pk=item_id).first()
