"""Listening's API: watches made and changed by leads, their scope, their measures (JSON and
CSV), their false claims, the alerts and their actions, every error naming its field, and the
cost of every list."""

import csv
import io
from datetime import datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import Role
from audit.models import AuditEvent
from listening import alerts, services
from listening.models import Alert, AlertStatus, Source, Watch

from ..factories import UserFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def fields(response) -> dict:
    return response.json()["extra"]["fields"]


def make_watch(by, team, name="Scam", **values):
    return services.watch_create(
        by=by, team_id=team.pk, values={"name": name, "terms": ["scam"], **values}
    )


def make_alert(watch, n=0, **values):
    """An alert as a detector leaves it (the detectors' own path is tested in test_alerts)."""
    defaults = {
        "watch": watch,
        "kind": "spike",
        "key": f"spike:{n}",
        "window_start": T0 + n * HOUR,
        "window_end": T0 + n * HOUR + timedelta(minutes=15),
        "evidence": {"observed": 40 + n, "expected": 3.0},
        "peak": {"observed": 40 + n},
    }
    defaults.update(values)
    return Alert.objects.create(**defaults)


def store(watch, posts):
    stored = services.posts_store(watch=watch, network="x", posts=posts)
    if stored.claims:
        alerts.claims_matched(watch, stored.claims)
    return stored


# Watches --------------------------------------------------------------------------------------
def test_a_lead_creates_a_watch_and_reads_it_back(org, north_lead):
    response = api(north_lead).post(
        "/api/v1/watches/",
        {
            "team": org["north"].pk,
            "name": "  Census   scams ",
            "terms": ["census text", "Census text"],
            "exclude": ["census bureau jobs"],
            "hashtags": ["#Census2026"],
            "accounts": ["x:@statsbureau"],
            "languages": ["EN", "fr"],
            "networks": ["x"],
            "window_minutes": 10,
            "min_volume": 5,
            "topic_tags": ["#census", "census"],
            "topic_campaign": "Census 2026",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    watch = Watch.objects.get()
    assert data["id"] == watch.pk
    assert (data["team"], data["name"]) == (org["north"].pk, "Census scams")
    assert data["terms"] == ["census text", "Census text"]
    assert data["hashtags"] == ["Census2026"]
    assert data["languages"] == ["en", "fr"]
    assert (data["window_minutes"], data["baseline_hours"], data["min_volume"]) == (10, 24, 5)
    assert (data["active"], data["sandbox"], data["listening_since"]) == (True, False, None)
    assert (data["topic_tags"], data["topic_campaign"]) == (["census"], "Census 2026")
    assert data["open_alerts"] == 0
    assert sorted((s["network"], s["kind"], s["query"]) for s in data["sources"]) == [
        ("x", "account", "statsbureau"),
        ("x", "hashtag", "Census2026"),
        ("x", "search", "Census text"),
        ("x", "search", "census text"),
    ]
    assert {s["last_run_at"] for s in data["sources"]} == {None}
    assert AuditEvent.objects.filter(action="listening.watch_created").count() == 1
    assert api(north_lead).get(f"/api/v1/watches/{watch.pk}/").json() == data


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"languages": ["english"]}, "languages"),
        ({"networks": ["myspace"]}, "networks"),
        ({"terms": []}, "terms"),
        ({"terms": "census"}, "terms"),
        ({"hashtags": ["not a tag"]}, "hashtags"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"retention_days": True}, "retention_days"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"sandbox": "maybe"}, "sandbox"),
        ({"team": None}, "team"),
        ({"team": 10**30}, "team"),
    ],
)
def test_a_bad_watch_is_a_400_naming_the_field(org, north_lead, values, field):
    body = {"team": org["north"].pk, "name": "Census", "terms": ["census"], **values}

    response = api(north_lead).post("/api/v1/watches/", body, format="json")

    assert response.status_code == 400, response.json()
    assert field in fields(response)
    assert not Watch.objects.exists()


