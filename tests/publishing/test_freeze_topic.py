"""Topic freezes (issue 18, item 3: an alert's "freeze posts on this topic"): a team subtree's
posts that carry one of some tags or are in a campaign are held, now, as the dispatcher claims
them and just before they are sent; lifting releases them unless another freeze covers them."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, NotAllowed
from publishing import freezes
from publishing.dispatch import claim, common, send, start
from publishing.models import Post, PostTarget, PublishingFreeze, TargetStatus

from ..factories import UserFactory, grant
from ..integration.dispatch_support import bulk_due_posts, webhook_account


@pytest.fixture
def north_lead(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD)
    return user


@pytest.fixture
def hook(org):
    return webhook_account(org["north"], "https://www.agency.example/hooks/a", handle="site-a")


@pytest.fixture
def centre_hook(org):
    return webhook_account(org["north_centre"], "https://www.agency.example/hooks/c", handle="c")


@pytest.fixture
def south_hook(org):
    return webhook_account(org["south"], "https://www.agency.example/hooks/s", handle="south")


def _due(author, team, account, *, tags=(), campaign="", posts=1, due=None) -> list[int]:
    """`posts` approved posts of `team` to `account`, due now (or at `due`), with these tags and
    campaign: their target ids."""
    ids = bulk_due_posts(author=author, team=team, accounts=[account], posts=posts, due=due)
    Post.objects.filter(targets__in=ids).update(tags=list(tags), campaign=campaign)
    return ids


def _status(target_id: int) -> tuple[str, str]:
    target = PostTarget.objects.get(pk=target_id)
    return target.status, target.held_reason


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def scene(author, org, hook, centre_hook, south_hook):
    """North's posts on the census (by tag, in another case, with a '#', or by campaign), North's
    posts on other things, and South's posts on the census (one going to a North account)."""
    return {
        "tagged": _due(author, org["north"], hook, tags=["Census", "launch"])[0],
        "shouting": _due(author, org["north_centre"], centre_hook, tags=["#CENSUS"])[0],
        "campaign": _due(author, org["north"], hook, campaign="Census 2026")[0],
        "untagged": _due(author, org["north"], hook)[0],
        "other_tag": _due(author, org["north"], hook, tags=["weather"], campaign="Spring")[0],
        "south_tagged": _due(author, org["south"], south_hook, tags=["census"])[0],
        "south_to_north": _due(author, org["south"], hook, tags=["census"])[0],
    }


ON_TOPIC = {"tagged", "shouting", "campaign", "south_to_north"}


# What a topic freeze holds ----------------------------------------------------------------------
def test_a_topic_freeze_holds_exactly_the_subtrees_posts_on_the_topic(north_lead, org, scene):
    # When North's lead freezes the census, by tag and by campaign
    freeze = freezes.freeze_create(
        by=north_lead,
        scope="topic",
        team_id=org["north"].pk,
        tags=["#census", " Census ", "scam"],
        campaign="census 2026",
        reason="A fake census text is going round",
    )

    # Then exactly the posts of North's subtree (or going to its accounts) on the topic are
    # held, whatever the case of their tags; North's other posts and South's go on
    held = {name for name, pk in scene.items() if _status(pk)[0] == TargetStatus.HELD}
    assert held == ON_TOPIC
    for name in ON_TOPIC:
        assert _status(scene[name]) == (TargetStatus.HELD, "freeze")
    assert freeze.held_count == len(ON_TOPIC)
    # The tags are kept as given, once each, without their '#'
    freeze.refresh_from_db()
    assert (freeze.scope, freeze.team, freeze.tags) == ("topic", org["north"], ["census", "scam"])
    assert freeze.campaign == "census 2026"
    assert claim.dispatch_due().queued == sorted(
        pk for name, pk in scene.items() if name not in ON_TOPIC
    )


def test_the_topic_freeze_is_audited_with_its_tags_and_campaign(north_lead, org, scene):
    freeze = freezes.freeze_create(
        by=north_lead,
        scope="topic",
        team_id=org["north"].pk,
        tags=["census"],
        reason="Fake census texts",
    )
    event = AuditEvent.objects.get(action="freeze.created")
    assert (event.actor, event.object_id, event.team_id) == (
        north_lead,
        str(freeze.pk),
        org["north"].pk,
    )
    assert event.data["scope"] == "topic" and event.data["team"] == org["north"].pk
    assert (event.data["tags"], event.data["campaign"]) == (["census"], "")
    assert event.data["reason"] == "Fake census texts"
    assert event.data["held"] == 3  # by tag: the campaign's post carries no tag


