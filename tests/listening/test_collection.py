"""Collection (listening/collection.py) against the networks' test servers on 127.0.0.1: a watch
collects exactly once across stops and restarts, reads within the budget it shares with
publishing, finds a surge through the network's search within two collection intervals, and
says when it has no account to read with."""

import random
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from listening import collection, services
from listening.models import Alert, Hit, Measure, Source, Watch
from networks import ratelimits
from networks.models import AccountStatus

from ..inbox.test_networks_end_to_end import fail_on_call
from ..publishing.networks.conftest import loopback_allowed  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.peer]


@pytest.fixture
def small_pages(settings):
    settings.CXHUB_LISTENING_PAGE_SIZE = 10
    settings.CXHUB_LISTENING_PAGES_PER_RUN = 2


def _watch(org, lead, network, **values):
    return services.watch_create(
        by=lead,
        team_id=org["north"].pk,
        values={"name": "Harbour", "terms": ["harbour"], "networks": [network], **values},
    )


def _run(source):
    """The source's next turn, as the dispatcher would queue it (its time moved forward)."""
    Source.objects.filter(pk=source.pk).update(next_at=timezone.now() - timedelta(seconds=1))
    assert collection.claim_due() == [source.pk]
    return collection.source_collect(source_id=source.pk)


def _volume(watch):
    return sum(
        Measure.objects.filter(watch=watch, resolution="minute").values_list("volume", flat=True)
    )


def _wait_over(account):
    """The network's wait is over: what a 429 blocked may be called again."""
    host = urlsplit(account.base_url).netloc.lower()
    whose = ratelimits.caller(account_id=account.pk, channel=account.channel, host=host)
    for scope in (whose.account, whose.app, whose.reading):
        ratelimits.forget(scope)


def test_a_watch_collects_exactly_once_across_stops_and_restarts(
    org, north_lead, x_account, x_server, small_pages, monkeypatch
):
    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    # The first run reads the newest page only: what was said before the watch is not
    # back-filled.
    first = [x_server.add_public(f"harbour news {n}") for n in range(3)]
    assert _run(source).hits == 3
    # Then 45 more, more than two runs of two pages of ten; the second call of the next run is
    # refused with a rate limit.
    later = [x_server.add_public(f"harbour update {n}", username=f"user{n}") for n in range(45)]
    fail_on_call(x_server, "search", 2, ("429", {"reset_in": 300}), monkeypatch=monkeypatch)
    stopped = _run(source)
    assert "429" in stopped.error and stopped.pages == 1
    # While the network's wait lasts, a run queued anyway asks nothing.
    asked = len(x_server.search_queries)
    assert _run(source).skipped == "rate limit"
    assert len(x_server.search_queries) == asked
    # Once it is over, the runs go on from the stored cursor until nothing is left.
    _wait_over(x_account)
    for _ in range(20):
        run = _run(source)
        assert not run.error, run.error
        if run.hits == 0:
            break
    else:
        pytest.fail("the walk never ended")

    kept = list(Hit.objects.filter(watch=watch).values_list("post__network_id", flat=True))
    assert sorted(kept) == sorted(post["id"] for post in first + later)
    assert _volume(watch) == 48


def test_a_surge_found_by_the_network_search_raises_one_alert_within_two_intervals(
    org, north_lead, x_account, x_server
):
    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    # Two hours of a quiet topic behind the watch, one post every four minutes.
    now = timezone.now()
    history = [
        x_server.add_public(f"harbour ferry times {n}", created_at=now - timedelta(minutes=4 * n))
        for n in range(1, 31)
    ]
    assert _run(source).hits == len(history)
    Watch.objects.filter(pk=watch.pk).update(listening_since=now - timedelta(hours=2))
    assert _run(source).alerts == 0
    # A surge: sixty posts in two minutes, then one collection, then another.
    for n in range(60):
        x_server.add_public(f"harbour closed?! {n}", username=f"worried{n}")
    runs = [_run(source), _run(source)]

    assert [run.alerts for run in runs].count(1) == 1
    [alert] = Alert.objects.filter(watch=watch)
    assert alert.kind == "spike" and alert.evidence["observed"] >= 60


