"""The inbox pages through Django's test client: the list (scope, what a row shows, the public's
text escaped, filters that keep their values, keyset pages, constant queries), an item's panel
and page, its actions with and without JavaScript, bulk actions, the live update's two reads,
and every refusal (404 for what one may not see, 400 beside the field)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from inbox import services
from inbox.models import InboundItem, ItemNote, ItemStatus, ItemTag
from networks.models import Channel
from publishing.models import Post, PostTarget, TargetStatus

from ..factories import SocialAccountFactory, UserFactory, grant

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    page = re.sub(r"</?(?:a|strong|span|time|em|b|kbd)\b[^>]*>", "", html(response))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def signed_in(client, user):
    client.force_login(user)
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


def row_ids(response) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="item-row-(\d+)"', html(response))]


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")


@pytest.fixture
def south_account(org):
    return SocialAccountFactory(team=org["south"], channel=Channel.BLUESKY, handle="south.test")


@pytest.fixture
def our_target(author, north_account):
    post = Post.objects.create(team=north_account.team, author=author, body="Launch at dawn.")
    return PostTarget.objects.create(
        post=post, social_account=north_account, status=TargetStatus.PUBLISHED, external_id="9"
    )


# The list ---------------------------------------------------------------------------------------
def test_the_inbox_lists_the_items_of_my_accounts_newest_first(
    client, author, north_account, south_account
):
    older = make_item(north_account, 1)
    newer = make_item(north_account, 2)
    make_item(south_account, 3)

    response = signed_in(client, author).get("/inbox/")

    assert response.status_code == 200
    assert row_ids(response) == [newer.pk, older.pk]


def test_a_row_shows_who_where_what_and_when_and_our_post(
    client, author, approver, north_account, our_target
):
    item = make_item(
        north_account,
        1,
        kind="reply",
        author_name="Amira K.",
        author_handle="amira@social.example",
        text="Thanks, when does it open?",
        language="fr",
        sentiment="negative",
        assignee=approver,
        target=our_target,
    )
    services.item_tag(item=item, name="press", by=author)

    response = signed_in(client, author).get("/inbox/")
    row = re.search(r'<tr id="item-row-\d+".*?</tr>', html(response), re.S).group(0)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))

    for expected in (
        "Reply from Amira K.",
        "amira@social.example",
        "to @north on Mastodon",
        "Thanks, when does it open?",
        "French",
        "Negative",
        "Open",
        "bob",
        "press",
        f"Answers our post {our_target.post_id}",
        "2026-12-01 09:01",
    ):
        assert expected in words, expected
    assert '<time datetime="2026-12-01T09:01:00+00:00">' in row
    assert f'href="/posts/{our_target.post_id}/"' in row
    assert f'href="/inbox/{item.pk}/"' in row


def test_the_publics_text_is_escaped(client, author, north_account):
    make_item(north_account, 1, text='<script>alert("x")</script><b>bold</b>')

    page = html(signed_in(client, author).get("/inbox/"))

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page


def test_the_navigation_links_the_inbox_for_everyone_with_a_role(client, author, db):
    assert 'href="/inbox/"' in html(signed_in(client, author).get("/"))
    nobody = UserFactory(username="norole")
    assert 'href="/inbox/"' not in html(signed_in(client, nobody).get("/"))


def test_someone_signed_out_is_sent_to_sign_in(client, db):
    response = client.get("/inbox/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# Filters ----------------------------------------------------------------------------------------
def test_each_filter_narrows_the_list_and_keeps_its_value(
    client, org, author, approver, north_account, our_target
):
    other_account = SocialAccountFactory(
        team=org["north"], channel=Channel.BLUESKY, handle="north.bsky"
    )
    plain = make_item(north_account, 1)
    negative = make_item(north_account, 2, sentiment="negative")
    french = make_item(north_account, 3, language="fr")
    unknown = make_item(north_account, 4, language="")
    mine = make_item(north_account, 5, assignee=author)
    bobs = make_item(north_account, 6, assignee=approver)
    answering = make_item(north_account, 7, target=our_target)
    closed = make_item(north_account, 8, status=ItemStatus.CLOSED, closed_at=timezone.now())
    waiting = make_item(north_account, 9, status=ItemStatus.WAITING)
    elsewhere = make_item(other_account, 10)
    tagged = make_item(north_account, 11)
    services.item_tag(item=tagged, name="press", by=author)
    everything = {
        plain,
        negative,
        french,
        unknown,
        mine,
        bobs,
        answering,
        closed,
        waiting,
        elsewhere,
        tagged,
    }
    signed_in(client, author)

    cases = [
        ({"account": other_account.pk}, {elsewhere}),
        ({"network": "bluesky"}, {elsewhere}),
        ({"sentiment": "negative"}, {negative}),
        ({"language": "fr"}, {french}),
        ({"language": "unknown"}, {unknown}),
        ({"status": "closed"}, {closed}),
        ({"status": "waiting"}, {waiting}),
        ({"status": "active"}, everything - {closed}),
        ({"assignee": "me"}, {mine}),
        ({"assignee": str(approver.pk)}, {bobs}),
        ({"assignee": "nobody"}, everything - {mine, bobs}),
        ({"has_post": "yes"}, {answering}),
        ({"has_post": "no"}, everything - {answering}),
        ({"tag": " PRESS "}, {tagged}),
    ]
    for params, expected in cases:
        response = client.get("/inbox/", params)
        assert response.status_code == 200, params
        assert set(row_ids(response)) == {item.pk for item in expected}, params

    response = client.get("/inbox/", {"network": "bluesky", "status": "active", "tag": "press"})
    page = html(response)
    assert '<option value="bluesky" selected>' in page
    assert '<option value="active" selected>' in page
    assert 'name="tag" value="press"' in page
    # The bulk form comes back to the same list.
    assert 'action="/inbox/bulk/?network=bluesky&amp;status=active&amp;tag=press"' in page


def test_a_wrong_filter_value_is_named_beside_its_field(client, author, north_account):
    response = signed_in(client, author).get(
        "/inbox/", {"sentiment": "angry", "tag": "x" * 51, "assignee": "12345"}
    )

    assert response.status_code == 400
    page = html(response)
    assert 'id="filter-sentiment-error">Choose a sentiment from the list.' in page
    assert 'id="filter-tag-error">A tag has at most 50 characters (51 given).' in page
    assert 'id="filter-assignee-error">Choose someone from the list.' in page
    assert 'aria-invalid="true" aria-describedby="filter-tag-error"' in page


def test_filtering_by_an_account_that_is_not_mine_is_a_404(client, author, south_account):
    response = signed_in(client, author).get("/inbox/", {"account": south_account.pk})

    assert response.status_code == 404


def test_the_list_is_paged_by_keyset_with_links_that_keep_the_filters(
    client, author, north_account
):
    items = [make_item(north_account, n) for n in range(1, 56)]
    signed_in(client, author)

    first = client.get("/inbox/", {"status": "open"})
    assert row_ids(first) == [item.pk for item in reversed(items)][:50]
    older = re.search(r'href="(\?status=open&amp;before=\d+)">Older items', html(first)).group(1)

    second = client.get("/inbox/" + older.replace("&amp;", "&"))
    assert row_ids(second) == [item.pk for item in reversed(items[:5])]
    assert "Older items" not in html(second)
    assert 'href="?status=open">Newest items' in html(second)


@pytest.mark.parametrize("before", ["abc", "-1", "99999999999999999999999"])
def test_a_wrong_page_marker_shows_the_first_page(client, author, north_account, before):
    item = make_item(north_account)

    response = signed_in(client, author).get("/inbox/", {"before": before})

    assert row_ids(response) == [item.pk]


def test_the_inbox_costs_the_same_queries_for_3_and_60_items(
    client, org, author, approver, north_account, our_target, django_assert_num_queries
):
    other_account = SocialAccountFactory(team=org["north_centre"], handle="@centre")

    def add(start, count):
        for n in range(start, start + count):
            account = north_account if n % 2 else other_account
            item = make_item(
                account,
                n,
                assignee=approver if n % 3 else None,
                target=our_target if n % 4 == 0 else None,
            )
            services.item_tag(item=item, name=f"tag {n % 5}", by=author)
            services.item_tag(item=item, name="all", by=author)

    signed_in(client, author)
    add(1, 3)
    client.get("/inbox/")  # the session is loaded once and cached
    with CaptureQueriesContext(connection) as baseline:
        response = client.get("/inbox/", {"tag": "all"})
    assert len(row_ids(response)) == 3

    add(4, 57)
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get("/inbox/", {"tag": "all"})
    assert len(row_ids(response)) == 50
    assert html(response).count('<li class="tag">all</li>') == 50


# The panel and the item's page --------------------------------------------------------------------
def test_an_items_page_shows_it_whole_with_its_times_post_thread_notes_and_tags(
    client, author, approver, north_account, our_target
):
    long_text = "First line of a long complaint.\n" + "word " * 100
    item = make_item(
        north_account,
        1,
        kind="reply",
        text=long_text,
        url="https://social.example/@person1/1",
        thread_id="9",
        target=our_target,
        first_response_at=T0 + timedelta(minutes=1, hours=2, seconds=300),
        status=ItemStatus.CLOSED,
        closed_at=T0 + timedelta(days=1, hours=3, minutes=1),
    )
    sibling = make_item(north_account, 2, thread_id="9", author_name="Ben")
    services.item_note_add(item=item, text="Escalated to the press office.", by=approver)
    services.item_tag(item=item, name="press", by=author)

    response = signed_in(client, author).get(f"/inbox/{item.pk}/")

    assert response.status_code == 200
    page, words = html(response), text_of(response)
    assert "<h1 " in page and "Reply from person1" in words
    assert long_text.strip() in page
    assert 'href="https://social.example/@person1/1"' in page
    assert "First response 2 h 5 min after it was posted" in words
    assert "Resolution Closed 1 d 3 h after it was posted" in words
    assert f'href="/posts/{our_target.post_id}/"' in page and "Launch at dawn." in words
    assert f'href="/inbox/{sibling.pk}/"' in page and "Mention from Ben" in words
    assert "Escalated to the press office." in words and "bob" in words
    assert "Remove the tag press" in words
    # A closed item can only be reopened.
    assert re.findall(r'<input type="hidden" name="status" value="(\w+)">', page) == ["open"]


def test_an_open_item_can_be_marked_waiting_or_closed_and_has_no_times_yet(
    client, author, north_account
):
    item = make_item(north_account)

    response = signed_in(client, author).get(f"/inbox/{item.pk}/")

    page, words = html(response), text_of(response)
    assert re.findall(r'name="status" value="(\w+)">', page) == ["waiting", "closed"]
    assert "Not answered yet" in words and "Not closed" in words


def test_a_link_that_is_not_http_is_not_shown(client, author, north_account):
    item = make_item(north_account, url="javascript:alert(1)")

    page = html(signed_in(client, author).get(f"/inbox/{item.pk}/"))

    assert "javascript:" not in page
    assert "Open it on" not in page


def test_the_panel_comes_as_a_fragment_for_the_script(client, author, north_account):
    item = make_item(north_account)

    response = signed_in(client, author).get(f"/inbox/{item.pk}/", **FETCH)

    page = html(response)
    assert page.lstrip().startswith('<section id="item-panel"')
    assert "<html" not in page and "<h2 " in page
    assert "X-Requested-With" in response["Vary"]


def test_the_assign_select_offers_the_people_who_may_see_the_account(
    client, org, author, approver, lead, outsider, north_account
):
    item = make_item(north_account)

    page = html(signed_in(client, author).get(f"/inbox/{item.pk}/"))
    select = re.search(r'<select id="assign-assignee".*?</select>', page, re.S).group(0)

    offered = re.findall(r'<option value="(\d*)"', select)
    assert offered == ["", str(author.pk), str(approver.pk), str(lead.pk)]
    assert "Assign to me" in page


def test_an_item_i_may_not_see_is_a_404_for_every_page_and_action(
    client, author, outsider, north_account
):
    item = make_item(north_account)
    signed_in(client, outsider)

    assert client.get(f"/inbox/{item.pk}/").status_code == 404
    assert client.get(f"/inbox/{item.pk}/", **FETCH).status_code == 404
    for action, data in [
        ("assign", {"assignee": outsider.pk}),
        ("status", {"status": "closed"}),
        ("tags", {"name": "x"}),
        ("tags/remove", {"name": "x"}),
        ("notes", {"text": "x"}),
    ]:
        assert client.post(f"/inbox/{item.pk}/{action}/", data).status_code == 404, action
    assert client.post("/inbox/bulk/", {"items": [item.pk], "action": "close"}).status_code == 404

    item.refresh_from_db()
    assert (item.status, item.assignee) == (ItemStatus.OPEN, None)
    assert not ItemNote.objects.exists() and not ItemTag.objects.exists()


# The item's actions -----------------------------------------------------------------------------
def test_adding_a_note_without_javascript_redirects_to_the_item_with_the_result(
    client, author, north_account
):
    item = make_item(north_account)

    response = signed_in(client, author).post(
        f"/inbox/{item.pk}/notes/", {"text": "Asked the <b>helpdesk</b>."}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/inbox/{item.pk}/"
    page = html(client.get(response["Location"]))
    assert "Added your note to the mention from person1." in page
    assert "Asked the &lt;b&gt;helpdesk&lt;/b&gt;." in page


def test_an_action_from_the_script_answers_with_the_result_the_panel_and_the_row(
    client, author, north_account
):
    item = make_item(north_account)

    response = signed_in(client, author).post(
        f"/inbox/{item.pk}/status/", {"status": "closed"}, **FETCH
    )

    assert response.status_code == 200
    page = html(response)
    assert '<p id="inbox-result">Closed the mention from person1.</p>' in page
    assert '<section id="item-panel" class="card item-panel" aria-labelledby' in page
    assert f'<tr id="item-row-{item.pk}" class="inbox-row item-closed"' in page
    item.refresh_from_db()
    assert item.status == ItemStatus.CLOSED


def test_a_wrong_tag_comes_back_beside_its_field_with_what_was_typed(client, author, north_account):
    item = make_item(north_account)
    typed = "x" * 60

    response = signed_in(client, author).post(f"/inbox/{item.pk}/tags/", {"name": typed}, **FETCH)

    assert response.status_code == 400
    page = html(response)
    assert 'id="tag-error">A tag has at most 50 characters (60 given).' in page
    assert f'value="{typed}"' in page
    assert 'aria-invalid="true"' in page
    assert not ItemTag.objects.exists()

    # Without the script: the item's page again, with the same error and status.
    response = client.post(f"/inbox/{item.pk}/tags/", {"name": ""})
    assert response.status_code == 400
    assert 'id="tag-error">Give the tag a name.' in html(response)


def test_tags_are_added_lower_case_and_removed(client, author, north_account):
    item = make_item(north_account)
    signed_in(client, author)

    client.post(f"/inbox/{item.pk}/tags/", {"name": " Census Scam "})
    assert list(item.tags.values_list("name", flat=True)) == ["census scam"]

    client.post(f"/inbox/{item.pk}/tags/remove/", {"name": "census scam"})
    assert not item.tags.exists()


def test_assigning_to_someone_who_cannot_see_the_account_is_refused_beside_the_select(
    client, author, outsider, north_account
):
    item = make_item(north_account)

    response = signed_in(client, author).post(
        f"/inbox/{item.pk}/assign/", {"assignee": outsider.pk}, **FETCH
    )

    assert response.status_code == 400
    assert "charlie cannot see @north" in html(response)
    assert 'id="assign-error"' in html(response)
    item.refresh_from_db()
    assert item.assignee is None


def test_assign_to_me_and_to_nobody(client, author, north_account):
    item = make_item(north_account)
    signed_in(client, author)

    response = client.post(f"/inbox/{item.pk}/assign/", {"assignee": author.pk}, **FETCH)
    assert "Gave the mention from person1 to you." in html(response)
    item.refresh_from_db()
    assert item.assignee == author

    client.post(f"/inbox/{item.pk}/assign/", {"assignee": ""})
    item.refresh_from_db()
    assert item.assignee is None


def test_a_status_the_item_cannot_take_is_a_409(client, author, north_account):
    item = make_item(north_account, status=ItemStatus.CLOSED, closed_at=timezone.now())

    response = signed_in(client, author).post(
        f"/inbox/{item.pk}/status/", {"status": "waiting"}, **FETCH
    )

    assert response.status_code == 409
    assert "A closed item cannot become waiting." in html(response)


# Bulk -------------------------------------------------------------------------------------------
def test_bulk_close_closes_the_checked_items_and_returns_to_the_same_list(
    client, author, north_account
):
    first, second, untouched = (make_item(north_account, n) for n in (1, 2, 3))

    response = signed_in(client, author).post(
        "/inbox/bulk/?status=open&sentiment=neutral",
        {"items": [first.pk, second.pk], "action": "close"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/inbox/?status=open&sentiment=neutral"
    assert "Closed 2 items." in html(client.get(response["Location"]))
    statuses = dict(InboundItem.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "closed", second.pk: "closed", untouched.pk: "open"}
    assert AuditEvent.objects.filter(action="inbox.item_status_changed").count() == 2


def test_bulk_tag_and_assign(client, author, approver, north_account):
    first, second = make_item(north_account, 1), make_item(north_account, 2)
    signed_in(client, author)

    client.post("/inbox/bulk/", {"items": [first.pk, second.pk], "action": "tag", "tag": "Press"})
    client.post(
        "/inbox/bulk/",
        {"items": [first.pk, second.pk], "action": "assign", "assignee": approver.pk},
    )

    for item in (first, second):
        item.refresh_from_db()
        assert item.assignee == approver
        assert list(item.tags.values_list("name", flat=True)) == ["press"]


def test_a_bulk_with_a_wrong_tag_comes_back_with_the_error_and_the_items_still_checked(
    client, author, north_account
):
    first, second = make_item(north_account, 1), make_item(north_account, 2)

    response = signed_in(client, author).post(
        "/inbox/bulk/", {"items": [first.pk], "action": "tag", "tag": "   "}
    )

    assert response.status_code == 400
    page = html(response)
    assert 'id="bulk-tag-error">Give the tag a name.' in page
    assert f'value="{first.pk}" id="select-{first.pk}" checked>' in page
    assert f'value="{second.pk}" id="select-{second.pk}">' in page
    assert not ItemTag.objects.exists()


def test_a_bulk_without_items_says_so(client, author, north_account):
    make_item(north_account)

    response = signed_in(client, author).post("/inbox/bulk/", {"action": "close"})

    assert response.status_code == 400
    assert "Select at least one item first." in html(response)


# The live update ----------------------------------------------------------------------------------
def test_the_live_update_counts_what_came_after_the_newest_row_with_the_filters(
    client, author, north_account, south_account
):
    shown = make_item(north_account, 1)
    signed_in(client, author)
    page = html(client.get("/inbox/", {"sentiment": "negative"}))
    assert 'data-newest="0"' in page  # nothing negative shown yet
    assert 'data-updates-url="/inbox/updates/?sentiment=negative"' in page

    make_item(north_account, 2, sentiment="negative")
    make_item(north_account, 3, sentiment="negative")
    make_item(north_account, 4)
    make_item(south_account, 5, sentiment="negative")

    response = client.get("/inbox/updates/", {"after": shown.pk, "sentiment": "negative"})
    assert 'data-count="2"' in html(response)
    assert "2 new items came since this page was loaded." in html(response)

    rows = client.get("/inbox/rows/", {"after": shown.pk, "sentiment": "negative"})
    assert len(row_ids(rows)) == 2

    assert client.get("/inbox/updates/").status_code == 400


def test_the_live_update_stops_counting_past_a_page(client, author, north_account):
    for n in range(1, 53):
        make_item(north_account, n)

    response = signed_in(client, author).get("/inbox/updates/", {"after": 0})

    assert 'data-more="true"' in html(response)
    assert "More than 50 new items" in html(response)


def test_an_older_page_does_not_poll(client, author, north_account):
    item = make_item(north_account)

    page = html(signed_in(client, author).get("/inbox/", {"before": item.pk + 1}))

    assert "data-newest" not in page


def test_the_inbox_reflects_a_role_on_a_team_above(client, org, north_account):
    centre_lead = UserFactory(username="hq-drafter")
    grant(centre_lead, org["hq"], Role.DRAFTER)
    item = make_item(north_account)

    assert row_ids(signed_in(client, centre_lead).get("/inbox/")) == [item.pk]
