"""The publishing pages through Django's test client: compose and edit, the post page, the posts
list and the calendar — scope (404), errors on the form (4xx, nothing stored), query counts."""

import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from accounts.models import Role
from networks.models import Channel
from publishing import services
from publishing.models import Media, Post, PostStatus, PostTarget, PostVersion

from ..factories import SocialAccountFactory, UserFactory, grant


def compose(client, data, url="/posts/new/", **extra):
    payload = {"action": "save", "timezone": "UTC"}
    payload.update(data)
    return client.post(url, payload, **extra)


def html(response) -> str:
    return response.content.decode()


def png_file(name="photo.png", size=(64, 48)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = name
    return buffer


@pytest.fixture
def drafter(client, author):
    client.force_login(author)
    return client


# Compose ----------------------------------------------------------------------------------------
def test_a_drafter_gets_the_compose_form_with_labelled_fields(
    drafter, org, north_mastodon, north_bluesky, south_account
):
    response = drafter.get("/posts/new/")

    assert response.status_code == 200
    page = html(response)
    for field_id, label in [
        ("compose-team", "Team"),
        ("compose-body", "Text"),
        ("compose-date", "Date"),
        ("compose-time", "Time"),
        ("compose-timezone", "Time zone"),
        ("compose-image", "Image file"),
        ("compose-image-alt", "Alt text for this image"),
    ]:
        assert f'<label for="{field_id}">{label}' in page
    assert "<legend>Mastodon</legend>" in page and "<legend>Bluesky</legend>" in page
    assert (
        f'<label for="variant-{north_mastodon.pk}">Text for @north on Mastodon — leave empty to '
        "use the main text</label>"
    ) in page
    assert south_account.handle not in page
    assert f'<option value="{org["south"].pk}"' not in page
    data = json.loads(re.search(r'id="compose-data"[^>]*>(.*?)</script>', page, re.S)[1])
    assert data["channels"]["bluesky"]["counting"] == "graphemes"
    assert data["channels"]["x"]["url_weight"] == 23
    assert 'aria-live="polite"' in page
    assert "Save draft" in page and "Save and submit" in page


def test_the_navigation_offers_compose_posts_and_calendar_to_drafters(drafter, approver, client):
    page = html(drafter.get("/"))
    assert ">Compose</a>" in page and ">Posts</a>" in page and ">Calendar</a>" in page

    client.force_login(approver)
    page = html(client.get("/"))
    assert ">Compose</a>" not in page and ">Calendar</a>" in page


def test_someone_who_drafts_for_no_team_cannot_compose(client, approver):
    client.force_login(approver)

    response = client.get("/posts/new/")

    assert response.status_code == 403
    assert "You do not draft for any team" in html(response)


def test_the_time_zone_defaults_to_the_last_one_used(drafter, make_post):
    page = html(drafter.get("/posts/new/"))
    assert 'data-browser-default="true"' in page
    assert "<option selected>UTC</option>" in page

    make_post(timezone_name="Europe/Lisbon")

    page = html(drafter.get("/posts/new/"))
    assert "<option selected>Europe/Lisbon</option>" in page
    assert "data-browser-default" not in page


def test_saving_with_errors_shows_the_field_messages_with_a_400_and_stores_nothing(
    drafter, org, north_mastodon
):
    response = compose(drafter, {"team": org["north"].pk, "body": "Hello", "link": "ftp://x"})

    assert response.status_code == 400
    page = html(response)
    assert 'role="alert"' in page
    assert "Choose at least one social account." in page
    assert 'aria-describedby="compose-accounts-error"' in page
    assert 'value="ftp://x"' in page  # what was typed stays
    assert ">Hello</textarea>" in page
    assert Post.objects.count() == 0

    response = compose(
        drafter,
        {"team": org["north"].pk, "body": "Hi", "link": "ftp://x", "accounts": [north_mastodon.pk]},
    )
    assert response.status_code == 400
    page = html(response)
    assert 'id="compose-link-error"' in page
    assert "Give a full web address starting with https://." in page
    assert 'aria-describedby="compose-link-hint compose-link-error" aria-invalid="true"' in page
    assert Post.objects.count() == 0


def test_a_missing_team_or_half_a_schedule_is_a_form_error(drafter, north_mastodon):
    response = compose(
        drafter,
        {"body": "Hi", "accounts": [north_mastodon.pk], "schedule_date": "2027-05-01"},
    )

    assert response.status_code == 400
    page = html(response)
    assert "Choose the team this post is for." in page
    assert "Give both a date and a time" in page
    assert Post.objects.count() == 0


def test_another_regions_account_is_refused_on_the_form(drafter, org, south_account):
    response = compose(
        drafter, {"team": org["north"].pk, "body": "Hi", "accounts": [south_account.pk]}
    )

    assert response.status_code == 400
    assert "No social account with this id that you can draft for." in html(response)
    assert Post.objects.count() == 0


def test_saving_creates_a_draft_and_redirects_to_its_page(
    drafter, org, author, north_mastodon, north_bluesky
):
    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "Launch window opens at dawn.",
            "link": "https://agency.example/launch",
            "accounts": [north_mastodon.pk, north_bluesky.pk],
            f"variant-{north_bluesky.pk}": "Short for Bluesky.",
            f"variant-{north_mastodon.pk}": "",
            "schedule_date": "2027-07-01",
            "schedule_time": "09:00",
            "timezone": "Europe/Paris",
        },
    )

    post = Post.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/posts/{post.pk}/"
    assert post.author == author and post.status == PostStatus.DRAFT
    assert post.scheduled_at == datetime(2027, 7, 1, 7, 0, tzinfo=UTC)
    assert post.timezone == "Europe/Paris"
    assert {t.social_account_id: t.body for t in post.targets.all()} == {
        north_mastodon.pk: "",
        north_bluesky.pk: "Short for Bluesky.",
    }

    page = html(drafter.get(response["Location"]))
    assert "Draft saved." in page
    assert "Thursday 1 July 2027, 09:00</time> (Europe/Paris)" in page
    assert "2027-07-01 07:00 UTC" in page
    assert "Short for Bluesky.\n\nhttps://agency.example/launch" in page
    assert "@north on Mastodon" in page and "north.bsky.social on Bluesky" in page


