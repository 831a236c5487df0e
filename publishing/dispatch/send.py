"""Send, the third stage of dispatch: publish_targets, the work of one publish task. It starts its
group (start.py), calls the network for each target outside any transaction (at the same time,
in lanes: lanes.py), and stores every outcome at once (outcome.py).

What the channel answers, or raises, is read as the try's outcome: published or found (after a
look), retryable, refused for good, an expired token, several possible matches for a person to
choose from, or unknown when the post may have gone out (a timeout after sending, a bug in a
channel), which is looked for before any retry. A group whose time runs out leaves the rest not
sent, due again at once. Also here, the reads of the sandbox feed where a training account's
sends land.
"""

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import User
from networks import ratelimits
from networks.channels import get_channel
from networks.channels.errors import (
    AmbiguousMatch,
    AuthExpired,
    PermanentError,
    RetryableError,
    UnknownOutcome,
)
from networks.models import Channel, SocialAccount
from networks.selectors import social_accounts_for

from ..models import PublishAttempt, SandboxPublication
from . import lanes
from .common import HOLD_FREEZE, _kv, recent_freezes
from .lanes import host_of
from .outcome import _Result, _store_outcomes_retrying
from .start import _Send, _start_attempts

log = logging.getLogger("cxhub.publish")

Outcome = PublishAttempt.Outcome


def publish_targets(
    *, target_ids: list[int], worker: str = "", in_background: bool = False
) -> dict[int, str]:
    """Publish a group of queued targets: one transaction claims them all, the network is called
    for each (outside any transaction, in lanes at the same time), one transaction stores every
    outcome. Returns what happened to each ("noop" for a target that was not queued: a
    redelivered or stale task). Safe to run any number of times for the same targets.

    A group costs a few queries whatever its size, where one task per target paid them all for
    each: the dispatcher sends groups (claim._enqueue), and a worker that dies mid-group leaves its
    targets `sending`, found by the sweeper and reconciled like any other.

    `in_background` (the publish task's way, when the process may run several groups at once:
    lanes.groups_at_once): the sends and the storing of their outcomes go on in a thread of their
    own once the group is claimed, and those targets are returned as "sending"."""
    began = time.monotonic()
    background = in_background and lanes.groups_at_once() > 1
    if background:
        lanes.enter_group()  # before the claim: a task waiting for its turn holds nothing
    try:
        sends, done = _start_attempts(target_ids=target_ids, worker=worker)
    except BaseException:
        if background:
            lanes.leave_group()
        raise
    for target_id, what in done.items():
        log.info(_kv(event="publish.skip", target=target_id, result=what, worker=worker))
    if not sends:
        if background:
            lanes.leave_group()
        return done
    if background:
        lanes.in_background(lambda: _send_and_store(sends, began=began, worker=worker))
        return {**done, **{send.target_id: "sending" for send in sends}}
    return {**done, **_send_and_store(sends, began=began, worker=worker)}


def _send_and_store(sends: list[_Send], *, began: float, worker: str) -> dict[int, str]:
    """A claimed group's sends, then its one outcome transaction and a log line per send; the
    outcome of each."""
    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    if settings.CXHUB_PUBLISH_THREADS > 1:  # a group of one too: its send takes its slots
        results = lanes.send_all(
            sends,
            _talk_to_network,
            began=began,
            budget=budget,
            not_sent=_not_sent,
            time_ran_out=_TIME_RAN_OUT,
            stopped=_before_send,
        )
    else:
        results = _send_one_by_one(sends, began=began, budget=budget)
    statuses = _store_outcomes_retrying([(send, result) for send, result, _ in results])
    duration_ms = round((time.monotonic() - began) * 1000)
    outcomes = {}
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
        outcomes[send.target_id] = result.outcome
    return outcomes


def _send_one_by_one(
    sends: list[_Send], *, began: float, budget: float
) -> list[tuple[_Send, _Result, int]]:
    """The sends of a group in turn, in the task's thread (CXHUB_PUBLISH_THREADS = 1)."""
    results: list[tuple[_Send, _Result, int]] = []
    current: _Send | None = None
    try:
        for send in sends:
            if results and time.monotonic() - began > budget:
                # Too long for one task: what is left goes back to waiting, due at once.
                results.append((send, _not_sent(), 0))
                continue
            current, sent_at = send, time.monotonic()
            result = _before_send(send) or _talk_to_network(send)
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
    return results


_TIME_RAN_OUT = "The task's time limit ran out around this send; the network is asked first."


def _not_sent() -> _Result:
    return _Result(
        Outcome.RETRYABLE,
        error="Not sent: the worker's time for this group ran out first; due again at once.",
        not_sent=True,
    )


def _before_send(send: _Send) -> _Result | None:
    """What stops a send just before it starts, as its result: a freeze, or the network's rate
    limit for its account or app spent (networks/ratelimits.py)."""
    return _frozen(send) or _rate_limited(send)


def _rate_limited(send: _Send) -> _Result | None:
    """A send the network would only refuse with 429 is not made: due again at the reset, the
    try not counted."""
    wait = ratelimits.wait_for(_caller(send))
    if wait <= 0:
        return None
    return _Result(
        Outcome.RETRYABLE,
        error=(
            "Not sent: the network's rate limit for this account is spent; due again when it "
            f"resets, in {wait:.0f} s."
        ),
        retry_after=wait,
        not_sent=True,
    )


def _caller(send: _Send) -> ratelimits.Caller:
    return ratelimits.caller(account_id=send.account.pk, channel=send.channel, host=host_of(send))


def _frozen(send: _Send) -> _Result | None:
    """A freeze set since the group was claimed, which covers this send: it is not made, and
    its target is held until the freeze is lifted."""
    freeze_id = send.freeze(recent_freezes.now())
    if freeze_id is None:
        return None
    return _Result(
        Outcome.SKIPPED,
        error=f"Publishing is frozen (freeze {freeze_id}); nothing was sent.",
        held=HOLD_FREEZE,
    )


def publish_target(*, target_id: int, worker: str = "") -> str:
    """Publish one queued target (a group of one); what happened to it."""
    return publish_targets(target_ids=[target_id], worker=worker)[target_id]


def _talk_to_network(send: _Send) -> _Result:
    """The network call, outside any transaction: a slow network holds no lock. What its
    answers say of the rate limits is kept for the send's account and app."""
    if _in_transaction():
        raise RuntimeError("publish_target must call the channel outside any transaction")
    with ratelimits.calling(account_id=send.account.pk, channel=send.channel, host=host_of(send)):
        return _talk(send)


def _talk(send: _Send) -> _Result:
    channel = get_channel(send.channel)
    phase = "reconcile" if send.reconcile_first else "publish"
    try:
        if send.reconcile_first:
            found = channel.reconcile(
                send.account,
                send.text,
                idempotency_key=send.key,
                hints=send.hints,
                **send.reply_arguments(),
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
        published = channel.publish(
            send.account,
            send.text,
            send.media,
            idempotency_key=send.key,
            **send.reply_arguments(),
        )
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


# Reads (scoped to the user asking) ----------------------------------------------------------------
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