def test_a_watch_needs_a_team_i_lead(org, north_lead, author):
    south = api(north_lead).post(
        "/api/v1/watches/",
        {"team": org["south"].pk, "name": "Census", "terms": ["census"]},
        format="json",
    )
    # A drafter of North leads no team: the service refuses the team, as for any team not led.
    drafter = api(author).post(
        "/api/v1/watches/",
        {"team": org["north"].pk, "name": "Census", "terms": ["census"]},
        format="json",
    )

    assert (south.status_code, drafter.status_code) == (400, 400)
    assert "team" in fields(south)
    assert "team" in fields(drafter)
    assert not Watch.objects.exists()


def test_a_form_that_leaves_active_out_keeps_the_watch_on(org, north_lead, watch):
    made = api(north_lead).post(
        "/api/v1/watches/",
        {"team": org["north"].pk, "name": "By form", "terms": ["census"]},
        format="multipart",
    )
    changed = api(north_lead).patch(
        f"/api/v1/watches/{watch.pk}/", {"name": "Renamed"}, format="multipart"
    )

    assert (made.status_code, made.json()["active"]) == (201, True)
    assert (changed.status_code, changed.json()["active"]) == (200, True)


def test_i_see_the_watches_of_my_teams_only(org, lead, north_lead, author, outsider, watch):
    south = make_watch(lead, org["south"], name="South scam")

    def names(user):
        response = api(user).get("/api/v1/watches/")
        assert response.status_code == 200
        return [row["name"] for row in response.json()["results"]]

    assert names(author) == ["Census"]
    assert names(north_lead) == ["Census"]
    assert names(outsider) == ["South scam"]
    assert names(lead) == ["South scam", "Census"]  # newest first
    for path in (
        f"/api/v1/watches/{watch.pk}/",
        f"/api/v1/watches/{watch.pk}/measures/",
        f"/api/v1/watches/{watch.pk}/claims/",
    ):
        assert api(outsider).get(path).status_code == 404, path
    assert api(author).get(f"/api/v1/watches/{south.pk}/").status_code == 404
    assert api(author).get(f"/api/v1/watches/{2**64}/").status_code == 404


def test_a_lead_changes_a_watch_and_its_sources_follow(north_lead, watch):
    response = api(north_lead).patch(
        f"/api/v1/watches/{watch.pk}/",
        {"terms": ["census", "census text"], "hashtags": ["census"], "min_volume": 20},
        format="json",
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["name"], data["min_volume"], data["window_minutes"]) == ("Census", 20, 15)
    assert sorted((s["kind"], s["query"]) for s in data["sources"]) == [
        ("hashtag", "census"),
        ("search", "census"),
        ("search", "census text"),
    ]
    [event] = AuditEvent.objects.filter(action="listening.watch_changed")
    assert event.actor_id == north_lead.pk
    assert event.data["changed"]["min_volume"] == [10, 20]

    off = api(north_lead).patch(f"/api/v1/watches/{watch.pk}/", {"active": False}, format="json")

    assert (off.json()["active"], off.json()["sources"]) == (False, [])
    assert not Source.objects.filter(watch=watch).exists()


def test_only_a_lead_changes_a_watch(author, outsider, north_lead, watch):
    drafter = api(author).patch(f"/api/v1/watches/{watch.pk}/", {"name": "Mine"}, format="json")
    stranger = api(outsider).patch(f"/api/v1/watches/{watch.pk}/", {"name": "Mine"}, format="json")

    assert drafter.status_code == 403
    assert stranger.status_code == 404
    watch.refresh_from_db()
    assert watch.name == "Census"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"team": 1}, "team"),
        ({"sandbox": True}, "sandbox"),
        ({"languages": ["en-GB"]}, "languages"),
        ({"networks": ["myspace"]}, "networks"),
        ({"terms": []}, "terms"),  # its only term, and no hashtag or account
        ({"baseline_hours": 10**6}, "baseline_hours"),
        ({"active": "perhaps"}, "active"),
        ({"topic_tags": ["x" * 51]}, "topic_tags"),
        ({"topic_campaign": "x" * 101}, "topic_campaign"),
    ],
)
def test_a_bad_change_is_a_400_naming_the_field(north_lead, watch, values, field):
    response = api(north_lead).patch(f"/api/v1/watches/{watch.pk}/", values, format="json")

    assert response.status_code == 400, response.json()
    assert field in fields(response)
    watch.refresh_from_db()
    assert (watch.terms, watch.languages, watch.sandbox) == (["census"], [], False)


