"""The approval pages through Django's test client: the inbox (scope, overdue, constant queries),
the review page (previews, media, chain, the diff against what this approver last saw), deciding
with and without JavaScript, every refusal (a 4xx with the service's message, nothing changed),
the post page's approval section with break-glass, and the notifications page."""

import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape
from PIL import Image

from accounts.models import Notification, Role
from approvals.models import ApprovalRequest, ApprovalStep, Decision, RequestStatus
from approvals.services import decide
from networks.channels import get_channel
from networks.models import Channel
from publishing import media_services
from publishing import services as publishing
from publishing.models import Post, PostStatus
from publishing.preflight import published_text

from ..factories import SocialAccountFactory, UserFactory, grant

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    return text_of_html(html(response))


def text_of_html(page: str) -> str:
    """The page's words, spaces squeezed: inline tags dropped, the others read as a space."""
    page = re.sub(r"</?(?:a|strong|span|time|em|b)\b[^>]*>", "", page)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def signed_in(client, user):
    client.force_login(user)
    return client


def open_request(post) -> ApprovalRequest:
    return ApprovalRequest.objects.get(post=post, status=RequestStatus.OPEN)


def png_file(name="photo.png", size=(64, 48)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = name
    return buffer


@pytest.fixture
def dora(org):
    """A second North approver."""
    user = UserFactory(username="dora")
    grant(user, org["north"], Role.APPROVER)
    return user


@pytest.fixture
def chain(two_stage_policy, submitted):
    """A post in review under the two-stage chain (North approver, then hana at HQ)."""
    return submitted


# The inbox --------------------------------------------------------------------------------------
def test_the_inbox_lists_the_waiting_step_for_the_approver_and_nothing_for_others(
    client, chain, approver, author, outsider, lead
):
    post = chain()
    approval = open_request(post)

    response = signed_in(client, approver).get("/approvals/")

    assert response.status_code == 200
    page = text_of(response)
    assert f'href="/approvals/{approval.pk}/"' in html(response)
    assert f"Review post {post.pk}, version 1" in page
    assert "Stage 1 of 2: Regional check" in page
    assert "North" in page and "alice" in page
    assert "Launch window opens at dawn." in page
    assert "Approvals (1 waiting)" in page
    assert "Overdue" not in page
    # The author, an outsider and a lead (who decides nothing) have nothing waiting.
    for person in (author, outsider, lead):
        response = signed_in(client, person).get("/approvals/")
        assert response.status_code == 200
        assert "Nothing waits for your decision." in html(response)
        assert f"/approvals/{approval.pk}/" not in html(response)


def test_the_inbox_marks_overdue_steps_in_words(client, chain, approver):
    chain()
    ApprovalStep.objects.filter(status="active").update(due_at=timezone.now() - timedelta(hours=1))

    response = signed_in(client, approver).get("/approvals/")

    assert re.search(r'<strong class="badge badge-overdue">Overdue</strong>', html(response))
    assert "1 overdue" in text_of(response)


def test_the_inbox_costs_the_same_queries_for_3_and_40_waiting_steps(
    client, org, author, approver, north_account, django_assert_num_queries
):
    def submit(count):
        for index in range(count):
            post = publishing.post_create(
                by=author,
                team_id=org["north"].pk,
                body=f"Post {index}",
                targets=[publishing.TargetInput(social_account_id=north_account.pk)],
            )
            publishing.post_submit(post=post, by=author)

    signed_in(client, approver)
    submit(3)
    client.get("/approvals/")  # the session is loaded once and cached
    with CaptureQueriesContext(connection) as baseline:
        response = client.get("/approvals/")
    assert len(re.findall(r'href="/approvals/\d+/"', html(response))) == 3

    submit(37)
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get("/approvals/")
    assert len(re.findall(r'href="/approvals/\d+/"', html(response))) == 40


# The review page -------------------------------------------------------------------------------
def test_the_review_page_shows_what_each_network_will_show_the_media_and_the_chain(
    client, org, author, approver, two_stage_policy
):
    mastodon = SocialAccountFactory(team=org["north"], channel=Channel.MASTODON, handle="@north")
    bluesky = SocialAccountFactory(
        team=org["north"],
        channel=Channel.BLUESKY,
        handle="north.bsky.social",
        base_url="https://bsky.social",
    )
    media = media_services.media_upload(
        by=author, file=png_file(), alt_text="A red lighthouse at dawn.", team_id=org["north"].pk
    )
    post = publishing.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Lighthouse tours <b>resume</b> on Saturday.",
        link="https://agency.example/tours",
        targets=[
            publishing.TargetInput(social_account_id=mastodon.pk),
            publishing.TargetInput(social_account_id=bluesky.pk, body="Tours are back!"),
        ],
        media_ids=[media.pk],
    )
    publishing.post_submit(post=post, by=author)
    approval = open_request(post)

    response = signed_in(client, approver).get(f"/approvals/{approval.pk}/")

    assert response.status_code == 200
    page = html(response)
    for account, variant in ((mastodon, ""), (bluesky, "Tours are back!")):
        channel = get_channel(account.channel)
        shown = channel.render(published_text(post, account.channel, variant))
        assert f"{account.handle} on {channel.label}</h3>" in page
        # Escaped once by the template, exactly as the network will receive it.
        assert f'<p class="preview-text">{escape(shown)}</p>' in page
    assert f'src="/media-files/{media.pk}/thumbnail"' in page
    assert "Alt text: A red lighthouse at dawn." in page
    words = text_of(response)
    assert "Stage 1 of 2: Regional check — waiting for bob" in words
    assert "Stage 2 of 2: HQ sign-off" in words
    assert "all of them: hana" in words
    assert "This is the first version" in words
    assert 'name="verdict"' in page and "<legend>Your verdict on version 1</legend>" in page
    assert "cxhub/review.js" in page


