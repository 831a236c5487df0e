"""Triage services beyond assign and status: tags, notes, and the bulk actions (the same rules
item by item, all or nothing, one audit event per item, only on items the person may see); and
the selectors the inbox page stands on (the tag filter, who may be given an item)."""

from datetime import UTC, datetime, timedelta

import pytest
from guardian.shortcuts import assign_perm

from accounts.models import Role
from audit.models import AuditEvent
from cxhub.errors import ApplicationError
from inbox import selectors, services
from inbox.models import InboundItem, ItemNote, ItemStatus, ItemTag
from networks.models import Channel

from ..factories import SocialAccountFactory, UserFactory, grant

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make_item(account, n=1, **values):
    defaults = {
        "network_id": f"n{n}",
        "kind": "mention",
        "author_handle": f"person{n}",
        "text": f"Item {n}",
        "posted_at": T0 + timedelta(minutes=n),
    }
    defaults.update(values)
    return InboundItem.objects.create(account=account, **defaults)


def events(action: str, item=None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(action=action)
    if item is not None:
        found = found.filter(object_type="inbox.inbounditem", object_id=str(item.pk))
    return list(found.order_by("seq"))


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")


@pytest.fixture
def south_account(org):
    return SocialAccountFactory(team=org["south"], channel=Channel.BLUESKY, handle="south.test")


# Tags -------------------------------------------------------------------------------------------
def test_a_tag_is_kept_trimmed_and_lower_case_once(author, north_account):
    item = make_item(north_account)

    services.item_tag(item=item, name="  Press Office ", by=author)
    services.item_tag(item=item, name="press office", by=author)

    assert list(item.tags.values_list("name", flat=True)) == ["press office"]
    [event] = events("inbox.item_tagged", item)
    assert event.actor == author
    assert event.data == {"tag": "press office"}
    assert event.team_id == north_account.team_id


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "Give the tag a name."),
        ("   ", "Give the tag a name."),
        ("x" * 51, "A tag has at most 50 characters (51 given)."),
        ("two\nlines", "A tag cannot hold control characters (tabs, line breaks)."),
    ],
)
def test_a_tag_name_that_is_empty_too_long_or_has_control_characters_is_refused(
    author, north_account, name, problem
):
    item = make_item(north_account)

    with pytest.raises(ApplicationError) as refused:
        services.item_tag(item=item, name=name, by=author)

    assert refused.value.status == 400
    assert refused.value.extra == {"fields": {"name": [problem]}}
    assert not ItemTag.objects.exists()
    assert not events("inbox.item_tagged")


def test_fifty_characters_make_a_tag(author, north_account):
    item = make_item(north_account)

    services.item_tag(item=item, name="Y" * 50, by=author)

    assert item.tags.get().name == "y" * 50


def test_untagging_removes_the_tag_and_records_it_and_a_missing_tag_changes_nothing(
    author, north_account
):
    item = make_item(north_account)
    services.item_tag(item=item, name="complaint", by=author)

    services.item_untag(item=item, name="Complaint", by=author)
    services.item_untag(item=item, name="complaint", by=author)

    assert not item.tags.exists()
    [event] = events("inbox.item_untagged", item)
    assert event.data == {"tag": "complaint"}


# Notes ------------------------------------------------------------------------------------------
def test_a_note_is_added_with_its_author_and_recorded(author, north_account):
    item = make_item(north_account)

    note = services.item_note_add(item=item, text="  Called them back.\nWaiting.  ", by=author)

    assert (note.item, note.author, note.text) == (item, author, "Called them back.\nWaiting.")
    [event] = events("inbox.item_note_added", item)
    assert event.data == {"note": note.pk}


@pytest.mark.parametrize("text", ["", "   \n "])
def test_an_empty_note_is_refused(author, north_account, text):
    item = make_item(north_account)

    with pytest.raises(ApplicationError) as refused:
        services.item_note_add(item=item, text=text, by=author)

    assert refused.value.extra == {"fields": {"text": ["Write the note first."]}}
    assert not ItemNote.objects.exists()


def test_a_note_longer_than_5000_characters_is_refused(author, north_account):
    item = make_item(north_account)

    with pytest.raises(ApplicationError) as refused:
        services.item_note_add(item=item, text="n" * 5001, by=author)

    assert "at most 5,000 characters" in refused.value.message
    assert not ItemNote.objects.exists()


# Bulk -------------------------------------------------------------------------------------------
def test_bulk_close_closes_each_item_with_its_own_audit_event(author, north_account):
    first, second = make_item(north_account, 1), make_item(north_account, 2)
    already = make_item(north_account, 3)
    services.item_close(item=already, by=author)

    done = services.items_bulk_close(item_ids=[second.pk, first.pk, already.pk], by=author)

    assert [item.pk for item in done] == [first.pk, second.pk, already.pk]
    for item in (first, second):
        item.refresh_from_db()
        assert item.status == ItemStatus.CLOSED
        [event] = events("inbox.item_status_changed", item)
        assert (event.actor, event.data) == (author, {"from": "open", "to": "closed"})
    # The one already closed is left as it was: no second event.
    assert len(events("inbox.item_status_changed", already)) == 1