def test_a_source_without_an_account_to_read_with_says_so(org, north_lead, x_account, x_server):
    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    x_account.status = AccountStatus.NEEDS_RECONNECT
    x_account.save()

    run = _run(source)

    assert run.skipped == "no account"
    source.refresh_from_db()
    assert "No connected X account" in source.last_error
    assert x_server.search_queries == []


def test_a_watch_reads_through_the_nearest_team_s_account(org, north_lead, lead, mastodon_server):
    from ..factories import SocialAccountFactory

    hq = SocialAccountFactory(
        team=org["hq"], channel="mastodon", handle="@hq", base_url=mastodon_server.url
    )
    watch = services.watch_create(
        by=lead,
        team_id=org["north_centre"].pk,
        values={"name": "Harbour", "terms": ["harbour"], "networks": ["mastodon"]},
    )
    assert collection.reading_account(watch, "mastodon") == hq
    centre = SocialAccountFactory(
        team=org["north_centre"], channel="mastodon", handle="@centre", base_url=mastodon_server.url
    )
    assert collection.reading_account(watch, "mastodon") == centre
    assert collection.reading_account(watch, "x") is None


def test_a_steady_day_read_through_the_network_search_raises_no_alert(
    org, north_lead, x_account, x_server
):
    """The same average volume as the surge's (a post a minute, and the surge's sixty spread
    over the day), read every five minutes of a simulated day: no alert."""
    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    rng = random.Random(7)
    start = timezone.now() - timedelta(days=1)
    Watch.objects.filter(pk=watch.pk).update(listening_since=start)
    rate, every = 1.0 + 60 / (24 * 60), timedelta(minutes=5)
    at, posted, raised = start, 0, 0
    for step in range(24 * 12):
        end = start + (step + 1) * every
        while True:
            at += timedelta(minutes=rng.expovariate(rate))
            if at >= end:
                at = end
                break
            x_server.add_public(
                f"harbour ferry {posted}", username=f"u{posted % 300}", created_at=at
            )
            posted += 1
        run = collection.source_collect(source_id=source.pk, now=end)
        assert not run.error, run.error
        raised += run.alerts

    assert raised == 0 and not Alert.objects.exists()
    assert Hit.objects.filter(watch=watch).count() == posted > 1300


def test_a_false_claim_read_through_the_network_search_is_flagged_and_alerted(
    org, north_lead, x_account, x_server
):
    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    claim = services.claim_create(
        by=north_lead,
        watch=watch,
        claim="The harbour is closed for good",
        terms=["closed for good"],
    )
    x_server.add_public("harbour ferry times")
    _run(source)
    rumour = x_server.add_public("The harbour is CLOSED for good, they say", username="rumour")

    run = _run(source)

    assert run.alerts == 1
    flagged = Hit.objects.get(watch=watch, post__network_id=rumour["id"])
    assert flagged.claims == [claim.pk]
    alert = Alert.objects.get(watch=watch)
    assert (alert.kind, alert.claim_id) == ("false_claim", claim.pk)
    assert Hit.objects.filter(watch=watch, claims=[]).count() == 1


def test_a_refused_token_marks_the_reading_account_and_a_channel_bug_stops_one_run_only(
    org, north_lead, x_account, x_server, monkeypatch
):
    from networks.channels import get_channel

    watch = _watch(org, north_lead, "x")
    [source] = watch.sources.all()
    channel = get_channel("x")

    def broken(*args, **kwargs):
        raise KeyError("a channel's bug")

    monkeypatch.setattr(type(channel), "search_public", broken)
    run = _run(source)
    assert "KeyError" in Source.objects.get(pk=source.pk).last_error and run.error
    monkeypatch.undo()
    assert not _run(source).error  # the next turn reads again

    # The person withdrew cxhub's grant at X: the token is refused, and cannot be renewed.
    x_server.revoke_grant(x_server.user_id)
    refused = _run(source)
    assert refused.error
    x_account.refresh_from_db()
    assert x_account.status == AccountStatus.NEEDS_RECONNECT
