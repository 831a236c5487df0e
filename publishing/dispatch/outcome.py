"""Outcome, the fourth stage of dispatch: every outcome of a group stored in one transaction, each
target published, waiting again (a retry after a backoff), failed or held, and its post settled
when its last target is final.

A dropped database connection is reopened and the write tried again: what the network did must
not be forgotten. An outcome coming after the sweeper gave its target to another try is kept on
its own attempt only, unless it found the post out, which is still the truth. An expired token
holds the target and marks its account for reconnecting; several possible matches hold it for a
person (sweep.py's target_decide); a failure or a hold alerts the author and leads.
"""

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.notifications import notify_many
from audit.services import record_many
from networks.services import social_account_needs_reconnect

from .. import engagement, hooks
from ..models import Post, PostTarget, PublishAttempt, TargetStatus
from .common import HOLD_ACCOUNT, HOLD_DECISION, _alert, _kv, _settle_posts
from .start import _Send

log = logging.getLogger("cxhub.publish")

Outcome = PublishAttempt.Outcome

# After the last try left an unknown outcome, this many more tries may only ask the network.
RECONCILE_TRIES_AFTER_LAST = 3
# Storing an outcome survives a dropped database connection: tried again after these pauses.
STORE_RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)


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
    # Nothing was sent, and the target is held for this reason (a freeze set while it waited
    # for its turn); the try does not count either.
    held: str = ""
    # Posts that may be ours (AmbiguousMatch), for a person to decide between.
    candidates: list[dict[str, str]] = field(default_factory=list)


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
    "metrics_next_at",
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
    # Replies that went out: the inbox is told (hooks.replies_published).
    replies: list[PostTarget] = field(default_factory=list)


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
    if work.replies:
        hooks.replies_published.send(targets=work.replies)
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
        target.metrics_next_at = engagement.first_reading(now)
        if target.in_reply_to:
            work.replies.append(target)
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

    if result.held:
        target.status = TargetStatus.HELD
        target.held_reason = result.held
        target.attempt_count = max(0, target.attempt_count - 1)
        event(action="target.held", reason=result.held, detail=result.error[:1000])
        return target.status
    if result.not_sent:
        # Nothing left cxhub: due again at once (or when the network's rate limit resets), and
        # the try does not count.
        due = now + timedelta(seconds=result.retry_after or 0)
        target.status = TargetStatus.WAITING
        target.next_attempt_at = due
        target.attempt_count = max(0, target.attempt_count - 1)
        event(action="target.retry_scheduled", next_attempt_at=due, error=result.error[:1000])
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
