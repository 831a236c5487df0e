"""Early warning: each watch's window is compared with its baseline after every collection
(`evaluate`), a false claim's matches raise an alert as they are stored (`claims_matched`), and
an alert goes at once to the leads of the watch's team (in the app and by e-mail). A watch has at
most one alert not closed per kind (and per claim): a surge that goes on updates its alert's
peak rather than raising another, and a surge closed by a person raises again only from a window
that starts after the close. People acknowledge and close alerts; every step is audited."""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role, User
from accounts.notifications import notify
from accounts.selectors import teams_for
from audit.services import record
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from inbox.responses import responses_for
from networks.models import SocialAccount
from publishing.freezes import freeze_create
from publishing.models import Post, PublishingFreeze
from publishing.selectors import can_draft_for_team
from publishing.services import TargetInput, post_create, reply_create

from . import detectors, measures, webhooks
from .models import ALERT_TRANSITIONS, Alert, AlertKind, AlertStatus, FalseClaim, Hit, Watch
from .recipients import alert_url, lead_ids

log = logging.getLogger("cxhub.listening")

MINUTE = timedelta(minutes=1)


def window_of(watch: Watch, now: datetime) -> tuple[datetime, datetime, datetime]:
    """The watch's current window (whole minutes, the current one included) and the start of
    its baseline: (baseline start, window start, window end)."""
    end = measures.bucket_start(now, "minute") + MINUTE
    start = end - timedelta(minutes=watch.window_minutes)
    baseline = start - timedelta(hours=watch.baseline_hours)
    if watch.listening_since is not None:
        baseline = max(baseline, measures.bucket_start(watch.listening_since, "minute") + MINUTE)
    return baseline, start, end


def evaluate(watch: Watch, *, now: datetime | None = None) -> list[Alert]:
    """Run the watch's volume and sentiment detectors on its current window; the alerts newly
    raised."""
    now = now or timezone.now()
    if watch.listening_since is None:
        return []
    baseline_start, start, end = window_of(watch, now)
    window = measures.figures(watch, start, end)
    baseline_minutes = max(0.0, (start - baseline_start).total_seconds() / 60)
    baseline = (
        measures.figures(watch, baseline_start, start) if baseline_minutes else measures.Figures()
    )
    raised = []
    found = _spike(watch, baseline, baseline_minutes, end)
    if found is not None:
        spike, minutes = found
        spike_start = end - timedelta(minutes=minutes)
        evidence = {
            **_window(spike_start, end, baseline_start, baseline.volume, baseline_minutes),
            "observed": spike.observed,
            "expected": spike.expected,
            "ratio": spike.ratio,
            "p_value": spike.p_value,
            **_posts(watch, spike_start, end),
        }
        raised.append(
            _raise(watch, AlertKind.SPIKE, None, spike_start, end, evidence, spike.observed)
        )
    shift = detectors.negative_shift(
        negative=window.negative,
        scored=window.scored,
        baseline_negative=baseline.negative,
        baseline_scored=baseline.scored,
        min_volume=watch.min_volume,
    )
    if shift is not None:
        evidence = {
            **_window(start, end, baseline_start, baseline.volume, baseline_minutes),
            "observed": window.volume,
            "negative": shift.negative,
            "scored": shift.scored,
            "negative_share": shift.share,
            "baseline_negative_share": shift.baseline_share,
            "z": shift.z,
            **_posts(watch, start, end),
        }
        raised.append(
            _raise(watch, AlertKind.SENTIMENT, None, start, end, evidence, shift.negative)
        )
    return [alert for alert in raised if alert is not None]


