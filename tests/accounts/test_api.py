"""The accounts API: token sign-in, /me/, teams and social accounts, scoped to the caller."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from networks.services import social_account_grant_drafting

from ..factories import PASSWORD, SocialAccountFactory, UserFactory, grant, make_team


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_token_is_issued_for_a_right_password_and_works(author):
    response = _client().post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    token = body["token"]
    # A named, expiring token of its own (accounts.ApiToken), stored only as a hash.
    assert {"id", "name", "expires_at", "read_only"} <= set(body)
    assert token.startswith("cxh_")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_token_refuses_a_wrong_password_naming_the_field(author):
    response = _client().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert "password" in body["extra"]["fields"]
    assert "token" not in body


def test_token_request_without_fields_names_them(db):
    response = _client().post("/api/v1/auth/token/", {}, format="json")
    assert response.status_code == 400
    fields = response.json()["extra"]["fields"]
    assert set(fields) == {"username", "password"}


def test_token_is_throttled_after_repeated_failures(author, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_SLOWDOWN_AFTER = 3
    for _ in range(3):
        _client().post("/api/v1/auth/token/", {"username": "alice", "password": "x"})
    # Even the right password is refused while throttled.
    response = _client().post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.json()["message"]


def test_anonymous_requests_are_refused(db):
    for url in ("/api/v1/me/", "/api/v1/teams/", "/api/v1/social-accounts/"):
        response = _client().get(url)
        assert response.status_code in (401, 403), url
        assert "message" in response.json()


def test_me_lists_memberships_and_roles(author, org):
    grant(author, org["south_centre"], Role.APPROVER)
    body = _client(author).get("/api/v1/me/").json()
    assert body["roles"] == ["approver", "drafter"]
    assert {(m["team_name"], m["role"]) for m in body["memberships"]} == {
        ("North", "drafter"),
        ("South Centre", "approver"),
    }


def test_teams_are_the_subtree_of_my_roles_with_parents(author, org):
    body = _client(author).get("/api/v1/teams/").json()
    assert [team["name"] for team in body["results"]] == ["North", "North Centre"]
    assert body["results"][1]["parent"] == org["north"].pk
    assert body["next"] is None


def test_a_team_outside_my_scope_is_404(author, org):
    client = _client(author)
    assert client.get(f"/api/v1/teams/{org['north_centre'].pk}/").status_code == 200
    response = client.get(f"/api/v1/teams/{org['south'].pk}/")
    assert response.status_code == 404
    assert response.json()["message"]


def test_social_accounts_are_scoped_and_never_show_tokens(author, north_account, south_account):
    north_account.set_tokens(access_token="secret-access", refresh_token="secret-refresh")
    north_account.save()
    client = _client(author)
    response = client.get("/api/v1/social-accounts/")
    assert [a["handle"] for a in response.json()["results"]] == ["@north_centre"]
    assert "secret" not in response.content.decode()
    assert client.get(f"/api/v1/social-accounts/{south_account.pk}/").status_code == 404
    assert client.get(f"/api/v1/social-accounts/{north_account.pk}/").status_code == 200


def test_a_per_account_grant_adds_exactly_that_account(outsider, north_account, org):
    other = SocialAccountFactory(team=org["north"], handle="@north")
    social_account_grant_drafting(account=north_account, user=outsider, by=None)
    handles = {
        a["handle"]
        for a in _client(outsider).get("/api/v1/social-accounts/?role=drafter").json()["results"]
    }
    assert "@north_centre" in handles
    assert other.handle not in handles


def test_bad_filter_values_name_the_parameter(author):
    response = _client(author).get("/api/v1/social-accounts/?role=boss")
    assert response.status_code == 400
    assert "role" in response.json()["extra"]["fields"]
    response = _client(author).get("/api/v1/social-accounts/?team=abc")
    assert response.status_code == 400
    assert "team" in response.json()["extra"]["fields"]


@pytest.mark.parametrize("size", [10, 300])
def test_team_and_account_lists_cost_the_same_queries_whatever_the_size(
    db, django_assert_num_queries, size
):
    root = make_team("Root")
    user = UserFactory(username="root-drafter")
    grant(user, root, Role.DRAFTER)
    region = make_team("Region", root)
    for index in range(size):
        team = make_team(f"Centre {index}", region)
        SocialAccountFactory(team=team, handle=f"@centre{index}")
    client = _client(user)
    # session-less forced auth: the queries are the selector's page (+ parents map for teams)
    with django_assert_num_queries(2):
        response = client.get("/api/v1/teams/?page_size=500")
    assert len(response.json()["results"]) == size + 2
    with django_assert_num_queries(1):
        response = client.get("/api/v1/social-accounts/?page_size=500")
    assert len(response.json()["results"]) == size


def test_schema_and_docs_are_served(author):
    client = _client(author)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/social-accounts/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
