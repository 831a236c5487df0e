"""A two-stage chain for North: a North approver, then an HQ approver."""

import pytest

from accounts.models import Role
from approvals.models import ApprovalPolicy, ApprovalStage, Rule
from publishing import services

from ..factories import SocialAccountFactory, UserFactory, grant


@pytest.fixture
def hq_approver(org):
    user = UserFactory(username="hana")
    grant(user, org["hq"], Role.APPROVER)
    return user


@pytest.fixture
def north_account(org):
    return SocialAccountFactory(team=org["north"], handle="@north")


@pytest.fixture
def two_stage_policy(org, approver, hq_approver):
    policy = ApprovalPolicy.objects.create(name="North chain", team=org["north"])
    ApprovalStage.objects.create(
        policy=policy,
        order=1,
        name="Regional check",
        decider_team=org["north"],
        decider_role=Role.APPROVER,
        rule=Rule.ANY,
    )
    stage = ApprovalStage.objects.create(
        policy=policy, order=2, name="HQ sign-off", rule=Rule.ALL, sla_hours=4
    )
    stage.named_users.set([hq_approver])
    return policy


@pytest.fixture
def submitted(org, author, north_account):
    def make(body="Launch window opens at dawn.", **kwargs):
        post = services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=body,
            targets=[services.TargetInput(social_account_id=north_account.pk)],
            **kwargs,
        )
        return services.post_submit(post=post, by=author)

    return make