def _spike(
    watch: Watch, baseline: measures.Figures, baseline_minutes: float, end: datetime
) -> tuple[detectors.Spike, int] | None:
    """The volume test on the watch's window and on its last third (a sharp surge shows there a
    collection or two sooner), against the same baseline; the stronger finding and its
    window's length in minutes."""
    if baseline_minutes < detectors.BASELINE_WINDOWS * watch.window_minutes:
        return None
    found = []
    for minutes in dict.fromkeys([watch.window_minutes, max(1, watch.window_minutes // 3)]):
        window = measures.figures(watch, end - timedelta(minutes=minutes), end)
        spike = detectors.spike(
            observed=window.volume,
            baseline=baseline.volume,
            baseline_minutes=baseline_minutes,
            window_minutes=minutes,
            min_volume=watch.min_volume,
        )
        if spike is not None:
            found.append((spike.p_value, -minutes, spike, minutes))
    if not found:
        return None
    _, _, spike, minutes = min(found)
    return spike, minutes


def claims_matched(watch: Watch, matched: Mapping[int, Sequence[int]]) -> list[Alert]:
    """Raise (or update) the alert of each false claim that new hits repeat."""
    raised = []
    for claim in FalseClaim.objects.filter(pk__in=list(matched), watch=watch).order_by("pk"):
        hits = list(
            Hit.objects.filter(pk__in=list(matched[claim.pk])).select_related("post").order_by("at")
        )
        if not hits:
            continue
        start, end = hits[0].at, hits[-1].at
        evidence = {
            "window": {"start": _iso(start), "end": _iso(end)},
            "claim": {"id": claim.pk, "text": claim.claim, "terms": claim.terms},
            "observed": len(hits),
            "top_posts": [_post(hit) for hit in _ranked(hits)[:5]],
        }
        alert = _raise(watch, AlertKind.FALSE_CLAIM, claim, start, end, evidence, len(hits))
        if alert is not None:
            raised.append(alert)
    return raised


def _raise(
    watch: Watch,
    kind: str,
    claim: FalseClaim | None,
    start: datetime,
    end: datetime,
    evidence: dict[str, Any],
    strength: int,
) -> Alert | None:
    """The alert of this kind, raised now and sent to the watch's leads; None when one is
    already open (its peak is updated) or one was closed after this window began."""
    key = f"{kind}:{claim.pk}" if claim is not None else kind
    with transaction.atomic():
        current = (
            Alert.objects.select_for_update()
            .filter(watch=watch, key=key)
            .exclude(status=AlertStatus.CLOSED)
            .first()
        )
        if current is not None:
            _note_peak(current, evidence, strength, end)
            return None
        if Alert.objects.filter(
            watch=watch, key=key, status=AlertStatus.CLOSED, closed_at__gt=start
        ).exists():
            return None
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    watch=watch,
                    kind=kind,
                    claim=claim,
                    key=key,
                    window_start=start,
                    window_end=end,
                    evidence=evidence,
                    peak={"observed": strength, "at": _iso(end)},
                )
        except IntegrityError:
            return None  # raised meanwhile by another collection of the same watch
        record(
            actor=None,
            action="listening.alert_raised",
            obj=alert,
            team=watch.team,
            data={
                "watch": watch.pk,
                "kind": kind,
                "claim": claim.pk if claim else None,
                "window": [_iso(start), _iso(end)],
                "observed": strength,
                "posts": [post["id"] for post in evidence.get("top_posts", [])],
            },
        )
        _tell_leads(alert)
        webhooks.delivery_queue(alert)
    log.warning("listening: %s alert %s raised on watch %s", kind, alert.pk, watch.pk)
    return alert


def _note_peak(alert: Alert, evidence: Mapping[str, Any], strength: int, end: datetime) -> None:
    if strength > int(alert.peak.get("observed", 0)):
        alert.peak = {"observed": strength, "at": _iso(end), "evidence": dict(evidence)}
        alert.window_end = max(alert.window_end, end)
        alert.save(update_fields=["peak", "window_end", "updated_at"])


def _tell_leads(alert: Alert) -> None:
    watch = alert.watch
    label = AlertKind(alert.kind).label
    observed = alert.evidence.get("observed", 0)
    minutes = round((alert.window_end - alert.window_start).total_seconds() / 60)
    if alert.kind == AlertKind.SPIKE:
        body = (
            f"{observed:,} posts in the last {minutes} minutes, where about "
            f"{alert.evidence.get('expected', 0):,.1f} were expected."
        )
    elif alert.kind == AlertKind.SENTIMENT:
        body = (
            f"{alert.evidence.get('negative_share', 0):.0%} of the last {watch.window_minutes} "
            f"minutes' scored posts are negative, against "
            f"{alert.evidence.get('baseline_negative_share', 0):.0%} before."
        )
    else:
        body = (
            f"{observed:,} posts repeat the false claim: {alert.claim.claim if alert.claim else ''}"
        )
    notify(
        users=User.objects.filter(pk__in=lead_ids(watch)),
        kind="listening_alert",
        title=f"{label} on “{watch.name}”",
        body=body,
        url=alert_url(alert),
    )


def _window(
    start: datetime, end: datetime, baseline_start: datetime, volume: int, minutes: float
) -> dict[str, Any]:
    return {
        "window": {"start": _iso(start), "end": _iso(end)},
        "baseline": {
            "start": _iso(baseline_start),
            "end": _iso(start),
            "volume": volume,
            "minutes": round(minutes, 1),
        },
    }


def _posts(watch: Watch, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "top_posts": [_post(hit) for hit in measures.top_posts(watch, start, end)],
        "top_authors": measures.top_authors(watch, start, end),
    }


def _ranked(hits: Sequence[Hit]) -> list[Hit]:
    return sorted(hits, key=lambda hit: (-(hit.post.reposts or 0), -(hit.post.likes or 0), hit.at))


def _post(hit: Hit) -> dict[str, Any]:
    post = hit.post
    return {
        "id": post.pk,
        "network": post.network,
        "url": post.url,
        "author": post.author_handle,
        "text": post.text[:500],
        "posted_at": _iso(post.posted_at),
        "likes": post.likes,
        "reposts": post.reposts,
        "sentiment": post.sentiment,
        "language": post.language,
    }


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# People's actions -------------------------------------------------------------------------------
def may_act(*, user: User, alert: Alert) -> bool:
    """Leads of the watch's team (or above) acknowledge and close its alerts."""
    return teams_for(user=user, roles=[Role.LEAD]).filter(pk=alert.watch.team_id).exists()


def _move(alert: Alert, by: User, status: str) -> Alert:
    if not may_act(user=by, alert=alert):
        raise NotAllowed("Only a lead of the watch's team can do this to its alerts.")
    alert = Alert.objects.select_for_update().select_related("watch__team").get(pk=alert.pk)
    if status not in ALERT_TRANSITIONS[alert.status]:
        raise InvalidTransition(f"This alert is {alert.status}; it cannot be made {status}.")
    return alert


@transaction.atomic
def alert_acknowledge(*, alert: Alert, by: User) -> Alert:
    """`by` is on it: the alert stays until closed, and no copy is raised meanwhile."""
    alert = _move(alert, by, AlertStatus.ACKNOWLEDGED)
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by = by
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "updated_at"])
    record(
        actor=by,
        action="listening.alert_acknowledged",
        obj=alert,
        team=alert.watch.team,
        data={"watch": alert.watch_id, "kind": alert.kind},
    )
    return alert