def test_a_watch_counts_its_open_alerts(north_lead, watch):
    make_alert(watch, 0)
    make_alert(watch, 1, status=AlertStatus.ACKNOWLEDGED)
    make_alert(watch, 2, status=AlertStatus.CLOSED)
    make_alert(watch, 3)

    listed = api(north_lead).get("/api/v1/watches/").json()["results"]
    read = api(north_lead).get(f"/api/v1/watches/{watch.pk}/").json()

    assert listed[0]["open_alerts"] == read["open_alerts"] == 2


@pytest.mark.parametrize("count", [3, 30])
def test_the_watch_list_costs_the_same_queries(org, lead, count, django_assert_num_queries):
    for n in range(count):
        watch = make_watch(lead, org["north" if n % 2 else "south"], name=f"Watch {n}")
        make_alert(watch, n)

    # the page (scope and open alerts in it), the sources of its watches
    with django_assert_num_queries(2):
        response = api(lead).get("/api/v1/watches/?page_size=100")

    rows = response.json()["results"]
    assert len(rows) == count
    assert {row["open_alerts"] for row in rows} == {1}
    assert all(len(row["sources"]) == 3 for row in rows)  # x, mastodon and bluesky search


# Measures -------------------------------------------------------------------------------------
def _measured(watch):
    """Five posts in the 09:00 hour (one negative, in French), two at 10:00, one at 11:30."""
    store(
        watch,
        [
            public("The census form is online", at=T0 + timedelta(minutes=1), likes=3),
            public("census done, easy", at=T0 + timedelta(minutes=2), reposts=9),
            public("census census", at=T0 + timedelta(minutes=3), author_handle="ann"),
            public("census again", at=T0 + timedelta(minutes=4), author_handle="ann"),
            public(
                "Le recensement est une arnaque horrible, census",
                at=T0 + timedelta(minutes=5),
                language="fr",
            ),
            public("census at ten", at=T0 + HOUR),
            public("census at ten again", at=T0 + HOUR + timedelta(minutes=30)),
            public("census later", at=T0 + 2.5 * HOUR),
        ],
    )


def test_measures_give_the_buckets_top_posts_authors_and_alerts(north_lead, author, watch):
    _measured(watch)
    inside = make_alert(watch, 1)  # 10:00 to 10:15
    make_alert(watch, 5)  # 14:00: after the range

    response = api(author).get(
        f"/api/v1/watches/{watch.pk}/measures/",
        {"resolution": "hour", "since": iso(T0), "until": iso(T0 + 3 * HOUR)},
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["watch"], data["resolution"]) == (watch.pk, "hour")
    assert (data["since"], data["until"]) == (iso(T0), iso(T0 + 3 * HOUR))
    assert [b["start"] for b in data["buckets"]] == [iso(T0 + n * HOUR) for n in range(3)]
    assert [b["volume"] for b in data["buckets"]] == [5, 2, 1]
    first = data["buckets"][0]
    assert first["authors"] == first["new_authors"] == 4  # ann twice
    assert first["positive"] + first["neutral"] + first["negative"] + first["not_scored"] == 5
    assert sum(first["languages"].values()) == 5
    top = data["top_posts"][0]
    assert (top["text"], top["reposts"], top["likes"]) == ("census done, easy", 9, None)
    assert set(top) == {
        "id",
        "network",
        "url",
        "author",
        "text",
        "posted_at",
        "likes",
        "reposts",
        "sentiment",
        "language",
    }
    assert (top["network"], top["posted_at"]) == ("x", iso(T0 + timedelta(minutes=2)))
    assert data["top_posts"][1]["likes"] == 3
    assert len(data["top_posts"]) == 5
    assert data["top_authors"][0] == {"author": "x:ann", "posts": 2}
    assert data["alerts"] == [
        {
            "id": inside.pk,
            "kind": "spike",
            "status": "open",
            "window_start": iso(T0 + HOUR),
            "window_end": iso(T0 + HOUR + timedelta(minutes=15)),
        }
    ]