def test_a_campaign_alone_makes_a_topic(north_lead, org, scene):
    freezes.freeze_create(
        by=north_lead,
        scope="topic",
        team_id=org["north"].pk,
        campaign="  CENSUS 2026 ",
        reason="The campaign is paused",
    )
    held = {name for name, pk in scene.items() if _status(pk)[0] == TargetStatus.HELD}
    assert held == {"campaign"}


def test_targets_reaching_the_dispatcher_later_are_held_by_it(north_lead, author, org, hook):
    # Given a topic freeze, and then posts due later on and off the topic
    freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    later = timezone.now() + timedelta(minutes=1)
    on = _due(author, org["north"], hook, tags=["CENSUS"], due=later)[0]
    off = _due(author, org["north"], hook, tags=["weather"], due=later)[0]
    # When the dispatcher claims them
    result = claim.dispatch_due(now=later)
    # Then the one on the topic is held, the other goes
    assert result.held == {"freeze": [on]} and result.queued == [off]
    assert _status(on) == (TargetStatus.HELD, "freeze")


def test_a_topic_freeze_holds_a_claimed_target_at_start_and_just_before_sending(
    north_lead, author, org, hook, monkeypatch
):
    on = _due(author, org["north"], hook, tags=["census"])[0]
    off = _due(author, org["north"], hook)[0]
    claim.dispatch_due()
    # The freeze lands between the claim and the task (its hold undone here to get there): the
    # task holds the target on the topic and sends the other.
    freeze = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    PostTarget.objects.filter(pk=on).update(status=TargetStatus.QUEUED, held_reason="")
    sends, done = start._start_attempts(target_ids=[on, off], worker="test:1")
    assert done == {on: "held"} and [s.target_id for s in sends] == [off]
    assert f"freeze {freeze.pk}" in PostTarget.objects.get(pk=on).last_error

    # Just before a send starts, it reads the freezes again: a send already started (claimed
    # before any freeze) is stopped by a topic freeze that covers it, not by one that does not.
    freezes.freeze_lift(freeze=freeze, by=north_lead, reason="Over")
    PostTarget.objects.filter(pk=on).update(status=TargetStatus.QUEUED, held_reason="")
    sends, _ = start._start_attempts(target_ids=[on], worker="test:1")
    (on_send,) = sends
    assert (on_send.post_tags, on_send.post_campaign) == (("census",), "")
    monkeypatch.setattr(common, "FREEZE_RECHECK_SECONDS", 0)
    assert send._frozen(on_send) is None
    other = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["weather"], reason="Storm"
    )
    assert send._frozen(on_send) is None
    assert other.held_count == 0
    again = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["#Census"], reason="Again"
    )
    stopped = send._frozen(on_send)
    assert stopped is not None and stopped.held == "freeze"
    assert f"freeze {again.pk}" in stopped.error
    event = AuditEvent.objects.filter(action="freeze.created").latest("seq")
    assert event.data["already_sending"] == 1


# Lifting -----------------------------------------------------------------------------------------
def test_lifting_releases_the_topics_targets_unless_another_freeze_covers_them(
    north_lead, lead, org, hook, centre_hook, scene
):
    topic = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    account = freezes.freeze_create(
        by=lead, scope="account", social_account_id=centre_hook.pk, reason="Hacked?"
    )
    # A team freeze of South holds South's posts; lifting the topic must not touch them
    south = freezes.freeze_create(
        by=lead, scope="team", team_id=org["south"].pk, reason="South review"
    )
    assert _status(scene["south_tagged"])[0] == TargetStatus.HELD

    lifted = freezes.freeze_lift(freeze=topic, by=north_lead, reason="Cleared up")

    # The account freeze still holds the North Centre post; the South team freeze still holds
    # the post of South going to a North account; the others on the topic are released
    assert lifted.released_count == 1
    assert _status(scene["tagged"]) == (TargetStatus.WAITING, "")
    assert _status(scene["shouting"])[0] == TargetStatus.HELD
    assert _status(scene["south_to_north"])[0] == TargetStatus.HELD
    assert _status(scene["south_tagged"])[0] == TargetStatus.HELD
    event = AuditEvent.objects.get(action="freeze.lifted")
    assert (event.data["released"], event.data["still_frozen"]) == (1, 2)

    freezes.freeze_lift(freeze=account, by=lead, reason="Fine")
    freezes.freeze_lift(freeze=south, by=lead, reason="Fine")
    assert all(_status(pk)[0] == TargetStatus.WAITING for pk in scene.values())


def test_a_post_whose_tag_went_while_held_is_released_by_the_lift(north_lead, org, scene):
    freeze = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    Post.objects.filter(targets=scene["tagged"]).update(tags=["launch"])
    lifted = freezes.freeze_lift(freeze=freeze, by=north_lead, reason="Cleared")
    assert lifted.released_count == 3
    assert _status(scene["tagged"]) == (TargetStatus.WAITING, "")


