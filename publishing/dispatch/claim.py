"""Claim, the first stage of dispatch: due targets taken in batches, each queued or held, and one
publish task per group of them sent when the batch commits.

A target waits until it is due (next_attempt_at). Each batch locks the due targets of scheduled
or publishing posts, skipping rows someone else holds (another dispatcher, a post being edited);
a target a freeze covers or whose account is not connected is held, the others are queued, and
their posts become publishing. Targets falling due before the next run are claimed now, their
task set to start at their time. On commit the queued targets are cut into groups, one
publish_targets task each (start.py takes it from there); when the broker refuses, the rest go
back to waiting at once.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.services import record
from networks.models import AccountStatus

from ..models import POST_TRANSITIONS, Post, PostStatus, PostTarget, TargetStatus
from .common import HOLD_ACCOUNT, HOLD_FREEZE, _active_freezes, _ActiveFreezes, _kv

log = logging.getLogger("cxhub.publish")

# Targets of posts in these states are dispatched; any other state keeps them where they are.
DISPATCHABLE_POST_STATUSES = (PostStatus.SCHEDULED, PostStatus.PUBLISHING)

assert PostStatus.PUBLISHING in POST_TRANSITIONS[PostStatus.SCHEDULED]


@dataclass
class DispatchResult:
    queued: list[int] = field(default_factory=list)
    held: dict[str, list[int]] = field(default_factory=dict)
    batches: int = 0


def dispatch_due(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int | None = None
) -> DispatchResult:
    """Claim due targets in batches, one transaction each, until none is left (or max_batches):
    each is queued (a publish task goes out when its batch commits) or held."""
    batch_size = batch_size or settings.CXHUB_DISPATCH_BATCH_SIZE
    max_batches = max_batches or settings.CXHUB_DISPATCH_MAX_BATCHES
    result = DispatchResult()
    for _ in range(max_batches):
        taken = _claim_batch(now=now or timezone.now(), batch_size=batch_size, result=result)
        if taken:
            result.batches += 1
        if taken < batch_size:
            break
    return result


def _hold_reason(target: PostTarget, freezes: _ActiveFreezes) -> str | None:
    if freezes.match(target) is not None:
        return HOLD_FREEZE
    if target.social_account.status != AccountStatus.CONNECTED:
        return HOLD_ACCOUNT
    return None


@transaction.atomic
def _claim_batch(*, now: datetime, batch_size: int, result: DispatchResult) -> int:
    """One batch, in a fixed number of queries. Rows locked by anyone else are skipped: another
    dispatcher's batch, or a post being edited (its post row is locked by post_update), whose
    targets are taken next time if they are still due.

    Targets falling due before the next run are claimed now too (CXHUB_DISPATCH_LOOKAHEAD_SECONDS,
    the interval by default) and their task is queued to start at their time: a post goes out
    at 09:00:00, not at the first run after it. The countdown is at most the interval, far below
    the broker's visibility timeout, and publish_targets never sends before the time."""
    horizon = now + timedelta(seconds=settings.CXHUB_DISPATCH_LOOKAHEAD_SECONDS)
    targets = list(
        PostTarget.objects.select_for_update(skip_locked=True, of=("self", "post"))
        .select_related("post__team", "social_account__team")
        .filter(
            status=TargetStatus.WAITING,
            next_attempt_at__lte=horizon,
            post__status__in=DISPATCHABLE_POST_STATUSES,
        )
        # Urgent posts first (issue 16: ahead of routine ones due at the same time), then by
        # due time: a retry waits its turn behind what fell due before it, never ahead, and
        # behind a first try due at the same moment.
        .order_by("-post__urgent", "next_attempt_at", "attempt_count", "id")[:batch_size]
    )
    if not targets:
        return 0
    freezes = _active_freezes()
    queued: list[PostTarget] = []
    held: dict[str, list[int]] = defaultdict(list)
    for target in targets:
        reason = _hold_reason(target, freezes)
        if reason:
            held[reason].append(target.pk)
        else:
            queued.append(target)
    queued_ids = [target.pk for target in queued]
    starting = sorted({t.post_id for t in queued if t.post.status == PostStatus.SCHEDULED})
    if queued_ids:
        PostTarget.objects.filter(pk__in=queued_ids).update(
            status=TargetStatus.QUEUED, queued_at=now
        )
    if starting:
        Post.objects.filter(pk__in=starting, status=PostStatus.SCHEDULED).update(
            status=PostStatus.PUBLISHING, updated_at=now
        )
    for reason, ids in held.items():
        PostTarget.objects.filter(pk__in=ids).update(
            status=TargetStatus.HELD, held_reason=reason, queued_at=None
        )
    record(
        actor=None,
        action="dispatch.claimed",
        object_type="publishing.posttarget",
        data={"queued": queued_ids, "held": dict(held), "posts_publishing": starting},
    )
    due = {
        target.pk: (max(target.next_attempt_at, now), target.post_id, target.post.urgent)
        for target in queued
    }
    transaction.on_commit(partial(_enqueue, queued_ids, now, due), robust=True)
    result.queued += queued_ids
    for reason, ids in held.items():
        result.held.setdefault(reason, []).extend(ids)
    log.info(
        _kv(
            event="dispatch.batch",
            queued=len(queued_ids),
            held=sum(len(ids) for ids in held.values()),
            posts_publishing=len(starting),
        )
    )
    return len(targets)