def test_measures_by_minute_and_day(north_lead, watch):
    _measured(watch)
    client = api(north_lead)

    minutes = client.get(
        f"/api/v1/watches/{watch.pk}/measures/",
        {"resolution": "minute", "since": iso(T0), "until": iso(T0 + timedelta(minutes=10))},
    ).json()
    days = client.get(
        f"/api/v1/watches/{watch.pk}/measures/",
        {"resolution": "day", "since": "2026-11-30T00:00:00Z", "until": "2026-12-02T00:00:00Z"},
    ).json()

    assert [b["volume"] for b in minutes["buckets"]] == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert [(b["start"], b["volume"]) for b in days["buckets"]] == [
        ("2026-11-30T00:00:00Z", 0),
        ("2026-12-01T00:00:00Z", 8),
    ]


def test_measures_default_to_the_last_day_by_hour(north_lead, watch):
    _measured(watch)
    client = api(north_lead)

    with time_machine.travel(T0 + timedelta(hours=2, minutes=40), tick=False):
        hours = client.get(f"/api/v1/watches/{watch.pk}/measures/").json()
        minutes = client.get(f"/api/v1/watches/{watch.pk}/measures/?resolution=minute").json()
        days = client.get(f"/api/v1/watches/{watch.pk}/measures/?resolution=day").json()

    assert (hours["since"], hours["until"]) == (
        iso(T0 - timedelta(hours=21, minutes=20)),
        iso(T0 + timedelta(hours=2, minutes=40)),
    )
    assert len(hours["buckets"]) == 24
    assert [b["volume"] for b in hours["buckets"][-3:]] == [5, 2, 1]
    assert len(minutes["buckets"]) == 120
    assert sum(b["volume"] for b in minutes["buckets"]) == 3  # 10:00, 10:30 and 11:30
    assert len(days["buckets"]) == 30
    assert days["buckets"][-1]["volume"] == 8