def test_the_review_page_is_404_for_someone_who_cannot_see_the_request(client, chain, outsider):
    approval = open_request(chain())
    signed_in(client, outsider)

    assert client.get(f"/approvals/{approval.pk}/").status_code == 404
    assert client.post(f"/approvals/{approval.pk}/", {"verdict": "approve"}).status_code == 404
    assert not Decision.objects.exists()


def test_the_reviewer_sees_the_diff_against_the_version_they_last_saw(
    client, chain, author, approver, hq_approver
):
    # Given bob asked for changes on version 1,
    post = chain(body="Road closed on Monday.\nUse the north bridge.")
    first = open_request(post)
    decide(request=first, by=approver, verdict="request_changes", comment="Say which road.")
    # the author edited (version 2), resubmitted, then edited again during review (version 3)
    post = publishing.post_update(
        post=post, by=author, body="Elm Road closed on Monday.\nUse the north bridge."
    )
    post = publishing.post_submit(post=post, by=author)
    post = publishing.post_update(
        post=post, by=author, body="Elm Road closed on Monday.\nUse the east bridge."
    )
    post = publishing.post_submit(post=post, by=author)
    assert post.version == 3
    approval = open_request(post)

    # when bob reviews version 3, he sees what changed since version 1, the one he saw;
    response = signed_in(client, approver).get(f"/approvals/{approval.pk}/")
    words = text_of(response)
    assert "Changes since version 1, which you last reviewed" in words
    assert "Removed: Road closed on Monday." in words
    assert "Added: Elm Road closed on Monday." in words
    assert "Removed: Use the north bridge." in words
    assert "Added: Use the east bridge." in words
    assert '<li class="diff-added">' in html(response)
    # and his earlier comment is in the chain of that round, on the post page.
    post_page = text_of(client.get(f"/posts/{post.pk}/"))
    assert "Say which road." in post_page

    # hana never decided: she sees the change from the version before (2 → 3).
    response = signed_in(client, hq_approver).get(f"/approvals/{approval.pk}/")
    words = text_of(response)
    assert "Changes since version 2, the previous version" in words
    assert "Unchanged: Elm Road closed on Monday." in words
    assert "Removed: Use the north bridge." in words


def test_the_diff_covers_per_account_texts_links_and_alt_texts(
    client, org, chain, author, approver, north_account
):
    post = chain()
    decide(request=open_request(post), by=approver, verdict="request_changes", comment="Link?")
    media = media_services.media_upload(
        by=author, file=png_file(), alt_text="Dawn over the bay.", team_id=org["north"].pk
    )
    post = publishing.post_update(
        post=post,
        by=author,
        link="https://agency.example/launch",
        targets=[publishing.TargetInput(social_account_id=north_account.pk, body="Launch soon!")],
        media_ids=[media.pk],
    )
    post = publishing.post_submit(post=post, by=author)

    response = signed_in(client, approver).get(f"/approvals/{open_request(post).pk}/")

    words = text_of(response)
    assert "Own text for @north" in words
    assert "Added: Launch soon!" in words
    assert "Added: https://agency.example/launch" in words
    assert "alt text: Dawn over the bay." in words
    assert "Main text" not in words  # unchanged sections are left out