def test_bulk_actions_refuse_every_item_when_one_is_not_the_persons(
    author, north_account, south_account
):
    mine = make_item(north_account, 1)
    theirs = make_item(south_account, 2)

    for act in (
        lambda ids: services.items_bulk_close(item_ids=ids, by=author),
        lambda ids: services.items_bulk_tag(item_ids=ids, name="x", by=author),
        lambda ids: services.items_bulk_assign(item_ids=ids, assignee=author, by=author),
    ):
        with pytest.raises(services.ItemsNotFound) as refused:
            act([mine.pk, theirs.pk])
        assert refused.value.status == 404

    mine.refresh_from_db()
    assert (mine.status, mine.assignee) == (ItemStatus.OPEN, None)
    assert not ItemTag.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="inbox.item_").exists()


def test_a_missing_item_refuses_the_bulk_like_one_that_is_not_the_persons(author, north_account):
    item = make_item(north_account)

    with pytest.raises(services.ItemsNotFound):
        services.items_bulk_close(item_ids=[item.pk, item.pk + 1000], by=author)

    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN


def test_bulk_assign_is_all_or_nothing_when_the_assignee_cannot_see_one_account(
    org, lead, approver, north_account
):
    centre_account = SocialAccountFactory(team=org["north_centre"], handle="@centre")
    centre_only = UserFactory(username="cora")
    grant(centre_only, org["north_centre"], Role.DRAFTER)
    north_item = make_item(north_account, 1)
    centre_item = make_item(centre_account, 2)

    with pytest.raises(ApplicationError) as refused:
        services.items_bulk_assign(
            item_ids=[north_item.pk, centre_item.pk], assignee=centre_only, by=lead
        )

    assert "cannot see @north's inbox" in refused.value.message
    assert refused.value.extra["fields"]["assignee"]
    for item in (north_item, centre_item):
        item.refresh_from_db()
        assert item.assignee is None
    assert not events("inbox.item_assigned")

    done = services.items_bulk_assign(
        item_ids=[north_item.pk, centre_item.pk], assignee=approver, by=lead
    )
    assert {item.assignee for item in done} == {approver}
    assert len(events("inbox.item_assigned")) == 2


def test_bulk_tag_checks_the_name_before_touching_anything(author, north_account):
    item = make_item(north_account)

    with pytest.raises(ApplicationError) as refused:
        services.items_bulk_tag(item_ids=[item.pk], name="", by=author)
    assert refused.value.extra == {"fields": {"name": ["Give the tag a name."]}}

    services.items_bulk_tag(item_ids=[item.pk, item.pk], name="Scam", by=author)
    assert list(item.tags.values_list("name", flat=True)) == ["scam"]
    assert len(events("inbox.item_tagged", item)) == 1


def test_a_bulk_needs_at_least_one_item_and_at_most_200(author, north_account):
    with pytest.raises(ApplicationError) as none:
        services.items_bulk_close(item_ids=[], by=author)
    assert none.value.extra == {"fields": {"items": ["Choose at least one item."]}}

    with pytest.raises(ApplicationError) as too_many:
        services.items_bulk_close(item_ids=list(range(1, 202)), by=author)
    assert "at most 200" in too_many.value.message


# Selectors --------------------------------------------------------------------------------------
def test_the_tag_filter_keeps_items_with_that_tag_once_each(author, north_account):
    tagged = make_item(north_account, 1)
    other = make_item(north_account, 2)
    services.item_tag(item=tagged, name="press", by=author)
    services.item_tag(item=tagged, name="urgent", by=author)
    services.item_tag(item=other, name="urgent", by=author)

    found = selectors.inbox_items(user=author, filters=selectors.ItemFilters(tag="press"))
    both = selectors.inbox_items(user=author, filters=selectors.ItemFilters(tag="urgent"))

    assert list(found) == [tagged]
    assert list(both) == [other, tagged]


def test_who_may_be_given_an_item_role_above_or_grant_never_a_sibling_or_inactive(
    org, author, approver, lead, outsider, north_account
):
    centre = UserFactory(username="cora")
    grant(centre, org["north_centre"], Role.DRAFTER)
    desk = UserFactory(username="desk")
    assign_perm("networks.draft_socialaccount", desk, north_account)
    gone = UserFactory(username="gone", is_active=False)
    grant(gone, org["north"], Role.DRAFTER)

    people = list(selectors.item_assignees(account=north_account))

    # A role on North or above (HQ), or a grant; not North Centre (below), South, or inactive.
    assert [person.username for person in people] == ["alice", "bob", "desk", "lena"]


def test_the_people_of_the_inbox_are_those_who_see_one_of_my_accounts(
    org, author, approver, lead, outsider, north_account, south_account
):
    centre_account = SocialAccountFactory(team=org["north_centre"], handle="@centre")
    centre = UserFactory(username="cora")
    grant(centre, org["north_centre"], Role.DRAFTER)
    desk = UserFactory(username="desk")
    assign_perm("networks.draft_socialaccount", desk, centre_account)

    mine = [person.username for person in selectors.inbox_people(user=author)]

    # alice sees @north and @centre: their people, not South's charlie.
    assert mine == ["alice", "bob", "cora", "desk", "lena"]