def test_measures_as_csv(north_lead, watch):
    _measured(watch)
    query = {"resolution": "hour", "since": iso(T0), "until": iso(T0 + 3 * HOUR)}
    client = api(north_lead)
    as_json = client.get(f"/api/v1/watches/{watch.pk}/measures/", query).json()

    by_format = client.get(f"/api/v1/watches/{watch.pk}/measures/", {**query, "format": "csv"})
    by_accept = client.get(f"/api/v1/watches/{watch.pk}/measures/", query, HTTP_ACCEPT="text/csv")

    assert by_format.status_code == 200
    assert by_format["Content-Type"].startswith("text/csv")
    assert by_format["Content-Disposition"] == (
        f'attachment; filename="watch-{watch.pk}-hour-20261201T0900Z.csv"'
    )
    assert by_accept.content == by_format.content
    rows = list(csv.DictReader(io.StringIO(by_format.content.decode())))
    assert [row["start"] for row in rows] == [b["start"] for b in as_json["buckets"]]
    assert [int(row["volume"]) for row in rows] == [5, 2, 1]
    assert [int(row["negative"]) for row in rows] == [b["negative"] for b in as_json["buckets"]]
    languages = sorted(as_json["buckets"][0]["languages"])
    assert [name for name in rows[0] if name.startswith("lang_")] == [
        f"lang_{code or 'und'}" for code in languages
    ]
    assert sum(int(rows[0][f"lang_{code or 'und'}"]) for code in languages) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"resolution": "week"}, "resolution"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-01T09:00:00"}, "since"),  # no offset
        ({"until": "0001-01-01T00:00:00+01:00"}, "until"),  # before the calendar, in UTC
        ({"until": "9999-12-31T23:00:00Z"}, "until"),
        ({"since": "2026-12-01T10:00:00Z", "until": "2026-12-01T10:00:00Z"}, "until"),
        ({"since": "2026-12-01T10:00:00Z", "until": "2026-12-01T09:00:00Z"}, "until"),
        (  # 2,880 minutes
            {"resolution": "minute", "since": "2026-11-29T00:00:00Z", "until": "2026-12-01T00:00Z"},
            "since",
        ),
        ({"resolution": "hour", "since": "2026-01-01T00:00:00Z"}, "since"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_measures_parameters_are_a_400_naming_them(north_lead, watch, query, field):
    response = api(north_lead).get(f"/api/v1/watches/{watch.pk}/measures/", query)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert field in fields(response)


def test_an_error_asked_as_csv_answers_in_json(north_lead, watch):
    response = api(north_lead).get(
        f"/api/v1/watches/{watch.pk}/measures/?resolution=week", HTTP_ACCEPT="text/csv"
    )

    assert response.status_code == 400
    assert "resolution" in fields(response)


def test_two_thousand_buckets_are_allowed(north_lead, watch):
    since = T0 - 2000 * timedelta(minutes=1)

    response = api(north_lead).get(
        f"/api/v1/watches/{watch.pk}/measures/",
        {"resolution": "minute", "since": iso(since), "until": iso(T0)},
    )

    assert response.status_code == 200
    assert len(response.json()["buckets"]) == 2000


@pytest.mark.parametrize("count", [10, 1000])
def test_measures_cost_the_same_queries_however_many_posts(
    north_lead, watch, count, django_assert_num_queries
):
    store(watch, [public(f"census {n}", at=T0 + n * timedelta(seconds=10)) for n in range(count)])
    make_alert(watch, 0)
    query = {"resolution": "minute", "since": iso(T0), "until": iso(T0 + 3 * HOUR)}
    client = api(north_lead)

    # the watch, its buckets, its top posts, its top authors, its alerts
    with django_assert_num_queries(5):
        response = client.get(f"/api/v1/watches/{watch.pk}/measures/", query)
    # the watch, its buckets
    with django_assert_num_queries(2):
        exported = client.get(f"/api/v1/watches/{watch.pk}/measures/", {**query, "format": "csv"})

    data = response.json()
    assert sum(b["volume"] for b in data["buckets"]) == count
    assert (len(data["top_posts"]), len(data["alerts"])) == (5, 1)
    assert exported.status_code == 200


# False claims ---------------------------------------------------------------------------------
def test_a_lead_names_a_false_claim_and_its_matches_raise_an_alert(north_lead, author, watch):
    client = api(north_lead)

    made = client.post(
        f"/api/v1/watches/{watch.pk}/claims/",
        {"claim": "Census texts ask for bank details", "terms": ["bank details"]},
        format="json",
    )
    store(watch, [public("census text wants my bank details?!", at=T0)])

    assert made.status_code == 201, made.json()
    claim = made.json()
    assert (claim["watch"], claim["terms"], claim["active"]) == (watch.pk, ["bank details"], True)
    assert claim["created_by"] == north_lead.pk
    listed = api(author).get(f"/api/v1/watches/{watch.pk}/claims/").json()["results"]
    assert [row["id"] for row in listed] == [claim["id"]]
    [alert] = api(author).get("/api/v1/alerts/?kind=false_claim").json()["results"]
    assert (alert["claim"], alert["evidence"]["observed"]) == (claim["id"], 1)

    off = client.patch(
        f"/api/v1/watches/{watch.pk}/claims/{claim['id']}/", {"active": False}, format="json"
    )

    assert (off.status_code, off.json()["active"]) == (200, False)
    assert AuditEvent.objects.filter(action="listening.claim_changed").count() == 1


def test_false_claims_refuse_bad_input_and_people_who_do_not_lead(
    org, lead, north_lead, author, outsider, watch
):
    client = api(north_lead)
    claim = services.claim_create(by=north_lead, watch=watch, claim="Fake", terms=["fake"])
    south = make_watch(lead, org["south"])
    path = f"/api/v1/watches/{watch.pk}/claims/"

    no_text = client.post(path, {"claim": " ", "terms": ["x"]}, format="json")
    no_terms = client.post(path, {"claim": "Fake fines", "terms": []}, format="json")
    drafter = api(author).post(path, {"claim": "Fake", "terms": ["x"]}, format="json")
    stranger = api(outsider).post(path, {"claim": "Fake", "terms": ["x"]}, format="json")
    drafter_off = api(author).patch(f"{path}{claim.pk}/", {"active": False}, format="json")
    elsewhere = api(lead).patch(
        f"/api/v1/watches/{south.pk}/claims/{claim.pk}/", {"active": False}, format="json"
    )
    no_active = client.patch(f"{path}{claim.pk}/", {}, format="multipart")

    assert (no_text.status_code, no_terms.status_code) == (400, 400)
    assert "claim" in fields(no_text)
    assert "terms" in fields(no_terms)
    assert (drafter.status_code, stranger.status_code) == (403, 404)
    assert (drafter_off.status_code, elsewhere.status_code) == (403, 404)
    assert no_active.status_code == 400
    assert "active" in fields(no_active)
    claim.refresh_from_db()
    assert claim.active is True


# Alerts ---------------------------------------------------------------------------------------
def test_the_alert_list_filters_and_reads_newest_first(org, lead, north_lead, author, watch):
    spike = make_alert(watch, 0)
    sentiment = make_alert(watch, 1, kind="sentiment", key="sentiment")
    closed = make_alert(watch, 2, status=AlertStatus.CLOSED)
    other = make_watch(north_lead, org["north"], name="Other")
    elsewhere = make_alert(other, 3)

    def ids(query):
        response = api(author).get(f"/api/v1/alerts/?{query}")
        assert response.status_code == 200, response.json()
        return [alert["id"] for alert in response.json()["results"]]

    assert ids("") == [elsewhere.pk, closed.pk, sentiment.pk, spike.pk]
    assert ids(f"watch={watch.pk}") == [closed.pk, sentiment.pk, spike.pk]
    assert ids("status=open") == [elsewhere.pk, sentiment.pk, spike.pk]
    assert ids("status=acknowledged,closed") == [closed.pk]
    assert ids("kind=sentiment,false_claim") == [sentiment.pk]
    assert ids(f"watch={watch.pk}&kind=spike&status=open") == [spike.pk]
    data = api(author).get(f"/api/v1/alerts/{spike.pk}/").json()
    assert data == {
        "id": spike.pk,
        "watch": watch.pk,
        "watch_name": "Census",
        "kind": "spike",
        "status": "open",
        "window_start": iso(T0),
        "window_end": iso(T0 + timedelta(minutes=15)),
        "evidence": {"observed": 40, "expected": 3.0},
        "peak": {"observed": 40},
        "claim": None,
        "raised_at": data["raised_at"],
        "acknowledged_by": None,
        "acknowledged_at": None,
        "closed_by": None,
        "closed_at": None,
        "close_note": "",
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("kind=spike,storm", "kind"),
        ("watch=abc", "watch"),
        ("watch=99999999999999999999999", "watch"),
        ("cursor=xyz", "cursor"),
        ("page_size=0", "page_size"),
    ],
)
def test_a_bad_alert_filter_is_a_400_naming_it(author, query, field):
    response = api(author).get(f"/api/v1/alerts/?{query}")

    assert response.status_code == 400
    assert field in fields(response)