def test_an_empty_schedule_means_as_soon_as_approved(drafter, org, north_mastodon):
    compose(drafter, {"team": org["north"].pk, "body": "Hi", "accounts": [north_mastodon.pk]})

    post = Post.objects.get()
    assert post.scheduled_at is None
    assert "As soon as it is approved" in html(drafter.get(f"/posts/{post.pk}/"))


def test_a_local_time_skipped_by_daylight_saving_shows_the_field_error(
    drafter, org, north_mastodon
):
    # 28 March 2027: clocks in Paris go from 02:00 to 03:00.
    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "Hi",
            "accounts": [north_mastodon.pk],
            "schedule_date": "2027-03-28",
            "schedule_time": "02:30",
            "timezone": "Europe/Paris",
        },
    )

    assert response.status_code == 400
    page = html(response)
    assert "This local time is skipped by a daylight-saving change." in page
    assert "02:30 does not exist on 2027-03-28 in Europe/Paris" in page
    assert 'aria-describedby="compose-schedule-error"' in page
    assert Post.objects.count() == 0


def test_save_and_submit_puts_the_post_in_review(drafter, org, north_mastodon, approver):
    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "Read the new guide.",
            "accounts": [north_mastodon.pk],
            "action": "submit",
        },
    )

    post = Post.objects.get()
    assert response.status_code == 302
    assert post.status == PostStatus.IN_REVIEW
    assert "Submitted for approval." in html(drafter.get(response["Location"]))


