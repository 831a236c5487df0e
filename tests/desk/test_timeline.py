"""A post's timeline (`/posts/<id>/timeline/`): every event of the post and of its approvals,
targets and attempts in chain order, versions with their diffs, who decided what on which
version, where it went out; the post's own scope; a fixed number of queries."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from approvals import services as approvals
from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStage
from audit.services import record
from desk import timeline
from publishing import services
from publishing.models import PostTarget, PublishAttempt, TargetStatus

from ..factories import SocialAccountFactory


@pytest.fixture
def north_mastodon(org):
    return SocialAccountFactory(team=org["north"], handle="@north")


@pytest.fixture
def policy(org):
    policy = ApprovalPolicy.objects.create(name="North chain", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Regional check",
        decider_team=org["north"],
        decider_role=Role.APPROVER,
    )
    return policy


def publish(target: PostTarget, *, url: str) -> None:
    """What the dispatcher leaves behind when a target goes out: an attempt, the target's new
    state, its event."""
    now = timezone.now()
    with transaction.atomic():
        attempt = PublishAttempt.objects.create(
            target=target,
            number=1,
            started_at=now,
            finished_at=now + timedelta(seconds=1),
            outcome=PublishAttempt.Outcome.PUBLISHED,
            http_status=200,
        )
        target.status = TargetStatus.PUBLISHED
        target.external_id = "109"
        target.external_url = url
        target.published_at = now
        target.save()
        record(
            actor=None,
            action="target.published",
            obj=target,
            team=target.post.team,
            data={"post": target.post_id, "attempt": attempt.number, "external_url": url},
        )


@pytest.fixture
def story(org, author, approver, north_mastodon, policy):
    """Written, rewritten, submitted, approved by bob on version 2, published on Mastodon."""
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Line one\nLine two",
        targets=[services.TargetInput(social_account_id=north_mastodon.pk)],
    )
    post = services.post_update(post=post, by=author, body="Line one\nLine 2, now clearer")
    post = services.post_submit(post=post, by=author)
    approvals.decide(request=ApprovalRequest.objects.get(post=post), by=approver, verdict="approve")
    publish(post.targets.get(), url="https://social.example/@north/109")
    # Another post of the same team: none of its events belong to this timeline.
    services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Something else",
        targets=[services.TargetInput(social_account_id=north_mastodon.pk)],
    )
    return post


def events_table(page: str) -> list[tuple[int, str]]:
    body = page.split('id="timeline-events"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>.*?<code>([^<]+)</code>", body, flags=re.S)
    return [(int(seq), action) for seq, action in rows]


def test_every_event_of_the_post_its_approvals_and_targets_in_chain_order(client, author, story):
    client.force_login(author)

    response = client.get(f"/posts/{story.pk}/timeline/")

    assert response.status_code == 200
    rows = events_table(response.content.decode())
    assert [action for _, action in rows] == [
        "post.created",
        "post.edited",
        "post.submitted",
        "approval.requested",
        "approval.approve",
        "post.approved",
        "target.published",
    ]
    seqs = [seq for seq, _ in rows]
    assert seqs == sorted(seqs)


def test_events_whose_data_names_the_post_are_in_it(client, author, story, org):
    with transaction.atomic():
        record(actor=None, action="publish.note", team=org["north"], data={"post": story.pk})
        record(actor=None, action="publish.other", team=org["north"], data={"post": 999_999})
    client.force_login(author)

    actions = [
        a for _, a in events_table(client.get(f"/posts/{story.pk}/timeline/").content.decode())
    ]

    assert actions[-1] == "publish.note"
    assert "publish.other" not in actions


def test_versions_show_what_changed_in_the_text(client, author, story):
    client.force_login(author)

    page = unescape(client.get(f"/posts/{story.pk}/timeline/").content.decode())

    assert "Version 1" in page and "Version 2" in page
    assert re.search(r'class="diff-removed"><span class="diff-mark">Removed:</span> Line two', page)
    assert re.search(
        r'class="diff-added"><span class="diff-mark">Added:</span> Line 2, now clearer', page
    )


def test_the_chain_says_who_decided_what_on_which_version(client, author, story):
    client.force_login(author)

    page = client.get(f"/posts/{story.pk}/timeline/").content.decode()

    assert "Approval of version 2: Approved" in page
    assert re.search(r"bob: <strong>Approve</strong> on version 2", page)


def test_each_published_target_links_to_where_it_went_out(client, author, story):
    client.force_login(author)

    page = client.get(f"/posts/{story.pk}/timeline/").content.decode()

    assert '<a href="https://social.example/@north/109">See it on Mastodon' in page


def test_the_story_in_data(author, story):
    told = timeline.post_timeline(user=author, post_id=story.pk)

    assert [row.version.version for row in told.versions] == [1, 2]
    assert told.versions[1].body_changed
    decision = told.requests[0].steps.all()[0].decisions.all()[0]
    assert decision.on_version == 2
    assert told.targets[0].link == "https://social.example/@north/109"


def test_an_unpublished_target_has_no_link(author, org, north_mastodon):
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Draft",
        targets=[services.TargetInput(social_account_id=north_mastodon.pk)],
    )
    PostTarget.objects.filter(post=post).update(external_url="https://social.example/x")

    told = timeline.post_timeline(user=author, post_id=post.pk)

    assert told.targets[0].link == ""


# Scope -------------------------------------------------------------------------------------------
def test_whoever_sees_the_post_sees_its_timeline(client, story, lead, approver):
    for person in (lead, approver):
        client.force_login(person)
        assert client.get(f"/posts/{story.pk}/timeline/").status_code == 200


def test_anyone_else_gets_404(client, story, outsider):
    client.force_login(outsider)

    assert client.get(f"/posts/{story.pk}/timeline/").status_code == 404
    assert client.get("/posts/999999/timeline/").status_code == 404
    assert timeline.post_timeline(user=outsider, post_id=story.pk) is None


def test_signed_out_people_are_sent_to_sign_in(client, story):
    response = client.get(f"/posts/{story.pk}/timeline/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# Cost --------------------------------------------------------------------------------------------
def _grow(post, org, times: int) -> None:
    """More attempts, each with its event, for the same post."""
    target = post.targets.get()
    with transaction.atomic():
        start = PublishAttempt.objects.filter(target=target).count()
        for number in range(start + 1, start + 1 + times):
            PublishAttempt.objects.create(
                target=target,
                number=number,
                started_at=timezone.now(),
                outcome=PublishAttempt.Outcome.RETRYABLE,
                http_status=503,
            )
            record(
                actor=None,
                action="target.retry_scheduled",
                obj=target,
                team=org["north"],
                data={"post": post.pk, "attempt": number},
            )


def test_the_timeline_costs_the_same_queries_whatever_the_number_of_events(
    client, author, story, org, django_assert_num_queries
):
    with django_assert_num_queries(timeline.QUERIES):
        timeline.post_timeline(user=author, post_id=story.pk)
    client.force_login(author)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/posts/{story.pk}/timeline/").status_code == 200
        return len(queries)

    small = page_queries()
    _grow(story, org, 40)
    services.post_update(post=story, by=author, tags=["later"])  # an event, no new version

    with django_assert_num_queries(timeline.QUERIES):
        told = timeline.post_timeline(user=author, post_id=story.pk)
    assert len(told.events) >= 48
    assert page_queries() == small


def test_leads_get_a_verify_link_for_each_event_and_others_none(client, story, lead, author):
    client.force_login(lead)
    html = client.get(f"/posts/{story.pk}/timeline/").content.decode()
    events = timeline.post_timeline(user=lead, post_id=story.pk).events
    assert events
    for row in events:
        assert f'href="/audit/events/{row.event.seq}/verify/"' in html

    client.force_login(author)  # sees the post, is no lead: the audit trail is not theirs
    assert "/verify/" not in client.get(f"/posts/{story.pk}/timeline/").content.decode()