# Deciding --------------------------------------------------------------------------------------
def test_an_approval_without_javascript_redirects_back_with_a_message(client, chain, approver):
    post = chain()
    approval = open_request(post)
    signed_in(client, approver)

    response = client.post(f"/approvals/{approval.pk}/", {"verdict": "approve", "comment": ""})

    assert response.status_code == 302
    assert response["Location"] == f"/approvals/{approval.pk}/"
    page = text_of(client.get(response["Location"]))
    assert "You approved version 1." in page
    assert "Stage 2 of 2: HQ sign-off — waiting for hana" in page
    assert "You decided “Approve” on version 1" in page
    assert Decision.objects.get().verdict == "approve"


def test_a_decision_sent_by_fetch_is_answered_with_the_fragment(client, chain, approver):
    post = chain()
    approval = open_request(post)
    signed_in(client, approver)

    response = client.post(f"/approvals/{approval.pk}/", {"verdict": "approve"}, **FETCH)

    assert response.status_code == 200
    page = html(response)
    assert "<html" not in page and "<nav" not in page
    assert re.search(r'<p id="review-result">You approved version 1\. Stage 2 of 2', page)
    assert 'id="decision-panel"' in page and 'id="approval-chain"' in page
    assert "You decided “Approve”" in page
    assert 'id="decide-form"' not in page


def test_a_refusal_sent_by_fetch_comes_back_in_the_fragment_with_its_status(
    client, chain, approver
):
    approval = open_request(chain())
    signed_in(client, approver)

    response = client.post(
        f"/approvals/{approval.pk}/", {"verdict": "reject", "comment": "  "}, **FETCH
    )

    assert response.status_code == 400
    page = html(response)
    assert re.search(r'<p id="review-result">Say what must change', page)
    assert 'aria-describedby="decide-comment-hint decide-comment-error"' in page
    assert 'id="decide-comment-error">Required when requesting changes or rejecting.' in page
    assert 'value="reject" checked' in page
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("self_approval", 403, "No one decides on their own post."),
        ("double_decision", 409, "You have already decided on this version of the post."),
        ("stale_version", 409, "This version was changed after you opened it"),
        ("not_eligible", 403, "You are not one of the people who decide “Regional check”."),
        ("wrong_state", 409, "This approval is already changes requested."),
        ("no_comment", 400, "Say what must change (or why it is rejected)"),
        ("no_verdict", 400, "Choose approve, request changes or reject."),
    ],
)
def test_each_refusal_shows_its_message_with_its_status_and_changes_nothing(
    client, chain, author, approver, dora, lead, case, status, message
):
    post = chain()
    approval = open_request(post)
    who, payload = approver, {"verdict": "approve", "comment": ""}
    if case == "self_approval":
        who = author
    elif case == "double_decision":
        decide(request=approval, by=approver, verdict="approve")
    elif case == "stale_version":
        publishing.post_update(post=post, by=author, body="Edited while in review.")
    elif case == "not_eligible":
        who = lead
    elif case == "wrong_state":
        decide(request=approval, by=dora, verdict="request_changes", comment="Too long.")
    elif case == "no_comment":
        payload = {"verdict": "request_changes", "comment": ""}
    elif case == "no_verdict":
        payload = {"comment": "Hmm"}
    decisions = list(Decision.objects.values_list("pk", "verdict"))
    approval.refresh_from_db()
    post.refresh_from_db()
    before = (approval.status, post.status, post.version)

    response = signed_in(client, who).post(f"/approvals/{approval.pk}/", payload)

    assert response.status_code == status
    assert message in text_of(response)
    assert 'role="alert" id="decide-errors"' in html(response)
    approval.refresh_from_db()
    post.refresh_from_db()
    assert (approval.status, post.status, post.version) == before
    assert list(Decision.objects.values_list("pk", "verdict")) == decisions