def test_lifting_a_team_freeze_leaves_what_a_topic_freeze_holds(north_lead, lead, org, scene):
    freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    team = freezes.freeze_create(by=lead, scope="team", team_id=org["hq"].pk, reason="All")
    freezes.freeze_lift(freeze=team, by=lead, reason="Over")
    held = {name for name, pk in scene.items() if _status(pk)[0] == TargetStatus.HELD}
    assert held == ON_TOPIC - {"campaign"}


# Validation and scope ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"tags": [], "campaign": ""}, "tags"),
        ({"tags": ["  ", "#"], "campaign": " "}, "campaign"),
        ({"tags": "census"}, "tags"),
        ({"tags": [3]}, "tags"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": [f"t{n}" for n in range(21)]}, "tags"),
        ({"campaign": "c" * 101}, "campaign"),
        ({"campaign": 7}, "campaign"),
    ],
)
def test_a_topic_needs_tags_or_a_campaign_in_shape(north_lead, org, arguments, field):
    with pytest.raises(ApplicationError) as refused:
        freezes.freeze_create(
            by=north_lead, scope="topic", team_id=org["north"].pk, reason="x", **arguments
        )
    assert field in refused.value.extra["fields"]
    assert not PublishingFreeze.objects.exists()


def test_a_topic_freeze_is_for_a_team_its_lead_leads(north_lead, lead, org):
    for team_id in (None, org["south"].pk, org["hq"].pk):
        with pytest.raises(ApplicationError) as refused:
            freezes.freeze_create(
                by=north_lead, scope="topic", team_id=team_id, tags=["census"], reason="x"
            )
        assert refused.value.extra["fields"] == {"team": ["No team with this id that you lead."]}
    # Tags or a campaign with another scope: refused rather than freezing more than was meant
    for scope, extra in (("team", {"tags": ["census"]}), ("everything", {"campaign": "c"})):
        with pytest.raises(ApplicationError) as refused:
            freezes.freeze_create(
                by=lead, scope=scope, team_id=org["north"].pk, reason="x", **extra
            )
        assert set(refused.value.extra["fields"]) == set(extra)
    assert not PublishingFreeze.objects.exists()


def test_topic_freezes_are_seen_and_lifted_by_the_leads_of_their_team(
    north_lead, lead, outsider, org
):
    south_lead = UserFactory(username="sam")
    grant(south_lead, org["south"], Role.LEAD)
    freeze = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    assert list(freezes.freezes_for(user=north_lead)) == [freeze]
    assert list(freezes.freezes_for(user=lead)) == [freeze]
    assert list(freezes.freezes_for(user=south_lead)) == []
    assert list(freezes.freezes_for(user=outsider)) == []
    with pytest.raises(NotAllowed):
        freezes.freeze_lift(freeze=freeze, by=south_lead, reason="not mine")


def test_the_database_refuses_a_topic_freeze_without_its_team(lead):
    with pytest.raises(IntegrityError), transaction.atomic():
        PublishingFreeze.objects.create(scope="topic", tags=["census"], reason="x", created_by=lead)


