"""What issue 17 must show, per network, through the whole system against the network's test
server on 127.0.0.1: ingestion is incremental and exactly once across restarts (pagination, a
rate-limit answer, deleted and hidden items); a reply goes through approval and lands on the
network under the item it answers; the figures of our post land on its page.

Each network is a small adapter (`Network`): which fixtures serve and connect it, how an item
arrives there, how the account's own answer and a post's figures are found on its server. The
tests drive cxhub only through its services, API and pages, never the channel directly."""

import io
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from approvals import services as approvals
from approvals.models import ApprovalRequest
from cxhub.celery import app as celery_app
from inbox import ingestion
from inbox.models import InboundItem, IngestState, ItemStatus
from networks import channels as channel_registry
from networks.channels import get_channel
from networks.channels import session as http_session_module
from networks.channels.bluesky import NOTIFICATIONS
from publishing import engagement, media_services
from publishing import services as publishing
from publishing.dispatch import claim, send
from publishing.models import PostStatus, PostTarget, TargetStatus

from ..publishing.networks.conftest import loopback_allowed  # noqa: F401 (autouse, here only)

# The database is marked here: each test reaches it through fixtures it asks for at run time.
pytestmark = [pytest.mark.peer, pytest.mark.django_db]  # peer: runs once in CI (tests/conftest.py)

PAGE_SIZE = 5
# What a network's rate-limit answer asks: longer than the account's own interval could be.
WAIT_SECONDS = 300
IG_ID = "17841400000000001"
LINKEDIN_PAGE = "urn:li:organization:2414183"
ANA = "urn:li:person:ana111"
QUESTION = "When does the swimming pool open on Saturdays?"
ANSWER = "Thank you for asking: the pool opens at nine on Saturdays."
# The figures on the post page, by label, as the API names them.
FIGURES = {
    "Likes": "likes",
    "Reposts": "reposts",
    "Replies": "replies",
    "Quotes": "quotes",
    "Impressions": "impressions",
    "Clicks": "clicks",
}

# Impressions and clicks, where the network does not give them: unknown, never 0.
_UNKNOWN_REACH = {"impressions": None, "clicks": None}


