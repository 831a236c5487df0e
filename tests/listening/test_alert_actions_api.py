"""What a lead does from an alert, through the API: a post or a reply drafted in the words of an
approved response (answered as `POST /api/v1/posts/` answers), the watch's topic and chat webhook
(its secret given once); refusals are 403 for someone who does not draft for the team, 404 for
what one may not see, and 400 naming the field, never a 500."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditEvent
from inbox import responses
from listening import alerts, services
from listening.models import PublicPost, Watch
from networks.models import Channel
from publishing.models import Post, PostStatus

from ..factories import SocialAccountFactory, UserFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db

LINE = "We never ask for bank details by text. Report the message to 7726."


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def fields(response) -> dict:
    return response.json()["extra"]["fields"]


@pytest.fixture
def alert(watch, north_lead):
    services.watch_update(
        by=north_lead,
        watch=watch,
        values={"topic_tags": ["census", "scams"], "topic_campaign": "Census 2026"},
    )
    services.claim_create(by=north_lead, watch=watch, claim="Fake fines", terms=["fine"])
    stored = services.posts_store(
        watch=watch, network="x", posts=[public("census fine text", at=T0)]
    )
    [raised] = alerts.claims_matched(watch, stored.claims)
    return raised


@pytest.fixture
def line(org, lead):
    return responses.response_create(by=lead, team_id=org["hq"].pk, title="Scam texts", body=LINE)


@pytest.fixture
def drafter_lead(org, north_lead):
    """nora leads North and drafts for it."""
    grant(north_lead, org["north"], Role.DRAFTER)
    return north_lead


@pytest.fixture
def x_account(org):
    return SocialAccountFactory(team=org["north"], channel=Channel.X, handle="@north")


def top_post(alert) -> int:
    return alert.evidence["top_posts"][0]["id"]


# Drafting a post --------------------------------------------------------------------------------
def test_a_drafter_lead_drafts_a_post_from_an_approved_response(
    alert, line, drafter_lead, x_account
):
    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/draft/",
        {"response": line.pk, "accounts": [x_account.pk]},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    post = Post.objects.get()
    assert (body["id"], body["status"], body["body"]) == (post.pk, PostStatus.DRAFT, LINE)
    assert (body["tags"], body["campaign"]) == (["census", "scams"], "Census 2026")
    assert [target["social_account"] for target in body["targets"]] == [x_account.pk]
    assert body["is_reply"] is False
    # The same shape as the post's own read.
    assert api(drafter_lead).get(f"/api/v1/posts/{post.pk}/").json() == body
    assert AuditEvent.objects.filter(action="listening.alert_post_drafted").count() == 1


def test_someone_who_does_not_draft_for_the_team_is_refused_with_a_403(
    alert, line, north_lead, x_account
):
    # nora leads North but does not draft for it.
    drafted = api(north_lead).post(
        f"/api/v1/alerts/{alert.pk}/draft/",
        {"response": line.pk, "accounts": [x_account.pk]},
        format="json",
    )
    replied = api(north_lead).post(
        f"/api/v1/alerts/{alert.pk}/reply/",
        {"post": top_post(alert), "account": x_account.pk, "body": "Hello"},
        format="json",
    )

    for response in (drafted, replied):
        assert response.status_code == 403
        assert response.json()["message"].startswith("You cannot draft posts for North")
    assert not Post.objects.exists()


def test_an_alert_i_may_not_see_is_a_404(alert, line, outsider, x_account):
    for action in ("draft", "reply"):
        response = api(outsider).post(
            f"/api/v1/alerts/{alert.pk}/{action}/", {"response": line.pk}, format="json"
        )
        assert response.status_code == 404
    assert api(outsider).post("/api/v1/alerts/999999/draft/", {}).status_code == 404


@pytest.mark.parametrize(
    "values, field",
    [
        ({"response": 999999}, "response"),
        ({"response": "Scam texts"}, "response"),
        ({"response": None}, "response"),
        ({"accounts": []}, "accounts"),
        ({"accounts": [999999]}, "accounts"),
        ({"accounts": "1,2"}, "accounts"),
        ({"accounts": [2**64]}, "accounts"),
    ],
)
def test_a_bad_draft_is_a_400_naming_the_field(alert, line, drafter_lead, x_account, values, field):
    data = {"response": line.pk, "accounts": [x_account.pk], **values}

    response = api(drafter_lead).post(f"/api/v1/alerts/{alert.pk}/draft/", data, format="json")

    assert response.status_code == 400, response.content
    assert set(fields(response)) == {field}
    assert not Post.objects.exists()


def test_an_account_of_another_team_is_refused_naming_the_accounts(org, alert, line, drafter_lead):
    south = SocialAccountFactory(team=org["south"], channel=Channel.X, handle="@south")

    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/draft/",
        {"response": line.pk, "accounts": [south.pk]},
        format="json",
    )

    assert response.status_code == 400
    assert fields(response) == {
        "accounts": ["No social account with this id that you can draft for."]
    }


def test_a_withdrawn_response_is_not_offered_any_more(alert, line, lead, drafter_lead, x_account):
    responses.response_update(by=lead, response=line, active=False)

    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/draft/",
        {"response": line.pk, "accounts": [x_account.pk]},
        format="json",
    )

    assert response.status_code == 400
    assert fields(response) == {"response": ["Choose one of the team's approved responses."]}


# Replying to a top post -------------------------------------------------------------------------
def test_a_drafter_replies_to_a_top_post_in_an_approved_responses_words(
    alert, line, drafter_lead, x_account
):
    answered = PublicPost.objects.get(pk=top_post(alert))

    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/reply/",
        {"post": answered.pk, "account": x_account.pk, "response": line.pk},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["body"], body["is_reply"]) == (PostStatus.DRAFT, LINE, True)
    [target] = body["targets"]
    assert (target["social_account"], target["in_reply_to"]) == (
        x_account.pk,
        answered.network_id,
    )
    assert body["campaign"] == "Census 2026"
    event = AuditEvent.objects.get(action="listening.alert_reply_drafted")
    assert (event.data["post"], event.data["answers"]) == (body["id"], answered.pk)


def test_a_reply_in_ones_own_words(alert, drafter_lead, x_account):
    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/reply/",
        {"post": top_post(alert), "account": x_account.pk, "body": "This text is a scam."},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["body"] == "This text is a scam."


@pytest.mark.parametrize(
    "values, field",
    [
        ({"post": 999999}, "post"),
        ({"post": "first"}, "post"),
        ({"account": 999999}, "account"),
        ({"account": None}, "account"),
        ({"response": 999999, "body": ""}, "response"),
        ({"body": ""}, "body"),
        ({"body": "   "}, "body"),
        ({"response": "LINE", "body": "Also mine"}, "body"),
        ({"body": "x" * 10_001}, "body"),
    ],
)
def test_a_bad_reply_is_a_400_naming_the_field(alert, line, drafter_lead, x_account, values, field):
    data = {"post": top_post(alert), "account": x_account.pk, "body": "Hello", **values}
    if data.get("response") == "LINE":
        data["response"] = line.pk

    response = api(drafter_lead).post(f"/api/v1/alerts/{alert.pk}/reply/", data, format="json")

    assert response.status_code == 400, response.content
    assert set(fields(response)) == {field}
    assert not Post.objects.exists()


def test_a_reply_goes_from_an_account_on_the_posts_network(org, alert, drafter_lead):
    bluesky = SocialAccountFactory(team=org["north"], channel=Channel.BLUESKY, handle="n.bsky")

    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/reply/",
        {"post": top_post(alert), "account": bluesky.pk, "body": "Hello"},
        format="json",
    )

    assert response.status_code == 400
    assert fields(response) == {"account": ["Choose one of our x accounts to answer from."]}


def test_a_reply_from_an_account_i_do_not_draft_for_names_the_account(org, alert, drafter_lead):
    # An X account of South: on the right network, but not one nora drafts for.
    south = SocialAccountFactory(team=org["south"], channel=Channel.X, handle="@south")

    response = api(drafter_lead).post(
        f"/api/v1/alerts/{alert.pk}/reply/",
        {"post": top_post(alert), "account": south.pk, "body": "Hello"},
        format="json",
    )

    assert response.status_code == 400
    assert set(fields(response)) == {"account"}


# The watch's topic and webhook -----------------------------------------------------------------
def test_a_watch_reads_its_topic_and_webhook_but_never_its_secret(north_lead, watch, settings):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    changed = api(north_lead).patch(
        f"/api/v1/watches/{watch.pk}/",
        {"topic_tags": ["#Census", "scams"], "topic_campaign": "Census 2026"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["topic_tags"], changed.json()["topic_campaign"]) == (
        ["Census", "scams"],
        "Census 2026",
    )
    assert changed.json()["webhook_url"] == ""

    response = api(north_lead).post(
        f"/api/v1/watches/{watch.pk}/webhook/",
        {"url": "http://127.0.0.1:8123/hooks/cxhub"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    secret = response.json()["secret"]
    assert response.json()["webhook_url"] == "http://127.0.0.1:8123/hooks/cxhub"
    assert len(secret) >= 40
    read = api(north_lead).get(f"/api/v1/watches/{watch.pk}/")
    assert read.json()["webhook_url"] == "http://127.0.0.1:8123/hooks/cxhub"
    assert secret not in read.content.decode()
    listed = api(north_lead).get("/api/v1/watches/")
    assert secret not in listed.content.decode()
    event = AuditEvent.objects.get(action="listening.webhook_set")
    assert secret not in str(event.data)


def test_a_lead_removes_the_webhook_with_an_empty_url(north_lead, watch, settings):
    settings.CXHUB_WEBHOOK_ALLOW_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    url = f"/api/v1/watches/{watch.pk}/webhook/"
    api(north_lead).post(url, {"url": "http://127.0.0.1:8123/hooks"}, format="json")

    response = api(north_lead).post(url, {"url": ""}, format="json")

    assert response.json() == {"webhook_url": "", "secret": ""}
    watch.refresh_from_db()
    assert (watch.webhook_url, watch.webhook_secret_encrypted) == ("", "")


@pytest.mark.parametrize(
    "url",
    [
        "chat.example.org/hooks",
        "ftp://chat.example.org/hooks",
        "https://10.0.0.8/hooks",
        "http://127.0.0.1/hooks",
        "https://chat.example.org:99999/hooks",
        "https://[::1/hooks",
        "https://" + "a" * 70 + ".example/hooks",
        "https://chat..example/hooks",
        "https://chat.example.org/" + "x" * 500,
    ],
)
def test_a_webhook_address_that_is_refused_is_a_400_naming_the_url(north_lead, watch, url):
    response = api(north_lead).post(
        f"/api/v1/watches/{watch.pk}/webhook/", {"url": url}, format="json"
    )

    assert response.status_code == 400, response.content
    assert set(fields(response)) == {"url"}
    assert Watch.objects.get(pk=watch.pk).webhook_url == ""


def test_only_a_lead_sets_the_webhook(org, author, outsider, watch):
    url = f"/api/v1/watches/{watch.pk}/webhook/"
    response = api(author).post(url, {"url": ""}, format="json")

    assert response.status_code == 403
    assert api(outsider).post(url, {"url": ""}, format="json").status_code == 404
    assert api(UserFactory()).post(url, {"url": ""}, format="json").status_code == 404


def test_the_schema_documents_the_alerts_actions_and_the_webhook(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    paths = schema["paths"]
    for path in ("/api/v1/alerts/{alert_id}/draft/", "/api/v1/alerts/{alert_id}/reply/"):
        answers = paths[path]["post"]["responses"]
        assert answers["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/PostOutput"
        )
        assert {"400", "403", "404"} <= set(answers)
    webhook = paths["/api/v1/watches/{watch_id}/webhook/"]["post"]
    assert webhook["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/WebhookOutput"
    )
    watch = schema["components"]["schemas"]["WatchOutput"]["properties"]
    assert {"topic_tags", "topic_campaign", "webhook_url"} <= set(watch)
    assert not any("secret" in name for name in watch)


def test_a_lead_freezes_the_posts_on_the_watch_topic_from_the_api_and_the_page(
    org, alert, north_lead, author, client
):
    from publishing.models import PublishingFreeze

    answer = api(north_lead).post(
        f"/api/v1/alerts/{alert.pk}/freeze/", {"reason": "Until we answer."}, format="json"
    )

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["scope"], body["tags"], body["campaign"]) == (
        "topic",
        ["census", "scams"],
        "Census 2026",
    )
    freeze = PublishingFreeze.objects.get(pk=body["id"])
    assert f"Alert {alert.pk}" in freeze.reason
    # A drafter is no lead: refused, nothing frozen.
    refused = api(author).post(f"/api/v1/alerts/{alert.pk}/freeze/", {}, format="json")
    assert refused.status_code in (400, 403, 404)
    assert PublishingFreeze.objects.count() == 1
    # The page's button does the same, and says what it held.
    client.force_login(north_lead)
    page = client.get(f"/listening/alerts/{alert.pk}/")
    assert b"Freeze posts on this topic" in page.content
    done = client.post(f"/listening/alerts/{alert.pk}/freeze/", {"reason": ""}, follow=True)
    assert done.status_code == 200
    assert b"Froze the posts on this topic" in done.content
    assert PublishingFreeze.objects.filter(scope="topic").count() == 2


def test_a_freeze_from_an_alert_needs_the_watch_topic_named(watch, north_lead, client):
    services.claim_create(by=north_lead, watch=watch, claim="Fake", terms=["fine"])
    stored = services.posts_store(watch=watch, network="x", posts=[public("census fine", at=T0)])
    [bare] = alerts.claims_matched(watch, stored.claims)

    answer = api(north_lead).post(f"/api/v1/alerts/{bare.pk}/freeze/", {}, format="json")

    assert answer.status_code == 400
    assert "topic_tags" in fields(answer)
    client.force_login(north_lead)
    page = client.get(f"/listening/alerts/{bare.pk}/")
    assert b"give it topic tags or a campaign" in page.content
    refused = client.post(f"/listening/alerts/{bare.pk}/freeze/", {})
    assert refused.status_code == 400
