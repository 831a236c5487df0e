"""Dispatch: every approved target published on time, once, whatever fails (DESIGN §5).

The life of a target here: `waiting` (due at next_attempt_at) → the dispatcher claims it in a
batch (`queued`, or `held` when frozen or its account is not connected), also when it falls due
before the next run, and on commit queues one publish_targets task per group of targets, to
start at their time → publish_targets claims the group's rows again (`sending`), re-checks
freeze, account and approved content of each, records PublishAttempts, calls the channel for
each outside any transaction, and stores every outcome in one transaction: `published`,
`waiting` again (a retry, due later), `failed`, or `held`. An unknown outcome (timeout after
sending) sets needs_reconcile: the next try asks the network before it sends. The sweeper
returns targets whose worker or message was lost. A post becomes publishing when its first
target is queued, and published, partially published or failed when every target is final.
Freezes' services and reads are in publishing/freezes.py.

Lock order, everywhere: posts before their targets, then accounts, so these transactions never
deadlock (recording an audit event takes no lock: audit/sealer.py).
"""

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Greatest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Membership, Role, User
from accounts.notifications import notify, notify_many
from audit.services import record, record_many
from cxhub import liveness
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from cxhub.models import Heartbeat
from networks.channels import get_channel
from networks.channels.base import ReconcileHints
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.models import AccountStatus, Channel, SocialAccount
from networks.selectors import social_accounts_for
from networks.services import social_account_needs_reconnect

from .content import canonical_content, hash_content
from .models import (
    POST_TRANSITIONS,
    Post,
    PostStatus,
    PostTarget,
    PublishAttempt,
    PublishingFreeze,
    SandboxPublication,
    TargetStatus,
)
from .preflight import published_text

log = logging.getLogger("cxhub.publish")

Outcome = PublishAttempt.Outcome
Scope = PublishingFreeze.Scope

# Why a target is held (PostTarget.held_reason); a release finds its own.
HOLD_FREEZE = "freeze"
HOLD_ACCOUNT = "account"
HOLD_CONTENT = "content"
# Reconcile could not tell whether it went out: a person decides (target_decide).
HOLD_DECISION = "decision"

FINAL_TARGET_STATUSES = frozenset(
    {TargetStatus.PUBLISHED, TargetStatus.FAILED, TargetStatus.CANCELLED}
)
# Targets of posts in these states are dispatched; any other state keeps them where they are.
DISPATCHABLE_POST_STATUSES = (PostStatus.SCHEDULED, PostStatus.PUBLISHING)
# After the last try left an unknown outcome, this many more tries may only ask the network.
RECONCILE_TRIES_AFTER_LAST = 3
# Storing an outcome survives a dropped database connection: tried again after these pauses.
STORE_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)
# A task may start this much before its targets' time (clocks of workers differ a little).
EARLY_TOLERANCE = timedelta(seconds=1)

assert PostStatus.PUBLISHING in POST_TRANSITIONS[PostStatus.SCHEDULED]


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
@dataclass
class _ActiveFreezes:
    """The active freezes, loaded once per transaction (there are few), matched in Python."""

    everything: int | None = None
    teams: list[tuple[str, int]] = field(default_factory=list)
    accounts: dict[int, int] = field(default_factory=dict)

    def match(self, target: PostTarget) -> int | None:
        """The id of a freeze covering `target` (post.team and social_account.team loaded)."""
        if self.everything is not None:
            return self.everything
        if target.social_account_id in self.accounts:
            return self.accounts[target.social_account_id]
        paths = (target.social_account.team.path, target.post.team.path)
        for team_path, freeze_id in self.teams:
            if any(path.startswith(team_path) for path in paths):
                return freeze_id
        return None


def _active_freezes() -> _ActiveFreezes:
    """One query."""
    found = _ActiveFreezes()
    rows = (
        PublishingFreeze.objects.filter(active=True)
        .select_related("team")
        .order_by("id")
        .only("id", "scope", "team__path", "social_account_id")
    )
    for freeze in rows:
        if freeze.scope == Scope.EVERYTHING and found.everything is None:
            found.everything = freeze.pk
        elif freeze.scope == Scope.TEAM:
            found.teams.append((freeze.team.path, freeze.pk))
        elif freeze.scope == Scope.ACCOUNT:
            found.accounts.setdefault(freeze.social_account_id, freeze.pk)
    return found


