"""What the OpenAPI schema promises, checked directly: every operation lists its error answers
with the shared error shape, nullable fields are marked, the business rules are stated, and
the query parameters are strict (a 400 naming the parameter, never a silent default or a 500)."""

from base64 import b64encode

import pytest
from rest_framework.test import APIClient

from approvals import services as approvals
from approvals.services import MIN_JUSTIFICATION
from publishing import services

from ..factories import SocialAccountFactory

STATE_CHANGES = {
    ("post", "/api/v1/posts/{post_id}/submit/"),
    ("post", "/api/v1/posts/{post_id}/cancel/"),
    ("patch", "/api/v1/posts/{post_id}/"),
    ("put", "/api/v1/posts/{post_id}/"),
    ("post", "/api/v1/posts/{post_id}/targets/{target_id}/decide/"),
    ("post", "/api/v1/posts/{post_id}/break-glass/"),
    ("post", "/api/v1/posts/{post_id}/reschedule-held/"),
    ("post", "/api/v1/approvals/{request_id}/decide/"),
    ("post", "/api/v1/freezes/{freeze_id}/lift/"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


def api(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _fields(response) -> dict:
    return response.json()["extra"]["fields"]


# The schema -----------------------------------------------------------------------------------
def test_the_error_shape_is_one_shared_component(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["message", "extra"]
    assert error["properties"]["message"]["type"] == "string"
    assert "fields" in error["properties"]["extra"]["properties"]


def test_every_operation_documents_its_error_answers(schema):
    operations = list(_operations(schema))
    assert len(operations) > 30
    for path, method, operation in operations:
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        errors = {code for code in responses if code.startswith(("4", "5"))}
        assert errors, where
        for code in errors:
            body = responses[code]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (where, code)
        if path != "/api/v1/auth/token/":
            assert {"401", "403"} <= errors, where
        if "{" in path:
            assert "404" in errors, where
        takes_input = "requestBody" in operation or any(
            p["in"] == "query" for p in operation.get("parameters", [])
        )
        if takes_input or method in {"post", "put", "patch"}:
            assert "400" in errors, where
        if (method, path) in STATE_CHANGES:
            assert "409" in errors, where
        if "requestBody" in operation:
            assert {"413", "415"} <= errors, where
    assert "429" in schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "413" in schema["paths"]["/api/v1/media/"]["post"]["responses"]
    for path in ("/api/v1/audit/events/", "/api/v1/reports/sla/"):
        assert "404" in schema["paths"][path]["get"]["responses"], path


def test_scheduled_at_is_nullable_and_null_on_an_unscheduled_post(schema, author, org):
    account = SocialAccountFactory(team=org["north"])
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="No time yet.",
        targets=[services.TargetInput(social_account_id=account.pk)],
    )
    output = schema["components"]["schemas"]["PostOutput"]
    assert output["properties"]["scheduled_at"]["nullable"] is True
    assert "scheduled_at" in output["required"]
    assert api(author).get(f"/api/v1/posts/{post.pk}/").json()["scheduled_at"] is None


def test_outputs_list_every_field_as_required(schema):
    for name in ("PostOutput", "TargetOutput", "FreezeOutput", "RequestOutput", "MediaOutput"):
        component = schema["components"]["schemas"][name]
        assert set(component["required"]) == set(component["properties"]), name


def test_business_rules_are_stated(schema):
    components = schema["components"]["schemas"]
    justification = components["BreakGlassInputRequest"]["properties"]["justification"]
    assert justification["minLength"] == MIN_JUSTIFICATION
    alt_text = components["MediaUploadInputRequest"]["properties"]["alt_text"]
    assert "Required" in alt_text["description"]
    assert alt_text["maxLength"] == 5000
    comment = components["DecideInputRequest"]["properties"]["comment"]
    assert "reject" in comment["description"]
    post = components["PostInputRequest"]["properties"]
    assert post["body"]["maxLength"] == services.MAX_BODY
    assert post["media"]["maxItems"] == services.MAX_MEDIA
    page_size = next(
        p
        for p in schema["paths"]["/api/v1/posts/"]["get"]["parameters"]
        if p["name"] == "page_size"
    )
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}


# Strict query parameters ----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "abc", "100000", "1.5", "²"])
@pytest.mark.parametrize("path", ["/api/v1/posts/", "/api/v1/teams/", "/api/v1/approvals/inbox/"])
def test_a_nonsense_page_size_is_a_400_naming_it(author, path, value):
    response = api(author).get(path, {"page_size": value})
    assert response.status_code == 400, response.content
    assert "page_size" in _fields(response)
    assert response.json()["message"].startswith("page_size")


def test_page_size_within_bounds_is_obeyed(author, org):
    account = SocialAccountFactory(team=org["north"])
    for body in ("one", "two", "three"):
        services.post_create(
            by=author,
            team_id=org["north"].pk,
            body=body,
            targets=[services.TargetInput(social_account_id=account.pk)],
        )
    first = api(author).get("/api/v1/posts/", {"page_size": "2"}).json()
    assert len(first["results"]) == 2
    second = api(author).get(first["next"]).json()
    assert [p["body"] for p in second["results"]] == ["one"]
    assert api(author).get("/api/v1/posts/", {"page_size": "500"}).status_code == 200


def _cursor(text: str) -> str:
    return b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "path,cursor",
    [
        ("/api/v1/posts/", "garbage!"),
        ("/api/v1/posts/", _cursor("o=x")),
        ("/api/v1/posts/", _cursor("r=7")),
        # A position that is not a value of the ordering field used to reach the database: a
        # 500 for an id ("-id") or a time ("activated_at").
        ("/api/v1/posts/", _cursor("p=abc")),
        ("/api/v1/posts/", _cursor("p=99999999999999999999999")),
        ("/api/v1/approvals/inbox/", _cursor("p=not-a-time")),
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400_naming_it(author, path, cursor):
    response = api(author).get(path, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert "cursor" in _fields(response)


def test_filters_refuse_values_they_do_not_know(author):
    client = api(author)
    for path, params, field in [
        ("/api/v1/posts/", {"status": "draft,nope"}, "status"),
        # "²" passed str.isdigit() and then broke int(): a 500.
        ("/api/v1/posts/", {"team": "²"}, "team"),
        # An id beyond a bigint reached the database: a 500 on SQLite.
        ("/api/v1/posts/", {"account": "99999999999999999999999"}, "account"),
        # A year-9999 time with a negative offset overflowed when turned into UTC: a 500.
        ("/api/v1/posts/", {"since": "9999-12-31T23:00:00-05:00"}, "since"),
        ("/api/v1/social-accounts/", {"channel": "myspace"}, "channel"),
        ("/api/v1/social-accounts/", {"team": "²"}, "team"),
        ("/api/v1/teams/", {"role": "king"}, "role"),
        ("/api/v1/notifications/", {"unread": "maybe"}, "unread"),
        ("/api/v1/freezes/", {"active": "maybe"}, "active"),
    ]:
        response = client.get(path, params)
        assert response.status_code == 400, (path, params, response.content)
        assert field in _fields(response), (path, params)


def test_known_filter_values_still_work(author):
    client = api(author)
    assert client.get("/api/v1/social-accounts/", {"channel": "mastodon"}).status_code == 200
    assert client.get("/api/v1/notifications/", {"unread": "1"}).status_code == 200
    assert client.get("/api/v1/notifications/", {"unread": "false"}).status_code == 200
    assert client.get("/api/v1/posts/", {"status": "draft,scheduled"}).status_code == 200


# Bugs the contract test found -----------------------------------------------------------------
def test_an_id_too_large_for_the_database_is_a_400_not_a_500(author):
    # `pk__in` with an id beyond a bigint overflowed SQLite's integers.
    response = api(author).post("/api/v1/notifications/read/", {"ids": [10**30]}, format="json")
    assert response.status_code == 400, response.content
    assert "ids" in _fields(response)


def test_an_address_under_api_that_matches_nothing_answers_in_the_error_shape(author):
    response = api(author).get("/api/v1/posts/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"message": "Not found.", "extra": {}}
    page = api(author).get("/no-such-page/")
    assert page.status_code == 404
    assert "text/html" in page["Content-Type"]


def test_a_body_in_a_media_type_the_operation_does_not_read_is_a_415(author):
    response = api(author).post(
        "/api/v1/notifications/read/", b"<ids/>", content_type="application/xml"
    )
    assert response.status_code == 415
    assert set(response.json()) == {"message", "extra"}


def test_a_body_django_refuses_answers_in_the_error_shape(author, settings):
    # Fields past DATA_UPLOAD_MAX_MEMORY_SIZE were Django's HTML 400 page, outside the schema.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api(author).post(
        "/api/v1/posts/", {"body": "x" * 2000, "team": "1"}, format="multipart"
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["message"] == "The request is too large."
    assert body["extra"]["code"] == "too_large"


def test_an_iso_week_of_a_year_before_1000_keeps_four_digits(lead, org):
    # "328-W36" did not match the documented week pattern.
    response = api(lead).get(
        "/api/v1/reports/volume/", {"since": "0328-09-01", "until": "0328-09-10"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["by_week"][0]["week"] == "0328-W35"


def test_break_glass_states_its_minimum_before_the_service_runs(lead, author, org):
    account = SocialAccountFactory(team=org["north"])
    post = services.post_create(
        by=author,
        team_id=org["north"].pk,
        body="Road closed.",
        targets=[services.TargetInput(social_account_id=account.pk)],
    )
    response = api(lead).post(
        f"/api/v1/posts/{post.pk}/break-glass/", {"justification": "  too short  "}, format="json"
    )
    assert response.status_code == 400
    assert _fields(response) == {"justification": [f"At least {MIN_JUSTIFICATION} characters."]}
    assert approvals.MIN_JUSTIFICATION == MIN_JUSTIFICATION
