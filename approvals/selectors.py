"""Reads of the approval chain, scoped to the user asking."""

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from cxhub.statements import Page, Statement
from publishing.selectors import posts_for

from .models import ApprovalRequest, ApprovalStep, Decision, StepStatus


def inbox_for(*, user: User) -> QuerySet[ApprovalStep]:
    """Steps waiting for `user`: active, `user` among their deciders, not yet decided by them on
    that request. Oldest first. One query (post, team and author joined in)."""
    if not (user.is_authenticated and user.is_active):
        return ApprovalStep.objects.none()
    decided = Decision.objects.filter(request=OuterRef("request"), user=user)
    return (
        ApprovalStep.objects.filter(status=StepStatus.ACTIVE, eligible=user)
        .exclude(Exists(decided))
        .select_related("request__post__team", "request__post__author")
        .order_by("activated_at", "id")
    )


@dataclass(slots=True)
class WaitingStep:
    """A waiting step as a page of the inbox shows it (InboxItemOutput), read as a row:
    `fill_inbox` sets its request, with the post's body, team name and author's username."""

    id: int
    request_id: int
    order: int
    name: str
    rule: str
    activated_at: datetime | None
    due_at: datetime | None
    request: SimpleNamespace | None = None


# What the API shows of a waiting step (approvals.api.serializers.InboxItemOutput). The partial
# index on waiting steps, oldest first (step_waiting_oldest_first), lets PostgreSQL walk them in
# order until a page is full.
_INBOX_STEP_COLUMNS = tuple(
    name for name in WaitingStep.__dataclass_fields__ if name not in ("id", "request")
)


def _page_of_steps(user_id, position, *, ordering, lookup, start, stop):
    # The same steps as inbox_for, for a user known by id alone.
    steps = inbox_for(user=User(pk=user_id, is_active=True)).select_related(None)
    steps = steps.order_by(*ordering)
    if lookup is not None:
        steps = steps.filter(**{lookup: position})
    return steps.values_list("id", *_INBOX_STEP_COLUMNS)[start:stop]


_steps_page = Statement(_page_of_steps)
_requests_of_page = Statement(
    lambda request_ids: ApprovalRequest.objects.filter(pk__in=request_ids).values_list(
        "id", "post_id", "version", "post__body", "post__team__name", "post__author__username"
    )
)


def inbox_listing(*, user: User) -> Page | QuerySet[ApprovalStep]:
    """`inbox_for` for DRF's cursor pagination, each page read as rows (WaitingStep) by a
    statement compiled once for its shape (cxhub.statements); `fill_inbox` adds the requests.
    Two short queries, not one of six tables: PostgreSQL took 6 ms to plan that one, more than
    the rest of the page cost."""
    if not (user.is_authenticated and user.is_active):
        return ApprovalStep.objects.none()
    return Page(_steps_page, ApprovalStep, lambda row: WaitingStep(*row), user.pk)


def fill_inbox(steps: list[WaitingStep]) -> list[WaitingStep]:
    requests = {}
    ids = sorted({step.request_id for step in steps})
    for pk, post_id, version, body, team, author in _requests_of_page(ids):
        post = SimpleNamespace(
            body=body,
            team=SimpleNamespace(name=team),
            author=SimpleNamespace(username=author),
        )
        requests[pk] = SimpleNamespace(post_id=post_id, version=version, post=post)
    for step in steps:
        step.request = requests[step.request_id]
    return steps


def is_overdue(step: ApprovalStep, now=None) -> bool:
    return bool(step.due_at and step.due_at < (now or timezone.now()))


def requests_for(*, user: User) -> QuerySet[ApprovalRequest]:
    """Requests of posts the user may see, or where they are a decider."""
    if not (user.is_authenticated and user.is_active):
        return ApprovalRequest.objects.none()
    visible_posts = posts_for(user=user).values("pk")
    return ApprovalRequest.objects.filter(
        Q(post__in=visible_posts) | Q(steps__eligible=user)
    ).distinct()


def request_get(*, user: User, request_id: int) -> ApprovalRequest | None:
    """One request with its steps (and their deciders) and decisions: four queries."""
    return (
        requests_for(user=user)
        .select_related("post__team", "post__author")
        .prefetch_related(
            Prefetch(
                "steps",
                queryset=ApprovalStep.objects.order_by("order").prefetch_related("eligible"),
            ),
            Prefetch("decisions", queryset=Decision.objects.select_related("user")),
        )
        .filter(pk=request_id)
        .first()
    )


def requests_of_post(*, post) -> QuerySet[ApprovalRequest]:
    return (
        ApprovalRequest.objects.filter(post=post)
        .prefetch_related(
            Prefetch("steps", queryset=ApprovalStep.objects.order_by("order")),
            Prefetch("decisions", queryset=Decision.objects.select_related("user")),
        )
        .order_by("-id")
    )