def _freeze_scope(freeze: PublishingFreeze) -> Q:
    """The targets a freeze covers: a team freeze covers the accounts of the subtree and the
    posts of the subtree (whoever's account they go to)."""
    if freeze.scope == Scope.EVERYTHING:
        return Q()
    if freeze.scope == Scope.ACCOUNT:
        return Q(social_account_id=freeze.social_account_id)
    path = freeze.team.path
    return Q(social_account__team__path__startswith=path) | Q(post__team__path__startswith=path)


# Backoff ------------------------------------------------------------------------------------------
def backoff_seconds(
    tries: int, *, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """How long to wait after try number `tries` (1 for the first) failed: exponential with
    jitter ("equal jitter": between half and all of min(cap, base × 2^(tries-1))), and never
    less than what the network asked for in Retry-After."""
    base = float(settings.CXHUB_PUBLISH_BACKOFF_BASE_SECONDS)
    cap = float(settings.CXHUB_PUBLISH_BACKOFF_CAP_SECONDS)
    ceiling = min(cap, base * 2 ** min(max(tries - 1, 0), 40))
    delay = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay


# The dispatcher -----------------------------------------------------------------------------------
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
        .order_by("next_attempt_at", "id")[:batch_size]
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
    due = {target.pk: (max(target.next_attempt_at, now), target.post_id) for target in queued}
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
    """The claimed targets cut into groups, one publish task each, in `order` (due time, then
    post): a post's targets kept together where they fit (its outcome transaction then settles
    it once), at most CXHUB_PUBLISH_GROUP_SIZE per group, and small enough that a short batch
    still spreads over CXHUB_PUBLISH_SPREAD tasks (workers) rather than queueing behind one."""
    if not target_ids:
        return []
    most = settings.CXHUB_PUBLISH_GROUP_SIZE
    size = max(1, min(most, -(-len(target_ids) // settings.CXHUB_PUBLISH_SPREAD)))
    ordered = sorted(target_ids, key=lambda target_id: (order[target_id], target_id))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def _enqueue(
    target_ids: list[int], claimed_at: datetime, due: dict[int, tuple[datetime, int]]
) -> None:
    """After the batch committed: one publish task per group of targets, starting when the last
    of its targets is due. When the broker refuses, the rest go back to waiting at once (the
    sweeper would find them, later)."""
    from .tasks import publish_targets

    groups = _publish_groups(target_ids, due)
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


# Publishing one target ----------------------------------------------------------------------------
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


@dataclass
class _Result:
    outcome: str
    published: Any = None
    error: str = ""
    http_status: int | None = None
    retry_after: float | None = None
    phase: str = "publish"
    # Nothing was sent (the group's time ran out first): due again at once, and the try is
    # not counted against the target's attempts.
    not_sent: bool = False
    # Posts that may be ours (AmbiguousMatch), for a person to decide between.
    candidates: list[dict[str, str]] = field(default_factory=list)


def publish_targets(*, target_ids: list[int], worker: str = "") -> dict[int, str]:
    """Publish a group of queued targets: one transaction claims them all, the network is called
    for each in turn (outside any transaction), one transaction stores every outcome. Returns
    what happened to each ("noop" for a target that was not queued: a redelivered or stale
    task). Safe to run any number of times for the same targets.

    A group costs a few queries whatever its size, where one task per target paid them all for
    each: the dispatcher sends groups (see _enqueue), and a worker that dies mid-group leaves its
    targets `sending`, found by the sweeper and reconciled like any other."""
    began = time.monotonic()
    sends, done = _start_attempts(target_ids=target_ids, worker=worker)
    for target_id, what in done.items():
        log.info(_kv(event="publish.skip", target=target_id, result=what, worker=worker))
    if not sends:
        return done
    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    results: list[tuple[_Send, _Result, int]] = []
    current: _Send | None = None
    try:
        for send in sends:
            if results and time.monotonic() - began > budget:
                # Too long for one task: what is left goes back to waiting, due at once.
                results.append((send, _not_sent(), 0))
                continue
            current, sent_at = send, time.monotonic()
            result = _talk_to_network(send)
            results.append((send, result, round((time.monotonic() - sent_at) * 1000)))
            current = None
    except SoftTimeLimitExceeded:
        # The time limit struck outside the network call (which handles it itself): a send
        # started and not recorded may have gone out, so it is looked for before any retry;
        # the ones not started were not sent.
        done_ids = {send.target_id for send, _, _ in results}
        for send in sends:
            if send.target_id in done_ids:
                continue
            if current is not None and send.target_id == current.target_id:
                results.append((send, _Result(Outcome.UNKNOWN, error=_TIME_RAN_OUT), 0))
            else:
                results.append((send, _not_sent(), 0))
    statuses = _store_outcomes_retrying([(send, result) for send, result, _ in results])
    duration_ms = round((time.monotonic() - began) * 1000)
    for send, result, network_ms in results:
        went_out = result.outcome in (Outcome.PUBLISHED, Outcome.RECONCILED)
        log.log(
            logging.INFO if went_out else logging.WARNING,
            _kv(
                event="publish.attempt",
                target=send.target_id,
                post=send.post_id,
                account=send.account.pk,
                channel=send.channel,
                key=send.key,
                attempt=send.number,
                tries=send.tries,
                phase=result.phase,
                outcome=result.outcome,
                http_status=result.http_status,
                retry_after=result.retry_after,
                target_status=statuses.get(send.target_id),
                group=len(sends),
                duration_ms=duration_ms,
                network_ms=network_ms,
                worker=worker,
                error=result.error[:300],
            ),
        )
        done[send.target_id] = result.outcome
    return done


_TIME_RAN_OUT = "The task's time limit ran out around this send; the network is asked first."


def _not_sent() -> _Result:
    return _Result(
        Outcome.RETRYABLE,
        error="Not sent: the worker's time for this group ran out first; due again at once.",
        not_sent=True,
    )


def publish_target(*, target_id: int, worker: str = "") -> str:
    """Publish one queued target (a group of one); what happened to it."""
    return publish_targets(target_ids=[target_id], worker=worker)[target_id]


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


def _talk_to_network(send: _Send) -> _Result:
    """The network call, outside any transaction: a slow network holds no lock."""
    if _in_transaction():
        raise RuntimeError("publish_target must call the channel outside any transaction")
    channel = get_channel(send.channel)
    phase = "reconcile" if send.reconcile_first else "publish"
    try:
        if send.reconcile_first:
            found = channel.reconcile(
                send.account, send.text, idempotency_key=send.key, hints=send.hints
            )
            if found is not None:
                return _Result(
                    Outcome.RECONCILED,
                    published=found,
                    http_status=getattr(found, "http_status", None),
                    phase=phase,
                )
            if send.last_chance:
                return _Result(
                    Outcome.PERMANENT,
                    error="Not found on the network after the last try; not sent again.",
                    phase=phase,
                )
            phase = "publish"
        published = channel.publish(send.account, send.text, send.media, idempotency_key=send.key)
        return _Result(
            Outcome.PUBLISHED,
            published=published,
            http_status=getattr(published, "http_status", None),
        )
    except RetryableError as exc:
        return _Result(
            Outcome.RETRYABLE,
            error=str(exc),
            http_status=_status(exc),
            retry_after=exc.retry_after,
            phase=phase,
        )
    except AuthExpired as exc:
        return _Result(Outcome.AUTH_EXPIRED, error=str(exc), http_status=_status(exc), phase=phase)
    except AmbiguousMatch as exc:
        # Never sent again blind: held for a person, who sees the candidates.
        return _Result(
            Outcome.AMBIGUOUS,
            error=str(exc) or "The network lists posts that may be this one.",
            http_status=_status(exc),
            phase=phase,
            candidates=[candidate.as_dict() for candidate in exc.candidates],
        )
    except UnknownOutcome as exc:
        kind = Outcome.UNKNOWN if phase == "publish" else Outcome.RETRYABLE
        return _Result(kind, error=str(exc), http_status=_status(exc), phase=phase)
    except PermanentError as exc:
        # A refusal to say whether a post exists says nothing about the post: ask again later.
        kind = Outcome.PERMANENT if phase == "publish" else Outcome.RETRYABLE
        return _Result(kind, error=str(exc), http_status=_status(exc), phase=phase)
    except SoftTimeLimitExceeded:
        kind = Outcome.UNKNOWN if phase == "publish" else Outcome.RETRYABLE
        return _Result(
            kind, error="The task's time limit ran out while waiting for the network.", phase=phase
        )
    except NotImplementedError as exc:
        if phase == "reconcile":
            # Nothing can tell whether it went out: fail, never send twice.
            return _Result(Outcome.PERMANENT, error=f"Cannot check the network: {exc}", phase=phase)
        return _Result(Outcome.PERMANENT, error=str(exc), phase=phase)
    except Exception as exc:  # a bug in a channel: it may have sent, so look before retrying
        log.exception(_kv(event="publish.channel_error", target=send.target_id, phase=phase))
        kind = Outcome.UNKNOWN if phase == "publish" else Outcome.RETRYABLE
        return _Result(kind, error=f"{type(exc).__name__}: {exc}", phase=phase)


def _in_transaction() -> bool:
    """Whether a transaction is open (the test suite's own wrapping transaction aside)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def _status(exc: Exception) -> int | None:
    return getattr(exc, "http_status", None)


def _store_outcomes_retrying(results: list[tuple[_Send, _Result]]) -> dict[int, str]:
    """Store the outcomes; a dropped database connection is reopened and the write tried again
    (what the network did must not be forgotten). Past the last pause, the sweeper takes over."""
    for pause in (0.0, *STORE_RETRY_PAUSES):
        if pause:
            time.sleep(pause)
        try:
            return _store_outcomes(results)
        except (OperationalError, InterfaceError) as exc:
            log.warning(
                _kv(
                    event="publish.store_retry",
                    targets=",".join(str(send.target_id) for send, _ in results),
                    pause=pause,
                    error=repr(exc)[:300],
                )
            )
            connection.close()
    return _store_outcomes(results)


def _store_outcome_retrying(send: _Send, result: _Result) -> str:
    return _store_outcomes_retrying([(send, result)])[send.target_id]


def _store_outcome(send: _Send, result: _Result) -> str:
    """One target's outcome (a group of one)."""
    return _store_outcomes([(send, result)])[send.target_id]


_OUTCOME_FIELDS = [
    "status",
    "external_id",
    "external_url",
    "published_at",
    "needs_reconcile",
    "next_attempt_at",
    "sending_started_at",
    "last_error",
    "held_reason",
    "attempt_count",
    "reconcile_candidates",
]


@dataclass
class _Outcomes:
    """What one outcome transaction writes, gathered first and written together."""

    now: datetime
    changed: list[PostTarget] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[tuple[Post, PostTarget, str]] = field(default_factory=list)
    reconnect: dict[int, tuple[PostTarget, str]] = field(default_factory=dict)
    settle: dict[int, Post] = field(default_factory=dict)


@transaction.atomic
def _store_outcomes(results: list[tuple[_Send, _Result]]) -> dict[int, str]:
    """Every outcome of a group in one transaction: posts locked (in id order), then targets
    (in id order), then accounts, as everywhere in dispatch."""
    now = timezone.now()
    post_ids = sorted({send.post_id for send, _ in results})
    posts = {
        post.pk: post
        for post in Post.objects.select_for_update(of=("self",))
        .select_related("team")
        .filter(pk__in=post_ids)
        .order_by("pk")
    }
    targets = {
        target.pk: target
        for target in PostTarget.objects.select_for_update()
        .filter(pk__in=[send.target_id for send, _ in results])
        .order_by("pk")
    }
    work = _Outcomes(now=now)
    finished: list[PublishAttempt] = []
    statuses = {}
    for send, result in results:
        target = targets[send.target_id]
        ours = (
            target.status == TargetStatus.SENDING and target.sending_started_at == send.started_at
        )
        attempt = PublishAttempt(
            pk=send.attempt_id,
            finished_at=now,
            outcome=result.outcome,
            http_status=result.http_status,
            error=result.error[:5000],
            retry_after_seconds=result.retry_after,
        )
        if ours:
            finished.append(attempt)
        else:
            # The sweeper closed this attempt already, for a try it gave away: keep its words.
            PublishAttempt.objects.filter(pk=send.attempt_id, finished_at__isnull=True).update(
                finished_at=now,
                outcome=result.outcome,
                http_status=result.http_status,
                error=result.error[:5000],
                retry_after_seconds=result.retry_after,
            )
        statuses[send.target_id] = _apply_outcome(
            posts[send.post_id], target, send, result, ours=ours, work=work
        )
    if finished:
        _update_rows(
            PublishAttempt,
            finished,
            ["finished_at", "outcome", "http_status", "error", "retry_after_seconds"],
        )
    if work.changed:
        _update_rows(PostTarget, work.changed, _OUTCOME_FIELDS)
    # The accounts' rows after the targets (each records its own event and tells the team's
    # admins).
    for account_id, (_target, error) in sorted(work.reconnect.items()):
        social_account_needs_reconnect(account_id=account_id, error=error)
    settled, messages = _settle_posts(list(work.settle.values()), now)
    record_many(work.events + settled)
    for post, target, subject in work.alerts:
        _alert(post, target=target, subject=subject)
    notify_many(messages)
    return statuses


def _update_rows(model: type, rows: list, fields: list[str]) -> None:
    """Write `fields` of each of `rows` (model instances with their pk) in one UPDATE … FROM
    (VALUES …) statement: what bulk_update does, without building a CASE expression per row
    and field, which costs more than the rest of a publish. PostgreSQL and SQLite (3.33+)."""
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"

    def placeholder(field: Any) -> str:
        # PostgreSQL types a VALUES list from its first row: cast, or text lands in a timestamp.
        return f"CAST(%s AS {field.db_type(connection)})" if postgres else "%s"

    pk = meta.pk
    row_sql = "(" + ", ".join([placeholder(pk), *map(placeholder, columns)]) + ")"
    params: list[Any] = []
    for row in rows:
        params.append(pk.get_db_prep_save(row.pk, connection))
        params += [
            field.get_db_prep_save(getattr(row, field.attname), connection) for field in columns
        ]
    if postgres:
        names = ["pk", *(f"c{index}" for index in range(len(columns)))]
        alias = f"v({', '.join(names)})"
    else:  # SQLite names a VALUES list's columns itself, and takes no list of aliases
        names = [f"column{index}" for index in range(1, len(columns) + 2)]
        alias = "v"
    assignments = ", ".join(
        f"{quote(field.column)} = v.{name}" for field, name in zip(columns, names[1:], strict=True)
    )
    table = quote(meta.db_table)
    values = ", ".join([row_sql] * len(rows))
    # Only quoted names from the model's own metadata and placeholders go into the text.
    sql = (
        f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS {alias} "  # noqa: S608
        f"WHERE {table}.{quote(pk.column)} = v.{names[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _apply_outcome(
    post: Post, target: PostTarget, send: _Send, result: _Result, *, ours: bool, work: _Outcomes
) -> str:
    """Decide one target's next state (in memory; _store_outcomes writes), and gather its
    audit event, alert and whether its post may now be settled."""
    now = work.now
    went_out = result.outcome in (Outcome.PUBLISHED, Outcome.RECONCILED)
    if not ours and not (went_out and target.status != TargetStatus.PUBLISHED):
        # The sweeper gave this target to another try meanwhile (or this outcome was stored
        # already): that try owns it now. A publication found is still the truth (below).
        return target.status
    audit = {
        "post": post.pk,
        "attempt": send.number,
        "tries": send.tries,
        "outcome": result.outcome,
        "http_status": result.http_status,
        "phase": result.phase,
    }

    def event(*, action: str, **data: Any) -> None:
        work.events.append(
            {
                "actor": None,
                "action": action,
                "obj": target,
                "team": post.team,
                "data": {**audit, **data},
            }
        )

    work.changed.append(target)
    if went_out:
        target.status = TargetStatus.PUBLISHED
        target.external_id = str(getattr(result.published, "external_id", "") or "")[:255]
        target.external_url = str(getattr(result.published, "external_url", "") or "")[:2000]
        target.published_at = now
        target.needs_reconcile = False
        target.next_attempt_at = None
        target.sending_started_at = None
        target.last_error = ""
        target.reconcile_candidates = []
        event(
            action="target.published",
            external_id=target.external_id,
            external_url=target.external_url,
        )
        work.settle[post.pk] = post
        return target.status

    target.sending_started_at = None
    target.last_error = result.error[:5000]
    if result.outcome == Outcome.AUTH_EXPIRED:
        target.status = TargetStatus.HELD
        target.held_reason = HOLD_ACCOUNT
        event(action="target.held", reason=HOLD_ACCOUNT, error=result.error[:1000])
        work.reconnect.setdefault(target.social_account_id, (target, result.error))
        work.alerts.append((post, target, "An account needs reconnecting before it can publish"))
        return target.status

    if result.outcome == Outcome.AMBIGUOUS:
        target.status = TargetStatus.HELD
        target.held_reason = HOLD_DECISION
        target.needs_reconcile = True
        target.next_attempt_at = None
        target.reconcile_candidates = result.candidates
        event(
            action="target.held",
            reason=HOLD_DECISION,
            error=result.error[:1000],
            candidates=result.candidates,
        )
        work.alerts.append(
            (post, target, "It may already be on the network: decide whether it went out")
        )
        return target.status

    if result.not_sent:
        # Nothing left cxhub: due again at once, and the try does not count.
        target.status = TargetStatus.WAITING
        target.next_attempt_at = now
        target.attempt_count = max(0, target.attempt_count - 1)
        event(action="target.retry_scheduled", next_attempt_at=now, error=result.error[:1000])
        return target.status
    if result.outcome == Outcome.UNKNOWN:
        target.needs_reconcile = True
    elif result.outcome == Outcome.RETRYABLE and result.phase == "publish":
        target.needs_reconcile = False  # the network answered: it did not take it
    max_attempts = settings.CXHUB_PUBLISH_MAX_ATTEMPTS
    retry = result.outcome in (Outcome.RETRYABLE, Outcome.UNKNOWN) and (
        target.attempt_count < max_attempts
        or (
            target.needs_reconcile
            and target.attempt_count < max_attempts + RECONCILE_TRIES_AFTER_LAST
        )
    )
    if retry:
        delay = backoff_seconds(target.attempt_count, retry_after=result.retry_after)
        target.status = TargetStatus.WAITING
        target.next_attempt_at = now + timedelta(seconds=delay)
        event(
            action="target.retry_scheduled",
            next_attempt_at=target.next_attempt_at,
            needs_reconcile=target.needs_reconcile,
            error=result.error[:1000],
        )
        return target.status

    target.status = TargetStatus.FAILED
    target.next_attempt_at = None
    event(action="target.failed", error=result.error[:1000], needs_reconcile=target.needs_reconcile)
    work.alerts.append((post, target, "A post could not be published"))
    work.settle[post.pk] = post
    return target.status


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


@transaction.atomic
def targets_release_for_account(*, account: SocialAccount, by: User | None) -> int:
    """After an account is reconnected (the accounts app calls this): the targets held for it
    wait again, due now or at their own time."""
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


# Reads (scoped to the user asking) ----------------------------------------------------------------
def delivery_channel(account: SocialAccount) -> str:
    """Where an account's posts really go: a training account (`sandbox`) keeps its network's
    rules and rendering but delivers to the sandbox feed."""
    return Channel.SANDBOX if account.sandbox else account.channel


def sandbox_account_get(*, user: User, account_id: int) -> SocialAccount | None:
    """A sandbox or training account the user may see (any role on its team), else None."""
    return (
        social_accounts_for(user=user)
        .filter(Q(channel=Channel.SANDBOX) | Q(sandbox=True), pk=account_id)
        .first()
    )


def sandbox_feed(*, account: SocialAccount, limit: int = 100) -> QuerySet[SandboxPublication]:
    """The account's latest publications, newest first. One query (target and post joined)."""
    return (
        SandboxPublication.objects.filter(social_account=account)
        .select_related("target__post")
        .order_by("-published_at", "-id")[:limit]
    )
