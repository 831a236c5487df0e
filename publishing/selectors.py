"""Reads of posts and media, scoped to the user asking, in a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Substr

from accounts.models import Role, Team, User
from accounts.selectors import teams_for, user_has_role
from cxhub.statements import Page, Statement
from networks.selectors import social_accounts_for

from .models import Media, Post, PostMedia, PostTarget, PostVersion, TargetMetrics


def posts_for(*, user: User) -> QuerySet[Post]:
    """Posts of the teams where the user holds any role (or below them), and their own posts.

    The scope is one subquery; listing with `with_details` adds one query per relation
    (targets with accounts, media), whatever the number of posts.
    """
    if not (user.is_authenticated and user.is_active):
        return Post.objects.none()
    posts = Post.objects.select_related("team", "author")
    if user.is_superuser:
        return posts
    return posts.filter(Q(team__in=teams_for(user=user)) | Q(author=user))


def with_details(posts: QuerySet[Post]) -> QuerySet[Post]:
    """Targets (with their accounts) and media in two extra queries for the whole page."""
    return posts.prefetch_related(
        Prefetch(
            "targets",
            queryset=PostTarget.objects.select_related("social_account").order_by("id"),
        ),
        Prefetch(
            "post_media", queryset=PostMedia.objects.select_related("media").order_by("position")
        ),
    )


# What a page of the API shows of each post and target (publishing.api.serializers).
@dataclass(slots=True)
class ListedPost:
    """A post as a page of the API shows it (PostOutput), read as a row: `fill_listing` sets
    its targets and media."""

    id: int
    team_id: int
    author_id: int | None
    status: str
    version: int
    content_hash: str
    body: str
    link: str
    scheduled_at: datetime | None
    timezone: str
    tags: list
    campaign: str
    urgent: bool
    is_reply: bool
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    targets_list: list | None = None
    media_ids: list | None = None

    @property
    def pk(self) -> int:
        return self.id


_LISTED_POST_COLUMNS = tuple(
    name
    for name in ListedPost.__dataclass_fields__
    if name not in ("id", "targets_list", "media_ids")
)


@dataclass(frozen=True, slots=True)
class ListedAccount:
    """What a page of the API shows of a target's account."""

    handle: str
    channel: str


@dataclass(frozen=True, slots=True)
class ListedTarget:
    """A target as a page of the API shows it (TargetOutput), read as a row, not as a model: a
    page of 50 posts has 100 of them, and Django's instances and prefetching cost more than
    the rest of the page."""

    id: int
    post_id: int
    social_account_id: int
    body: str
    status: str
    external_id: str
    external_url: str
    attempt_count: int
    last_error: str
    published_at: datetime | None
    held_reason: str
    reconcile_candidates: list
    in_reply_to: dict
    social_account: ListedAccount


_LISTED_TARGET_COLUMNS = [
    name for name in ListedTarget.__dataclass_fields__ if name != "social_account"
]


def _page_of_posts(
    user_id, statuses, account_id, position, *, active, superuser, ordering, lookup, start, stop
):
    # The same scope and filters as post_list, for a user known by id and flags alone.
    user = User(pk=user_id, is_active=active, is_superuser=superuser)
    posts = post_list(user=user, status=statuses, account_id=account_id).order_by(*ordering)
    if lookup is not None:
        posts = posts.filter(**{lookup: position})
    return posts.values_list("id", *_LISTED_POST_COLUMNS)[start:stop]


_posts_page = Statement(_page_of_posts)