@transaction.atomic
def alert_close(*, alert: Alert, by: User, note: str = "") -> Alert:
    """Dealt with: closed with an optional note. A new surge raises a new alert."""
    alert = _move(alert, by, AlertStatus.CLOSED)
    note = note.strip()[:2000]
    now = timezone.now()
    alert.status = AlertStatus.CLOSED
    alert.closed_by = by
    alert.closed_at = now
    alert.close_note = note
    if alert.acknowledged_at is None:
        alert.acknowledged_by, alert.acknowledged_at = by, now
    alert.save(
        update_fields=[
            "status",
            "closed_by",
            "closed_at",
            "close_note",
            "acknowledged_by",
            "acknowledged_at",
            "updated_at",
        ]
    )
    record(
        actor=by,
        action="listening.alert_closed",
        obj=alert,
        team=alert.watch.team,
        data={"watch": alert.watch_id, "kind": alert.kind, "note": note},
    )
    return alert


def _check_may_draft(by: User, watch: Watch) -> None:
    """A clear refusal for someone who cannot draft for the watch's team, before the publishing
    rules refuse the draft naming a team the person did not choose."""
    if not can_draft_for_team(user=by, team=watch.team):
        raise NotAllowed(
            f"You cannot draft posts for {watch.team.name}: a drafter of the team (or of a team "
            "above it) drafts from its alerts."
        )


@transaction.atomic
def alert_draft_post(
    *, alert: Alert, by: User, response_id: object, account_ids: Sequence[int]
) -> Post:
    """A draft post answering the alert, in the words of one of the agency's approved responses
    offered to the watch's team, for the accounts given, marked with the watch's topic (its tags
    and campaign). `by` must be able to draft for the team; the draft is submitted and approved
    like any other. Audited on the alert, naming the post."""
    watch = Watch.objects.select_related("team").get(pk=alert.watch_id)
    _check_may_draft(by, watch)
    response = (
        responses_for(team=watch.team).filter(pk=response_id).first()
        if isinstance(response_id, int) and not isinstance(response_id, bool)
        else None
    )
    if response is None:
        raise ApplicationError(
            "No approved response with this id for this team.",
            {"fields": {"response": ["Choose one of the team's approved responses."]}},
        )
    post = post_create(
        by=by,
        team_id=watch.team_id,
        body=response.body,
        targets=[TargetInput(social_account_id=account_id) for account_id in account_ids],
        tags=watch.topic_tags,
        campaign=watch.topic_campaign,
    )
    record(
        actor=by,
        action="listening.alert_post_drafted",
        obj=alert,
        team=watch.team,
        data={"watch": watch.pk, "post": post.pk, "response": response.pk},
    )
    return post


