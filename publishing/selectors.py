"""Reads of posts and media, scoped to the user asking, in a fixed number of queries."""

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Substr

from accounts.models import Role, Team, User
from accounts.selectors import teams_for, user_has_role
from networks.models import SocialAccount
from networks.selectors import social_accounts_for

from .models import Media, Post, PostMedia, PostTarget, PostVersion


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
_LISTED_POST_COLUMNS = (
    "team_id",
    "author_id",
    "status",
    "version",
    "content_hash",
    "body",
    "link",
    "scheduled_at",
    "timezone",
    "tags",
    "campaign",
    "urgent",
    "submitted_at",
    "created_at",
    "updated_at",
)
_LISTED_TARGET_COLUMNS = (
    "post_id",
    "social_account_id",
    "body",
    "status",
    "external_id",
    "external_url",
    "attempt_count",
    "last_error",
    "published_at",
    "held_reason",
    "reconcile_candidates",
)


def with_listing(posts: QuerySet[Post]) -> QuerySet[Post]:
    """`with_details` for a page of the API: the targets and media of the whole page in two
    queries as well, but kept in lists on each post (`targets_list`, `post_media_list`) rather
    than in its related managers, which cost Django a queryset a post; the accounts of the
    page's targets in a third query, each account once however many targets name it; and only
    the columns the API shows."""
    accounts = SocialAccount.objects.only("handle", "channel")
    targets = PostTarget.objects.only(*_LISTED_TARGET_COLUMNS).order_by("id")
    return (
        posts.select_related(None)
        .only(*_LISTED_POST_COLUMNS)
        .prefetch_related(
            Prefetch(
                "targets",
                queryset=targets.prefetch_related(Prefetch("social_account", queryset=accounts)),
                to_attr="targets_list",
            ),
            Prefetch(
                "post_media",
                queryset=PostMedia.objects.only("post_id", "media_id").order_by("position"),
                to_attr="post_media_list",
            ),
        )
    )


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