# The post page ---------------------------------------------------------------------------------
def test_the_post_page_shows_where_the_post_stands_in_its_chain(
    client, chain, author, approver, hq_approver
):
    post = chain()
    decide(request=open_request(post), by=approver, verdict="approve")

    response = signed_in(client, author).get(f"/posts/{post.pk}/")

    words = text_of(response)
    assert '<h2 id="approval-heading">Approval</h2>' in html(response)
    assert "Stage 2 of 2: HQ sign-off — waiting for hana" in words
    assert "bob: Approve on version 1" in words
    assert "Earlier approval rounds" not in words
    assert "Break glass" not in words  # alice is not a lead

    decide(request=open_request(post), by=hq_approver, verdict="approve")
    words = text_of(client.get(f"/posts/{post.pk}/"))
    assert "Approved at every stage (2 of 2) on version 1." in words


def test_the_author_sees_the_requested_changes_and_past_rounds_fold_away(
    client, chain, author, approver
):
    post = chain()
    decide(
        request=open_request(post),
        by=approver,
        verdict="request_changes",
        comment="Add the opening hours.",
    )
    signed_in(client, author)

    words = text_of(client.get(f"/posts/{post.pk}/"))
    assert (
        "Changes requested at stage 1 of 2 (Regional check) by bob: “Add the opening hours.”"
        in words
    )

    post = publishing.post_update(post=post, by=author, body="Open 9:00 to 17:00.")
    publishing.post_submit(post=post, by=author)
    page = html(client.get(f"/posts/{post.pk}/"))
    assert re.search(
        r"<details class=\"past-rounds\">\s*<summary>Earlier approval rounds \(1\)", page
    )
    assert "Version 2, submitted" in text_of_html(page)


def test_a_lead_releases_a_post_by_break_glass_from_its_page(client, chain, lead, approver):
    post = chain(scheduled_at=timezone.now() + timedelta(days=2))
    signed_in(client, lead)
    page = html(client.get(f"/posts/{post.pk}/"))
    assert f'action="/posts/{post.pk}/break-glass/"' in page
    assert 'aria-describedby="break-glass-rule"' in page

    response = client.post(f"/posts/{post.pk}/break-glass/", {"justification": "Too short"})
    assert response.status_code == 400
    page = html(response)
    assert 'id="break-glass-justification-error">At least 20 characters.' in page
    assert '<details class="break-glass" open>' in page
    post.refresh_from_db()
    assert post.status == PostStatus.IN_REVIEW

    justification = "The road is closed and people must know now."
    response = client.post(f"/posts/{post.pk}/break-glass/", {"justification": justification})
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.status == PostStatus.SCHEDULED
    words = text_of(client.get(f"/posts/{post.pk}/"))
    assert (
        f"Released by break-glass, without the remaining approvers. Justification: {justification}"
        in words
    )
    assert Notification.objects.filter(user=approver, kind="post.break_glass").exists()


def test_break_glass_is_refused_with_a_403_page_for_someone_who_is_not_a_lead(
    client, chain, approver
):
    post = chain()
    signed_in(client, approver)
    assert "break-glass" not in html(client.get(f"/posts/{post.pk}/"))

    response = client.post(
        f"/posts/{post.pk}/break-glass/",
        {"justification": "The road is closed and people must know now."},
    )

    assert response.status_code == 403
    assert "Only a communications lead of the post" in text_of(response)
    assert Post.objects.get(pk=post.pk).status == PostStatus.IN_REVIEW


# Notifications ---------------------------------------------------------------------------------
def test_the_notifications_page_lists_mine_newest_first_and_marks_all_read(
    client, chain, approver, author
):
    post = chain()
    decide(request=open_request(post), by=approver, verdict="request_changes", comment="Shorter.")
    signed_in(client, author)

    response = client.get("/notifications/")

    assert response.status_code == 200
    words = text_of(response)
    assert "Notifications (1 unread)" in words
    assert f"Unread Changes requested on post #{post.pk}" in words
    assert f'<a href="/posts/{post.pk}/">Changes requested on post #{post.pk}</a>' in html(response)
    assert "bob (Regional check): Shorter." in words
    assert "Approval needed" not in words  # bob's, not alice's

    response = client.post("/notifications/")
    assert response.status_code == 302
    words = text_of(client.get(response["Location"]))
    assert "Marked 1 notification read." in words
    assert "Notifications (0 unread)" in words
    assert "Unread" not in words
    assert not Notification.objects.filter(user=author, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=approver, read_at__isnull=True).exists()


def test_a_notification_never_links_outside_the_site(client, author):
    Notification.objects.create(
        user=author, kind="x", title="Odd link", url="https://evil.example/", email_status="none"
    )
    page = html(signed_in(client, author).get("/notifications/"))
    assert "Odd link" in page
    assert "evil.example" not in page
