"""Who reads which events, and what each filter keeps."""

from datetime import UTC, datetime

import pytest
from django.db import transaction

from audit.models import AuditEvent
from audit.services import record
from desk.selectors import TeamNotFound, audit_scope, event_batches, events_for

from ..factories import UserFactory


def names(events, trail) -> list[str]:
    by_seq = {event.seq: name for name, event in trail.items()}
    return [by_seq[event.seq] for event in events]


def test_a_lead_sees_their_subtree_newest_first_and_no_teamless_events(lead, trail):
    assert names(events_for(user=lead), trail) == [
        "hq.postbox_opened",
        "north.post_submitted",
        "south_centre.membership_granted",
        "south.post_created",
        "north_centre.post_created",
        "north.team_created",
    ]


def test_a_south_lead_does_not_see_north_events(south_lead, trail):
    assert names(events_for(user=south_lead), trail) == [
        "south_centre.membership_granted",
        "south.post_created",
    ]


def test_a_south_lead_cannot_filter_on_north(south_lead, org, trail):
    with pytest.raises(TeamNotFound) as refused:
        audit_scope(user=south_lead).team(org["north"].pk)

    assert refused.value.status == 404
    assert "team" in refused.value.extra["fields"]


def test_a_team_that_does_not_exist_is_the_same_404(south_lead, trail):
    with pytest.raises(TeamNotFound):
        audit_scope(user=south_lead).team(999_999)


def test_a_team_filter_keeps_the_team_and_the_teams_below_it(lead, org, trail):
    north = audit_scope(user=lead).team(org["north"].pk)

    assert names(events_for(user=lead, team=north), trail) == [
        "north.post_submitted",
        "north_centre.post_created",
        "north.team_created",
    ]


def test_a_south_lead_may_filter_on_a_team_below_south(south_lead, org, trail):
    centre = audit_scope(user=south_lead).team(org["south_centre"].pk)

    assert names(events_for(user=south_lead, team=centre), trail) == [
        "south_centre.membership_granted"
    ]


def test_the_scope_holds_even_for_a_team_given_from_elsewhere(south_lead, org, trail):
    assert list(events_for(user=south_lead, team=org["north"])) == []


def test_a_superuser_sees_everything_including_events_of_no_team(trail):
    root = UserFactory(username="root", is_superuser=True)

    assert events_for(user=root).count() == len(trail)
    assert audit_scope(user=root).may_read


def test_people_who_lead_nothing_may_not_read_the_trail(author, outsider, trail):
    assert not audit_scope(user=author).may_read
    assert list(events_for(user=outsider)) == []


def test_a_deactivated_lead_sees_nothing(lead, trail):
    lead.is_active = False
    lead.save()

    assert not audit_scope(user=lead).may_read
    assert list(events_for(user=lead)) == []


def test_filtering_by_actor_id_or_username(lead, author, trail):
    by_id = names(events_for(user=lead, actor=author.pk), trail)
    by_name = names(events_for(user=lead, actor="alice"), trail)

    assert by_id == by_name == ["north.post_submitted", "north_centre.post_created"]
    assert list(events_for(user=lead, actor="nobody")) == []


def test_a_username_finds_the_persons_events_from_before_a_rename(lead, author, trail):
    author.username = "alice.smith"
    author.save()

    assert names(events_for(user=lead, actor="alice.smith"), trail) == [
        "north.post_submitted",
        "north_centre.post_created",
    ]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("post.created", ["south.post_created", "north_centre.post_created"]),
        (
            "post.*",
            ["north.post_submitted", "south.post_created", "north_centre.post_created"],
        ),
        (
            "post.",
            ["north.post_submitted", "south.post_created", "north_centre.post_created"],
        ),
        (
            "post*",
            [
                "hq.postbox_opened",
                "north.post_submitted",
                "south.post_created",
                "north_centre.post_created",
            ],
        ),
        ("post", []),
    ],
    ids=["exact", "prefix-dot-star", "prefix-dot", "prefix-star", "exact-no-match"],
)
def test_filtering_by_action_exact_or_prefix(lead, trail, action, expected):
    assert names(events_for(user=lead, action=action), trail) == expected


