"""Publishing freezes (DESIGN §3, issue 5 item 4): a lead stops publishing for everything, a team
subtree, one account, or the posts on a topic (tags or campaign) of a team subtree (issue 18: an
alert's "freeze posts on this topic"), with a reason; what a freeze holds is held, never lost, goes
out when it is lifted, or at a new time a lead gives it. The dispatcher (publishing/dispatch/)
holds targets a freeze covers, at claim and again just before sending; these are the services and
reads of the freeze page and API.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Role, User
from accounts.selectors import teams_for
from audit.services import record
from cxhub.api import MAX_ID
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from networks.selectors import social_accounts_for

from .dispatch.common import (
    HOLD_FREEZE,
    _active_freezes,
    _freeze_scope,
    _freezes_of,
    _kv,
    _lead_ids,
    _Topic,
    _topic_key,
    _topic_keys,
)
from .models import Post, PostTarget, PublishingFreeze, TargetStatus
from .services import MAX_TAG_LENGTH, MAX_TAGS

log = logging.getLogger("cxhub.publish")

Scope = PublishingFreeze.Scope
REASON_MAX = 2000
CAMPAIGN_MAX = PublishingFreeze._meta.get_field("campaign").max_length


# Freezes: services --------------------------------------------------------------------------------
def _field_error(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(f"{field_name}: {message}", {"fields": {field_name: [message]}})


def _clean_reason(reason: str, field_name: str = "reason") -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise _field_error(field_name, "Give the reason: it is shown to everyone it stops.")
    if len(reason) > REASON_MAX:
        raise _field_error(field_name, f"At most {REASON_MAX:,} characters.")
    return reason


def _clean_topic(scope: str, tags: object, campaign: object) -> tuple[list[str], str]:
    """A topic freeze's tags (as given, without a leading '#', each once whatever its case)
    and campaign; the other scopes take neither."""
    if tags is None:
        tags = []
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise _field_error("tags", "Give the tags as a list of texts.")
    if campaign is None:
        campaign = ""
    if not isinstance(campaign, str):
        raise _field_error("campaign", "Give the campaign as text.")
    cleaned: dict[str, str] = {}
    for tag in tags:
        shown = tag.strip().lstrip("#").strip()
        if len(shown) > MAX_TAG_LENGTH:
            raise _field_error("tags", f"A tag has at most {MAX_TAG_LENGTH} characters.")
        if shown:
            cleaned.setdefault(_topic_key(shown), shown)
    if len(cleaned) > MAX_TAGS:
        raise _field_error("tags", f"At most {MAX_TAGS} tags.")
    campaign = campaign.strip()
    if len(campaign) > CAMPAIGN_MAX:
        raise _field_error("campaign", f"At most {CAMPAIGN_MAX} characters.")
    if scope != Scope.TOPIC:
        # A lead who typed a topic and chose another scope meant something narrower.
        if cleaned:
            raise _field_error("tags", "Tags narrow a topic freeze only: choose the topic scope.")
        if campaign:
            raise _field_error(
                "campaign", "A campaign narrows a topic freeze only: choose the topic scope."
            )
    elif not cleaned and not campaign:
        message = "Give at least one tag or a campaign: the topic to freeze."
        raise ApplicationError(
            f"tags: {message}", {"fields": {"tags": [message], "campaign": [message]}}
        )
    return list(cleaned.values()), campaign


def leads_everything(*, user: User) -> bool:
    """Whether `user` may freeze the whole organisation: a lead of a root team. One query."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return teams_for(user=user, roles=[Role.LEAD]).filter(depth=1).exists()