def post_listing(
    *,
    user: User,
    status: list[str],
    team_id: int | None = None,
    account_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page | QuerySet[Post]:
    """Posts I may see, as `post_list` filters them, for DRF's cursor pagination; `fill_listing`
    completes each page. Without a team or time filter (most pages), each page is read as rows
    (ListedPost) by a statement compiled once for its shape (cxhub.statements); with one, by
    the ORM (`for_listing`): the team's path and the times are not arguments a statement takes."""
    if team_id is not None or since is not None or until is not None:
        return for_listing(
            post_list(
                user=user,
                status=status,
                team_id=team_id,
                account_id=account_id,
                since=since,
                until=until,
            )
        )
    active, superuser = bool(user.is_active), bool(user.is_superuser)
    return Page(
        _posts_page,
        Post,
        lambda row: ListedPost(*row),
        user.pk if active and not superuser else None,  # the scope of others has no user in it
        list(status),
        account_id,
        active=active,
        superuser=superuser,
    )


def for_listing(posts: QuerySet[Post]) -> QuerySet[Post]:
    """Posts for a page of the API: only the columns it shows; `fill_listing` adds the rest
    once the page is cut."""
    return posts.select_related(None).only(*_LISTED_POST_COLUMNS)


_page_targets = Statement(
    lambda post_ids: (
        PostTarget.objects.filter(post_id__in=post_ids)
        .order_by("id")
        .values_list(*_LISTED_TARGET_COLUMNS, "social_account__handle", "social_account__channel")
    )
)
_page_media = Statement(
    lambda post_ids: (
        PostMedia.objects.filter(post_id__in=post_ids)
        .order_by("position")
        .values_list("post_id", "media_id")
    )
)


def fill_listing(posts: list[Post] | list[ListedPost]) -> list:
    """The targets and media of a page of posts, in two queries whatever its length, set on
    each post as `targets_list` (ListedTarget rows, by id) and `media_ids` (by position). Both
    queries are compiled once for each length of page (cxhub.statements)."""
    ids = [post.pk for post in posts]
    targets: dict[int, list[ListedTarget]] = {pk: [] for pk in ids}
    accounts: dict[int, ListedAccount] = {}
    for *columns, handle, channel in _page_targets(ids):
        _, post_id, account_id = columns[:3]
        account = accounts.get(account_id)
        if account is None:
            account = accounts[account_id] = ListedAccount(handle=handle, channel=channel)
        targets[post_id].append(ListedTarget(*columns, social_account=account))
    media: dict[int, list[int]] = {pk: [] for pk in ids}
    for post_id, media_id in _page_media(ids):
        media[post_id].append(media_id)
    for post in posts:
        post.targets_list = targets[post.pk]
        post.media_ids = media[post.pk]
    return posts


def post_get(*, user: User, post_id: int) -> Post | None:
    return with_details(posts_for(user=user)).filter(pk=post_id).first()


def post_list(
    *,
    user: User,
    status: list[str] | None = None,
    team_id: int | None = None,
    account_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Post]:
    """Filtered posts; the date range applies to the scheduled time."""
    posts = posts_for(user=user)
    if status:
        posts = posts.filter(status__in=status)
    if team_id is not None:
        # The team and the teams below it.
        scope = teams_for(user=user).filter(pk=team_id).values_list("path", flat=True).first()
        if scope is None:
            return Post.objects.none()
        posts = posts.filter(team__path__startswith=scope)
    if account_id is not None:
        posts = posts.filter(targets__social_account_id=account_id).distinct()
    if since is not None:
        posts = posts.filter(scheduled_at__gte=since)
    if until is not None:
        posts = posts.filter(scheduled_at__lt=until)
    return posts


def post_versions(*, post: Post) -> QuerySet[PostVersion]:
    return post.versions.select_related("created_by").order_by("-version")


def can_draft_for_team(*, user: User, team) -> bool:
    return user_has_role(user=user, team=team, role=Role.DRAFTER)


def can_edit(*, user: User, post: Post) -> bool:
    """The author, or any drafter of the post's team (or a team above it)."""
    if not (user.is_authenticated and user.is_active):
        return False
    return post.author_id == user.pk or can_draft_for_team(user=user, team=post.team)


def drafting_accounts(*, user: User):
    return social_accounts_for(user=user, roles=[Role.DRAFTER])


def media_visible(*, user: User) -> QuerySet[Media]:
    """Media the user may look at: what they may use, plus what is attached to posts they may
    see (an approver reviewing a post sees its images)."""
    if not (user.is_authenticated and user.is_active):
        return Media.objects.none()
    on_visible_posts = PostMedia.objects.filter(post__in=posts_for(user=user)).values("media_id")
    return Media.objects.filter(
        Q(pk__in=media_for(user=user).values("pk")) | Q(pk__in=on_visible_posts)
    )


def media_for(*, user: User) -> QuerySet[Media]:
    """Media of the teams the user drafts for, and media they uploaded."""
    if not (user.is_authenticated and user.is_active):
        return Media.objects.none()
    if user.is_superuser:
        return Media.objects.all()
    return Media.objects.filter(
        Q(team__in=teams_for(user=user, roles=[Role.DRAFTER])) | Q(uploaded_by=user)
    )


# Pages -----------------------------------------------------------------------------------------
def last_timezone(*, user: User) -> str | None:
    """The time zone of the user's latest post: the compose page's default. One query."""
    if not (user.is_authenticated and user.is_active):
        return None
    return (
        Post.objects.filter(author=user).order_by("-pk").values_list("timezone", flat=True).first()
    )


def _with_networks(posts: QuerySet[Post]) -> QuerySet[Post]:
    """Each post's targets with their account's network and handle: one query for the page."""
    return posts.prefetch_related(
        Prefetch(
            "targets",
            queryset=PostTarget.objects.select_related("social_account")
            .only("id", "post_id", "social_account__channel", "social_account__handle")
            .order_by("id"),
        )
    )


def _in_subtree(posts: QuerySet[Post], team: Team | None) -> QuerySet[Post]:
    """Posts of `team` and the teams below it. The caller got `team` from `teams_for` (the
    user's scope still comes from `posts_for`): its path is known, so no query to find it."""
    return posts if team is None else posts.filter(team__path__startswith=team.path)


def post_list_page(
    *,
    user: User,
    status: list[str] | None = None,
    team: Team | None = None,
    account_id: int | None = None,
    before_id: int | None = None,
    size: int = 50,
) -> list[Post]:
    """Up to `size + 1` posts, newest first, older than `before_id` (keyset: no COUNT, no
    OFFSET). The extra one tells the caller there is an older page. Posts (with team and author)
    in one query, their targets' accounts in one more, whatever the table size."""
    posts = _in_subtree(post_list(user=user, status=status, account_id=account_id), team)
    if before_id is not None:
        posts = posts.filter(pk__lt=before_id)
    return list(_with_networks(posts.order_by("-pk"))[: size + 1])


def _calendar_shape(posts: QuerySet[Post]) -> QuerySet[Post]:
    # Only what a calendar entry shows: the body is cut to an excerpt in the database.
    return _with_networks(
        posts.select_related(None)
        .only("id", "status", "scheduled_at", "timezone")
        .annotate(excerpt=Substr("body", 1, 80))
    )


def calendar_posts(
    *,
    user: User,
    since: datetime,
    until: datetime,
    status: list[str] | None = None,
    team: Team | None = None,
    account_id: int | None = None,
) -> list[Post]:
    """Posts scheduled in [since, until), earliest first, with `excerpt` and their targets'
    networks: two queries whatever the number of posts."""
    posts = post_list(user=user, status=status, account_id=account_id, since=since, until=until)
    posts = _in_subtree(posts, team)
    return list(_calendar_shape(posts).order_by("scheduled_at", "pk"))


def unscheduled_posts(
    *,
    user: User,
    status: list[str] | None = None,
    team: Team | None = None,
    account_id: int | None = None,
    limit: int = 50,
) -> list[Post]:
    """The newest `limit` posts without a time ("as soon as approved"), shaped as
    `calendar_posts`: two queries."""
    posts = _in_subtree(post_list(user=user, status=status, account_id=account_id), team)
    posts = posts.filter(scheduled_at__isnull=True)
    return list(_calendar_shape(posts).order_by("-pk")[:limit])


# Engagement ---------------------------------------------------------------------------------------
ENGAGEMENT_FIGURES = ("likes", "reposts", "replies", "quotes", "impressions", "clicks")


@dataclass(frozen=True)
class TargetEngagement:
    """One target's readings (oldest first) and the latest of them (None before the first)."""

    target: PostTarget
    series: list[TargetMetrics]

    @property
    def latest(self) -> TargetMetrics | None:
        return self.series[-1] if self.series else None


def post_engagement(*, post: Post) -> list[TargetEngagement]:
    """The readings of each of the post's targets (a post the caller may already see): two
    queries whatever the number of targets and readings (targets with their accounts, then the
    readings)."""
    targets = list(post.targets.select_related("social_account").order_by("pk"))
    readings: dict[int, list[TargetMetrics]] = {target.pk: [] for target in targets}
    for reading in TargetMetrics.objects.filter(target__in=targets).order_by("target", "at", "pk"):
        readings[reading.target_id].append(reading)
    return [TargetEngagement(target=target, series=readings[target.pk]) for target in targets]
