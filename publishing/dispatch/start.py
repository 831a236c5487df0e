"""Start, the second stage of dispatch: a publish task claims its queued targets again (sending)
after the last checks, and records one PublishAttempt each.

Everything that could stop a target is re-read here, under the targets' locks: a freeze, the
account's state, the approved content (recomputed from what is stored now). A target that fails
one is held with a skipped attempt (unapproved content alerts the author and leads); targets
whose task started before their time go back to waiting. What each send needs once this
transaction has committed is a _Send: the text rendered for its network, the media, the
idempotency key, and whether the network is to be asked first whether the post is there
(after an unknown outcome, or on the last try), with what may help it tell (ReconcileHints).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Value, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import record
from networks.channels import get_channel
from networks.channels.base import ReconcileHints, ReplyTo
from networks.models import AccountStatus, SocialAccount

from ..content import canonical_content, hash_content
from ..models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus
from ..preflight import delivery_channel, published_text
from .common import (
    HOLD_ACCOUNT,
    HOLD_CONTENT,
    HOLD_FREEZE,
    _active_freezes,
    _ActiveFreezes,
    _alert,
    _kv,
    recent_freezes,
)

log = logging.getLogger("cxhub.publish")

Outcome = PublishAttempt.Outcome

# A task may start this much before its targets' time (clocks of workers differ a little).
EARLY_TOLERANCE = timedelta(seconds=1)
# How many attempts a target has, as a column of the query that locks it.
_ATTEMPTS_MADE = Coalesce(
    Subquery(
        PublishAttempt.objects.filter(target=OuterRef("pk"))
        .order_by()
        .values("target")
        .annotate(made=Count("pk"))
        .values("made")
    ),
    Value(0),
)
# When a target was first tried, as a column of the same query.
_FIRST_TRIED = Subquery(
    PublishAttempt.objects.filter(target=OuterRef("pk"))
    .order_by("started_at")
    .values("started_at")[:1]
)
# How far back a post already recorded for another target is never taken for this one.
KNOWN_IDS_WINDOW = timedelta(days=2)


@dataclass
class _Send:
    """What one try needs once the transaction that started it has committed."""

    target_id: int
    post_id: int
    attempt_id: int
    number: int
    tries: int
    channel: str
    account: SocialAccount
    text: str
    media: list[dict]
    key: str
    reconcile_first: bool
    last_chance: bool
    started_at: datetime
    worker: str
    hints: ReconcileHints = field(default_factory=ReconcileHints)
    post_team_path: str = ""  # with the account's team: what a freeze may cover
    # The post's tags and campaign: what a topic freeze may cover.
    post_tags: tuple[str, ...] = ()
    post_campaign: str = ""
    # A reply's: the item it answers (PostTarget.in_reply_to), given to publish and reconcile.
    reply_to: ReplyTo | None = None

    def reply_arguments(self) -> dict:
        """What publish and reconcile are given besides the post: `reply_to` for a reply only
        (a channel without replies never sees the argument)."""
        return {"reply_to": self.reply_to} if self.reply_to is not None else {}

    def freeze(self, freezes: _ActiveFreezes) -> int | None:
        """The id of one of `freezes` that covers this send."""
        return freezes.covering(
            account_id=self.account.pk,
            paths=(self.account.team.path, self.post_team_path),
            tags=self.post_tags,
            campaign=self.post_campaign,
        )


def _reply_to(in_reply_to: dict) -> ReplyTo | None:
    if not in_reply_to:
        return None
    return ReplyTo(
        network_id=str(in_reply_to.get("network_id") or ""),
        thread_id=str(in_reply_to.get("thread_id") or ""),
        raw=in_reply_to.get("raw") or {},
    )


def _media_payload(post: Post) -> list[dict]:
    return [
        {
            "position": item.position,
            "sha256": item.media.sha256,
            "alt_text": item.media.alt_text,
            "mime": item.media.mime,
            "width": item.media.width,
            "height": item.media.height,
        }
        for item in post.post_media.all()
    ]


def _content_approved(post: Post) -> bool:
    """The approved content, recomputed from what is stored now: only that may go out."""
    return bool(
        post.status == PostStatus.PUBLISHING
        and post.approved_content_hash
        and post.content_hash == post.approved_content_hash
        and hash_content(canonical_content(post)) == post.approved_content_hash
    )


@transaction.atomic
def _start_attempts(*, target_ids: list[int], worker: str) -> tuple[list[_Send], dict[int, str]]:
    """Claim queued targets for sending, after the last checks. Everything that could stop one
    is re-read here, under the targets' locks: a freeze, the account's state, the content.
    The sends, and what happened to the targets that will not be sent ("noop", "held")."""
    now = timezone.now()
    done = {target_id: "noop" for target_id in target_ids}
    targets = list(
        PostTarget.objects.select_for_update(of=("self",))
        .select_related("post__team", "social_account__team")
        .annotate(attempts_made=_ATTEMPTS_MADE, first_tried_at=_FIRST_TRIED)
        .filter(pk__in=target_ids, status=TargetStatus.QUEUED)
        .order_by("pk")
    )
    early = [
        target.pk
        for target in targets
        if target.next_attempt_at and target.next_attempt_at > now + EARLY_TOLERANCE
    ]
    if early:
        # Its task started before its time (a worker's clock, a broker ignoring the ETA): it
        # waits again, and the dispatcher sends it when it is due.
        PostTarget.objects.filter(pk__in=early).update(status=TargetStatus.WAITING, queued_at=None)
        record(
            actor=None,
            action="dispatch.unqueued",
            object_type="publishing.posttarget",
            data={"targets": early, "returned": len(early), "reason": "task started early"},
        )
        log.warning(_kv(event="publish.early", targets=",".join(map(str, early)), worker=worker))
        targets = [target for target in targets if target.pk not in early]
    if not targets:
        return [], done
    posts: dict[int, Post] = {}
    for target in targets:
        target.post = posts.setdefault(target.post_id, target.post)
    prefetch_related_objects(list(posts.values()), "targets", "post_media__media")
    approved = {post_id: _content_approved(post) for post_id, post in posts.items()}
    freezes = _active_freezes()
    recent_freezes.saw(freezes)  # what the sends check before they start (lanes.py)
    sending: list[PostTarget] = []
    for target in targets:
        post, account = target.post, target.social_account
        freeze_id = freezes.match(target)
        if freeze_id is not None:
            detail = f"Publishing is frozen (freeze {freeze_id})."
            done[target.pk] = _hold_at_send(target, HOLD_FREEZE, detail, now, worker)
        elif account.status != AccountStatus.CONNECTED:
            detail = f"The account is {account.get_status_display().lower()}."
            done[target.pk] = _hold_at_send(target, HOLD_ACCOUNT, detail, now, worker)
        elif not approved[target.post_id]:
            detail = (
                "The content is not the approved content (post "
                f"{post.get_status_display().lower()}, version {post.version}); nothing was sent."
            )
            done[target.pk] = _hold_at_send(target, HOLD_CONTENT, detail, now, worker)
        else:
            sending.append(target)
    if not sending:
        return [], done
    PostTarget.objects.filter(pk__in=[target.pk for target in sending]).update(
        status=TargetStatus.SENDING, sending_started_at=now, attempt_count=F("attempt_count") + 1
    )
    attempts = [
        PublishAttempt(
            target=target, number=target.attempts_made + 1, started_at=now, worker=worker[:200]
        )
        for target in sending
    ]
    if connection.features.can_return_rows_from_bulk_insert:
        attempts = PublishAttempt.objects.bulk_create(attempts)
    else:
        for attempt in attempts:
            attempt.save()
    max_attempts = settings.CXHUB_PUBLISH_MAX_ATTEMPTS
    media = {post_id: _media_payload(post) for post_id, post in posts.items()}
    looking = [t for t in sending if t.needs_reconcile or t.attempt_count >= max_attempts]
    known = _known_ids(looking, now)
    sends = []
    for target, attempt in zip(sending, attempts, strict=True):
        post, account = target.post, target.social_account
        last_chance = target.attempt_count >= max_attempts
        variant = next(t.body for t in post.targets.all() if t.pk == target.pk)
        channel = get_channel(account.channel)
        sends.append(
            _Send(
                target_id=target.pk,
                post_id=post.pk,
                attempt_id=attempt.pk,
                number=attempt.number,
                tries=target.attempt_count + 1,
                channel=delivery_channel(account),
                account=account,
                text=channel.render(published_text(post, account.channel, variant)),
                media=media[post.pk],
                key=str(target.idempotency_key),
                # Out of tries with nothing known: only look, never send again.
                reconcile_first=target.needs_reconcile or last_chance,
                last_chance=last_chance,
                started_at=now,
                worker=worker,
                post_team_path=post.team.path,
                post_tags=tuple(post.tags) if isinstance(post.tags, list) else (),
                post_campaign=post.campaign,
                reply_to=_reply_to(target.in_reply_to),
                hints=ReconcileHints(
                    since=target.first_tried_at or now,
                    media_count=len(media[post.pk]),
                    known_ids=known.get(target.social_account_id, frozenset()),
                ),
            )
        )
        del done[target.pk]
    return sends, done


def _known_ids(targets: list[PostTarget], now: datetime) -> dict[int, frozenset[str]]:
    """For targets about to be looked for on their network: the external ids other targets
    of the same accounts already hold (recently), which can never be theirs. One query, only
    when some target is to be looked for."""
    if not targets:
        return {}
    earliest = min((t.first_tried_at or now) for t in targets) - KNOWN_IDS_WINDOW
    found: dict[int, set[str]] = defaultdict(set)
    rows = (
        PostTarget.objects.filter(
            social_account_id__in={t.social_account_id for t in targets},
            published_at__gte=earliest,
        )
        .exclude(pk__in=[t.pk for t in targets])
        .exclude(external_id="")
        .values_list("social_account_id", "external_id")
    )
    for account_id, external_id in rows:
        found[account_id].add(external_id)
    return {account_id: frozenset(ids) for account_id, ids in found.items()}


def _start_attempt(*, target_id: int, worker: str) -> "_Send | str":
    """One target's claim (a group of one): its send, or why there is none."""
    sends, done = _start_attempts(target_ids=[target_id], worker=worker)
    return sends[0] if sends else done[target_id]


def _hold_at_send(target: PostTarget, reason: str, detail: str, now: datetime, worker: str) -> str:
    post = target.post
    number = target.attempts_made + 1
    PublishAttempt.objects.create(
        target=target,
        number=number,
        started_at=now,
        finished_at=now,
        outcome=Outcome.SKIPPED,
        error=detail,
        worker=worker[:200],
    )
    target.status = TargetStatus.HELD
    target.held_reason = reason
    target.queued_at = None
    target.last_error = detail
    target.save(update_fields=["status", "held_reason", "queued_at", "last_error"])
    record(
        actor=None,
        action="target.held",
        obj=target,
        team=post.team,
        data={"post": post.pk, "reason": reason, "detail": detail, "attempt": number},
    )
    if reason == HOLD_CONTENT:
        log.error(_kv(event="publish.unapproved_content", target=target.pk, post=post.pk))
        _alert(post, target=target, subject="A post was stopped: its content is not approved")
    return "held"