@transaction.atomic
def freeze_create(
    *,
    by: User,
    scope: str,
    reason: str,
    team_id: int | None = None,
    social_account_id: int | None = None,
    tags: list[str] | tuple[str, ...] = (),
    campaign: str = "",
) -> PublishingFreeze:
    """Stop publishing in a scope: its waiting and queued targets are held now, and the
    dispatcher and publish_target hold any other as they reach it. What is already being
    sent finishes. A topic freeze (`team_id` with `tags` and/or `campaign`) covers the posts
    of the team's subtree, or going to its accounts, that carry one of the tags (without case
    or a leading '#') or are in the campaign (without case)."""
    if scope not in Scope.values:
        raise _field_error("scope", f"Choose one of: {', '.join(Scope.values)}.")
    reason = _clean_reason(reason)
    tags, campaign = _clean_topic(scope, tags, campaign)
    team = account = None
    if scope in (Scope.TEAM, Scope.TOPIC):
        team = teams_for(user=by, roles=[Role.LEAD]).filter(pk=team_id).first() if team_id else None
        if team is None:
            raise _field_error("team", "No team with this id that you lead.")
    elif scope == Scope.ACCOUNT:
        account = (
            social_accounts_for(user=by, roles=[Role.LEAD], include_grants=False)
            .filter(pk=social_account_id)
            .first()
            if social_account_id
            else None
        )
        if account is None:
            raise _field_error("social_account", "No social account with this id that you lead.")
    elif not leads_everything(user=by):
        raise NotAllowed("Only a lead of the whole organisation can freeze everything.")
    freeze = PublishingFreeze.objects.create(
        scope=scope,
        team=team,
        social_account=account,
        tags=tags,
        campaign=campaign,
        reason=reason,
        created_by=by,
    )
    waiting = PostTarget.objects.select_for_update(of=("self",)).filter(
        _freeze_scope(freeze), status__in=[TargetStatus.WAITING, TargetStatus.QUEUED]
    )
    sending = PostTarget.objects.filter(_freeze_scope(freeze), status=TargetStatus.SENDING)
    if scope == Scope.TOPIC:
        # The team's candidates, with their post's tags and campaign, picked here.
        (topic,) = _freezes_of([freeze]).topics
        held = _on_topic(topic, waiting.order_by("id"))
        already_sending = len(_on_topic(topic, sending))
    else:
        held = list(waiting.order_by("id").values_list("pk", flat=True))
        already_sending = sending.count()
    if held:
        PostTarget.objects.filter(pk__in=held).update(
            status=TargetStatus.HELD, held_reason=HOLD_FREEZE, queued_at=None
        )
    data = {
        "scope": scope,
        "team": team.pk if team else None,
        "social_account": account.pk if account else None,
        "reason": reason,
        "held": len(held),
        "already_sending": already_sending,
    }
    if scope == Scope.TOPIC:
        data |= {"tags": tags, "campaign": campaign}
    record(
        actor=by,
        action="freeze.created",
        obj=freeze,
        team=team or (account.team if account else None),
        data=data,
    )
    log.warning(
        _kv(event="freeze.created", freeze=freeze.pk, scope=scope, held=len(held), by=by.pk)
    )
    freeze.held_count = len(held)
    return freeze


def _on_topic(topic: _Topic, targets: QuerySet[PostTarget]) -> list[int]:
    """The ids of `targets` (of the topic's team already) whose post is on the topic. One
    query, of three columns a row."""
    rows = targets.values_list("pk", "post__tags", "post__campaign")
    return [
        pk
        for pk, tags, campaign in rows
        if topic.on_topic(tag_keys=_topic_keys(tags), campaign_key=_topic_key(campaign))
    ]


@transaction.atomic
def freeze_lift(*, freeze: PublishingFreeze, by: User, reason: str) -> PublishingFreeze:
    """Lift a freeze: the targets it held wait again, due at their own time (or now, if that
    passed), unless another active freeze still covers them."""
    if not freezes_for(user=by).filter(pk=freeze.pk).exists():
        raise NotAllowed("Only a lead of the freeze's scope can lift it.")
    freeze = (
        PublishingFreeze.objects.select_for_update(of=("self",))
        .select_related("team")
        .get(pk=freeze.pk)
    )
    if not freeze.active:
        raise InvalidTransition("This freeze was lifted already.", {"active": False})
    reason = _clean_reason(reason)
    now = timezone.now()
    freeze.active = False
    freeze.lifted_by = by
    freeze.lifted_at = now
    freeze.lift_reason = reason
    freeze.save(update_fields=["active", "lifted_by", "lifted_at", "lift_reason"])
    candidates = list(
        PostTarget.objects.select_for_update(of=("self",))
        .select_related("post__team", "social_account__team")
        .filter(_freeze_scope(freeze), status=TargetStatus.HELD, held_reason=HOLD_FREEZE)
        .order_by("id")
    )
    # A topic freeze's candidates are all its team's held targets, on its topic or not: a post
    # whose tags changed while it was held must not stay held with no freeze to lift.
    others = _active_freezes()
    released = [target.pk for target in candidates if others.match(target) is None]
    if released:
        PostTarget.objects.filter(pk__in=released).update(
            status=TargetStatus.WAITING,
            held_reason="",
            next_attempt_at=Greatest(Coalesce(F("next_attempt_at"), Value(now)), Value(now)),
        )
    record(
        actor=by,
        action="freeze.lifted",
        obj=freeze,
        team=freeze.team or (freeze.social_account.team if freeze.social_account_id else None),
        data={
            "reason": reason,
            "released": len(released),
            "still_frozen": len(candidates) - len(released),
        },
    )
    log.warning(_kv(event="freeze.lifted", freeze=freeze.pk, released=len(released), by=by.pk))
    freeze.released_count = len(released)
    return freeze