def test_an_image_uploaded_without_javascript_stays_on_the_form(drafter, org, north_mastodon):
    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "With a picture",
            "accounts": [north_mastodon.pk],
            "image": png_file(),
            "image_alt": "A blue square.",
            "action": "upload",
        },
    )

    assert response.status_code == 200
    media = Media.objects.get()
    page = html(response)
    assert f'name="media" value="{media.pk}" checked' in page
    assert "Alt text: A blue square." in page
    assert ">With a picture</textarea>" in page
    assert Post.objects.count() == 0

    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "With a picture",
            "accounts": [north_mastodon.pk],
            "media": [media.pk],
        },
    )
    post = Post.objects.get()
    assert response.status_code == 302
    assert [item.media_id for item in post.post_media.all()] == [media.pk]
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert "Alt text: A blue square." in page


def test_an_image_without_alt_text_is_refused_beside_the_alt_field(drafter, org, north_mastodon):
    response = compose(
        drafter,
        {
            "team": org["north"].pk,
            "body": "With a picture",
            "accounts": [north_mastodon.pk],
            "image": png_file(),
            "image_alt": "",
        },
    )

    assert response.status_code == 400
    page = html(response)
    assert 'id="compose-image-alt-error"' in page
    assert "Alt text is required." in page
    assert Media.objects.count() == 0 and Post.objects.count() == 0


# Edit and the post page -------------------------------------------------------------------------
def test_editing_makes_version_2_and_the_post_page_shows_the_diff(
    drafter, make_post, north_mastodon
):
    post = make_post(body="First line\nSecond line")
    form = html(drafter.get(f"/posts/{post.pk}/edit/"))
    assert ">First line\nSecond line</textarea>" in form
    assert f'id="account-{north_mastodon.pk}" name="accounts" value="{north_mastodon.pk}"' in form

    response = compose(
        drafter,
        {"body": "First line\nA better second line", "accounts": [north_mastodon.pk]},
        url=f"/posts/{post.pk}/edit/",
    )

    assert response.status_code == 302
    post.refresh_from_db()
    assert post.version == 2
    assert list(PostVersion.objects.filter(post=post).values_list("version", flat=True)) == [1, 2]
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert "Saved as version 2." in page
    assert "Changes to the main text from version 1 to 2" in page
    assert '<span class="diff-mark">Removed:</span> Second line' in page
    assert '<span class="diff-mark">Added:</span> A better second line' in page
    assert '<span class="diff-mark">Unchanged:</span> First line' in page
    assert page.index("Version 2") < page.index("Version 1")


def test_editing_a_post_in_review_warns_that_it_goes_back_to_draft(drafter, make_post, approver):
    post = make_post()
    services.post_submit(post=post, by=post.author)

    page = html(drafter.get(f"/posts/{post.pk}/edit/"))

    assert "sends it back to draft" in page


def test_a_cancelled_post_cannot_be_edited(drafter, make_post):
    post = make_post()
    services.post_cancel(post=post, by=post.author)

    response = drafter.get(f"/posts/{post.pk}/edit/")

    assert response.status_code == 409
    assert "can no longer be edited" in html(response)


def test_submitting_from_the_post_page(drafter, make_post, approver):
    post = make_post()
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert f'action="/posts/{post.pk}/submit/"' in page

    response = drafter.post(f"/posts/{post.pk}/submit/")

    assert response.status_code == 302
    post.refresh_from_db()
    assert post.status == PostStatus.IN_REVIEW
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert "In review" in page
    assert f'action="/posts/{post.pk}/submit/"' not in page


def test_submitting_with_preflight_errors_is_a_400_with_the_message(
    drafter, make_post, north_bluesky
):
    post = make_post(
        body="x" * 301, targets=[services.TargetInput(social_account_id=north_bluesky.pk)]
    )

    response = drafter.post(f"/posts/{post.pk}/submit/")

    assert response.status_code == 400
    page = html(response)
    assert "must be fixed before submitting" in page
    assert "<strong>Error:</strong>" in page
    assert "301 / 300 graphemes — 1 over" in page
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT


def test_submitting_twice_is_a_409(drafter, make_post, approver):
    post = make_post()
    drafter.post(f"/posts/{post.pk}/submit/")

    response = drafter.post(f"/posts/{post.pk}/submit/")

    assert response.status_code == 409
    assert "Only a draft can be submitted" in html(response)