def test_filtering_by_object_type_and_id(lead, author, trail):
    post_101 = events_for(user=lead, object_type="publishing.post", object_id="101")
    all_posts = events_for(user=lead, object_type="publishing.post")
    the_user = events_for(user=lead, object_type="accounts.user", object_id=str(author.pk))

    assert names(post_101, trail) == ["north.post_submitted", "north_centre.post_created"]
    assert len(all_posts) == 3
    assert names(the_user, trail) == ["south_centre.membership_granted"]


def test_an_account_filter_finds_its_events_from_before_its_model_moved_app(
    lead, org, north_account
):
    # Given events of the account recorded while the model lived in accounts (the trail keeps
    # that name) and one since it lives in networks
    with transaction.atomic():
        before = [
            record(
                actor=lead,
                action=action,
                object_type="accounts.socialaccount",
                object_id=str(north_account.pk),
                team=org["north_centre"],
            )
            for action in ("social_account.created", "social_account.drafting_granted")
        ]
        after = record(
            actor=lead,
            action="social_account.reconnected",
            obj=north_account,
            team=org["north_centre"],
        )
        record(
            actor=lead,
            action="social_account.created",
            object_type="accounts.socialaccount",
            object_id=str(north_account.pk + 1),
            team=org["north_centre"],
        )

    # When the lead looks the account up by its model's name, new or former
    found = {
        name: list(events_for(user=lead, object_type=name, object_id=str(north_account.pk)))
        for name in ("networks.socialaccount", "accounts.socialaccount")
    }

    # Then each finds its whole history, and only its own
    assert after.object_type == "networks.socialaccount"
    for events in found.values():
        assert [event.seq for event in events] == [after.seq, before[1].seq, before[0].seq]


def test_filtering_by_date_range_since_inclusive_until_exclusive(lead, trail):
    events = events_for(
        user=lead,
        since=datetime(2025, 3, 2, 10, 0, tzinfo=UTC),
        until=datetime(2025, 3, 6, 14, 0, tzinfo=UTC),
    )

    assert names(events, trail) == [
        "south_centre.membership_granted",
        "south.post_created",
        "north_centre.post_created",
    ]


def test_filters_combine(lead, org, trail):
    north = audit_scope(user=lead).team(org["north"].pk)

    events = events_for(
        user=lead, team=north, action="post.*", since=datetime(2025, 3, 5, tzinfo=UTC)
    )

    assert names(events, trail) == ["north.post_submitted"]


@pytest.mark.parametrize("size", [10, 200])
def test_a_page_costs_two_queries_whatever_the_trail(lead, org, size, django_assert_num_queries):
    with transaction.atomic():
        for n in range(size):
            record(actor=lead, action="test.event", team=org["north_centre"], data={"n": n})

    # the scope, the page (team names joined in, the username looked up inside it)
    with django_assert_num_queries(2):
        scope = audit_scope(user=lead)
        events = events_for(
            user=lead, scope=scope, team=scope.team(org["north"].pk), actor="lena", action="test.*"
        )
        page = list(events[:50])
        [event.team.name for event in page]

    assert len(page) == min(size, 50)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 100])
def test_batches_walk_every_event_once_in_chain_order(lead, trail, batch_size):
    batches = list(event_batches(events_for(user=lead), batch_size=batch_size))

    seqs = [row[0] for batch in batches for row in batch]
    assert seqs == sorted(event.seq for event in events_for(user=lead))
    assert all(len(batch) <= batch_size for batch in batches)


def test_batches_stop_below_the_given_seq(lead, trail):
    below = trail["north.post_submitted"].seq

    batches = event_batches(events_for(user=lead), batch_size=2, below_seq=below)

    seqs = [row[0] for batch in batches for row in batch]
    assert seqs and max(seqs) < below
    assert AuditEvent.objects.filter(seq__gte=below).exists()