@transaction.atomic
def held_post_reschedule(*, post: Post, by: User, scheduled_at: datetime, reason: str) -> int:
    """A lead gives a post that a freeze holds a new time: its held targets go out then, or, if
    a freeze still holds them at that time, when it is lifted (never before the new time).
    Returns how many targets were moved."""
    if by.pk not in _lead_ids(post) and not by.is_superuser:
        raise NotAllowed("Only a lead of the post's team (or a team above it) can reschedule it.")
    reason = _clean_reason(reason)
    if scheduled_at is None or timezone.is_naive(scheduled_at):
        raise _field_error("scheduled_at", "Give the new time with its time zone.")
    now = timezone.now()
    if scheduled_at <= now:
        raise _field_error("scheduled_at", "Choose a time in the future.")
    post = Post.objects.select_for_update(of=("self",)).select_related("team").get(pk=post.pk)
    held = list(
        PostTarget.objects.select_for_update(of=("self",))
        .select_related("post__team", "social_account__team")
        .filter(post=post, status=TargetStatus.HELD, held_reason=HOLD_FREEZE)
        .order_by("id")
    )
    if not held:
        raise InvalidTransition(
            "No account of this post is held by a freeze: there is nothing to reschedule.",
            {"status": post.status},
        )
    freezes = _active_freezes()
    free = [target.pk for target in held if freezes.match(target) is None]
    ids = [target.pk for target in held]
    PostTarget.objects.filter(pk__in=ids).update(next_attempt_at=scheduled_at)
    if free:  # the freeze went meanwhile: they wait for their new time
        PostTarget.objects.filter(pk__in=free).update(status=TargetStatus.WAITING, held_reason="")
    before = post.scheduled_at
    post.scheduled_at = scheduled_at
    post.save(update_fields=["scheduled_at", "updated_at"])
    record(
        actor=by,
        action="post.held_rescheduled",
        obj=post,
        team=post.team,
        data={
            "scheduled_before": before,
            "scheduled_at": scheduled_at,
            "reason": reason,
            "targets": ids,
            "still_held": len(ids) - len(free),
        },
    )
    log.warning(_kv(event="post.held_rescheduled", post=post.pk, targets=len(ids), by=by.pk))
    return len(ids)


def held_post_get(*, user: User, post_id: int) -> Post | None:
    """A post with an account held by a freeze, if `user` leads its team or that account's
    team (else None: the caller answers 404)."""
    if not (user.is_authenticated and user.is_active) or not 1 <= post_id <= MAX_ID:
        return None  # an id no bigint can hold: SQLite would overflow on the foreign key
    teams = teams_for(user=user, roles=[Role.LEAD])
    target = (
        PostTarget.objects.filter(post_id=post_id, status=TargetStatus.HELD)
        .filter(held_reason=HOLD_FREEZE)
        .filter(Q(post__team__in=teams) | Q(social_account__team__in=teams))
        .select_related("post__team")
        .first()
    )
    return target.post if target else None


def held_posts_for(*, user: User, limit: int = 100) -> list[dict[str, Any]]:
    """Posts with accounts held by a freeze, in the scope `user` leads (posts of those teams, or
    going to their accounts), soonest first: [{"post", "targets"}]. One query."""
    if not (user.is_authenticated and user.is_active):
        return []
    teams = teams_for(user=user, roles=[Role.LEAD])
    rows = (
        PostTarget.objects.filter(status=TargetStatus.HELD, held_reason=HOLD_FREEZE)
        .filter(Q(post__team__in=teams) | Q(social_account__team__in=teams))
        .select_related("post__team", "social_account")
        .order_by("post__scheduled_at", "post_id", "id")
    )
    posts: dict[int, dict[str, Any]] = {}
    for target in rows[: limit * 10]:
        entry = posts.get(target.post_id)
        if entry is None:
            if len(posts) == limit:
                break
            entry = posts[target.post_id] = {"post": target.post, "targets": []}
        entry["targets"].append(target)
    return list(posts.values())


# Reads (scoped to the user asking) ------------------------------------------------------------
def freezes_for(*, user: User) -> QuerySet[PublishingFreeze]:
    """Freezes the user may see and lift: those of teams (and accounts of teams) they lead, and
    freezes of everything for leads of a root team. One query (team, account and people joined)."""
    freezes = PublishingFreeze.objects.select_related(
        "team", "social_account__team", "created_by", "lifted_by"
    )
    if not (user.is_authenticated and user.is_active):
        return freezes.none()
    if user.is_superuser:
        return freezes
    led = teams_for(user=user, roles=[Role.LEAD])
    return freezes.filter(
        Q(scope__in=[Scope.TEAM, Scope.TOPIC], team__in=led)
        | Q(scope=Scope.ACCOUNT, social_account__team__in=led)
        | (Q(scope=Scope.EVERYTHING) & Q(Exists(led.filter(depth=1))))
    )


def freeze_get(*, user: User, freeze_id: int) -> PublishingFreeze | None:
    return freezes_for(user=user).filter(pk=freeze_id).first()
