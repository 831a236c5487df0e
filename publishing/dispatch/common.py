"""Pieces that several stages of dispatch share: the log line's format, why a target is held,
the active freezes matched in memory, a post settled once its targets are final, and the alert
to a post's author and leads.
"""

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from accounts.models import Membership, Role, User
from accounts.notifications import notify
from audit.services import record

from ..models import POST_TRANSITIONS, Post, PostStatus, PostTarget, PublishingFreeze, TargetStatus

log = logging.getLogger("cxhub.publish")

Scope = PublishingFreeze.Scope

# Why a target is held (PostTarget.held_reason); a release finds its own.
HOLD_FREEZE = "freeze"
HOLD_ACCOUNT = "account"
HOLD_CONTENT = "content"
# Reconcile could not tell whether it went out: a person decides (sweep.target_decide).
HOLD_DECISION = "decision"

FINAL_TARGET_STATUSES = frozenset(
    {TargetStatus.PUBLISHED, TargetStatus.FAILED, TargetStatus.CANCELLED}
)


# Logging ------------------------------------------------------------------------------------------
def _kv(**fields: Any) -> str:
    """key=value pairs for one log line; values with spaces or quotes are JSON-quoted."""
    parts = []
    for key, value in fields.items():
        if value is None or value == "":
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if any(char in text for char in ' ="\n\t') or not text:
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


# Freezes ------------------------------------------------------------------------------------------
def _topic_key(text: object) -> str:
    """A tag or campaign as a topic freeze compares it: without case, surrounding spaces or a
    leading '#' ("#Census " and "census" are one topic)."""
    return text.strip().lstrip("#").strip().casefold() if isinstance(text, str) else ""


def _topic_keys(tags: object) -> frozenset[str]:
    """A post's (or a freeze's) tags as a topic freeze compares them."""
    if not isinstance(tags, list | tuple):
        return frozenset()
    return frozenset(key for key in map(_topic_key, tags) if key)


@dataclass(frozen=True)
class _Topic:
    """A topic freeze as the dispatcher matches it: its team's path, tags and campaign (keys)."""

    freeze_id: int
    path: str
    tags: frozenset[str]
    campaign: str

    def on_topic(self, *, tag_keys: frozenset[str], campaign_key: str) -> bool:
        """Whether a post is on this topic (its team aside), by its tags and campaign as
        `_topic_keys` and `_topic_key` give them."""
        if self.campaign and campaign_key == self.campaign:
            return True
        return not self.tags.isdisjoint(tag_keys)


@dataclass
class _ActiveFreezes:
    """The active freezes, loaded once per transaction (there are few), matched in Python."""

    everything: int | None = None
    teams: list[tuple[str, int]] = field(default_factory=list)
    accounts: dict[int, int] = field(default_factory=dict)
    topics: list[_Topic] = field(default_factory=list)

    def match(self, target: PostTarget) -> int | None:
        """The id of a freeze covering `target` (post, post.team and social_account.team
        loaded)."""
        post = target.post
        return self.covering(
            account_id=target.social_account_id,
            paths=(target.social_account.team.path, post.team.path),
            tags=post.tags,
            campaign=post.campaign,
        )

    def covering(
        self, *, account_id: int, paths: tuple[str, ...], tags: object = (), campaign: object = ""
    ) -> int | None:
        """The id of a freeze covering an account's post (`paths`: the teams of the account and
        of the post; `tags` and `campaign`: the post's, for topic freezes)."""
        if self.everything is not None:
            return self.everything
        if account_id in self.accounts:
            return self.accounts[account_id]
        for team_path, freeze_id in self.teams:
            if any(path.startswith(team_path) for path in paths):
                return freeze_id
        if self.topics:
            tag_keys, campaign_key = _topic_keys(tags), _topic_key(campaign)
            for topic in self.topics:
                if any(path.startswith(topic.path) for path in paths) and topic.on_topic(
                    tag_keys=tag_keys, campaign_key=campaign_key
                ):
                    return topic.freeze_id
        return None


def _freezes_of(freezes: Iterable[PublishingFreeze]) -> _ActiveFreezes:
    """Freezes (their team loaded) as the dispatcher matches them, whether active or not."""
    found = _ActiveFreezes()
    for freeze in freezes:
        if freeze.scope == Scope.EVERYTHING and found.everything is None:
            found.everything = freeze.pk
        elif freeze.scope == Scope.TEAM:
            found.teams.append((freeze.team.path, freeze.pk))
        elif freeze.scope == Scope.ACCOUNT:
            found.accounts.setdefault(freeze.social_account_id, freeze.pk)
        elif freeze.scope == Scope.TOPIC:
            found.topics.append(
                _Topic(
                    freeze_id=freeze.pk,
                    path=freeze.team.path,
                    tags=_topic_keys(freeze.tags),
                    campaign=_topic_key(freeze.campaign),
                )
            )
    return found


def _active_freezes() -> _ActiveFreezes:
    """One query."""
    return _freezes_of(
        PublishingFreeze.objects.filter(active=True)
        .select_related("team")
        .order_by("id")
        .only("id", "scope", "team__path", "social_account_id", "tags", "campaign")
    )


