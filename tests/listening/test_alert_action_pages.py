"""The alert's drafting forms and the watch's topic and chat webhook, through Django's test
client: a post drafted from an approved response and a reply to a top post land on the post's
page; errors come back beside their fields with the status; someone who does not draft for the
team sees no form and is refused with a 403; the webhook's secret is shown once; the alert page's
queries do not grow with its posts."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from audit.models import AuditEvent
from inbox import responses
from listening import alerts, services
from listening.models import Hit, PublicPost, Watch
from networks.models import Channel
from publishing.models import Post, PostStatus

from ..factories import SocialAccountFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db

LINE = "We never ask for bank details by text. Report the message to 7726."


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    page = re.sub(r"</?(?:a|strong|span|time|em|b|code)\b[^>]*>", "", html(response))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'")


def signed_in(client, user):
    client.force_login(user)
    return client


def claim_alert(watch, by, claim: str, term: str, count: int):
    """A false-claim alert of the watch with `count` top posts (at most 5 are kept)."""
    services.claim_create(by=by, watch=watch, claim=claim, terms=[term])
    stored = services.posts_store(
        watch=watch,
        network="x",
        posts=[public(f"census {term} {n}", at=T0, reposts=n) for n in range(count)],
    )
    [raised] = alerts.claims_matched(watch, stored.claims)
    return raised


@pytest.fixture
def alert(watch, north_lead):
    services.watch_update(
        by=north_lead,
        watch=watch,
        values={"topic_tags": ["census"], "topic_campaign": "Census 2026"},
    )
    return claim_alert(watch, north_lead, "Fake fines", "fine", 2)


@pytest.fixture
def line(org, lead):
    return responses.response_create(by=lead, team_id=org["hq"].pk, title="Scam texts", body=LINE)


@pytest.fixture
def drafter_lead(org, north_lead):
    grant(north_lead, org["north"], Role.DRAFTER)
    return north_lead


@pytest.fixture
def x_account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@north")


def top_post(alert) -> int:
    return alert.evidence["top_posts"][0]["id"]


# Drafting a post --------------------------------------------------------------------------------
def test_a_drafter_drafts_a_post_from_an_approved_response_and_lands_on_its_page(
    client, org, alert, line, drafter_lead, x_account
):
    south = SocialAccountFactory(team=org["south"], channel=Channel.X, handle="@south")
    signed_in(client, drafter_lead)
    page = html(client.get(f"/listening/alerts/{alert.pk}/"))
    assert "Draft a post from an approved response" in page
    assert f'<option value="{line.pk}">Scam texts (HQ)</option>' in page
    assert f'id="draft-account-{x_account.pk}"' in page
    assert f'id="draft-account-{south.pk}"' not in page  # not one of North's

    response = client.post(
        f"/listening/alerts/{alert.pk}/draft/",
        {"response": str(line.pk), "accounts": [str(x_account.pk)]},
    )

    post = Post.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/posts/{post.pk}/"
    assert (post.status, post.body, post.tags, post.campaign) == (
        PostStatus.DRAFT,
        LINE,
        ["census"],
        "Census 2026",
    )
    assert "Drafted the post from the approved response." in html(client.get(response["Location"]))
    assert AuditEvent.objects.filter(action="listening.alert_post_drafted").count() == 1


def test_a_draft_without_a_response_or_accounts_comes_back_beside_the_fields(
    client, alert, line, drafter_lead, x_account
):
    signed_in(client, drafter_lead)

    no_response = client.post(
        f"/listening/alerts/{alert.pk}/draft/", {"response": "", "accounts": [str(x_account.pk)]}
    )
    no_accounts = client.post(f"/listening/alerts/{alert.pk}/draft/", {"response": str(line.pk)})

    assert no_response.status_code == 400
    assert re.search(
        r'id="draft-response-error">Choose one of the approved responses\.', html(no_response)
    )
    # What was chosen stays chosen.
    assert re.search(rf'id="draft-account-{x_account.pk}"[^>]* checked', html(no_response))
    assert no_accounts.status_code == 400
    assert re.search(r'id="draft-accounts-error">Choose at least one', html(no_accounts))
    assert re.search(rf'<option value="{line.pk}" selected>', html(no_accounts))
    assert "The post was not drafted: correct what is named below." in html(no_accounts)
    assert not Post.objects.exists()


def test_someone_who_does_not_draft_for_the_team_sees_no_form_and_is_refused(
    client, alert, line, north_lead, x_account
):
    signed_in(client, north_lead)  # leads North, drafts for nothing

    page = text_of(client.get(f"/listening/alerts/{alert.pk}/"))
    drafted = client.post(
        f"/listening/alerts/{alert.pk}/draft/",
        {"response": str(line.pk), "accounts": [str(x_account.pk)]},
    )
    replied = client.post(
        f"/listening/alerts/{alert.pk}/reply/",
        {"post": str(top_post(alert)), "account": str(x_account.pk), "body": "Hi"},
    )

    assert "Draft a post from an approved response" not in page
    assert "Reply to this post" not in page
    assert "Drafters of “North” (or a team above it) draft a post or a reply" in page
    for response in (drafted, replied):
        assert response.status_code == 403
        assert "You cannot draft posts for North" in text_of(response)
    assert not Post.objects.exists()


def test_an_alert_i_may_not_see_is_a_404_for_its_drafting_forms(client, alert, line, outsider):
    signed_in(client, outsider)

    assert client.post(f"/listening/alerts/{alert.pk}/draft/", {}).status_code == 404
    assert client.post(f"/listening/alerts/{alert.pk}/reply/", {}).status_code == 404


def test_with_no_response_offered_the_page_says_where_leads_keep_them(
    client, alert, drafter_lead, x_account
):
    page = html(signed_in(client, drafter_lead).get(f"/listening/alerts/{alert.pk}/"))

    assert 'id="draft-no-responses"' in page and 'href="/inbox/responses/"' in page
    assert 'id="draft-submit"' not in page


# Replying to a top post -------------------------------------------------------------------------
def test_a_drafter_replies_beside_a_top_post_and_lands_on_the_replys_page(
    client, alert, line, drafter_lead, x_account
):
    signed_in(client, drafter_lead)
    answered = top_post(alert)
    page = html(client.get(f"/listening/alerts/{alert.pk}/"))
    assert page.count("<summary>Reply to this post") == len(alert.evidence["top_posts"]) == 2
    assert f'id="reply-{answered}-account"' in page

    response = client.post(
        f"/listening/alerts/{alert.pk}/reply/",
        {"post": str(answered), "account": str(x_account.pk), "response": str(line.pk)},
    )

    reply = Post.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/posts/{reply.pk}/"
    assert reply.is_reply and reply.body == LINE
    target = reply.targets.get()
    assert target.in_reply_to["network_id"] == PublicPost.objects.get(pk=answered).network_id


def test_a_wrong_reply_comes_back_in_its_posts_form(client, alert, line, drafter_lead, x_account):
    signed_in(client, drafter_lead)
    answered = top_post(alert)

    both = client.post(
        f"/listening/alerts/{alert.pk}/reply/",
        {
            "post": str(answered),
            "account": str(x_account.pk),
            "response": str(line.pk),
            "body": "My words",
        },
    )
    nothing = client.post(
        f"/listening/alerts/{alert.pk}/reply/",
        {"post": str(answered), "account": str(x_account.pk)},
    )
    gone = client.post(
        f"/listening/alerts/{alert.pk}/reply/",
        {"post": "999999", "account": str(x_account.pk), "body": "Hi"},
    )

    assert both.status_code == 400
    page = html(both)
    assert re.search(rf'id="reply-{answered}-body-error">Choose an approved response or', page)
    assert re.search(r'<details class="reply-form" open>\s*<summary>[^<]*<span', page)
    assert "My words</textarea>" in page
    assert nothing.status_code == 400
    assert re.search(rf'id="reply-{answered}-body-error">Write the reply\.', html(nothing))
    # A post the page does not list: the error is said above the posts, never a 500.
    assert gone.status_code == 400
    assert "No post of this watch with this id" in text_of(gone)
    assert not Post.objects.exists()


def test_a_mastodon_post_is_answered_only_from_the_server_that_read_it(
    client, org, watch, alert, line, drafter_lead
):
    reader = SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@r", base_url="https://one.example"
    )
    other = SocialAccountFactory(
        team=org["north"], channel=Channel.MASTODON, handle="@o", base_url="https://two.example"
    )
    stored = services.posts_store(
        watch=watch, network="mastodon", posts=[public("census help", at=T0)], read_via=reader
    )
    # A Mastodon post of the watch among the alert's top posts.
    tooted = Hit.objects.get(pk=stored.hits[0]).post_id
    alert.evidence["top_posts"].insert(0, {"id": tooted, "network": "mastodon", "text": "t"})
    alert.save(update_fields=["evidence"])

    page = html(signed_in(client, drafter_lead).get(f"/listening/alerts/{alert.pk}/"))

    form = page.split(f'id="reply-{tooted}-account"')[1].split("</select>")[0]
    assert f'value="{reader.pk}"' in form and f'value="{other.pk}"' not in form


def test_a_purged_post_offers_no_reply(client, alert, line, drafter_lead, x_account):
    answered = top_post(alert)
    PublicPost.objects.filter(pk=answered).delete()

    page = text_of(signed_in(client, drafter_lead).get(f"/listening/alerts/{alert.pk}/"))

    assert "This post is no longer kept (purged after the watch’s retention)." in page


def test_the_alert_page_costs_the_same_queries_for_one_and_five_posts(
    client, watch, north_lead, drafter_lead, line, x_account, django_assert_num_queries
):
    small = claim_alert(watch, north_lead, "Small", "tiny", 1)
    big = claim_alert(watch, north_lead, "Big", "huge", 5)
    assert (len(small.evidence["top_posts"]), len(big.evidence["top_posts"])) == (1, 5)
    signed_in(client, drafter_lead)
    with CaptureQueriesContext(connection) as baseline:
        assert client.get(f"/listening/alerts/{small.pk}/").status_code == 200

    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get(f"/listening/alerts/{big.pk}/")
    assert html(response).count("<summary>Reply to this post") == 5


# The watch's topic and chat webhook ------------------------------------------------------------
def test_a_lead_sets_the_watchs_topic_in_its_settings(client, north_lead, watch):
    data = {
        "name": "Census",
        "terms": "census",
        "networks": ["x"],
        "topic_tags": "#census, scams",
        "topic_campaign": "Census 2026",
    }

    response = signed_in(client, north_lead).post(f"/listening/watches/{watch.pk}/edit/", data)

    assert response.status_code == 302
    watch.refresh_from_db()
    assert (watch.topic_tags, watch.topic_campaign) == (["census", "scams"], "Census 2026")
    page = html(client.get(f"/listening/watches/{watch.pk}/"))
    assert "census\nscams</textarea>" in page and 'value="Census 2026"' in page
    assert "#census, #scams; the campaign “Census 2026”" in text_of(client.get(response.url))

    wrong = client.post(
        f"/listening/watches/{watch.pk}/edit/", {**data, "topic_campaign": "c" * 101}
    )
    assert wrong.status_code == 400
    assert re.search(r'id="edit-topic_campaign-error">At most 100 characters', html(wrong))


def test_a_lead_sets_the_webhook_and_sees_its_secret_once(client, north_lead, watch, settings):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    signed_in(client, north_lead)

    response = client.post(
        f"/listening/watches/{watch.pk}/webhook/", {"url": "http://127.0.0.1:8123/hooks"}
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="secret" id="webhook-secret">([^<]+)</code>', html(response))
    assert secret
    assert "It will not be shown again." in text_of(response)
    watch.refresh_from_db()
    assert watch.webhook_url == "http://127.0.0.1:8123/hooks"
    again = html(client.get(f"/listening/watches/{watch.pk}/"))
    assert secret.group(1) not in again and 'id="webhook-secret"' not in again
    assert 'id="webhook-remove"' in again

    removed = client.post(f"/listening/watches/{watch.pk}/webhook/", {"url": ""})
    assert removed.status_code == 302
    watch.refresh_from_db()
    assert watch.webhook_url == ""
    assert "Removed the webhook" in html(client.get(removed["Location"]))


@pytest.mark.parametrize(
    "url, said",
    [
        ("https://10.0.0.8/hooks", "not a public address"),
        ("https://chat.example.org:99999/hooks", "Not a web address"),
        ("chat.example.org", "is not a web address"),
    ],
)
def test_a_refused_webhook_comes_back_beside_its_field(client, north_lead, watch, url, said):
    response = signed_in(client, north_lead).post(
        f"/listening/watches/{watch.pk}/webhook/", {"url": url}
    )

    assert response.status_code == 400
    page = html(response)
    assert re.search(rf'id="webhook-url-error">[^<]*{said}', page)
    assert f'value="{url}"' in page
    assert Watch.objects.get(pk=watch.pk).webhook_url == ""


def test_only_a_lead_sees_and_sets_the_webhook(client, author, watch):
    signed_in(client, author)

    page = html(client.get(f"/listening/watches/{watch.pk}/"))
    response = client.post(f"/listening/watches/{watch.pk}/webhook/", {"url": ""})

    assert 'id="webhook-url"' not in page
    assert response.status_code == 403
    assert "Only a lead of the watch's team can set its webhook." in text_of(response)
