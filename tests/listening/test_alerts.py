"""Early warning (listening/detectors.py, alerts.py): a surge raises one alert within two
collection intervals, a steady stream of the same average volume for a day raises none, a quiet
topic going from 1 to 3 posts is no alarm; sentiment shifts and known false claims; alerts go to
the leads, are acknowledged and closed by a person, and every step is audited."""

import math
import random
from datetime import timedelta

import pytest

from accounts.models import Notification, Role
from audit.models import AuditEvent
from cxhub.errors import InvalidTransition, NotAllowed
from listening import alerts, detectors, services
from listening.models import Alert, AlertStatus, Watch

from ..factories import UserFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


# The tests themselves -----------------------------------------------------------------------------
def test_the_poisson_tail_is_right_on_both_sides_of_the_mean():
    def direct(observed, mean):
        return 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(observed))

    for observed, mean in [(0, 3.0), (1, 3.0), (3, 5.0), (5, 5.0), (12, 5.0), (30, 10.0)]:
        assert detectors.poisson_tail(observed, mean) == pytest.approx(
            direct(observed, mean), rel=1e-9
        )
    # A large mean (both sides summed without overflow): P(X >= mean) is a little over a half.
    assert detectors.poisson_tail(5000, 5000.0) == pytest.approx(
        0.5 + 1 / (3 * math.sqrt(2 * math.pi * 5000)), abs=1e-4
    )
    # Far in the tail, where 1 - cdf would be lost to rounding, the sum in logs still answers.
    assert 0 < detectors.poisson_tail(400, 30.0) < 1e-200


def test_a_quiet_topic_going_from_one_post_to_three_is_no_alarm():
    assert (
        detectors.spike(
            observed=3, baseline=1, baseline_minutes=24 * 60, window_minutes=15, min_volume=10
        )
        is None
    )


def test_a_spike_needs_a_baseline_at_least_four_windows_long():
    kwargs = {"observed": 200, "baseline": 0, "window_minutes": 15, "min_volume": 10}
    assert detectors.spike(baseline_minutes=59, **kwargs) is None
    assert detectors.spike(baseline_minutes=60, **kwargs) is not None


def _collect(watch, posts, *, now):
    """What one collection at `now` does: store what came, then the detectors."""
    stored = services.posts_store(watch=watch, network="x", posts=posts)
    raised = alerts.claims_matched(watch, stored.claims) if stored.claims else []
    watch.refresh_from_db()
    return raised + alerts.evaluate(watch, now=now)


