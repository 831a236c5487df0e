"""Freezes through the API and the lead's page, and the sandbox feed page: scope (404 outside
it), errors naming fields, and what a freeze does to waiting targets."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditEvent
from publishing import freezes
from publishing.dispatch import claim, send
from publishing.models import PostTarget, PublishingFreeze, TargetStatus

from ..factories import UserFactory, grant
from ..integration.dispatch_support import approved_post, sandbox_account, webhook_account


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def north_lead(org):
    user = UserFactory(username="nora")
    grant(user, org["north"], Role.LEAD)
    return user


@pytest.fixture
def hook(org):
    return webhook_account(org["north"], "https://www.agency.example/hooks/a", handle="site-a")


@pytest.fixture
def waiting(author, org, hook):
    post = approved_post(author=author, team=org["north"], accounts=[hook])
    return PostTarget.objects.get(post=post)


# API ---------------------------------------------------------------------------------------------
def test_a_lead_freezes_everything_and_lifts_it_through_the_api(lead, waiting):
    response = api(lead).post(
        "/api/v1/freezes/", {"scope": "everything", "reason": "Incident"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["scope"] == "everything" and body["active"] is True
    assert body["created_by"] == "lena" and body["reason"] == "Incident"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.held_reason) == (TargetStatus.HELD, "freeze")

    listed = api(lead).get("/api/v1/freezes/?active=true").json()
    assert [f["id"] for f in listed["results"]] == [body["id"]]
    assert listed["next"] is None

    lifted = api(lead).post(
        f"/api/v1/freezes/{body['id']}/lift/", {"reason": "Resolved"}, format="json"
    )
    assert lifted.status_code == 200, lifted.content
    assert lifted.json()["active"] is False and lifted.json()["lift_reason"] == "Resolved"
    assert PostTarget.objects.get(pk=waiting.pk).status == TargetStatus.WAITING

    again = api(lead).post(f"/api/v1/freezes/{body['id']}/lift/", {"reason": "x"}, format="json")
    assert again.status_code == 409


def test_freezes_outside_the_scope_answer_404(lead, north_lead, outsider, org):
    hq = freezes.freeze_create(by=lead, scope="everything", reason="HQ only")
    north = freezes.freeze_create(
        by=north_lead, scope="team", team_id=org["north"].pk, reason="North"
    )
    assert [f["id"] for f in api(north_lead).get("/api/v1/freezes/").json()["results"]] == [
        north.pk
    ]
    assert api(outsider).get("/api/v1/freezes/").json()["results"] == []
    for user, freeze in ((north_lead, hq), (outsider, north)):
        response = api(user).post(
            f"/api/v1/freezes/{freeze.pk}/lift/", {"reason": "mine?"}, format="json"
        )
        assert response.status_code == 404
    assert PublishingFreeze.objects.filter(active=True).count() == 2


def test_creating_outside_the_scope_names_the_field(north_lead, org):
    response = api(north_lead).post(
        "/api/v1/freezes/",
        {"scope": "team", "team": org["south"].pk, "reason": "Not mine"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"team": ["No team with this id that you lead."]}
    everything = api(north_lead).post(
        "/api/v1/freezes/", {"scope": "everything", "reason": "x"}, format="json"
    )
    assert everything.status_code == 403
    no_reason = api(north_lead).post(
        "/api/v1/freezes/", {"scope": "team", "team": org["north"].pk}, format="json"
    )
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["extra"]["fields"]


def test_the_freeze_list_costs_the_same_queries_whatever_its_length(
    lead, org, django_assert_max_num_queries
):
    for number in range(3):
        freezes.freeze_create(by=lead, scope="team", team_id=org["north"].pk, reason=f"{number}")
    client = api(lead)
    client.get("/api/v1/freezes/")  # warm caches (content types, etc.)
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/freezes/")
    for number in range(10):
        freezes.freeze_create(by=lead, scope="team", team_id=org["south"].pk, reason=f"{number}")
    with django_assert_max_num_queries(len(few)):
        assert len(client.get("/api/v1/freezes/").json()["results"]) == 13


# The lead's page ---------------------------------------------------------------------------------
def test_the_freeze_page_is_for_leads_only(client, author):
    client.force_login(author)
    assert client.get("/freezes/").status_code == 404


def test_a_lead_freezes_a_team_and_lifts_it_on_the_page(client, north_lead, org, waiting):
    client.force_login(north_lead)
    page = client.get("/freezes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<legend>What to freeze</legend>" in html
    assert 'value="everything"' not in html  # not a lead of the whole organisation
    assert '<label for="id_reason">Reason</label>' in html

    response = client.post(
        "/freezes/", {"scope": "team", "team": org["north"].pk, "reason": "Storm warning"}
    )
    assert response.status_code == 302
    freeze = PublishingFreeze.objects.get()
    assert (freeze.scope, freeze.team, freeze.created_by) == ("team", org["north"], north_lead)
    assert PostTarget.objects.get(pk=waiting.pk).status == TargetStatus.HELD
    listed = client.get("/freezes/").content.decode()
    assert "1 waiting post target(s) held" in listed
    assert "North and the teams below it" in listed
    assert (
        f'<label for="lift-reason-{freeze.pk}">Reason for lifting freeze {freeze.pk}</label>'
        in (listed)
    )

    refused = client.post(f"/freezes/{freeze.pk}/lift/", {"reason": ""})
    assert refused.status_code == 400
    assert "Give the reason for lifting it." in refused.content.decode()

    lifted = client.post(f"/freezes/{freeze.pk}/lift/", {"reason": "Passed"})
    assert lifted.status_code == 302
    assert PostTarget.objects.get(pk=waiting.pk).status == TargetStatus.WAITING
    assert AuditEvent.objects.filter(action="freeze.lifted").count() == 1


def test_the_page_shows_why_a_freeze_was_refused(client, north_lead, org):
    client.force_login(north_lead)
    response = client.post("/freezes/", {"scope": "team", "reason": "No team chosen"})
    assert response.status_code == 400
    assert "Choose the team to freeze." in response.content.decode()
    assert not PublishingFreeze.objects.exists()


def test_lifting_a_freeze_outside_the_scope_on_the_page_is_404(client, lead, north_lead):
    freeze = freezes.freeze_create(by=lead, scope="everything", reason="HQ")
    client.force_login(north_lead)
    assert client.post(f"/freezes/{freeze.pk}/lift/", {"reason": "x"}).status_code == 404


# The sandbox feed --------------------------------------------------------------------------------
def test_the_sandbox_feed_shows_what_went_out(client, author, org, outsider, hook):
    account = sandbox_account(org["north"], handle="training")
    post = approved_post(author=author, team=org["north"], accounts=[account])
    claim.dispatch_due()
    send.publish_target(target_id=PostTarget.objects.get(post=post).pk)

    client.force_login(author)
    page = client.get(f"/sandbox/{account.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Launch window opens at dawn." in html
    assert f'href="/posts/{post.pk}/"' in html

    client.force_login(outsider)
    assert client.get(f"/sandbox/{account.pk}/").status_code == 404
    client.force_login(author)
    assert client.get(f"/sandbox/{hook.pk}/").status_code == 404  # not a sandbox account


# A lead reschedules a held post ------------------------------------------------------------------
def _frozen(lead, waiting):
    team = waiting.post.team
    if freezes.leads_everything(user=lead):
        freezes.freeze_create(by=lead, scope="everything", reason="Incident")
    else:
        freezes.freeze_create(by=lead, scope="team", team_id=team.pk, reason="Incident")
    waiting.refresh_from_db()
    assert waiting.status == TargetStatus.HELD
    return waiting


def test_a_lead_gives_a_held_post_a_new_time_and_it_waits_for_it_after_the_lift(lead, waiting):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    target = _frozen(lead, waiting)
    new_time = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    response = api(lead).post(
        f"/api/v1/posts/{target.post_id}/reschedule-held/",
        {"scheduled_at": new_time.isoformat(), "reason": "After the press conference"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["targets"] == 1
    target.refresh_from_db()
    # Still held while the freeze holds, with its new time …
    assert (target.status, target.next_attempt_at) == (TargetStatus.HELD, new_time)
    assert target.post.scheduled_at == new_time
    event = AuditEvent.objects.get(action="post.held_rescheduled")
    assert event.data["reason"] == "After the press conference" and event.actor == lead

    # … and when the freeze is lifted, it goes at that time, not at once.
    freeze = PublishingFreeze.objects.get(active=True)
    freezes.freeze_lift(freeze=freeze, by=lead, reason="Over")
    target.refresh_from_db()
    assert (target.status, target.next_attempt_at) == (TargetStatus.WAITING, new_time)
    assert claim.dispatch_due().queued == []
    with time_machine.travel(new_time, tick=False):
        assert claim.dispatch_due().queued == [target.pk]


def test_rescheduling_refuses_the_past_others_and_posts_not_held(
    lead, author, outsider, waiting, org
):
    from datetime import timedelta

    from django.utils import timezone

    url = f"/api/v1/posts/{waiting.post_id}/reschedule-held/"
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    # Not held: nothing to find.
    assert api(lead).post(url, {"scheduled_at": later, "reason": "x"}).status_code == 404
    _frozen(lead, waiting)
    # The past, a missing reason: 400 naming the field.
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = api(lead).post(url, {"scheduled_at": past, "reason": "Later"}, format="json")
    assert response.status_code == 400
    assert "scheduled_at" in response.json()["extra"]["fields"]
    response = api(lead).post(url, {"scheduled_at": later}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["extra"]["fields"]
    # The author (not a lead) and another region's people do not see it.
    for user in (author, outsider):
        assert api(user).post(url, {"scheduled_at": later, "reason": "x"}).status_code == 404
    assert PostTarget.objects.get(pk=waiting.pk).next_attempt_at != later
    # An id past any bigint (found by schemathesis: SQLite overflowed on it): no such post.
    huge = "/api/v1/posts/99999999999999999999999/reschedule-held/"
    assert api(lead).post(huge, {"scheduled_at": later, "reason": "x"}).status_code == 404


def test_the_freeze_page_lists_held_posts_and_reschedules_one_in_its_time_zone(
    client, north_lead, waiting
):
    from datetime import UTC, datetime, timedelta

    target = _frozen(north_lead, waiting)
    post = target.post
    post.timezone = "Europe/London"
    post.save(update_fields=["timezone"])
    client.force_login(north_lead)
    page = client.get("/freezes/").content.decode()
    assert f'id="held-{post.pk}"' in page and "site-a" in page

    day = (datetime.now(UTC) + timedelta(days=30)).date()
    response = client.post(
        f"/freezes/held/{post.pk}/reschedule/",
        {"day": day.isoformat(), "clock": "09:30", "reason": "Wait for the briefing"},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    local = target.next_attempt_at.astimezone(ZoneInfo("Europe/London"))
    assert (local.date(), local.hour, local.minute) == (day, 9, 30)

    # A bad form stays on the page with the message beside the post.
    response = client.post(f"/freezes/held/{post.pk}/reschedule/", {"day": "", "clock": "x"})
    assert response.status_code == 400
    assert f'id="reschedule-error-{post.pk}"' in response.content.decode()


def test_the_freeze_page_costs_the_same_queries_for_2_or_20_held_posts(
    client, north_lead, author, org, hook
):
    from ..integration.dispatch_support import bulk_due_posts

    def hold(count):
        bulk_due_posts(author=author, team=org["north"], accounts=[hook], posts=count)
        freezes.freeze_create(by=north_lead, scope="team", team_id=org["north"].pk, reason="Hold")

    client.force_login(north_lead)
    hold(2)
    client.get("/freezes/")  # warm caches
    with CaptureQueriesContext(connection) as few:
        page = client.get("/freezes/").content.decode()
    assert len(re.findall(r'id="held-\d', page)) == 2
    hold(18)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/freezes/").content.decode()
    assert len(re.findall(r'id="held-\d', page)) == 20
    assert len(many) == len(few)