# Queries -----------------------------------------------------------------------------------------
def _queries(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def test_topic_freezes_cost_no_query_per_target(north_lead, author, org, hook, centre_hook):
    """Creating a topic freeze, claiming and starting sends under it, and lifting it cost the
    same queries for 2 targets on the topic (and 2 off it) as for 20."""

    def run(count: int) -> tuple[int, int, int, int]:
        PublishingFreeze.objects.filter(active=True).update(active=False)
        PostTarget.objects.all().delete()
        on = _due(author, org["north"], hook, tags=["Census"], posts=count)
        off = _due(author, org["north"], centre_hook, tags=["weather"], posts=count)
        create = _queries(
            lambda: freezes.freeze_create(
                by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="x"
            )
        )
        # The dispatcher meets them again as if the freeze came after they were due
        PostTarget.objects.filter(pk__in=on).update(status=TargetStatus.WAITING, held_reason="")
        claimed = _queries(claim.dispatch_due)
        assert set(
            PostTarget.objects.filter(status=TargetStatus.HELD).values_list("pk", flat=True)
        ) == set(on)
        started = _queries(lambda: start._start_attempts(target_ids=off, worker="test:1"))
        assert PostTarget.objects.filter(status=TargetStatus.SENDING).count() == count
        freeze = PublishingFreeze.objects.get(active=True)
        lift = _queries(lambda: freezes.freeze_lift(freeze=freeze, by=north_lead, reason="y"))
        assert set(
            PostTarget.objects.filter(status=TargetStatus.WAITING).values_list("pk", flat=True)
        ) == set(on)
        return create, claimed, started, lift

    run(2)  # warm caches (content types, etc.)
    assert run(2) == run(20)


# The API and the page ---------------------------------------------------------------------------
def test_a_lead_freezes_a_topic_through_the_api(north_lead, org, scene):
    response = api(north_lead).post(
        "/api/v1/freezes/",
        {
            "scope": "topic",
            "team": org["north"].pk,
            "tags": ["#Census"],
            "campaign": "",
            "reason": "A fake census text",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["scope"], body["team"], body["tags"], body["campaign"]) == (
        "topic",
        org["north"].pk,
        ["Census"],
        "",
    )
    assert _status(scene["tagged"]) == (TargetStatus.HELD, "freeze")
    assert _status(scene["untagged"])[0] == TargetStatus.WAITING
    listed = api(north_lead).get("/api/v1/freezes/").json()["results"]
    assert [(f["id"], f["tags"]) for f in listed] == [(body["id"], ["Census"])]

    lifted = api(north_lead).post(
        f"/api/v1/freezes/{body['id']}/lift/", {"reason": "Cleared"}, format="json"
    )
    assert lifted.status_code == 200
    assert _status(scene["tagged"]) == (TargetStatus.WAITING, "")


def test_the_api_names_the_topic_fields(north_lead, org):
    empty = api(north_lead).post(
        "/api/v1/freezes/",
        {"scope": "topic", "team": org["north"].pk, "reason": "x"},
        format="json",
    )
    assert empty.status_code == 400
    assert set(empty.json()["extra"]["fields"]) == {"tags", "campaign"}
    not_a_list = api(north_lead).post(
        "/api/v1/freezes/",
        {"scope": "topic", "team": org["north"].pk, "tags": "census", "reason": "x"},
        format="json",
    )
    assert not_a_list.status_code == 400 and "tags" in not_a_list.json()["extra"]["fields"]
    wrong_scope = api(north_lead).post(
        "/api/v1/freezes/",
        {"scope": "team", "team": org["north"].pk, "campaign": "Census", "reason": "x"},
        format="json",
    )
    assert wrong_scope.status_code == 400
    assert set(wrong_scope.json()["extra"]["fields"]) == {"campaign"}
    assert not PublishingFreeze.objects.exists()


def test_a_lead_freezes_a_topic_on_the_page(client, north_lead, org, scene):
    client.force_login(north_lead)
    page = client.get("/freezes/").content.decode()
    assert 'value="topic"' in page
    assert '<label for="id_tags">Topic: tags</label>' in page
    assert '<label for="id_campaign">Topic: campaign</label>' in page

    response = client.post(
        "/freezes/",
        {
            "scope": "topic",
            "team": org["north"].pk,
            "tags": "#census, scam",
            "campaign": "",
            "reason": "A fake census text",
        },
    )
    assert response.status_code == 302
    freeze = PublishingFreeze.objects.get()
    assert (freeze.scope, freeze.tags) == ("topic", ["census", "scam"])
    assert _status(scene["tagged"])[0] == TargetStatus.HELD
    assert _status(scene["untagged"])[0] == TargetStatus.WAITING
    listed = client.get("/freezes/").content.decode()
    assert "Posts tagged #census, #scam of North and the teams below it" in listed
    assert "3 waiting post target(s) held" in listed


def test_the_page_names_the_topic_fields_when_it_refuses(client, north_lead, org):
    client.force_login(north_lead)
    response = client.post(
        "/freezes/", {"scope": "topic", "team": org["north"].pk, "tags": " , ", "reason": "x"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_tags-error"' in html and 'id="id_campaign-error"' in html
    assert "Give at least one tag or a campaign" in html
    no_team = client.post("/freezes/", {"scope": "topic", "tags": "census", "reason": "x"})
    assert no_team.status_code == 400
    assert "Choose the team to freeze." in no_team.content.decode()
    assert not PublishingFreeze.objects.exists()


def test_the_author_sees_a_post_a_topic_freeze_stopped_as_held(
    client, author, north_lead, org, hook, monkeypatch
):
    """As for every freeze: the target reads "Held", and one stopped as it was about to start
    says which freeze stopped it."""
    on = _due(author, org["north"], hook, tags=["census"])[0]
    claim.dispatch_due()
    freeze = freezes.freeze_create(
        by=north_lead, scope="topic", team_id=org["north"].pk, tags=["census"], reason="Scam"
    )
    PostTarget.objects.filter(pk=on).update(status=TargetStatus.QUEUED, held_reason="")
    start._start_attempts(target_ids=[on], worker="test:1")
    client.force_login(author)
    page = client.get(f"/posts/{PostTarget.objects.get(pk=on).post_id}/").content.decode()
    assert "Status: <strong>Held</strong>" in page
    assert f"Publishing is frozen (freeze {freeze.pk})." in page
