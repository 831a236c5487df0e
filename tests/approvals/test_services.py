"""Routing, decisions and their rules, supersession, escalation and break-glass."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification, Role
from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStage,
    Decision,
    RequestStatus,
    Rule,
    StepStatus,
)
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from publishing import services as publishing
from publishing.models import PostStatus, TargetStatus

from ..factories import SocialAccountFactory, UserFactory, grant


def request_of(post) -> ApprovalRequest:
    return ApprovalRequest.objects.get(post=post, status=RequestStatus.OPEN)


def test_the_default_chain_is_one_approver_of_the_team(submitted, approver):
    post = submitted()
    request = request_of(post)
    (step,) = request.steps.all()
    assert step.source == "organisation default"
    assert list(step.eligible.all()) == [approver]
    assert Notification.objects.filter(user=approver, kind="approval.waiting").exists()


def test_submit_without_anyone_to_approve_is_refused(org, author, north_account):
    post = publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Hello",
        targets=[publishing.TargetInput(social_account_id=north_account.pk)],
    )
    with pytest.raises(ApplicationError) as caught:
        publishing.post_submit(post=post, by=author)
    assert "No one can decide" in caught.value.message
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT


def test_two_stages_approve_in_order_and_the_post_is_scheduled(
    two_stage_policy, submitted, approver, hq_approver
):
    post = submitted(scheduled_at=timezone.now() + timedelta(days=1))
    request = request_of(post)
    with pytest.raises(NotAllowed):
        # the second stage is not active yet
        services.decide(request=request, by=hq_approver, verdict="approve")
    services.decide(request=request, by=approver, verdict="approve")
    second = request.steps.get(order=2)
    assert second.status == StepStatus.ACTIVE
    services.decide(request=request, by=hq_approver, verdict="approve")
    post.refresh_from_db()
    assert post.status == PostStatus.SCHEDULED
    assert post.approved_content_hash == post.content_hash
    assert post.targets.get().status == TargetStatus.WAITING


def test_nested_teams_inherit_the_nearest_policy(org, two_stage_policy, hq_approver):
    # North Centre has no policy of its own: North's applies
    drafter = UserFactory(username="cen")
    grant(drafter, org["north_centre"], Role.DRAFTER)
    account = SocialAccountFactory(team=org["north_centre"], handle="@centre")
    post = publishing.post_create(
        by=drafter,
        team_id=org["north_centre"].pk,
        body="Centre news",
        targets=[publishing.TargetInput(social_account_id=account.pk)],
    )
    post = publishing.post_submit(post=post, by=drafter)
    assert [s.name for s in request_of(post).steps.all()] == ["Regional check", "HQ sign-off"]

    # until the centre gets its own
    own = ApprovalPolicy.objects.create(name="Centre", team=org["north_centre"])
    ApprovalStage.objects.create(
        policy=own, order=1, name="Centre lead", decider_team=org["hq"], decider_role=Role.APPROVER
    )
    post2 = publishing.post_duplicate(post=post, by=drafter)
    post2 = publishing.post_submit(post=post2, by=drafter)
    assert [s.name for s in request_of(post2).steps.all()] == ["Centre lead"]


def test_an_account_policy_adds_its_stages_and_duplicates_are_dropped(
    org, two_stage_policy, submitted, north_account, hq_approver
):
    account_policy = ApprovalPolicy.objects.create(name="Flagship", social_account=north_account)
    ApprovalStage.objects.create(
        policy=account_policy,
        order=1,
        name="Same regional check",
        decider_team=org["north"],
        decider_role=Role.APPROVER,
        rule=Rule.ANY,
    )
    ApprovalStage.objects.create(
        policy=account_policy,
        order=2,
        name="Lead review",
        decider_team=org["hq"],
        decider_role=Role.LEAD,
    )
    lead = UserFactory(username="lead2")
    grant(lead, org["hq"], Role.LEAD)
    post = submitted()
    names = [s.name for s in request_of(post).steps.all()]
    assert names == ["Regional check", "HQ sign-off", "Lead review"]


def test_a_request_in_flight_is_immune_to_policy_edits(
    two_stage_policy, submitted, approver, hq_approver, org
):
    post = submitted()
    two_stage_policy.stages.all().delete()
    ApprovalStage.objects.create(
        policy=two_stage_policy, order=1, name="New", decider_team=org["hq"], decider_role="lead"
    )
    request = request_of(post)
    assert [s.name for s in request.steps.all()] == ["Regional check", "HQ sign-off"]
    services.decide(request=request, by=approver, verdict="approve")
    services.decide(request=request, by=hq_approver, verdict="approve")
    post.refresh_from_db()
    assert post.status == PostStatus.SCHEDULED


def test_the_author_never_decides_on_their_own_post(org, author, submitted):
    grant(author, org["north"], Role.APPROVER)
    colleague = UserFactory(username="col")
    grant(colleague, org["north"], Role.APPROVER)
    post = submitted()
    step = request_of(post).steps.get()
    assert author not in step.eligible.all()
    with pytest.raises(NotAllowed):
        services.decide(request=request_of(post), by=author, verdict="approve")


def test_one_person_decides_at_most_once(two_stage_policy, submitted, approver, org):
    other = UserFactory(username="other")
    grant(other, org["north"], Role.APPROVER)
    post = submitted()
    request = request_of(post)
    services.decide(request=request, by=approver, verdict="approve")
    with pytest.raises(InvalidTransition):
        services.decide(request=request, by=approver, verdict="approve")
    assert Decision.objects.filter(user=approver).count() == 1


def test_request_changes_sends_the_post_back_with_the_comment(submitted, approver, author):
    post = submitted()
    services.decide(
        request=request_of(post), by=approver, verdict="request_changes", comment="Add the time"
    )
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT
    note = Notification.objects.get(user=author, kind="approval.changes_requested")
    assert "Add the time" in note.body
    # edited and resubmitted: a new request for the new version
    post = publishing.post_update(post=post, by=author, body="Launch at 06:10.")
    post = publishing.post_submit(post=post, by=author)
    assert request_of(post).version == 2


def test_reject_is_terminal(submitted, approver, author):
    post = submitted()
    services.decide(request=request_of(post), by=approver, verdict="reject", comment="Off-brand")
    post.refresh_from_db()
    assert post.status == PostStatus.REJECTED
    with pytest.raises(InvalidTransition):
        publishing.post_update(post=post, by=author, body="again")


def test_a_comment_is_required_to_request_changes_or_reject(submitted, approver):
    post = submitted()
    for verdict in ("request_changes", "reject"):
        with pytest.raises(ApplicationError) as caught:
            services.decide(request=request_of(post), by=approver, verdict=verdict)
        assert "comment" in caught.value.extra["fields"]


def test_an_edit_during_review_supersedes_every_decision(
    two_stage_policy, submitted, approver, hq_approver, author
):
    post = submitted()
    request = request_of(post)
    services.decide(request=request, by=approver, verdict="approve")
    publishing.post_update(post=post, by=author, body="Changed after the first approval")
    request.refresh_from_db()
    assert request.status == RequestStatus.SUPERSEDED
    with pytest.raises(InvalidTransition) as caught:
        services.decide(request=request, by=hq_approver, verdict="approve")
    assert "changed" in caught.value.message
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT


def test_an_edit_after_approval_drops_the_approval(submitted, approver, author):
    post = submitted()
    services.decide(request=request_of(post), by=approver, verdict="approve")
    post.refresh_from_db()
    assert post.status == PostStatus.SCHEDULED
    post = publishing.post_update(post=post, by=author, body="Sneaky change")
    assert post.status == PostStatus.DRAFT
    assert post.approved_content_hash == ""


def test_quorum_needs_n_approvals(org, author, north_account, approver):
    others = [UserFactory(username=f"q{i}") for i in range(2)]
    for person in others:
        grant(person, org["north"], Role.APPROVER)
    policy = ApprovalPolicy.objects.create(name="Quorum", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Two of three",
        decider_team=org["north"],
        decider_role=Role.APPROVER,
        rule=Rule.QUORUM,
        quorum=2,
    )
    post = publishing.post_submit(
        post=publishing.post_create(
            by=author,
            team_id=org["north"].pk,
            body="Quorum post",
            targets=[publishing.TargetInput(social_account_id=north_account.pk)],
        ),
        by=author,
    )
    request = request_of(post)
    services.decide(request=request, by=approver, verdict="approve")
    post.refresh_from_db()
    assert post.status == PostStatus.IN_REVIEW
    services.decide(request=request, by=others[0], verdict="approve")
    post.refresh_from_db()
    assert post.status == PostStatus.SCHEDULED


def test_overdue_steps_are_escalated_once(org, two_stage_policy, submitted, approver, lead):
    stage = two_stage_policy.stages.get(order=1)
    stage.escalate_to_team = org["hq"]
    stage.escalate_to_role = Role.LEAD
    stage.sla_hours = 1
    stage.save()
    post = submitted()
    later = timezone.now() + timedelta(hours=2)
    assert services.escalate_overdue(now=later) == 1
    assert services.escalate_overdue(now=later + timedelta(hours=5)) == 0
    assert Notification.objects.filter(user=lead, kind="approval.escalated").count() == 1
    event = AuditEvent.objects.get(action="approval.escalated")
    assert event.data["notified"] == [lead.pk]
    assert post.pk == event.data["post"]


def test_break_glass_releases_at_once_loudly(submitted, lead, approver, author):
    post = submitted(scheduled_at=timezone.now() + timedelta(days=3))
    with pytest.raises(ApplicationError) as caught:
        services.break_glass(post=post, by=lead, justification="urgent")
    assert "justification" in caught.value.extra["fields"]
    post = services.break_glass(
        post=post,
        by=lead,
        justification="Safety notice: the public must know the road is closed now.",
    )
    assert post.status == PostStatus.SCHEDULED
    assert post.targets.get().status == TargetStatus.WAITING
    assert post.targets.get().next_attempt_at <= timezone.now()
    event = AuditEvent.objects.get(action="post.break_glass")
    assert event.data["loud"] is True
    assert approver.pk in event.data["skipped_approvers"]
    assert Notification.objects.filter(user=approver, kind="post.break_glass").exists()
    assert request_of_any(post).break_glass


def request_of_any(post):
    return ApprovalRequest.objects.filter(post=post).latest("id")


def test_only_a_lead_of_the_team_may_break_glass(submitted, approver, outsider):
    post = submitted()
    for person in (approver, outsider):
        with pytest.raises(NotAllowed):
            services.break_glass(post=post, by=person, justification="x" * 40)