def test_cancelling_with_a_reason_and_duplicating(drafter, make_post):
    post = make_post()

    response = drafter.post(f"/posts/{post.pk}/cancel/", {"reason": "Event postponed"})

    assert response.status_code == 302
    post.refresh_from_db()
    assert post.status == PostStatus.CANCELLED
    response = drafter.post(f"/posts/{post.pk}/duplicate/")
    copy = Post.objects.exclude(pk=post.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/posts/{copy.pk}/edit/"
    assert copy.body == post.body and copy.status == PostStatus.DRAFT


def test_an_approver_sees_the_post_but_cannot_edit_it(client, approver, make_post):
    post = make_post()
    client.force_login(approver)

    page = html(client.get(f"/posts/{post.pk}/"))
    assert f'href="/posts/{post.pk}/edit/"' not in page
    assert client.get(f"/posts/{post.pk}/edit/").status_code == 403
    assert client.post(f"/posts/{post.pk}/submit/").status_code == 403


def test_another_regions_post_is_404_on_every_page(client, outsider, make_post, north_mastodon):
    post = make_post()
    client.force_login(outsider)

    assert client.get(f"/posts/{post.pk}/").status_code == 404
    assert client.get(f"/posts/{post.pk}/edit/").status_code == 404
    edit = compose(
        client, {"body": "Mine now", "accounts": [north_mastodon.pk]}, url=f"/posts/{post.pk}/edit/"
    )
    assert edit.status_code == 404
    assert client.post(f"/posts/{post.pk}/submit/").status_code == 404
    assert client.post(f"/posts/{post.pk}/cancel/", {"reason": "x"}).status_code == 404
    assert client.post(f"/posts/{post.pk}/duplicate/").status_code == 404
    assert client.get("/posts/999999/").status_code == 404
    post.refresh_from_db()
    assert post.status == PostStatus.DRAFT and post.body == "Launch window opens at dawn."
    assert f"/posts/{post.pk}/" not in html(client.get("/posts/"))
    assert client.get("/posts/", {"team": post.team_id}).status_code == 404


def test_a_linkedin_preview_shows_the_escaped_text(drafter, org, author):
    linkedin = SocialAccountFactory(team=org["north"], channel=Channel.LINKEDIN, handle="North")
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Join us (today) #launch",
        targets=[services.TargetInput(social_account_id=linkedin.pk)],
    )

    page = html(drafter.get(f"/posts/{post.pk}/"))

    assert r"Join us \(today\) \#launch" in page
    assert "reserved characters escaped" in page


# The posts list ---------------------------------------------------------------------------------
def bulk_posts(org, author, account, count, *, start=None, step=timedelta(hours=2), **fields):
    """Many posts at once (the services' own path is covered elsewhere): rows and targets."""
    posts = Post.objects.bulk_create(
        [
            Post(
                team=org["north"],
                author=author,
                body=f"Post number {n}\nsecond line",
                scheduled_at=(start + n * step) if start else None,
                content_hash="0" * 64,
                **fields,
            )
            for n in range(count)
        ]
    )
    if connection.vendor != "postgresql":  # SQLite's bulk_create does not set the ids
        posts = list(Post.objects.order_by("-pk")[:count])
    PostTarget.objects.bulk_create([PostTarget(post=p, social_account=account) for p in posts])
    return posts


def count_queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries)


def test_the_posts_list_filters_and_links_each_post(
    drafter, org, author, approver, north_mastodon, make_post
):
    kept = make_post()
    submitted = make_post(body="Submitted one")
    services.post_submit(post=submitted, by=author)

    page = html(drafter.get("/posts/", {"status": "draft"}))

    assert f'<a href="/posts/{kept.pk}/">Post {kept.pk}</a>' in page
    assert f'href="/posts/{submitted.pk}/"' not in page
    assert '<option value="draft" selected>' in page
    assert "<caption" in page and '<th scope="col">Status</th>' in page
    page = html(drafter.get("/posts/", {"account": north_mastodon.pk, "team": org["north"].pk}))
    assert f'href="/posts/{submitted.pk}/"' in page
    assert drafter.get("/posts/", {"status": "nonsense"}).status_code == 400