def _poisson_stream(rng, rate, start, minutes, *, every=1):
    """A Poisson stream at `rate` posts a minute for `minutes`: the posts of each collection
    interval of `every` minutes, in turn."""
    at, end, batches = start, start + minutes * MINUTE, [[] for _ in range(minutes // every)]
    while True:
        at += timedelta(minutes=rng.expovariate(rate))
        if at >= end:
            return batches
        batches[int((at - start) / (every * MINUTE))].append(
            public(f"census talk {rng.random()}", at=at)
        )


def _listening_since(watch, at):
    Watch.objects.filter(pk=watch.pk).update(listening_since=at)
    watch.refresh_from_db()


SURGE_POSTS, STEADY_RATE = 120, 1.0


def test_a_surge_raises_one_alert_within_two_collection_intervals(watch):
    rng = random.Random(1)
    _listening_since(watch, T0)
    # Three hours of a steady stream, collected every five minutes.
    raised = []
    for n, posts in enumerate(_poisson_stream(rng, STEADY_RATE, T0, 3 * 60, every=5)):
        raised += _collect(watch, posts, now=T0 + (n + 1) * 5 * MINUTE)
    assert raised == []
    # Then a surge: 120 posts in 10 minutes, collected each minute.
    surge_start = T0 + 3 * 60 * MINUTE
    first_alert_after = None
    for minute in range(20):
        now = surge_start + (minute + 1) * MINUTE
        posts = [
            public("census launch day", at=surge_start + minute * MINUTE + n * MINUTE / 12)
            for n in range(12 if minute < 10 else 0)
        ]
        new = _collect(watch, posts, now=now)
        if new and first_alert_after is None:
            first_alert_after = minute + 1
        raised += new

    assert [alert.kind for alert in raised] == ["spike"]
    assert first_alert_after is not None and first_alert_after <= 2
    [alert] = raised
    alert.refresh_from_db()
    assert alert.evidence["observed"] >= watch.min_volume
    assert alert.evidence["expected"] < alert.evidence["observed"] / 3
    assert len(alert.evidence["top_posts"]) == 5
    # The surge went on after the alert: its peak follows it, no second alert.
    assert alert.peak["observed"] > alert.evidence["observed"]
    assert Alert.objects.count() == 1


def test_a_steady_stream_of_the_same_average_volume_for_a_day_raises_none(watch):
    rng = random.Random(2)
    _listening_since(watch, T0)
    # The surge's posts spread over the day, on top of the same stream, collected every five
    # minutes (each collection runs the detectors on the window that ends then).
    rate = STEADY_RATE + SURGE_POSTS / (24 * 60)
    raised, total = [], 0
    for n, posts in enumerate(_poisson_stream(rng, rate, T0, 24 * 60, every=5)):
        raised += _collect(watch, posts, now=T0 + (n + 1) * 5 * MINUTE)
        total += len(posts)

    assert raised == []
    assert not Alert.objects.exists()
    days = watch.measures.filter(resolution="day")
    assert sum(days.values_list("volume", flat=True)) == total > 1400


def _surge(watch, start, count=60, text="census scam"):
    return [public(f"{text} {n}", at=start + n * MINUTE / 10) for n in range(count)]


def test_a_closed_alert_is_raised_again_only_by_a_window_after_its_close(watch, north_lead):
    _listening_since(watch, T0)
    start = T0 + 120 * MINUTE
    [alert] = _collect(watch, _surge(watch, start), now=start + 6 * MINUTE)
    alerts.alert_close(alert=alert, by=north_lead, note="Known: the launch.")
    Alert.objects.filter(pk=alert.pk).update(closed_at=start + 7 * MINUTE)

    # The same surge, seen again: not raised twice.
    assert _collect(watch, [], now=start + 8 * MINUTE) == []
    # A new surge, its window wholly after the close: a new alert.
    later = start + 60 * MINUTE
    [again] = _collect(watch, _surge(watch, later), now=later + 6 * MINUTE)
    assert again.pk != alert.pk and again.kind == "spike"


def test_a_shift_to_negative_sentiment_raises_its_alert(org, north_lead):
    watch = services.watch_create(
        by=north_lead,
        team_id=org["north"].pk,
        values={"name": "Census", "terms": ["census"], "networks": ["x"], "window_minutes": 60},
    )
    _listening_since(watch, T0)
    calm = [public(f"census form is easy {n}", at=T0 + n * 6 * MINUTE) for n in range(200)]
    assert _collect(watch, calm, now=T0 + 1201 * MINUTE) == []
    # The next hour: as many posts as usual (no spike), but angry.
    start = T0 + 1201 * MINUTE
    angry = [
        public(f"census is a terrible awful mess {n}", at=start + n * 5 * MINUTE) for n in range(11)
    ]
    raised = _collect(watch, angry, now=start + 59 * MINUTE)

    assert [alert.kind for alert in raised] == ["sentiment"]
    evidence = raised[0].evidence
    assert evidence["negative_share"] > 0.9 and evidence["baseline_negative_share"] < 0.05


def test_a_false_claim_raises_an_alert_with_its_posts(watch, north_lead):
    claim = services.claim_create(
        by=north_lead,
        watch=watch,
        claim="Census texts ask for bank details",
        terms=["bank details"],
    )
    raised = _collect(
        watch,
        [
            public("census text wants my bank details", at=T0, reposts=9),
            public("census form done", at=T0),
        ],
        now=T0 + MINUTE,
    )

    [alert] = raised
    assert (alert.kind, alert.claim, alert.evidence["observed"]) == ("false_claim", claim, 1)
    assert alert.evidence["top_posts"][0]["reposts"] == 9
    # More matches later: the same alert, its peak updated.
    assert (
        _collect(watch, [public("bank details census again", at=T0 + MINUTE)], now=T0 + 2 * MINUTE)
        == []
    )


def test_an_alert_reaches_the_leads_of_the_watch_team_and_above_and_is_audited(
    org, watch, north_lead, lead, author
):
    services.claim_create(by=north_lead, watch=watch, claim="Fake fines", terms=["fine"])
    [alert] = _collect(watch, [public("census fine text", at=T0)], now=T0 + MINUTE)

    told = set(
        Notification.objects.filter(kind="listening_alert").values_list("user__username", flat=True)
    )
    assert told == {north_lead.username, lead.username}  # North's lead and HQ's; not the drafter
    event = AuditEvent.objects.get(action="listening.alert_raised")
    assert event.object_id == str(alert.pk)
    assert event.data["kind"] == "false_claim"


def test_leads_acknowledge_then_close_and_nobody_else_may(org, watch, north_lead, author):
    services.claim_create(by=north_lead, watch=watch, claim="Fake fines", terms=["fine"])
    [alert] = _collect(watch, [public("census fine text", at=T0)], now=T0 + MINUTE)
    south_lead = UserFactory(username="sol")
    grant(south_lead, org["south"], Role.LEAD)

    for stranger in (author, south_lead):
        with pytest.raises(NotAllowed):
            alerts.alert_acknowledge(alert=alert, by=stranger)
    alert = alerts.alert_acknowledge(alert=alert, by=north_lead)
    with pytest.raises(InvalidTransition):
        alerts.alert_acknowledge(alert=alert, by=north_lead)
    alert = alerts.alert_close(alert=alert, by=north_lead, note="Answered with the approved line.")

    assert alert.status == AlertStatus.CLOSED
    assert (alert.acknowledged_by, alert.closed_by) == (north_lead, north_lead)
    assert list(
        AuditEvent.objects.filter(object_id=str(alert.pk), action__startswith="listening.alert")
        .order_by("seq")
        .values_list("action", flat=True)
    ) == ["listening.alert_raised", "listening.alert_acknowledged", "listening.alert_closed"]
    with pytest.raises(InvalidTransition):
        alerts.alert_close(alert=alert, by=north_lead)