@transaction.atomic
def alert_reply_create(
    *,
    alert: Alert,
    by: User,
    post_id: object,
    account_id: object,
    response_id: object = None,
    body: str = "",
) -> Post:
    """A draft reply to one of the watch's posts (a top post of the alert, say), from one of our
    accounts on the post's network, in the words of an approved response (or `body`): published
    as the network's reply once approved like any reply. On Mastodon the account must be on the
    server that read the post (its id is that server's). Audited on the alert."""
    watch = Watch.objects.select_related("team").get(pk=alert.watch_id)
    _check_may_draft(by, watch)
    hit = (
        Hit.objects.filter(watch=watch, post_id=post_id).select_related("post__read_via").first()
        if isinstance(post_id, int) and not isinstance(post_id, bool)
        else None
    )
    if hit is None:
        raise _fields("post", "No post of this watch with this id (it may have been purged).")
    post = hit.post
    account = (
        SocialAccount.objects.filter(pk=account_id).first() if isinstance(account_id, int) else None
    )
    if account is None or account.channel != post.network:
        raise _fields("account", f"Choose one of our {post.network} accounts to answer from.")
    if post.network == "mastodon" and (
        post.read_via is None or post.read_via.base_url.rstrip("/") != account.base_url.rstrip("/")
    ):
        raise _fields(
            "account",
            "Answer from an account on the Mastodon server that read the post "
            f"({post.read_via.base_url if post.read_via else 'unknown'}).",
        )
    if response_id is not None:
        response = (
            responses_for(team=watch.team).filter(pk=response_id).first()
            if isinstance(response_id, int) and not isinstance(response_id, bool)
            else None
        )
        if response is None:
            raise _fields("response", "Choose one of the team's approved responses.")
        body = response.body
    reply = reply_create(
        by=by,
        team_id=watch.team_id,
        social_account_id=account.pk,
        body=body,
        in_reply_to={"network_id": post.network_id, "thread_id": "", "raw": post.raw},
        campaign=watch.topic_campaign,
    )
    record(
        actor=by,
        action="listening.alert_reply_drafted",
        obj=alert,
        team=watch.team,
        data={"watch": watch.pk, "post": reply.pk, "answers": post.pk, "response": response_id},
    )
    return reply


@transaction.atomic
def alert_freeze_topic(*, alert: Alert, by: User, reason: str = "") -> PublishingFreeze:
    """Hold the team's scheduled posts on the watch's topic (the posts of the watch's team and
    below that carry one of its topic tags or its campaign) with one click: a topic freeze, with
    the alert named in its reason, lifted like any freeze. A lead of the watch's team; the watch
    must say how its topic's posts are marked."""
    watch = Watch.objects.select_related("team").get(pk=alert.watch_id)
    if not (watch.topic_tags or watch.topic_campaign):
        raise _fields(
            "topic_tags",
            "The watch does not say how the team's posts on its topic are marked: give it topic "
            "tags or a campaign first.",
        )
    label = AlertKind(alert.kind).label.lower()
    because = f"Alert {alert.pk} ({label}) on “{watch.name}”." + (
        f" {reason.strip()}" if reason and reason.strip() else ""
    )
    freeze = freeze_create(
        by=by,
        scope=PublishingFreeze.Scope.TOPIC,
        reason=because,
        team_id=watch.team_id,
        tags=list(watch.topic_tags),
        campaign=watch.topic_campaign,
    )
    record(
        actor=by,
        action="listening.alert_freeze",
        obj=alert,
        team=watch.team,
        data={"watch": watch.pk, "freeze": freeze.pk, "held": getattr(freeze, "held_count", 0)},
    )
    return freeze


def _fields(name: str, message: str) -> ApplicationError:
    return ApplicationError(message, {"fields": {name: [message]}})
