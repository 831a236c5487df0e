"""Sweep, the last stage of dispatch: targets that stopped moving are set on their way again.

The sweeper (sweep_stuck, on its schedule in cxhub/celery.py) returns the targets of a worker
whose heartbeat stopped (cxhub/liveness.py), and targets sending or queued for too long: a send
whose worker was lost waits to be reconciled before any retry, a queued target whose message
was lost waits to be claimed again. Targets held for their account wait again once it is
reconnected (targets_release_for_account, called by the accounts app). A target that reconcile
could not settle waits for a person, who says whether it went out (target_decide).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from accounts.notifications import notify_many
from audit.services import record, record_many
from cxhub import liveness
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from cxhub.models import Heartbeat
from networks.models import SocialAccount

from ..models import Post, PostTarget, PublishAttempt, TargetStatus
from .common import HOLD_ACCOUNT, HOLD_DECISION, _kv, _lead_ids, _settle_posts

log = logging.getLogger("cxhub.publish")

Outcome = PublishAttempt.Outcome


# The sweeper --------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    sending: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    workers_lost: list[str] = field(default_factory=list)


def sweep_stuck(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int | None = None
) -> SweepResult:
    """Targets whose worker died while sending go back to waiting, to be reconciled before any
    retry; targets whose task never ran (message lost) go back to waiting."""
    batch_size = batch_size or settings.CXHUB_DISPATCH_BATCH_SIZE
    max_batches = max_batches or settings.CXHUB_DISPATCH_MAX_BATCHES
    result = SweepResult()
    _sweep_lost_workers(now=now or timezone.now(), result=result)
    for _ in range(max_batches):
        if _sweep_batch(now=now or timezone.now(), batch_size=batch_size, result=result) < (
            batch_size
        ):
            break
    return result


@transaction.atomic
def _sweep_lost_workers(*, now: datetime, result: SweepResult) -> None:
    """Workers whose own heartbeat stopped (cxhub/liveness.py) are dead: what they were sending
    goes back to be reconciled, and targets queued before they went silent are claimed again
    (a message a dead worker held comes back from the broker only after its visibility
    timeout; a second message for a target is harmless, the first to claim the row wins).
    A worker's pool processes die with it (Celery sets their parent-death signal), so a send
    of a dead worker is not still running."""
    silent_since = now - timedelta(seconds=settings.CXHUB_WORKER_LOST_SECONDS)
    dead = list(
        Heartbeat.objects.select_for_update(skip_locked=True)
        .filter(name__startswith=liveness.PREFIX, seen_at__lt=silent_since)
        .order_by("seen_at")
    )
    if not dead:
        return
    names = [beat.name.removeprefix(liveness.PREFIX) for beat in dead]
    last_seen = max(beat.seen_at for beat in dead)
    open_attempts = PublishAttempt.objects.filter(
        finished_at__isnull=True, target__status=TargetStatus.SENDING
    ).values_list("target_id", "worker")
    lost_sending = sorted(
        {target_id for target_id, label in open_attempts if liveness.owner_of(label) in names}
    )
    lost_sending = list(
        PostTarget.objects.select_for_update(skip_locked=True)
        .filter(pk__in=lost_sending, status=TargetStatus.SENDING)
        .values_list("pk", flat=True)
    )
    lost_queued = list(
        PostTarget.objects.select_for_update(skip_locked=True)
        .filter(status=TargetStatus.QUEUED, queued_at__lte=last_seen)
        .values_list("pk", flat=True)
    )
    _return_lost(lost_sending, lost_queued, now, reason="worker was lost")
    Heartbeat.objects.filter(pk__in=[beat.pk for beat in dead]).delete()
    record(
        actor=None,
        action="dispatch.workers_lost",
        object_type="publishing.posttarget",
        data={
            "workers": names,
            "last_seen": last_seen,
            "sending": lost_sending,
            "queued": lost_queued,
        },
    )
    log.warning(
        _kv(
            event="dispatch.workers_lost",
            workers=",".join(names),
            sending=len(lost_sending),
            queued=len(lost_queued),
        )
    )
    result.workers_lost += names
    result.sending += lost_sending
    result.queued += lost_queued


def _return_lost(
    lost_sending: list[int], lost_queued: list[int], now: datetime, *, reason: str
) -> None:
    """Sends whose worker was lost go back to be reconciled before any retry; queued targets
    whose message was lost go back to be claimed again, due now."""
    if lost_sending:
        PostTarget.objects.filter(pk__in=lost_sending).update(
            status=TargetStatus.WAITING,
            needs_reconcile=True,
            next_attempt_at=now,
            sending_started_at=None,
            last_error="The worker was lost while sending; the network is asked before any retry.",
        )
        PublishAttempt.objects.filter(target_id__in=lost_sending, finished_at__isnull=True).update(
            finished_at=now, outcome=Outcome.UNKNOWN, error=f"The {reason} while sending."
        )
    if lost_queued:
        PostTarget.objects.filter(pk__in=lost_queued).update(
            status=TargetStatus.WAITING, next_attempt_at=now, queued_at=None
        )


@transaction.atomic
def _sweep_batch(*, now: datetime, batch_size: int, result: SweepResult) -> int:
    sending_before = now - timedelta(seconds=settings.CXHUB_SENDING_STUCK_SECONDS)
    queued_before = now - timedelta(seconds=settings.CXHUB_QUEUED_STUCK_SECONDS)
    lost_sending = list(
        PostTarget.objects.select_for_update(skip_locked=True)
        .filter(status=TargetStatus.SENDING, sending_started_at__lt=sending_before)
        .order_by("id")
        .values_list("pk", flat=True)[:batch_size]
    )
    lost_queued = list(
        PostTarget.objects.select_for_update(skip_locked=True)
        .filter(status=TargetStatus.QUEUED, queued_at__lt=queued_before)
        .order_by("id")
        .values_list("pk", flat=True)[:batch_size]
    )
    if not lost_sending and not lost_queued:
        return 0
    _return_lost(lost_sending, lost_queued, now, reason="worker was lost")
    record(
        actor=None,
        action="dispatch.swept",
        object_type="publishing.posttarget",
        data={"sending": lost_sending, "queued": lost_queued},
    )
    log.warning(
        _kv(
            event="dispatch.swept",
            sending=",".join(map(str, lost_sending)),
            queued=",".join(map(str, lost_queued)),
        )
    )
    result.sending += lost_sending
    result.queued += lost_queued
    return max(len(lost_sending), len(lost_queued))


# Held targets released ----------------------------------------------------------------------------
@transaction.atomic
def targets_release_for_account(*, account: SocialAccount, by: User | None) -> int:
    """After an account is reconnected (the handler of networks.hooks.account_reconnected):
    the targets held for it wait again, due now or at their own time. How many."""
    now = timezone.now()
    ids = list(
        PostTarget.objects.select_for_update()
        .filter(social_account=account, status=TargetStatus.HELD, held_reason=HOLD_ACCOUNT)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    PostTarget.objects.filter(pk__in=ids).update(
        status=TargetStatus.WAITING,
        held_reason="",
        next_attempt_at=Greatest(Coalesce(F("next_attempt_at"), Value(now)), Value(now)),
    )
    record(
        actor=by,
        action="social_account.targets_released",
        obj=account,
        team=account.team,
        data={"targets": ids},
    )
    return len(ids)


# Held for a person, who decides -------------------------------------------------------------------
class Decision:
    """What a person says of a target held because reconcile could not tell."""

    PUBLISHED = "published"  # this candidate is our post
    SEND_AGAIN = "send_again"  # none of them is ours: send it
    GIVE_UP = "give_up"  # do not send it; the target fails

    ALL = (PUBLISHED, SEND_AGAIN, GIVE_UP)


@transaction.atomic
def target_decide(
    *, target: PostTarget, by: User, decision: str, external_id: str = ""
) -> PostTarget:
    """A person settles a target that reconcile could not: one of the candidates is the post
    (published with its id and address), none is (sent again, without looking first), or it
    is not to be sent (failed). The author or a lead of the post's team (or above) decides."""
    post = (
        Post.objects.select_for_update(of=("self",)).select_related("team").get(pk=target.post_id)
    )
    target = (
        PostTarget.objects.select_for_update(of=("self",))
        .select_related("social_account")
        .get(pk=target.pk)
    )
    if by.pk != post.author_id and by.pk not in _lead_ids(post) and not by.is_superuser:
        raise NotAllowed("Only the post's author or a lead of its team can decide this.")
    if decision not in Decision.ALL:
        raise ApplicationError(
            f"decision must be one of {', '.join(Decision.ALL)}.",
            {"fields": {"decision": ["Not a known decision."]}},
        )
    if not (target.status == TargetStatus.HELD and target.held_reason == HOLD_DECISION):
        raise InvalidTransition(
            "This account's post is not waiting for a decision.", {"status": target.status}
        )
    now = timezone.now()
    chosen = None
    if decision == Decision.PUBLISHED:
        chosen = next(
            (c for c in target.reconcile_candidates if c.get("external_id") == external_id),
            None,
        )
        if not external_id or chosen is None:
            raise ApplicationError(
                "Choose one of the posts listed for this account.",
                {"fields": {"external_id": ["Not one of the candidates."]}},
            )
        target.status = TargetStatus.PUBLISHED
        target.external_id = chosen["external_id"]
        target.external_url = (chosen.get("external_url") or "")[:2000]
        target.published_at = now
        target.last_error = ""
    elif decision == Decision.SEND_AGAIN:
        target.status = TargetStatus.WAITING
        target.next_attempt_at = now
    else:
        target.status = TargetStatus.FAILED
        target.last_error = "Not sent again: a person decided it should not go out."
    candidates = target.reconcile_candidates
    target.held_reason = ""
    target.needs_reconcile = False
    target.reconcile_candidates = []
    target.save(
        update_fields=[
            "status",
            "external_id",
            "external_url",
            "published_at",
            "last_error",
            "held_reason",
            "needs_reconcile",
            "next_attempt_at",
            "reconcile_candidates",
        ]
    )
    record(
        actor=by,
        action="target.decided",
        obj=target,
        team=post.team,
        data={
            "post": post.pk,
            "decision": decision,
            "external_id": target.external_id if chosen else "",
            "candidates": candidates,
        },
    )
    settled, messages = _settle_posts([post], now)
    record_many(settled)
    notify_many(messages)
    log.warning(_kv(event="target.decided", target=target.pk, decision=decision, by=by.pk))
    return target
