"""Reads of the inbox, always scoped to the person asking: the items of the social accounts they
may see (networks.selectors.social_accounts_for: a role on the account's team or a team above,
or a grant of the account), in a fixed number of queries whatever the number of items."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.lookups import StartsWith

from accounts.models import Membership, User
from accounts.selectors import ALL_ROLES, holds_role_over
from networks.models import SocialAccount, SocialAccountUserObjectPermission
from networks.selectors import social_accounts_for
from publishing.models import PostTarget

from .models import ApprovedResponse, InboundItem, ItemNote, ItemTag


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
    # A tag's name as kept (services.tag_name): items that carry it.
    tag: str | None = None


def inbox_items(*, user: User, filters: ItemFilters | None = None) -> QuerySet[InboundItem]:
    """The items of the accounts `user` may see, newest received first. One query for a page:
    the account, its team, the assignee and our target are joined in (select_related). The
    network's payload (`raw`, often kilobytes) is left out of a list: what answers an item reads
    it from its own row (replies.item_reply_create)."""
    filters = filters or ItemFilters()
    accounts = social_accounts_for(user=user).values("pk")
    items = (
        InboundItem.objects.filter(account__in=Subquery(accounts))
        .select_related("account__team", "assignee", "target")
        .defer("raw")
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
    if filters.tag:
        # EXISTS, not a join: an item with several tags stays one row.
        items = items.filter(Exists(ItemTag.objects.filter(item=OuterRef("pk"), name=filters.tag)))
    return items.order_by("-id")


def inbox_item_get(*, user: User, item_id: int) -> InboundItem | None:
    return inbox_items(user=user).filter(pk=item_id).first()


# The inbox page ---------------------------------------------------------------------------------
def _with_tags(items: QuerySet[InboundItem]) -> QuerySet[InboundItem]:
    # One more query for the whole page's tags, whatever the number of rows.
    return items.prefetch_related(Prefetch("tags", queryset=ItemTag.objects.order_by("name")))


def inbox_page(
    *,
    user: User,
    filters: ItemFilters | None = None,
    before_id: int | None = None,
    size: int = 50,
) -> list[InboundItem]:
    """Up to `size + 1` items, newest first, older than `before_id` (keyset: no COUNT, no
    OFFSET); the extra one tells the caller there is an older page. Two queries whatever the
    number of items: the items with their account, team, assignee and target, then their tags."""
    items = inbox_items(user=user, filters=filters)
    if before_id is not None:
        items = items.filter(pk__lt=before_id)
    return list(_with_tags(items)[: size + 1])


def inbox_newer_count(
    *, user: User, after_id: int, filters: ItemFilters | None = None, limit: int = 50
) -> int:
    """How many items arrived after `after_id` (that the filters keep), counted up to `limit + 1`
    only: what the page's live update polls for, one bounded query however many there are."""
    newer = inbox_items(user=user, filters=filters).filter(pk__gt=after_id)
    return newer.select_related(None).values("pk")[: limit + 1].count()


def inbox_newer(
    *, user: User, after_id: int, filters: ItemFilters | None = None, size: int = 50
) -> list[InboundItem]:
    """The items that arrived after `after_id`, newest first, at most `size`, with their tags
    (two queries): the rows the page puts on top of its list when asked."""
    items = inbox_items(user=user, filters=filters).filter(pk__gt=after_id)
    return list(_with_tags(items)[:size])


def inbox_item_detail(*, user: User, item_id: int) -> InboundItem | None:
    """One item with what its panel shows: our post (joined), its tags and its notes with their
    authors (one query each). None when `user` may not see it (the caller answers 404)."""
    items = inbox_items(user=user).filter(pk=item_id).select_related("target__post")
    items = _with_tags(items).prefetch_related(
        Prefetch("notes", queryset=ItemNote.objects.select_related("author").order_by("pk"))
    )
    return items.first()


def item_thread(*, user: User, item: InboundItem, size: int = 20) -> list[InboundItem]:
    """The other items we hold of the item's conversation (same account, same root), oldest
    first, at most `size`: one query."""
    if not item.thread_id:
        return []
    others = (
        inbox_items(user=user)
        .filter(account_id=item.account_id, thread_id=item.thread_id)
        .exclude(pk=item.pk)
        .select_related(None)
        .select_related("assignee")
    )
    return list(others.order_by("posted_at", "pk")[:size])


def item_assignees(*, account: SocialAccount) -> QuerySet[User]:
    """The active people who may see `account`'s inbox, by name: a role on its team or on a
    team above, or a grant of the account itself (what networks.selectors.social_accounts_for
    lets them see). One query, whatever the size of the organisation."""
    role = Membership.objects.filter(user=OuterRef("pk")).filter(
        StartsWith(Value(account.team.path), F("team__path"))
    )
    granted = SocialAccountUserObjectPermission.objects.filter(
        user=OuterRef("pk"), content_object=account, permission__codename="draft_socialaccount"
    )
    people = User.objects.filter(is_active=True).filter(Q(Exists(role)) | Q(Exists(granted)))
    return people.order_by("username")


def inbox_people(*, user: User) -> QuerySet[User]:
    """The active people who may see at least one of the accounts `user` sees: whom the inbox's
    "assigned to" filter and its bulk assignment offer. One query (the scope is nested in it)."""
    accounts = social_accounts_for(user=user)
    role = Membership.objects.filter(user=OuterRef("pk")).filter(
        Exists(accounts.filter(StartsWith(F("team__path"), OuterRef("team__path"))))
    )
    granted = SocialAccountUserObjectPermission.objects.filter(
        user=OuterRef("pk"),
        permission__codename="draft_socialaccount",
        content_object__in=Subquery(accounts.values("pk")),
    )
    people = User.objects.filter(is_active=True).filter(Q(Exists(role)) | Q(Exists(granted)))
    return people.order_by("username")


def item_replies(*, item: InboundItem) -> list[PostTarget]:
    """Our replies to `item` (drafts too), oldest first, each with its post: one query."""
    return list(
        PostTarget.objects.filter(
            social_account_id=item.account_id, in_reply_to__network_id=item.network_id
        )
        .select_related("post")
        .order_by("pk")
    )


def responses_seen_by(*, user: User) -> QuerySet[ApprovedResponse]:
    """The approved responses `user` may read, active or withdrawn: those of the teams they hold
    a role on (a role holds for the teams below) and of the teams above them, from which the
    responses are offered down. One query, the team joined: the role check is two EXISTS on the
    person's memberships, by the teams' paths."""
    if not (user.is_authenticated and user.is_active):
        return ApprovedResponse.objects.none()
    found = ApprovedResponse.objects.select_related("team")
    if user.is_superuser:
        return found
    above_mine = Exists(
        Membership.objects.filter(user=user).filter(
            StartsWith(F("team__path"), OuterRef("team__path"))
        )
    )
    return found.filter(Q(holds_role_over(user, ALL_ROLES, "team__path")) | Q(above_mine))
