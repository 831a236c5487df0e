"""Post services: create, edit (versions), submit, cancel, duplicate — each audited."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from cxhub.errors import ApplicationError, InvalidTransition, NotAllowed
from networks.models import SocialAccount
from networks.services import social_account_grant_drafting
from publishing import services
from publishing.models import PostStatus, PostVersion, TargetStatus

from ..factories import SocialAccountFactory, UserFactory, grant


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_create_makes_version_one_with_a_hash_and_an_event(make_post, author):
    post = make_post()
    assert post.status == PostStatus.DRAFT
    assert post.version == 1
    assert len(post.content_hash) == 64
    assert PostVersion.objects.get(post=post).content_hash == post.content_hash
    (event,) = events("post.created")
    assert event.actor == author
    assert event.data["content_hash"] == post.content_hash


def test_create_refuses_a_team_the_author_cannot_draft_for(make_post, org):
    with pytest.raises(ApplicationError) as caught:
        make_post(team_id=org["south"].pk)
    assert "team" in caught.value.extra["fields"]


def test_create_refuses_another_regions_account_naming_the_target(make_post, south_account):
    with pytest.raises(ApplicationError) as caught:
        make_post(targets=[services.TargetInput(social_account_id=south_account.pk)])
    assert "targets[0].social_account" in caught.value.extra["fields"]
    assert not AuditEvent.objects.filter(action="post.created").exists()


def test_create_needs_a_target_and_some_text(make_post, north_mastodon):
    with pytest.raises(ApplicationError) as caught:
        make_post(targets=[])
    assert "targets" in caught.value.extra["fields"]
    with pytest.raises(ApplicationError) as caught:
        make_post(body="  ")
    assert "body" in caught.value.extra["fields"]
    # a variant for every account is enough
    post = make_post(
        body="",
        targets=[services.TargetInput(social_account_id=north_mastodon.pk, body="Variant")],
    )
    assert post.targets.get().text == "Variant"


def test_create_refuses_bad_link_tags_and_timezone(make_post):
    for kwargs, field in (
        ({"link": "javascript:alert(1)"}, "link"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"timezone_name": "Mars/Olympus"}, "timezone"),
        ({"scheduled_at": datetime(2026, 1, 1, 9)}, "scheduled_at"),
    ):
        with pytest.raises(ApplicationError) as caught:
            make_post(**kwargs)
        assert field in caught.value.extra["fields"], kwargs


def test_a_granted_account_can_be_targeted_by_a_drafter_of_another_team(org, north_mastodon):

    desk = UserFactory(username="desk")
    grant(desk, org["south"], Role.DRAFTER)
    social_account_grant_drafting(account=north_mastodon, user=desk, by=None)
    post = services.post_create(
        by=desk,
        team_id=org["south"].pk,
        body="Hello north",
        targets=[services.TargetInput(social_account_id=north_mastodon.pk)],
    )
    assert post.targets.get().social_account == north_mastodon


def test_editing_content_makes_a_new_version_and_time_does_not(make_post, author):
    post = make_post()
    first_hash = post.content_hash
    post = services.post_update(post=post, by=author, body="Launch window opens at noon.")
    assert post.version == 2
    assert post.content_hash != first_hash
    assert PostVersion.objects.filter(post=post).count() == 2

    later = timezone.now() + timedelta(days=2)
    post = services.post_update(post=post, by=author, scheduled_at=later, tags=["launch"])
    assert post.version == 2
    assert events("post.rescheduled")[0].data["to"]


def test_an_edit_that_changes_nothing_records_nothing(make_post, author):
    post = make_post()
    services.post_update(post=post, by=author, body=post.body)
    assert events("post.edited") == []


def test_editing_in_review_sends_the_post_back_to_draft(make_post, author):
    post = services.post_submit(post=make_post(), by=author)
    assert post.status == PostStatus.IN_REVIEW
    post = services.post_update(post=post, by=author, body="Changed while in review")
    assert post.status == PostStatus.DRAFT
    assert post.version == 2
    (event,) = events("post.edited")
    assert event.data["status_before"] == PostStatus.IN_REVIEW


def test_a_variant_or_media_change_is_a_content_change(make_post, author, north_mastodon):
    post = make_post()
    post = services.post_update(
        post=post,
        by=author,
        targets=[services.TargetInput(social_account_id=north_mastodon.pk, body="Variant")],
    )
    assert post.version == 2


def test_only_the_author_or_a_drafter_of_the_team_may_edit(make_post, outsider, approver, org):
    post = make_post()
    for person in (outsider, approver):
        with pytest.raises(NotAllowed):
            services.post_update(post=post, by=person, body="hijack")
    colleague = UserFactory(username="colleague")
    grant(colleague, org["hq"], Role.DRAFTER)
    assert services.post_update(post=post, by=colleague, body="fixed a typo").version == 2


def test_a_colleague_edit_keeps_an_account_only_the_author_could_target(
    make_post, org, north_mastodon
):
    other = SocialAccountFactory(team=org["north"], handle="@north2")
    post = make_post(
        targets=[
            services.TargetInput(social_account_id=north_mastodon.pk),
            services.TargetInput(social_account_id=other.pk),
        ]
    )
    colleague = UserFactory(username="colleague")
    grant(colleague, org["north"], Role.DRAFTER)
    post = services.post_update(
        post=post,
        by=colleague,
        targets=[services.TargetInput(social_account_id=north_mastodon.pk, body="only one")],
    )
    assert list(post.targets.values_list("social_account_id", flat=True)) == [north_mastodon.pk]


def test_submit_moves_a_draft_to_review_and_records_the_hash(make_post, author):
    post = services.post_submit(post=make_post(), by=author)
    assert post.status == PostStatus.IN_REVIEW
    assert post.submitted_at is not None
    (event,) = events("post.submitted")
    assert event.data["content_hash"] == post.content_hash


def test_submit_twice_is_a_wrong_state(make_post, author):
    post = services.post_submit(post=make_post(), by=author)
    with pytest.raises(InvalidTransition):
        services.post_submit(post=post, by=author)


def test_submit_is_blocked_by_preflight_errors(make_post, author, north_mastodon):
    north_mastodon.status = SocialAccount.Status.NEEDS_RECONNECT
    north_mastodon.save()
    post = make_post(body="x" * 600)
    with pytest.raises(ApplicationError) as caught:
        services.post_submit(post=post, by=author)
    codes = {p["code"] for p in caught.value.extra["problems"]}
    assert {"account_disconnected", "text_too_long"} <= codes
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT
    assert events("post.submitted") == []


def test_submit_is_blocked_by_a_past_schedule(make_post, author):
    post = make_post(scheduled_at=datetime(2020, 1, 1, 9, tzinfo=UTC))
    with pytest.raises(ApplicationError) as caught:
        services.post_submit(post=post, by=author)
    assert "schedule_in_past" in {p["code"] for p in caught.value.extra["problems"]}


def test_cancel_before_publishing_and_not_after(make_post, author, lead):
    post = make_post()
    post = services.post_cancel(post=post, by=lead, reason="wrong day")
    assert post.status == PostStatus.CANCELLED
    assert set(post.targets.values_list("status", flat=True)) == {TargetStatus.CANCELLED}
    with pytest.raises(InvalidTransition):
        services.post_cancel(post=post, by=author)
    with pytest.raises(InvalidTransition):
        services.post_update(post=post, by=author, body="too late")


def test_an_outsider_cannot_cancel(make_post, outsider):
    with pytest.raises(NotAllowed):
        services.post_cancel(post=make_post(), by=outsider)


def test_duplicate_makes_a_fresh_draft_without_a_time(make_post, author):
    original = make_post(scheduled_at=timezone.now() + timedelta(days=1), tags=["a"])
    services.post_cancel(post=original, by=author)
    copy = services.post_duplicate(post=original, by=author)
    assert copy.pk != original.pk
    assert copy.status == PostStatus.DRAFT
    assert copy.scheduled_at is None
    assert copy.body == original.body
    assert copy.tags == ["a"]
    assert copy.content_hash == original.content_hash
    assert copy.duplicated_from == original


# Approval hand-over (called by the approvals app) ------------------------------------------------
def _in_review(make_post, author, **kwargs):
    return services.post_submit(post=make_post(**kwargs), by=author)


def test_approval_schedules_the_targets_for_their_time(make_post, author):
    when = timezone.now() + timedelta(hours=3)
    post = _in_review(make_post, author, scheduled_at=when)
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None)
    assert post.status == PostStatus.SCHEDULED
    assert post.approved_content_hash == post.content_hash
    target = post.targets.get()
    assert target.status == TargetStatus.WAITING
    assert target.next_attempt_at == when


def test_approval_without_a_time_publishes_as_soon_as_possible(make_post, author):
    post = _in_review(make_post, author)
    now = timezone.now()
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None, now=now)
    assert post.targets.get().next_attempt_at == now


def test_approval_of_an_old_hash_is_refused(make_post, author):
    post = _in_review(make_post, author)
    with pytest.raises(InvalidTransition):
        services.post_approved(post=post, content_hash="0" * 64, by=None)
    post.refresh_from_db()
    assert post.status == PostStatus.IN_REVIEW


def test_approved_a_little_late_goes_out_at_once(make_post, author):
    when = timezone.now() + timedelta(minutes=5)
    post = _in_review(make_post, author, scheduled_at=when)
    later = when + timedelta(minutes=10)  # inside the default 15-minute grace
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None, now=later)
    assert post.status == PostStatus.SCHEDULED
    assert post.targets.get().next_attempt_at == later


def test_approved_too_late_waits_for_a_new_time_without_new_approval(make_post, author):
    when = timezone.now() + timedelta(minutes=5)
    post = _in_review(make_post, author, scheduled_at=when)
    later = when + timedelta(hours=2)
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None, now=later)
    assert post.status == PostStatus.NEEDS_RESCHEDULE
    assert post.targets.get().status == TargetStatus.PENDING
    assert events("post.approved_too_late")

    new_time = timezone.now() + timedelta(days=1)
    post = services.post_update(post=post, by=author, scheduled_at=new_time)
    assert post.status == PostStatus.SCHEDULED
    assert post.approved_content_hash == post.content_hash
    assert post.targets.get().next_attempt_at == new_time


def test_editing_an_approved_post_drops_its_approval(make_post, author):
    post = _in_review(make_post, author)
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None)
    post = services.post_update(post=post, by=author, body="New words")
    assert post.status == PostStatus.DRAFT
    assert post.approved_content_hash == ""
    assert post.targets.get().status == TargetStatus.PENDING


def test_a_past_time_on_a_scheduled_post_is_refused(make_post, author):
    post = _in_review(make_post, author, scheduled_at=timezone.now() + timedelta(hours=1))
    post = services.post_approved(post=post, content_hash=post.content_hash, by=None)
    with pytest.raises(ApplicationError) as caught:
        services.post_update(post=post, by=author, scheduled_at=timezone.now() - timedelta(hours=1))
    assert "scheduled_at" in caught.value.extra["fields"]
