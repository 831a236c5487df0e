"""Engagement of our posts (publishing/engagement.py): the decaying schedule of readings, the
readings kept as a series, the API and the post page that show them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from networks import channels as channel_registry
from networks.channels import Engagement
from networks.channels.errors import RetryableError
from networks.channels.mastodon import MastodonChannel
from publishing import engagement
from publishing.dispatch import claim, send
from publishing.models import PostTarget, SandboxPublication, TargetMetrics

from ..integration.dispatch_support import approved_post, sandbox_account

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def published(author, org):
    """A post published on a sandbox account (whose figures grow with its age)."""
    account = sandbox_account(org["north"], handle="training")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    assert send.publish_target(target_id=target.pk) == "published"
    target.refresh_from_db()
    return target


def _make_due(target, *, hours_old: float = 2):
    """The target was published `hours_old` ago and its reading is due."""
    at = timezone.now() - timedelta(hours=hours_old)
    PostTarget.objects.filter(pk=target.pk).update(published_at=at, metrics_next_at=at)
    SandboxPublication.objects.filter(target=target).update(published_at=at)


@pytest.mark.parametrize(
    ("age", "step"),
    [
        (timedelta(minutes=15), timedelta(minutes=30)),
        (timedelta(hours=5), timedelta(minutes=30)),
        (timedelta(hours=7), timedelta(hours=3)),
        (timedelta(days=3), timedelta(days=1)),
    ],
)
def test_readings_are_often_at_first_then_daily(age, step):
    published_at = timezone.now() - timedelta(days=40)
    now = published_at + age

    assert engagement.next_reading(published_at, now) == now + step


def test_readings_stop_after_thirty_days():
    published_at = timezone.now() - timedelta(days=40)

    assert engagement.next_reading(published_at, published_at + timedelta(days=30)) is None
    last = published_at + timedelta(days=29, hours=23)
    assert engagement.next_reading(published_at, last) == published_at + timedelta(days=30)


def test_a_published_target_is_first_read_a_quarter_of_an_hour_later(published):
    assert published.metrics_next_at == published.published_at + timedelta(minutes=15)


def test_a_due_reading_is_stored_and_the_next_one_set(published):
    _make_due(published, hours_old=2)

    due = engagement.claim_due()
    assert due == {published.social_account_id: [published.pk]}
    assert engagement.claim_due() == {}  # leased
    reading = engagement.account_engagement_read(
        account_id=published.social_account_id, target_ids=due[published.social_account_id]
    )

    assert reading.stored == 1
    [row] = TargetMetrics.objects.filter(target=published)
    assert row.likes > 0 and row.impressions > row.likes
    published.refresh_from_db()
    assert published.metrics_next_at == row.at + timedelta(minutes=30)
    event = AuditEvent.objects.get(action="engagement.read")
    assert event.data == {"targets": [published.pk], "gone_from_network": []}


def test_a_reading_delivered_twice_is_stored_once(published):
    _make_due(published, hours_old=2)
    [(account_id, target_ids)] = engagement.claim_due().items()

    first = engagement.account_engagement_read(account_id=account_id, target_ids=target_ids)
    again = engagement.account_engagement_read(account_id=account_id, target_ids=target_ids)

    assert (first.stored, again.stored) == (1, 0)
    assert TargetMetrics.objects.filter(target=published).count() == 1


def test_a_post_gone_from_the_network_is_read_no_more(published):
    _make_due(published)
    SandboxPublication.objects.all().delete()

    engagement.account_engagement_read(
        account_id=published.social_account_id, target_ids=[published.pk]
    )

    published.refresh_from_db()
    assert published.metrics_next_at is None
    assert not TargetMetrics.objects.exists()
    assert AuditEvent.objects.get(action="engagement.read").data["gone_from_network"] == [
        published.pk
    ]


class _Refusing(MastodonChannel):
    def fetch_engagement(self, account, external_ids):
        raise RetryableError("429 Too Many Requests", retry_after=900)


def test_a_network_asking_to_wait_is_waited_for(published, monkeypatch):
    monkeypatch.setitem(channel_registry._CHANNELS, "sandbox", _Refusing())
    _make_due(published)

    reading = engagement.account_engagement_read(
        account_id=published.social_account_id, target_ids=[published.pk]
    )

    assert reading.error == "429 Too Many Requests"
    published.refresh_from_db()
    assert published.metrics_next_at >= timezone.now() + timedelta(seconds=890)


class _Odd(MastodonChannel):
    def fetch_engagement(self, account, external_ids):
        return {external_ids[0]: Engagement(likes=-3, reposts=True, replies=4)}


def test_figures_that_are_no_count_are_kept_as_unknown(published, monkeypatch):
    monkeypatch.setitem(channel_registry._CHANNELS, "sandbox", _Odd())
    _make_due(published)

    engagement.account_engagement_read(
        account_id=published.social_account_id, target_ids=[published.pk]
    )

    row = TargetMetrics.objects.get()
    assert (row.likes, row.reposts, row.replies, row.impressions) == (None, None, 4, None)


def _readings(target, count):
    now = timezone.now()
    TargetMetrics.objects.bulk_create(
        TargetMetrics(target=target, at=now - timedelta(hours=count - n), likes=n, reposts=n // 2)
        for n in range(count)
    )


def test_the_metrics_api_gives_every_reading_oldest_first(author, published):
    _readings(published, 3)

    data = api(author).get(f"/api/v1/posts/{published.post_id}/metrics/").json()

    [target] = data["targets"]
    assert target["target"] == published.pk
    assert [r["likes"] for r in target["series"]] == [0, 1, 2]
    assert target["latest"]["likes"] == 2
    assert target["latest"]["impressions"] is None


def test_the_metrics_of_a_post_i_cannot_see_are_a_404(outsider, published):
    assert api(outsider).get(f"/api/v1/posts/{published.post_id}/metrics/").status_code == 404


@pytest.mark.parametrize("count", [2, 40])
def test_the_metrics_cost_the_same_queries(author, published, count, django_assert_num_queries):
    _readings(published, count)
    client = api(author)

    # the post with its details (3), its targets with their accounts, their readings
    with django_assert_num_queries(5):
        response = client.get(f"/api/v1/posts/{published.post_id}/metrics/")

    assert len(response.json()["targets"][0]["series"]) == count


def test_the_post_page_shows_the_figures_with_a_chart_and_its_data(client, author, published):
    _readings(published, 4)
    client.force_login(author)

    page = client.get(f"/posts/{published.post_id}/").content.decode()

    assert "How it did" in page
    assert '<svg class="chart"' in page
    assert "<polyline" in page
    assert "Every reading (4)" in page
