"""Reconcile that cannot tell whether a post went out (AmbiguousMatch): the target is held for a
person, never sent again blind; the author and leads are told; the post page and the API show
the candidates, and a person's decision settles the target."""

from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import Notification
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from networks.channels.errors import AmbiguousMatch, Candidate, UnknownOutcome
from publishing.dispatch import claim, common, send, start, sweep
from publishing.models import Post, PostStatus, PostTarget, PublishAttempt, TargetStatus

from ..integration.dispatch_support import approved_post, webhook_account
from .test_dispatch import FakeChannel

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Outcome = PublishAttempt.Outcome


@pytest.fixture
def fake(monkeypatch):
    channel = FakeChannel()
    for module in (start, send):  # the text is rendered at start, sent at send
        monkeypatch.setattr(module, "get_channel", lambda name: channel)
    return channel


@pytest.fixture
def post(author, org):
    hook = webhook_account(org["north"], "https://www.agency.example/hooks/a", handle="site-a")
    with time_machine.travel(T0, tick=False):
        return approved_post(author=author, team=org["north"], accounts=[hook])


def _two_candidates():
    return AmbiguousMatch(
        "Two posts could be this one.",
        candidates=[
            Candidate("111", external_url="https://site.example/111", text="Doors open", why="x"),
            Candidate("222", external_url="https://site.example/222", text="Doors open", why="y"),
        ],
    )


def _held_for_a_person(post, fake) -> PostTarget:
    """An unknown outcome, then a look that finds two posts that may be ours."""
    with time_machine.travel(T0, tick=False):
        claim.dispatch_due()
        fake.publish_script = [UnknownOutcome("read timeout")]
        send.publish_target(target_id=post.targets.get().pk, worker="test:1")
    target = post.targets.get()
    fake.reconcile_script = [_two_candidates()]
    with time_machine.travel(target.next_attempt_at, tick=False):
        claim.dispatch_due()
        assert send.publish_target(target_id=target.pk, worker="test:1") == Outcome.AMBIGUOUS
    target.refresh_from_db()
    return target


def test_an_ambiguous_look_holds_the_target_for_a_person_and_never_sends_again(post, fake, lead):
    target = _held_for_a_person(post, fake)

    assert (target.status, target.held_reason) == (TargetStatus.HELD, common.HOLD_DECISION)
    assert [c["external_id"] for c in target.reconcile_candidates] == ["111", "222"]
    assert [call[0] for call in fake.calls] == ["publish", "reconcile"]
    # The dispatcher leaves it alone, however long it waits
    with time_machine.travel(T0.replace(hour=23), tick=False):
        assert claim.dispatch_due().queued == []
    assert [call[0] for call in fake.calls] == ["publish", "reconcile"]
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHING
    # The author and the leads are told; the audit trail has the candidates
    told = set(Notification.objects.filter(kind="publish.alert").values_list("user_id", flat=True))
    assert {post.author_id, lead.pk} <= told
    held = AuditEvent.objects.filter(action="target.held").latest("seq")
    assert held.data["reason"] == "decision"
    assert len(held.data["candidates"]) == 2


def test_a_person_picks_the_candidate_that_is_ours(post, fake, lead):
    target = _held_for_a_person(post, fake)

    sweep.target_decide(target=target, by=lead, decision="published", external_id="222")

    target.refresh_from_db()
    assert (target.status, target.external_id) == (TargetStatus.PUBLISHED, "222")
    assert target.external_url == "https://site.example/222"
    assert target.reconcile_candidates == []
    assert Post.objects.get(pk=post.pk).status == PostStatus.PUBLISHED
    decided = AuditEvent.objects.get(action="target.decided")
    assert (decided.actor_id, decided.data["decision"]) == (lead.pk, "published")


def test_none_is_ours_sends_it_again_without_looking_first(post, fake, author):
    target = _held_for_a_person(post, fake)

    sweep.target_decide(target=target, by=author, decision="send_again")

    target.refresh_from_db()
    assert target.status == TargetStatus.WAITING
    assert not target.needs_reconcile
    with time_machine.travel(target.next_attempt_at, tick=False):
        claim.dispatch_due()
        assert send.publish_target(target_id=target.pk, worker="t") == Outcome.PUBLISHED
    assert [call[0] for call in fake.calls] == ["publish", "reconcile", "publish"]


def test_giving_up_fails_the_target_and_settles_the_post(post, fake, lead):
    target = _held_for_a_person(post, fake)

    sweep.target_decide(target=target, by=lead, decision="give_up")

    assert PostTarget.objects.get(pk=target.pk).status == TargetStatus.FAILED
    assert Post.objects.get(pk=post.pk).status == PostStatus.FAILED


def test_only_the_author_or_a_lead_decides_and_only_among_the_candidates(
    post, fake, approver, lead
):
    target = _held_for_a_person(post, fake)

    with pytest.raises(NotAllowed):
        sweep.target_decide(target=target, by=approver, decision="give_up")
    with pytest.raises(ApplicationError) as refused:
        sweep.target_decide(target=target, by=lead, decision="published", external_id="999")
    assert "external_id" in refused.value.extra["fields"]
    assert PostTarget.objects.get(pk=target.pk).held_reason == common.HOLD_DECISION


def test_a_target_not_waiting_for_a_decision_cannot_be_decided(post, lead):
    target = post.targets.get()
    with pytest.raises(InvalidTransition):
        sweep.target_decide(target=target, by=lead, decision="give_up")


def test_the_api_shows_the_candidates_and_takes_the_decision(post, fake, lead, client):
    target = _held_for_a_person(post, fake)
    client.force_login(lead)

    read = client.get(f"/api/v1/posts/{post.pk}/").json()
    shown = read["targets"][0]
    assert shown["held_reason"] == "decision"
    assert [c["external_id"] for c in shown["reconcile_candidates"]] == ["111", "222"]

    bad = client.post(
        f"/api/v1/posts/{post.pk}/targets/{target.pk}/decide/",
        {"decision": "maybe"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "decision" in str(bad.json())

    done = client.post(
        f"/api/v1/posts/{post.pk}/targets/{target.pk}/decide/",
        {"decision": "published", "external_id": "111"},
        content_type="application/json",
    )
    assert done.status_code == 200
    assert done.json()["targets"][0]["external_id"] == "111"


def test_the_post_page_shows_both_candidates_and_decides(post, fake, author, client):
    target = _held_for_a_person(post, fake)
    client.force_login(author)

    page = client.get(f"/posts/{post.pk}/").content.decode()
    assert "Did it go out?" in page
    assert "https://site.example/111" in page and "https://site.example/222" in page

    response = client.post(
        f"/posts/{post.pk}/targets/{target.pk}/decide/",
        {"decision": "published", "external_id": "111"},
    )
    assert response.status_code == 302
    assert PostTarget.objects.get(pk=target.pk).external_id == "111"


def test_someone_outside_the_team_gets_404(post, fake, outsider, client):
    target = _held_for_a_person(post, fake)
    client.force_login(outsider)
    response = client.post(
        f"/api/v1/posts/{post.pk}/targets/{target.pk}/decide/",
        {"decision": "give_up"},
        content_type="application/json",
    )
    assert response.status_code == 404