def test_the_posts_list_pages_by_keyset_newest_first(drafter, org, author, north_mastodon):
    posts = bulk_posts(org, author, north_mastodon, 60)
    newest = max(p.pk for p in posts)

    page = html(drafter.get("/posts/"))

    assert page.index(f"Post {newest}<") < page.index(f"Post {newest - 1}<")
    older = re.search(r'<a href="([^"]+)">Older posts</a>', page)[1].replace("&amp;", "&")
    second = html(drafter.get("/posts/" + older))
    assert len(re.findall(r'<a href="/posts/\d+/">', second)) == 10
    assert "Older posts" not in second and "Newest posts" in second


def test_the_posts_list_costs_the_same_queries_for_5_and_300_posts(
    drafter, org, author, north_mastodon, django_assert_num_queries
):
    bulk_posts(org, author, north_mastodon, 5)
    params = {"status": "draft", "team": org["north"].pk}
    baseline = count_queries(drafter, "/posts/", params)

    bulk_posts(org, author, north_mastodon, 295)

    with django_assert_num_queries(baseline):
        response = drafter.get("/posts/", params)
    assert len(re.findall(r'<a href="/posts/\d+/">', html(response))) == 50


# The calendar -----------------------------------------------------------------------------------
def test_the_calendar_places_a_post_on_its_local_day_in_the_viewers_zone(
    drafter, make_post, north_mastodon
):
    post = make_post(scheduled_at=datetime(2027, 3, 10, 23, 30, tzinfo=UTC))

    paris = html(drafter.get("/calendar/", {"month": "2027-03", "tz": "Europe/Paris"}))
    utc = html(drafter.get("/calendar/", {"month": "2027-03"}))

    def day_of(page):
        cells = re.findall(r'<td class="[^"]*">(.*?)</td>', page, re.S)
        (cell,) = [c for c in cells if f'href="/posts/{post.pk}/"' in c]
        return re.search(r'id="day-([\d-]+)"', cell)[1]

    assert day_of(paris) == "2027-03-11"
    assert '<span class="clock">00:30</span>' in paris
    assert day_of(utc) == "2027-03-10"
    assert '<span class="clock">23:30</span>' in utc


