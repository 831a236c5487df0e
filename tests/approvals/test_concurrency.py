"""Two approvers deciding at the same instant on an `any` step advance it exactly once."""

import threading

import pytest
from django.db import connection

from accounts.models import Role
from approvals import services
from approvals.models import ApprovalRequest, Decision, RequestStatus
from audit.models import AuditEvent
from audit.verify import verify_chain
from cxhub.errors import ApplicationError
from publishing import services as publishing
from publishing.models import Post, PostStatus

from ..factories import SocialAccountFactory, UserFactory, grant, make_team

pytestmark = pytest.mark.django_db(transaction=True)


def _race(request_id: int, people, verdict="approve"):
    barrier = threading.Barrier(len(people))
    outcomes: dict[str, str] = {}

    def decide(person):
        try:
            request = ApprovalRequest.objects.get(pk=request_id)
            barrier.wait(timeout=10)
            services.decide(request=request, by=person, verdict=verdict, comment="ok")
            outcomes[person.username] = "decided"
        except ApplicationError as exc:
            outcomes[person.username] = f"refused: {exc.message}"
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("rounds", range(3))
def test_simultaneous_approvals_on_an_any_step_advance_it_once(rounds):
    region = make_team(f"Region {rounds}")
    author = UserFactory(username=f"writer{rounds}")
    grant(author, region, Role.DRAFTER)
    people = [UserFactory(username=f"approver{rounds}-{i}") for i in range(4)]
    for person in people:
        grant(person, region, Role.APPROVER)
    account = SocialAccountFactory(team=region, handle=f"@race{rounds}")
    post = publishing.post_create(
        by=author,
        team_id=region.pk,
        body="Race",
        targets=[publishing.TargetInput(social_account_id=account.pk)],
    )
    post = publishing.post_submit(post=post, by=author)
    request_id = ApprovalRequest.objects.get(post=post).pk

    outcomes = _race(request_id, people)

    assert list(outcomes.values()).count("decided") == 1, outcomes
    assert Decision.objects.filter(request_id=request_id).count() == 1
    assert ApprovalRequest.objects.get(pk=request_id).status == RequestStatus.APPROVED
    assert Post.objects.get(pk=post.pk).status == PostStatus.SCHEDULED
    assert AuditEvent.objects.filter(action="post.approved").count() == 1
    assert verify_chain().ok