def _publish_groups(target_ids: list[int], order: dict[int, Any]) -> list[list[int]]:
    """The claimed targets cut into groups, one publish task each, in `order` (urgent first, then
    due time, then post): a post's targets kept together where they fit (its outcome transaction
    then settles it once), at most CXHUB_PUBLISH_GROUP_SIZE per group, and small enough that a
    short batch still spreads over CXHUB_PUBLISH_SPREAD tasks (workers) rather than queueing
    behind one."""
    if not target_ids:
        return []
    most = settings.CXHUB_PUBLISH_GROUP_SIZE
    size = max(1, min(most, -(-len(target_ids) // settings.CXHUB_PUBLISH_SPREAD)))
    ordered = sorted(target_ids, key=lambda target_id: (order[target_id], target_id))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def _enqueue(
    target_ids: list[int], claimed_at: datetime, due: dict[int, tuple[datetime, int, bool]]
) -> None:
    """After the batch committed: one publish task per group of targets (`due`: each one's time,
    post and whether it is urgent), starting when the last of its targets is due, urgent groups
    queued first. When the broker refuses, the rest go back to waiting at once (the sweeper
    would find them, later)."""
    # The task by its name: publishing/tasks.py imports the dispatch stages it runs, this
    # module among them (PublishingConfig.ready() registers the tasks in every process).
    publish_targets = current_app.tasks["publishing.tasks.publish_targets"]
    order = {pk: (not urgent, when, post_id) for pk, (when, post_id, urgent) in due.items()}
    groups = _publish_groups(target_ids, order)
    for index, group in enumerate(groups):
        eta = max(due[target_id][0] for target_id in group)
        try:
            if eta > timezone.now():
                publish_targets.apply_async((group,), eta=eta)
            else:
                publish_targets.delay(group)
        except Exception as exc:  # kombu/redis/amqp raise many types for a broker that is down
            left = [target_id for rest in groups[index:] for target_id in rest]
            log.error(
                _kv(
                    event="dispatch.enqueue_failed",
                    target=group[0],
                    left=len(left),
                    error=repr(exc)[:300],
                )
            )
            _unclaim(left, claimed_at)
            return


def _unclaim(target_ids: list[int], claimed_at: datetime) -> None:
    try:
        with transaction.atomic():
            count = PostTarget.objects.filter(
                pk__in=target_ids, status=TargetStatus.QUEUED, queued_at=claimed_at
            ).update(status=TargetStatus.WAITING, queued_at=None)
            record(
                actor=None,
                action="dispatch.unqueued",
                object_type="publishing.posttarget",
                data={"targets": target_ids, "returned": count, "reason": "enqueue failed"},
            )
    except DatabaseError:
        log.exception(_kv(event="dispatch.unqueue_failed", targets=len(target_ids)))