def test_the_calendar_is_an_accessible_table_with_navigation(drafter, make_post):
    make_post(scheduled_at=datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    make_post(body="No time yet")

    page = html(drafter.get("/calendar/", {"month": "2027-03"}))

    assert "<caption>" in page and "March 2027" in page
    assert '<th scope="col">Monday</th>' in page
    assert 'aria-labelledby="day-2027-03-10"' in page
    assert "Wednesday 10 March 2027" in page
    assert 'href="?month=2027-02"' in page and 'href="?month=2027-04"' in page
    assert "Unscheduled" in page and "No time yet" in page


def test_the_calendar_week_view_and_filters(drafter, author, make_post, north_bluesky):
    make_post(scheduled_at=datetime(2027, 3, 3, 9, 0, tzinfo=UTC), body="On Mastodon")
    make_post(
        scheduled_at=datetime(2027, 3, 4, 9, 0, tzinfo=UTC),
        body="On Bluesky",
        targets=[services.TargetInput(social_account_id=north_bluesky.pk)],
    )

    page = html(drafter.get("/calendar/", {"week": "2027-03-04"}))
    assert "Week of 1 March 2027" in page
    assert "On Mastodon" in page and "On Bluesky" in page
    assert 'href="?week=2027-02-22"' in page and 'href="?week=2027-03-08"' in page

    page = html(drafter.get("/calendar/", {"week": "2027-03-04", "account": north_bluesky.pk}))
    assert "On Mastodon" not in page and "On Bluesky" in page
    page = html(drafter.get("/calendar/", {"week": "2027-03-04", "status": "in_review"}))
    assert "On Mastodon" not in page and "On Bluesky" not in page


def test_bad_calendar_choices_are_a_400_naming_them(drafter):
    response = drafter.get("/calendar/", {"month": "2027-13", "tz": "Mars/Olympus"})

    assert response.status_code == 400
    page = html(response)
    assert "Give the month like 2026-03." in page
    assert "Choose a time zone from the list." in page


def test_the_calendar_month_costs_the_same_queries_for_5_and_300_posts(
    drafter, org, author, north_mastodon, django_assert_num_queries
):
    march = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    bulk_posts(org, author, north_mastodon, 5, start=march)
    bulk_posts(org, author, north_mastodon, 2)  # unscheduled
    params = {"month": "2027-03", "tz": "Europe/Paris", "team": org["north"].pk}
    baseline = count_queries(drafter, "/calendar/", params)

    bulk_posts(org, author, north_mastodon, 295, start=march, step=timedelta(hours=2))

    with django_assert_num_queries(baseline):
        response = drafter.get("/calendar/", params)
    assert "more on this day" in html(response)


def test_a_lead_sees_the_calendar_of_the_teams_below(client, lead, make_post):
    post = make_post(scheduled_at=datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    client.force_login(lead)

    page = html(client.get("/calendar/", {"month": "2027-03"}))

    assert f'href="/posts/{post.pk}/"' in page


def test_a_person_without_a_role_sees_an_empty_calendar(client, make_post):
    make_post(scheduled_at=datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    nobody = UserFactory(username="nobody")
    client.force_login(nobody)

    response = client.get("/calendar/", {"month": "2027-03"})

    assert response.status_code == 200
    assert 'href="/posts/' not in html(response)


def test_a_colleague_drafter_of_the_team_can_edit(client, org, make_post, north_mastodon):
    colleague = UserFactory(username="dana")
    grant(colleague, org["north"], Role.DRAFTER)
    post = make_post()
    client.force_login(colleague)

    response = compose(
        client,
        {"body": "Edited by Dana", "accounts": [north_mastodon.pk]},
        url=f"/posts/{post.pk}/edit/",
    )

    assert response.status_code == 302
    post.refresh_from_db()
    assert post.body == "Edited by Dana" and post.version == 2


def test_the_post_page_shows_each_networks_id_and_a_link_only_to_a_web_address(
    drafter, make_post, org
):
    post = make_post()
    target = PostTarget.objects.filter(post=post).first()
    PostTarget.objects.filter(pk=target.pk).update(
        status="published", external_id="109384", external_url="https://social.example/@n/109384"
    )
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert "<code>109384</code>" in page
    assert 'href="https://social.example/@n/109384"' in page

    # A receiver (or a network gone wrong) answering a script address gets no link.
    PostTarget.objects.filter(pk=target.pk).update(external_url="javascript:alert(1)")
    page = html(drafter.get(f"/posts/{post.pk}/"))
    assert "javascript:" not in page
    assert "<code>109384</code>" in page


def test_a_mastodon_account_counts_against_its_own_servers_limit(drafter, north_mastodon):
    north_mastodon.network_settings = {
        "instance": {"configuration": {"statuses": {"max_characters": 1000}}}
    }
    north_mastodon.save(update_fields=["network_settings"])
    page = html(drafter.get("/posts/new/"))
    data = json.loads(re.search(r'id="compose-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert data["accounts"][str(north_mastodon.pk)]["max"] == 1000
    assert data["channels"]["mastodon"]["max"] == 500
    assert "1,000" in page  # the server-side counter too


def test_a_lead_stops_a_publishing_post_from_its_page(client, lead, author, org):
    from publishing.dispatch import claim

    from ..integration.dispatch_support import approved_post, webhook_account

    hook = webhook_account(org["north"], "https://www.agency.example/hook", handle="site")
    post = approved_post(author=author, team=org["north"], accounts=[hook])
    claim.dispatch_due()
    client.force_login(lead)
    page = html(client.get(f"/posts/{post.pk}/"))
    assert "Stop publishing" in page
    response = client.post(f"/posts/{post.pk}/cancel/", {"reason": "Wrong photo"})
    assert response.status_code == 302
    assert Post.objects.get(pk=post.pk).status == PostStatus.CANCELLED