def test_no_alert_of_another_team_is_visible(org, lead, outsider, author, watch):
    mine = make_alert(watch)
    south = make_watch(lead, org["south"])
    theirs = make_alert(south)

    assert [a["id"] for a in api(outsider).get("/api/v1/alerts/").json()["results"]] == [theirs.pk]
    assert api(outsider).get(f"/api/v1/alerts/?watch={watch.pk}").json()["results"] == []
    assert api(outsider).get(f"/api/v1/alerts/{mine.pk}/").status_code == 404
    assert api(author).get(f"/api/v1/alerts/{theirs.pk}/").status_code == 404
    assert api(outsider).post(f"/api/v1/alerts/{mine.pk}/acknowledge/").status_code == 404
    assert api(outsider).post(f"/api/v1/alerts/{mine.pk}/close/").status_code == 404
    assert api(author).get(f"/api/v1/alerts/{2**64}/").status_code == 404


def test_a_lead_acknowledges_then_closes_an_alert(north_lead, watch):
    alert = make_alert(watch)
    client = api(north_lead)

    acknowledged = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    again = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    closed = client.post(
        f"/api/v1/alerts/{alert.pk}/close/", {"note": " Replied with the FAQ. "}, format="json"
    )
    closed_again = client.post(f"/api/v1/alerts/{alert.pk}/close/")

    assert acknowledged.status_code == 200
    assert (acknowledged.json()["status"], acknowledged.json()["acknowledged_by"]) == (
        "acknowledged",
        north_lead.pk,
    )
    assert acknowledged.json()["acknowledged_at"] is not None
    assert again.status_code == 409
    assert closed.status_code == 200
    data = closed.json()
    assert (data["status"], data["closed_by"], data["close_note"]) == (
        "closed",
        north_lead.pk,
        "Replied with the FAQ.",
    )
    assert closed_again.status_code == 409
    actions = list(
        AuditEvent.objects.filter(action__startswith="listening.alert_")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["listening.alert_acknowledged", "listening.alert_closed"]
    assert api(north_lead).get("/api/v1/watches/").json()["results"][0]["open_alerts"] == 0


def test_an_open_alert_may_be_closed_at_once_and_a_closed_one_not_acknowledged(north_lead, watch):
    alert = make_alert(watch)
    client = api(north_lead)

    closed = client.post(f"/api/v1/alerts/{alert.pk}/close/")
    late = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")

    assert closed.status_code == 200
    assert (closed.json()["close_note"], closed.json()["acknowledged_by"]) == ("", north_lead.pk)
    assert late.status_code == 409
    assert late.json()["message"]


def test_only_a_lead_acts_on_an_alert(author, org, watch):
    approver = UserFactory(username="abe")
    grant(approver, org["north"], Role.APPROVER)
    alert = make_alert(watch)

    for user in (author, approver):
        assert api(user).post(f"/api/v1/alerts/{alert.pk}/acknowledge/").status_code == 403
        assert api(user).post(f"/api/v1/alerts/{alert.pk}/close/").status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


@pytest.mark.parametrize("count", [3, 30])
def test_the_alert_list_costs_the_same_queries(org, lead, count, django_assert_num_queries):
    watches = [make_watch(lead, org[team], name=team) for team in ("north", "south", "hq")]
    for n in range(count):
        make_alert(
            watches[n % 3],
            n,
            status=AlertStatus.CLOSED if n % 2 else AlertStatus.OPEN,
            acknowledged_by=lead if n % 2 else None,
            closed_by=lead if n % 2 else None,
        )

    # the page (scope, watch, team and people joined in)
    with django_assert_num_queries(1):
        response = api(lead).get("/api/v1/alerts/?page_size=100")

    assert len(response.json()["results"]) == count


def test_the_schema_documents_listening(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    paths = schema["paths"]
    assert set(paths["/api/v1/watches/"]) >= {"get", "post"}
    assert "patch" in paths["/api/v1/watches/{watch_id}/"]
    measures = paths["/api/v1/watches/{watch_id}/measures/"]["get"]
    assert set(measures["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in measures["parameters"]} >= {"resolution", "since", "until", "format"}
    assert "409" in paths["/api/v1/alerts/{alert_id}/acknowledge/"]["post"]["responses"]
    assert "409" in paths["/api/v1/alerts/{alert_id}/close/"]["post"]["responses"]
    components = schema["components"]["schemas"]
    assert components["AlertKindEnum"]["enum"] == ["spike", "sentiment", "false_claim"]
    for name in ("WatchOutput", "AlertOutput", "MeasuresOutput", "TopPostOutput"):
        component = components[name]
        assert set(component["required"]) == set(component["properties"]), name