class _RecentFreezes:
    """The active freezes as this process read them at most FREEZE_RECHECK_SECONDS ago: each
    send checks them just before it starts (lanes.py), so that a freeze stops the sends a worker
    had claimed and not yet made, at the cost of a query or two a second per process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.read_at = -float("inf")
        self.found = _ActiveFreezes()

    def now(self) -> _ActiveFreezes:
        with self.lock:
            if time.monotonic() - self.read_at >= FREEZE_RECHECK_SECONDS:
                self.found = _active_freezes()
                self.read_at = time.monotonic()
            return self.found

    def saw(self, found: _ActiveFreezes) -> None:
        """What a claim has just read: the latest."""
        with self.lock:
            self.found = found
            self.read_at = time.monotonic()


FREEZE_RECHECK_SECONDS = 0.5
recent_freezes = _RecentFreezes()


def _freeze_scope(freeze: PublishingFreeze) -> Q:
    """The targets a freeze covers: a team freeze covers the accounts of the subtree and the
    posts of the subtree (whoever's account they go to). For a topic freeze, the same as its
    team's: the candidates, of which those on the topic are picked in Python (JSON lookups on
    tags are not available on SQLite): `_freezes_of([freeze])` matches them."""
    if freeze.scope == Scope.EVERYTHING:
        return Q()
    if freeze.scope == Scope.ACCOUNT:
        return Q(social_account_id=freeze.social_account_id)
    path = freeze.team.path
    return Q(social_account__team__path__startswith=path) | Q(post__team__path__startswith=path)


# Posts settled, people alerted --------------------------------------------------------------------
def _settle_posts(
    posts: list[Post], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Posts whose targets are all final become published, partially published or failed. The
    caller holds the posts' locks, so two groups finishing at once settle each post once.
    Writes the posts; returns their audit events and the authors' notifications, for the
    caller to write with the rest of its transaction's."""
    if not posts:
        return [], []
    statuses: dict[int, list[str]] = defaultdict(list)
    for post_id, status in PostTarget.objects.filter(
        post_id__in=[post.pk for post in posts]
    ).values_list("post_id", "status"):
        statuses[post_id].append(status)
    moving: dict[str, list[Post]] = defaultdict(list)
    events, told = [], []
    for post in posts:
        mine = statuses.get(post.pk, [])
        if not mine or any(status not in FINAL_TARGET_STATUSES for status in mine):
            continue
        published = mine.count(TargetStatus.PUBLISHED)
        failed = mine.count(TargetStatus.FAILED)
        # A target cancelled part-way (the post was stopped) did not go out either.
        stopped = mine.count(TargetStatus.CANCELLED)
        if published and not failed and not stopped:
            to = PostStatus.PUBLISHED
        elif published:
            to = PostStatus.PARTIALLY_PUBLISHED
        elif stopped:
            to = PostStatus.CANCELLED
        else:
            to = PostStatus.FAILED
        if post.status == to:
            continue
        if to not in POST_TRANSITIONS[post.status]:
            log.error(_kv(event="publish.settle_refused", post=post.pk, status=post.status, to=to))
            continue
        events.append(
            {
                "actor": None,
                "action": f"post.{to}",
                "obj": post,
                "team": post.team,
                "data": {
                    "status_before": post.status,
                    "published": published,
                    "failed": failed,
                    "targets": len(mine),
                },
            }
        )
        post.status = to
        post.published_at = now if published else None
        moving[to].append(post)
        if published:
            # Failures alerted the author and leads as they happened; tell the author it went.
            told.append((post, f"{published} of {len(mine)} accounts published it."))
    for to, group in moving.items():
        Post.objects.filter(pk__in=[post.pk for post in group]).update(
            status=to, published_at=group[0].published_at, updated_at=now
        )
    authors = User.objects.in_bulk({post.author_id for post, _ in told}) if told else {}
    messages = [
        {
            "user": authors.get(post.author_id),
            "kind": f"post.{post.status}",
            "title": f"Post #{post.pk} is {PostStatus(post.status).label.lower()}",
            "body": body,
            "url": _post_url(post),
            "post_id": post.pk,
        }
        for post, body in told
    ]
    return events, messages


def _lead_ids(post: Post) -> list[int]:
    """Leads of the post's team or a team above it. One query."""
    step = post.team.steplen
    paths = [post.team.path[:end] for end in range(step, len(post.team.path) + 1, step)]
    return sorted(
        set(
            Membership.objects.filter(
                role=Role.LEAD, team__path__in=paths, user__is_active=True
            ).values_list("user_id", flat=True)
        )
    )


def _post_url(post: Post) -> str:
    try:
        return reverse("post-detail", kwargs={"post_id": post.pk})
    except NoReverseMatch:  # an API-only deployment
        return f"/posts/{post.pk}/"


def _alert(post: Post, *, target: PostTarget | None, subject: str) -> None:
    """Tell the author and the team's leads: an in-app notification each (e-mailed by its own
    task once this transaction commits), an audit event and a log line."""
    leads = _lead_ids(post)
    detail = target.last_error[:1000] if target else ""
    notify(
        users=User.objects.filter(pk__in=[post.author_id, *leads], is_active=True),
        kind="publish.alert",
        title=f"Post #{post.pk}: {subject}",
        body=f"{target.social_account.handle}: {detail}" if target else "",
        url=_post_url(post),
        post_id=post.pk,
    )
    record(
        actor=None,
        action="publish.alert",
        obj=post,
        team=post.team,
        data={
            "subject": subject,
            "target": target.pk if target else None,
            "error": detail,
            "notify": {"author": post.author_id, "leads": leads},
        },
    )
    log.warning(
        _kv(
            event="publish.alert",
            post=post.pk,
            target=target.pk if target else None,
            author=post.author_id,
            leads=",".join(map(str, leads)),
            subject=subject,
        )
    )
