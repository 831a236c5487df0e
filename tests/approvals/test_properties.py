"""Property: whatever happens — edits, submits, decisions, policy changes, cancels — a post is
approved only if every stage's rule was met by eligible people other than the author, all on
the post's current content_hash."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStage,
    Decision,
    RequestStatus,
    Rule,
    Verdict,
)
from cxhub.errors import ApplicationError
from publishing import services as publishing
from publishing.models import Post, PostStatus

from ..factories import SocialAccountFactory, UserFactory, grant

ACTIONS = st.lists(
    st.tuples(
        # weighted towards the paths that lead somewhere
        st.sampled_from(
            [
                "submit",
                "submit",
                "approve",
                "approve",
                "approve",
                "edit",
                "request_changes",
                "reject",
                "policy",
                "cancel",
            ]
        ),
        st.integers(min_value=0, max_value=4),  # who acts
        st.integers(min_value=0, max_value=3),  # a variation
    ),
    min_size=1,
    max_size=25,
)

APPROVED_STATES = {PostStatus.SCHEDULED, PostStatus.APPROVED, PostStatus.NEEDS_RESCHEDULE}


REACHED: set[str] = set()
REFUSED: set[str] = set()


def _check_invariant(post: Post) -> None:
    post.refresh_from_db()
    REACHED.add(post.status)
    if post.status not in APPROVED_STATES:
        return
    assert post.approved_content_hash == post.content_hash
    request = ApprovalRequest.objects.get(
        post=post, status=RequestStatus.APPROVED, content_hash=post.content_hash
    )
    decided_before: set[int] = set()
    for step in request.steps.order_by("order"):
        eligible = {u.pk for u in step.eligible.all()}
        assert post.author_id not in eligible
        approvals = {
            d.user_id
            for d in Decision.objects.filter(
                step=step, verdict=Verdict.APPROVE, content_hash=post.content_hash
            )
        }
        assert approvals <= eligible
        assert post.author_id not in approvals
        remaining = eligible - decided_before
        needed = step.required_approvals(len(remaining))
        assert len(approvals) >= needed >= 1
        decided_before |= approvals


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(initial_policy=st.integers(min_value=0, max_value=4), actions=ACTIONS)
# Explicit examples run every time: the default chain approved; a quorum of 2 and an `all` stage
# followed by a lead's stage, each walked to the end; an edit between two approvals.
@example(initial_policy=4, actions=[("submit", 0, 0), ("approve", 1, 0)])
@example(initial_policy=2, actions=[("submit", 0, 0), ("approve", 1, 0), ("approve", 2, 0)])
@example(
    initial_policy=1,
    actions=[
        ("submit", 0, 0),
        ("approve", 1, 0),
        ("approve", 2, 0),
        ("approve", 3, 0),
        ("approve", 4, 0),
    ],
)
@example(
    initial_policy=4,
    actions=[
        ("submit", 0, 0),
        ("edit", 0, 1),
        ("approve", 1, 0),
        ("submit", 0, 0),
        ("approve", 2, 0),
    ],
)
def test_approved_means_every_rule_met_on_the_current_content(
    initial_policy, actions, org_for_properties
):
    cast = org_for_properties
    with transaction.atomic():
        if initial_policy < 4:  # 4: no policy, the organisation default
            _change_policy(cast, initial_policy)
        post = publishing.post_create(
            by=cast["author"],
            team_id=cast["team"].pk,
            body="Version 0",
            targets=[publishing.TargetInput(social_account_id=cast["account"].pk)],
        )
        for action, who, variation in actions:
            person = cast["people"][who]
            post.refresh_from_db()
            try:
                with transaction.atomic():
                    if action == "edit":
                        publishing.post_update(
                            post=post, by=cast["author"], body=f"Version {variation} {who}"
                        )
                    elif action == "submit":
                        publishing.post_submit(post=post, by=cast["author"])
                    elif action == "cancel":
                        publishing.post_cancel(post=post, by=cast["author"])
                    elif action == "policy":
                        _change_policy(cast, variation)
                    else:
                        request = ApprovalRequest.objects.filter(post=post).order_by("-id").first()
                        if request is not None:
                            services.decide(
                                request=request, by=person, verdict=action, comment="because"
                            )
            except ApplicationError as exc:
                REFUSED.add(f"{action}: {exc.message}"[:120])  # refusals change nothing
            _check_invariant(post)
        transaction.set_rollback(True)


def test_the_property_reached_approved_posts():
    # Runs after the property (same module, file order): it must not be vacuous.
    assert "scheduled" in REACHED, (REACHED, sorted(REFUSED))
    assert "draft" in REACHED and "in_review" in REACHED


def _change_policy(cast, variation: int) -> None:
    policy, _ = ApprovalPolicy.objects.get_or_create(team=cast["team"], defaults={"name": "P"})
    policy.stages.all().delete()
    rule = [Rule.ANY, Rule.ALL, Rule.QUORUM, Rule.ANY][variation]
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Stage 1",
        decider_team=cast["team"],
        decider_role=Role.APPROVER,
        rule=rule,
        quorum=2 if rule == Rule.QUORUM else None,
    )
    if variation % 2:
        ApprovalStage.objects.create(
            policy=policy,
            order=2,
            name="Stage 2",
            decider_team=cast["root"],
            decider_role=Role.LEAD,
            rule=Rule.ANY,
        )


@pytest.fixture
def org_for_properties(org, author):
    people = [author]
    for index in range(3):
        person = UserFactory(username=f"appr{index}")
        grant(person, org["north"], Role.APPROVER)
        people.append(person)
    chief = UserFactory(username="chief")
    grant(chief, org["hq"], Role.LEAD)
    grant(chief, org["north"], Role.APPROVER)
    people.append(chief)
    return {
        "author": author,
        "people": people,
        "team": org["north"],
        "root": org["hq"],
        "account": SocialAccountFactory(team=org["north"], handle="@prop"),
    }