# --- the networks -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    """One network as these tests drive it. `listing` is the route of the call each reading of
    it starts with (so its second call is the run's second page); `rate_limit` the failure mode
    (and options) of the server's 429 asking for WAIT_SECONDS; `hides`: the network shows an
    item hidden by the account or a moderator (read as deleted upstream)."""

    name: str
    server_fixture: str
    account_fixture: str
    listing: str
    rate_limit: tuple[str, dict[str, Any]]
    hides: bool = False
    # Our post there must carry an image (Instagram), which the network fetches from cxhub.
    needs_image: bool = False

    def start(self, server) -> Any:
        """What the items of the ingestion test answer (a post of the account), if anything."""
        return None

    def arrive(self, server, where: Any, text: str) -> str:
        """Someone writes to the account (about `where`): the item's network id."""
        raise NotImplementedError

    def question(self, server) -> str:
        """Someone asks the account something inside a thread: the item's network id."""
        raise NotImplementedError

    def delete(self, server, network_id: str) -> None:
        raise NotImplementedError

    def hide(self, server, network_id: str) -> None:
        raise NotImplementedError

    def our_reply(self, server, item: InboundItem) -> tuple[str, str]:
        """The account's answer to `item` on the server (checked to sit under the item, in its
        thread): its id and text."""
        raise NotImplementedError

    def engage(self, server, external_id: str) -> dict[str, int | None]:
        """People react to our post: the figures the post page must then show."""
        raise NotImplementedError


class Mastodon(Network):
    def arrive(self, server, where, text):
        return server.add_mention(f"@north {text}")["id"]

    def question(self, server):
        theirs = server.add_mention("@north Is the pool open this weekend?", by="ann@other.example")
        return server.add_reply(theirs["id"], QUESTION, by="bob@third.example")["id"]

    def delete(self, server, network_id):
        server.delete_status(network_id)

    def our_reply(self, server, item):
        [status] = server.replies_to(item.network_id)
        assert status["account"]["id"] == server.account_id
        assert server.thread_root(status["id"]) == server.thread_root(item.network_id)
        return status["id"], status["content"]

    def engage(self, server, external_id):
        server.favourite(external_id, 7)
        server.reblog(external_id, 2)
        return {"likes": 7, "reposts": 2, "replies": 0, "quotes": 0} | _UNKNOWN_REACH


class Bluesky(Network):
    def arrive(self, server, where, text):
        return server.add_mention(f"{text} @north.test")

    def question(self, server):
        theirs = server.add_mention("Is the pool open this weekend? @north.test")
        return server.add_reply(theirs, QUESTION, author="fan.test")

    def delete(self, server, network_id):
        server.delete_post(network_id)

    def hide(self, server, network_id):
        server.hide(network_id)

    def our_reply(self, server, item):
        [record] = [
            r
            for r in server.records.values()
            if (r["value"].get("reply") or {}).get("parent", {}).get("uri") == item.network_id
        ]
        assert record["value"]["reply"]["root"]["uri"] == item.thread_id
        assert record["uri"] in server.thread(item.thread_id)  # filed in it, not flagged
        return record["uri"], record["value"]["text"]

    def engage(self, server, external_id):
        for _ in range(7):
            server.add_like(external_id)
        for _ in range(2):
            server.add_repost(external_id)
        return {"likes": 7, "reposts": 2, "replies": 0, "quotes": 0} | _UNKNOWN_REACH


class X(Network):
    def arrive(self, server, where, text):
        return server.add_post("river_user", f"@north_desk {text}")["id"]

    def question(self, server):
        theirs = server.add_post("river_user", "@north_desk Is the pool open this weekend?")
        return server.add_post("hill_user", f"@north_desk {QUESTION}", reply_to=theirs["id"])["id"]

    def delete(self, server, network_id):
        server.delete_tweet(network_id)

    def our_reply(self, server, item):
        [tweet] = [
            t for t in server.replies_to(item.network_id) if t["author_id"] == server.user_id
        ]
        assert tweet["conversation_id"] == item.thread_id
        return tweet["id"], tweet["raw_text"]

    def engage(self, server, external_id):
        server.engage(external_id, likes=7, reposts=2, impressions=300, link_clicks=4)
        return {
            "likes": 7,
            "reposts": 2,
            "replies": 0,
            "quotes": 0,
            "impressions": 300,
            "clicks": 4,
        }


class Facebook(Network):
    PAGE = {"id": "201", "name": "North Desk"}

    def start(self, server):
        return server.add_post("201", "Roadworks on Main Street this week.")["id"]

    def arrive(self, server, where, text):
        return server.add_comment(where, text)["id"]

    def question(self, server):
        return server.add_comment(self.start(server), QUESTION)["id"]

    def delete(self, server, network_id):
        server.delete_comment(network_id)

    def hide(self, server, network_id):
        server.hide_comment(network_id)

    def our_reply(self, server, item):
        [comment] = [
            c
            for c in server.comments
            if c["author"] == self.PAGE and c["parent"] == item.network_id
        ]
        assert comment["on"] == item.thread_id
        return comment["id"], comment["text"]

    def engage(self, server, external_id):
        server.add_figures(external_id, reactions=7, shares=2, views=300, clicks=4)
        return {
            "likes": 7,
            "reposts": 2,
            "replies": 0,
            "quotes": None,
            "impressions": 300,
            "clicks": 4,
        }


class Instagram(Network):
    ACCOUNT = {"id": IG_ID, "username": "north.desk"}

    def start(self, server):
        return server.add_ig_media(IG_ID, "Spring at the park.", published=time.time() - 3600)["id"]

    def arrive(self, server, where, text):
        return server.add_ig_comment(where, text)["id"]

    def question(self, server):
        return server.add_ig_comment(self.start(server), QUESTION, username="ann.reader")["id"]

    def delete(self, server, network_id):
        server.delete_comment(network_id)

    def hide(self, server, network_id):
        server.hide_comment(network_id)

    def our_reply(self, server, item):
        [comment] = [
            c
            for c in server.comments
            if c["author"] == self.ACCOUNT and c["parent"] == item.network_id
        ]
        assert comment["on"] == item.thread_id
        return comment["id"], comment["text"]

    def engage(self, server, external_id):
        server.add_figures(external_id, likes=7, views=300)
        return {
            "likes": 7,
            "reposts": None,
            "replies": 0,
            "quotes": None,
            "impressions": 300,
            "clicks": None,
        }


class LinkedIn(Network):
    def start(self, server):
        return server.add_post(LINKEDIN_PAGE, "Roadworks on Main Street this week.")

    def arrive(self, server, where, text):
        return server.add_comment(where, text, actor=ANA)

    def question(self, server):
        return server.add_comment(self.start(server), QUESTION, actor=ANA)

    def delete(self, server, network_id):
        server.delete_comment(network_id)

    def our_reply(self, server, item):
        [comment] = [c for c in server.replies_by(LINKEDIN_PAGE) if c["parent"] == item.network_id]
        assert comment["post"] == item.thread_id
        return comment["urn"], comment["text"]

    def engage(self, server, external_id):
        server.add_likes(external_id, 7)
        # Reshares, impressions and clicks need rw_organization_admin, which connecting does not
        # ask for: unknown, never 0.
        return {"likes": 7, "replies": 0, "reposts": None, "quotes": None} | _UNKNOWN_REACH


NETWORKS = [
    Mastodon(
        "mastodon",
        "mastodon_server",
        "mastodon_account",
        listing="notifications",
        rate_limit=("429", {"reset_in": WAIT_SECONDS}),
    ),
    Bluesky(
        "bluesky",
        "bluesky_server",
        "bluesky_account",
        listing=NOTIFICATIONS,
        rate_limit=("429", {"reset_in": WAIT_SECONDS}),
        hides=True,
    ),
    X(
        "x",
        "x_server",
        "x_account",
        listing="mentions",
        rate_limit=("429", {"reset_in": WAIT_SECONDS}),
    ),
    Facebook(
        "facebook",
        "graph_server",
        "facebook_account",
        listing="published_posts",
        rate_limit=("429", {"minutes": WAIT_SECONDS // 60}),
        hides=True,
    ),
    Instagram(
        "instagram",
        "graph_server",
        "instagram_account",
        listing="ig_media_list",
        rate_limit=("429", {"minutes": WAIT_SECONDS // 60}),
        hides=True,
        needs_image=True,
    ),
    LinkedIn(
        "linkedin",
        "linkedin_server",
        "linkedin_account",
        listing="posts_by_author",
        rate_limit=("429", {"retry_after": WAIT_SECONDS}),
    ),
]


def _params(*, publishing_images: bool = False) -> list:
    """One param per network. Instagram fetches our post's image from cxhub's public link,
    served by the live server, which sees only committed rows: that case runs transactional."""
    params = []
    for network in NETWORKS:
        marks = []
        if publishing_images and network.needs_image:
            marks.append(pytest.mark.django_db(transaction=True))
        params.append(pytest.param(network, id=network.name, marks=marks))
    return params


@dataclass(frozen=True)
class Connected:
    network: Network
    server: Any
    account: Any


@pytest.fixture
def connected(request) -> Connected:
    network = request.param
    server = request.getfixturevalue(network.server_fixture)
    account = request.getfixturevalue(network.account_fixture)
    return Connected(network, server, account)


@pytest.fixture
def small_pages(settings):
    settings.CXHUB_INBOX_PAGE_SIZE = PAGE_SIZE


# --- helpers ----------------------------------------------------------------------------------
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ingest(account):
    return ingestion.account_ingest(account_id=account.pk)


def state_of(account) -> IngestState:
    return IngestState.objects.get(account=account)


def kept(account) -> Counter:
    """How many rows the inbox holds for each network id of the account."""
    return Counter(InboundItem.objects.filter(account=account).values_list("network_id", flat=True))


def marked_deleted(account) -> set[str]:
    return set(
        InboundItem.objects.filter(account=account, deleted_upstream=True).values_list(
            "network_id", flat=True
        )
    )


def fail_on_call(server, route: str, call: int, failure: tuple[str, dict], *, monkeypatch) -> None:
    """The server answers the `call`-th request of `route` from now on with `failure` (a mode
    and options of fail_next, queued as that request comes in)."""
    mode, options = failure
    calls = Counter()
    routing = server.route

    def route_counting(request):
        name, handler = routing(request)
        calls[name] += 1
        if name == route and calls[name] == call:
            server.fail_next(name, mode, **options)
        return name, handler

    monkeypatch.setattr(server, "route", route_counting)


@contextmanager
def new_process(monkeypatch, name: str) -> Iterator[list[str]]:
    """What a worker started afresh has: a new channel object and HTTP session, an empty cache;
    only the database (and the shared rate-limit store) carries over. Yields the cursors the
    channel is given, in order."""
    fresh = type(get_channel(name))()
    given: list[str] = []
    reading = fresh.fetch_inbound

    def fetch_inbound(account, cursor, *, limit=40):
        given.append(cursor)
        return reading(account, cursor, limit=limit)

    monkeypatch.setattr(fresh, "fetch_inbound", fetch_inbound)
    monkeypatch.setitem(channel_registry._CHANNELS, name, fresh)
    monkeypatch.setattr(http_session_module, "_session", None)
    cache.clear()
    try:
        yield given
    finally:
        http_session_module.http_session().close()


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1080, 1080), (20, 90, 160)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def publish_ours(*, connected: Connected, author, approver, org) -> PostTarget:
    """Our post on the network: drafted, submitted, approved by the team's approver and sent by
    dispatch (the claim, then the publish task's work)."""
    media_ids = []
    if connected.network.needs_image:
        media = media_services.media_upload(
            by=author,
            file=SimpleUploadedFile("pool.jpg", _jpeg(), content_type="image/jpeg"),
            alt_text="The outdoor pool in the morning sun.",
            team_id=org["north"].pk,
        )
        media_ids = [media.pk]
    post = publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="The outdoor pool opens for the summer on Saturday.",
        media_ids=media_ids,
        targets=[publishing.TargetInput(social_account_id=connected.account.pk)],
    )
    publishing.post_submit(post=post, by=author)
    approvals.decide(request=ApprovalRequest.objects.get(post=post), by=approver, verdict="approve")
    claim.dispatch_due()
    target = PostTarget.objects.get(post=post)
    send.publish_targets(target_ids=[target.pk])
    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED, target.last_error
    return target


# --- 1. ingestion -----------------------------------------------------------------------------
@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize("connected", _params(), indirect=True)
def test_ingestion_is_incremental_and_exactly_once_across_stops_and_restarts(
    connected, monkeypatch, time_machine
):
    network, server, account = connected.network, connected.server, connected.account
    # Given an account whose first run heard the one item waiting
    where = network.start(server)
    first = network.arrive(server, where, "Is the pool heated?")
    assert ingestion.claim_due() == [account.pk]
    assert ingest(account).added == 1
    after_first = state_of(account).cursor
    assert after_first
    # and twelve more items since: more than two pages
    gap = [network.arrive(server, where, f"Question number {n}?") for n in range(1, 13)]

    # When the network answers the run's second page with a rate limit
    fail_on_call(server, network.listing, 2, network.rate_limit, monkeypatch=monkeypatch)
    before = timezone.now()
    stopped = ingest(account)

    # Then the first page is kept with the cursor after it, and the account waits its turn
    assert (stopped.added, stopped.pages) == (PAGE_SIZE, 1)
    assert "429" in stopped.error, stopped.error
    waiting = state_of(account)
    assert waiting.cursor not in ("", after_first)
    assert waiting.next_at >= before + timedelta(seconds=WAIT_SECONDS - 10)
    assert waiting.failures == 1
    assert ingestion.claim_due() == []
    # (a run queued anyway asks nothing, and leaves the failed run's record as it was)
    requests_made = len(server.requests)
    assert ingest(account).skipped == "rate limit"
    assert len(server.requests) == requests_made
    held = state_of(account)
    assert held.next_at >= waiting.next_at - timedelta(seconds=1)
    assert (held.failures, held.last_error, held.last_run_at) == (
        waiting.failures,
        waiting.last_error,
        waiting.last_run_at,
    )
    assert sum(kept(account).values()) == 1 + PAGE_SIZE

    # When the wait is over
    time_machine.move_to(waiting.next_at + timedelta(seconds=1), tick=True)
    assert ingestion.claim_due() == [account.pk]
    resumed = ingest(account)

    # Then the run resumes after the page it kept: every item once, none lost
    assert (resumed.added, resumed.error) == (len(gap) - PAGE_SIZE, "")
    assert kept(account) == Counter({first: 1, **dict.fromkeys(gap, 1)})
    resumed_cursor = state_of(account).cursor
    assert resumed_cursor != waiting.cursor

    # Given an author deleting an item the inbox holds, the account hiding another, and three
    # new items, one hidden before it is read
    gone = gap[0]
    network.delete(server, gone)
    hidden_later = gap[1]
    fresh = [network.arrive(server, where, f"New question {n}?") for n in range(3)]
    if network.hides:
        network.hide(server, hidden_later)
        network.hide(server, fresh[0])

    # When a new process reads the account
    with new_process(monkeypatch, network.name) as cursors_given:
        restarted = ingest(account)

    # Then it starts from the cursor the database holds and takes only what is new
    assert cursors_given[0] == resumed_cursor
    assert (restarted.added, restarted.error) == (3, "")
    assert state_of(account).cursor != resumed_cursor
    everything = {first, *gap, *fresh}
    assert kept(account) == Counter(dict.fromkeys(everything, 1))
    # (an item hidden before it was read comes marked; one hidden after is not read again)
    assert marked_deleted(account) == ({fresh[0]} if network.hides else set())

    # When a run reads again from the cursor after the first run (a worker that took the
    # account before the later pages were stored: a lost lease)
    IngestState.objects.filter(account=account).update(cursor=after_first)
    again = ingest(account)

    # Then nothing is added twice, nothing is removed (not even what its author deleted), and
    # what the network shows hidden is marked deleted upstream
    assert (again.added, again.error) == (0, "")
    assert kept(account) == Counter(dict.fromkeys(everything, 1))
    assert marked_deleted(account) == ({hidden_later, fresh[0]} if network.hides else set())
    assert InboundItem.objects.get(account=account, network_id=gone).deleted_upstream is False


# --- 2. a reply through approval ------------------------------------------------------------
@pytest.mark.parametrize(
    "connected",
    _params(),
    indirect=True,
)
def test_a_reply_is_approved_and_lands_on_the_network_under_its_item(connected, author, approver):
    network, server, account = connected.network, connected.server, connected.account
    # Given a question in a thread, heard by the account's ingestion
    asked = network.question(server)
    assert ingestion.claim_due() == [account.pk]
    assert ingest(account).error == ""
    item = InboundItem.objects.get(account=account, network_id=asked)

    # When a drafter answers it, submits the answer and an approver of the team approves it
    drafted = api(author).post(f"/api/v1/inbox/{item.pk}/reply/", {"body": ANSWER}, format="json")
    assert drafted.status_code == 201, drafted.json()
    post_id = drafted.json()["id"]
    item.refresh_from_db()
    assert item.status == ItemStatus.WAITING  # someone is on it
    submitted = api(author).post(f"/api/v1/posts/{post_id}/submit/")
    assert submitted.status_code == 200, submitted.json()
    request = ApprovalRequest.objects.get(post_id=post_id)
    decided = api(approver).post(
        f"/api/v1/approvals/{request.pk}/decide/", {"verdict": "approve"}, format="json"
    )
    assert decided.status_code == 200, decided.json()
    # and dispatch sends it
    claim.dispatch_due()
    target = PostTarget.objects.get(post_id=post_id)
    outcome = send.publish_targets(target_ids=[target.pk])

    # Then the network holds our answer under that item, in its thread, once
    assert outcome == {target.pk: "published"}
    reply_id, text = network.our_reply(server, item)
    assert ANSWER in text
    target.refresh_from_db()
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, reply_id)
    assert target.post.status == PostStatus.PUBLISHED
    # and the item is answered and closed
    item.refresh_from_db()
    assert item.status == ItemStatus.CLOSED
    assert item.first_response_at == target.published_at == item.closed_at


# --- 3. the figures on the post page ------------------------------------------------------------
@pytest.fixture
def tasks_run_here():
    """Tasks queued on commit run in this process (only a transactional test commits): the
    publish task and the notifications' e-mails then do their work here, and nothing is left on
    the broker for another test's worker."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.mark.usefixtures("tasks_run_here")
@pytest.mark.parametrize("connected", _params(publishing_images=True), indirect=True)
def test_the_figures_of_our_post_are_read_and_shown_on_its_page(
    connected, request, settings, author, approver, org, client
):
    network, server, account = connected.network, connected.server, connected.account
    if network.needs_image:
        settings.CXHUB_PUBLIC_URL = request.getfixturevalue("live_server").url
    # Given our post, published on the network, that people liked and shared there
    target = publish_ours(connected=connected, author=author, approver=approver, org=org)
    expected = network.engage(server, target.external_id)
    # and its reading due
    PostTarget.objects.filter(pk=target.pk).update(
        metrics_next_at=timezone.now() - timedelta(minutes=1)
    )

    # When the periodic reading claims it and reads the account
    due = engagement.claim_due()
    assert due == {account.pk: [target.pk]}
    reading = engagement.account_engagement_read(account_id=account.pk, target_ids=due[account.pk])

    # Then the network's figures are kept, shown on the post page and given by the API
    assert (reading.stored, reading.error) == (1, "")
    client.force_login(author)
    page = client.get(f"/posts/{target.post_id}/").content.decode()
    assert "How it did" in page
    for label, name in FIGURES.items():
        shown = "—" if expected[name] is None else str(expected[name])
        assert f"<dt>{label}</dt><dd>{shown}</dd>" in page, (label, shown)
    metrics = api(author).get(f"/api/v1/posts/{target.post_id}/metrics/").json()
    [row] = metrics["targets"]
    assert row["target"] == target.pk
    assert {name: row["latest"][name] for name in FIGURES.values()} == expected
