"""The inbox's API: scope, filters, the item's actions, their errors and their cost."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditEvent
from inbox.models import InboundItem, ItemStatus, ItemTag
from networks.models import Channel
from publishing.models import Post, PostTarget, TargetStatus

from ..factories import SocialAccountFactory, UserFactory, grant

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def make_item(account, n=1, **values):
    defaults = {
        "network_id": f"n{n}",
        "kind": "mention",
        "author_handle": f"person{n}",
        "text": f"Item {n}",
        "posted_at": T0 + timedelta(minutes=n),
        "sentiment": "neutral",
        "language": "en",
    }
    defaults.update(values)
    return InboundItem.objects.create(account=account, **defaults)


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")


@pytest.fixture
def south_account(org):
    return SocialAccountFactory(team=org["south"], channel=Channel.BLUESKY, handle="south.test")


def test_i_see_the_items_of_my_accounts_only(author, outsider, north_account, south_account):
    mine = make_item(north_account, 1)
    theirs = make_item(south_account, 2)

    listed = api(author).get("/api/v1/inbox/").json()

    assert [item["id"] for item in listed["results"]] == [mine.pk]
    assert api(author).get(f"/api/v1/inbox/{theirs.pk}/").status_code == 404
    assert api(outsider).get(f"/api/v1/inbox/{mine.pk}/").status_code == 404
    assert api(outsider).post(f"/api/v1/inbox/{mine.pk}/close/").status_code == 404


def test_an_item_reads_back_with_its_post(author, north_account):
    post = Post.objects.create(team=north_account.team, author=author, body="Launch at dawn.")
    target = PostTarget.objects.create(
        post=post, social_account=north_account, status=TargetStatus.PUBLISHED, external_id="9"
    )
    item = make_item(
        north_account, 1, kind="reply", target=target, author_name="Person One", url="https://x.y/1"
    )

    data = api(author).get(f"/api/v1/inbox/{item.pk}/").json()

    assert data["kind"] == "reply"
    assert data["network"] == "mastodon"
    assert data["author"] == {"handle": "person1", "name": "Person One", "id": ""}
    assert (data["post"], data["target"]) == (post.pk, target.pk)
    assert (data["language"], data["sentiment"], data["status"]) == ("en", "neutral", "open")
    assert data["posted_at"].startswith("2026-12-01T09:01:00")


def test_the_list_filters(author, north_account, org):
    other = SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@northx")
    a = make_item(north_account, 1, sentiment="negative", language="fr")
    b = make_item(other, 2, kind="reply", status="closed", closed_at=T0, assignee=author)
    c = make_item(north_account, 3)

    def ids(query):
        response = api(author).get(f"/api/v1/inbox/?{query}")
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["results"]]

    assert ids("") == [c.pk, b.pk, a.pk]
    assert ids("network=x") == [b.pk]
    assert ids(f"account={north_account.pk}") == [c.pk, a.pk]
    assert ids("sentiment=negative") == [a.pk]
    assert ids("language=fr") == [a.pk]
    assert ids("status=open,waiting") == [c.pk, a.pk]
    assert ids("kind=reply") == [b.pk]
    assert ids(f"assignee={author.pk}") == [b.pk]
    assert ids("assignee=none") == [c.pk, a.pk]
    assert ids("has_post=true") == []
    ItemTag.objects.create(item=a, name="census-scam")
    assert ids("tag=Census-Scam") == [a.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("sentiment=angry", "sentiment"),
        ("kind=tweet", "kind"),
        ("network=myspace", "network"),
        ("account=abc", "account"),
        ("assignee=me", "assignee"),
        ("has_post=maybe", "has_post"),
        ("cursor=xyz", "cursor"),
        ("tag=" + "x" * 51, "tag"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(author, query, field):
    response = api(author).get(f"/api/v1/inbox/?{query}")

    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]


def test_closing_an_item_keeps_its_time_and_is_audited(author, north_account):
    item = make_item(north_account)

    response = api(author).post(f"/api/v1/inbox/{item.pk}/close/")

    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    item.refresh_from_db()
    assert item.closed_at is not None
    assert response.json()["resolution_seconds"] == pytest.approx(
        (item.closed_at - item.posted_at).total_seconds()
    )
    [event] = AuditEvent.objects.filter(action="inbox.item_status_changed")
    assert (event.actor_id, event.object_id, event.data) == (
        author.pk,
        str(item.pk),
        {"from": "open", "to": "closed"},
    )


def test_a_closed_item_may_be_reopened_not_put_to_waiting(author, north_account):
    item = make_item(north_account)
    api(author).post(f"/api/v1/inbox/{item.pk}/close/")

    refused = api(author).post(f"/api/v1/inbox/{item.pk}/status/", {"status": "waiting"})
    reopened = api(author).post(f"/api/v1/inbox/{item.pk}/status/", {"status": "open"})

    assert refused.status_code == 409
    assert reopened.json()["status"] == "open"
    item.refresh_from_db()
    assert (item.status, item.closed_at) == (ItemStatus.OPEN, None)


def test_an_item_is_assigned_to_someone_who_sees_its_account(
    author, approver, outsider, north_account
):
    item = make_item(north_account)

    given = api(author).post(f"/api/v1/inbox/{item.pk}/assign/", {"assignee": approver.pk})
    refused = api(author).post(f"/api/v1/inbox/{item.pk}/assign/", {"assignee": outsider.pk})
    unknown = api(author).post(f"/api/v1/inbox/{item.pk}/assign/", {"assignee": 10**9})
    cleared = api(author).post(
        f"/api/v1/inbox/{item.pk}/assign/", {"assignee": None}, format="json"
    )

    assert given.json()["assignee"] == approver.pk
    assert refused.status_code == 400
    assert "assignee" in refused.json()["extra"]["fields"]
    assert unknown.status_code == 400
    assert cleared.json()["assignee"] is None
    events = AuditEvent.objects.filter(action="inbox.item_assigned").order_by("seq")
    assert [e.data for e in events] == [
        {"from": None, "to": approver.pk},
        {"from": approver.pk, "to": None},
    ]


@pytest.mark.parametrize("count", [3, 60])
def test_the_inbox_list_costs_the_same_queries(
    org, author, north_account, count, django_assert_num_queries
):
    lead = UserFactory(username="lead2")
    grant(lead, org["hq"], Role.LEAD)
    post = Post.objects.create(team=north_account.team, author=author, body="Launch.")
    target = PostTarget.objects.create(
        post=post, social_account=north_account, status=TargetStatus.PUBLISHED, external_id="1"
    )
    for n in range(count):
        make_item(north_account, n, target=target if n % 2 else None, assignee=author)

    # the page (scope, account, team, assignee and target joined in)
    with django_assert_num_queries(1):
        response = api(lead).get("/api/v1/inbox/?page_size=100")

    assert len(response.json()["results"]) == count
