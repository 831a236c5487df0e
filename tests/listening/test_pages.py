"""The listening pages through Django's test client: the list (scope, counts, the alerts not
closed, the new-watch form and its errors beside the fields), a watch's dashboard (charts with
their tables and alerts marked, resolution and range, top posts and authors, exports, false
claims, sources, settings, pause), an alert's page (evidence in words, acknowledge and close),
every refusal (404 for what one may not see, 403 not a lead, 409 wrong state, 400 beside the
field, never a 500), and queries that do not grow with the watches, alerts and posts."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEvent
from listening import alerts, sandbox, services
from listening.models import Alert, AlertStatus, FalseClaim, Measure, Source, Watch

from ..factories import UserFactory, grant
from .conftest import T0, public

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)
NOW = T0 + timedelta(hours=3, minutes=30, seconds=20)


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    page = re.sub(r"</?(?:a|strong|span|time|em|b)\b[^>]*>", "", html(response))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _now(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def demo(org, north_lead):
    """A sandbox watch of North with two hours of steady talk, a false claim, and a surge of a
    scam in its last minutes: spike, sentiment and false-claim alerts, all open."""
    watch = services.watch_create(
        by=north_lead,
        team_id=org["north"].pk,
        values={"name": "Census demo", "terms": ["census"], "sandbox": True},
    )
    services.claim_create(by=north_lead, watch=watch, claim="The census fines", terms=["fine"])
    sandbox.seed_history(watch, hours=3, now=NOW - 5 * MINUTE)
    _, raised = sandbox.surge(watch, posts=60, minutes=3, now=NOW)
    assert {alert.kind for alert in raised} == {"spike", "sentiment", "false_claim"}
    watch.refresh_from_db()
    return watch


def alert_of(watch, kind) -> Alert:
    return Alert.objects.get(watch=watch, kind=kind)


def new_watch_data(org, **changes) -> dict:
    data = {
        "team": str(org["north"].pk),
        "name": "Census scams",
        "terms": "census\ncensus form, fake fine",
        "exclude": "job",
        "hashtags": "#Census2026",
        "accounts": "x:stats.example",
        "languages": "en, CY",
        "networks": ["x", "mastodon"],
        "window_minutes": "20",
        "baseline_hours": "48",
        "min_volume": "12",
        "retention_days": "60",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


# The list --------------------------------------------------------------------------------------
def test_the_navigation_links_listening_for_everyone_with_a_role(client, author, db):
    page = html(signed_in(client, author).get("/listening/"))

    assert '<a href="/listening/" aria-current="page">Listening</a>' in page


def test_someone_signed_out_is_sent_to_sign_in_from_every_page(client, demo):
    alert = alert_of(demo, "spike")
    for url in (
        "/listening/",
        f"/listening/watches/{demo.pk}/",
        f"/listening/watches/{demo.pk}/measures.csv",
        f"/listening/watches/{demo.pk}/measures.json",
        f"/listening/alerts/{alert.pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    response = client.post(f"/listening/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    assert alert_of(demo, "spike").status == AlertStatus.OPEN


def test_the_list_shows_my_teams_watches_with_their_counts_and_open_alerts(
    client, org, north_lead, author, demo
):
    south_lead = UserFactory(username="sam")
    grant(south_lead, org["south"], Role.LEAD)
    south = services.watch_create(
        by=south_lead, team_id=org["south"].pk, values={"name": "Floods", "terms": ["flood"]}
    )
    alerts.alert_close(alert=alert_of(demo, "sentiment"), by=north_lead)
    alerts.alert_acknowledge(alert=alert_of(demo, "false_claim"), by=north_lead)

    response = signed_in(client, author).get("/listening/")

    assert response.status_code == 200
    page = html(response)
    assert f'id="watch-row-{demo.pk}"' in page and f'id="watch-row-{south.pk}"' not in page
    row = re.search(rf'<tr id="watch-row-{demo.pk}">(.*?)</tr>', page, re.S).group(1)
    cells = [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]
    hour = sum(
        Measure.objects.filter(
            watch=demo, resolution="minute", start__gte=(NOW - 60 * MINUTE).replace(second=0)
        ).values_list("volume", flat=True)
    )
    assert hour >= 60
    # Team, what it listens for, posts last hour and day, open, acknowledged, state.
    assert cells[0] == "North" and cells[1] == "census"
    assert cells[2] == str(hour) and int(cells[3]) == demo.hits.count()
    assert (cells[4], cells[5]) == ("1", "1")
    assert cells[6] == "Listening (demo)"
    # The alerts not closed, newest first; the closed one is not listed.
    listed = [int(pk) for pk in re.findall(r'<tr id="alert-row-(\d+)"', page)]
    newest_first = Alert.objects.exclude(status="closed").order_by("-raised_at", "-pk")
    assert listed == [alert.pk for alert in newest_first] and len(listed) == 2
    # A drafter starts no watch.
    assert "New watch" not in page and "Leads of a team start watches for it." in page


def test_the_outsider_sees_no_watch_and_no_alert(client, outsider, demo):
    page = html(signed_in(client, outsider).get("/listening/"))

    assert "Census demo" not in page
    assert 'id="no-watches"' in page and 'id="no-alerts"' in page


def test_a_lead_starts_a_watch_typed_one_a_line_or_with_commas(client, org, north_lead):
    response = signed_in(client, north_lead).post("/listening/watches/new/", new_watch_data(org))

    watch = Watch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/listening/watches/{watch.pk}/"
    assert (watch.team, watch.name, watch.created_by) == (org["north"], "Census scams", north_lead)
    assert watch.terms == ["census", "census form", "fake fine"]
    assert (watch.exclude, watch.hashtags, watch.accounts) == (
        ["job"],
        ["Census2026"],
        ["x:stats.example"],
    )
    assert (watch.languages, sorted(watch.networks)) == (["en", "cy"], ["mastodon", "x"])
    assert (watch.window_minutes, watch.baseline_hours, watch.min_volume) == (20, 48, 12)
    assert (watch.retention_days, watch.active, watch.sandbox) == (60, True, False)
    assert Source.objects.filter(watch=watch).exists()
    assert AuditEvent.objects.filter(action="listening.watch_created").count() == 1
    page = text_of(client.get(response["Location"]))
    assert "The watch “Census scams” is listening." in page


def test_numbers_left_empty_take_the_defaults(client, org, north_lead):
    data = new_watch_data(
        org, window_minutes="", baseline_hours="", min_volume="", retention_days="", networks=None
    )
    signed_in(client, north_lead).post("/listening/watches/new/", data)

    watch = Watch.objects.get()
    assert (watch.window_minutes, watch.baseline_hours, watch.min_volume) == (15, 24, 10)
    assert (watch.retention_days, watch.networks) == (30, [])


def test_the_new_watch_form_offers_the_teams_i_lead_and_the_listening_networks(client, org, lead):
    page = html(signed_in(client, lead).get("/listening/"))

    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page)
    assert [name for _, name in offered] == [
        "HQ",
        "— North",
        "— — North Centre",
        "— South",
        "— — South Centre",
    ]
    assert re.findall(r'name="networks" value="(\w+)"', page) == ["bluesky", "mastodon", "x"]
    assert 'name="window_minutes" value="15"' in page
    assert 'name="retention_days" value="30"' in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"hashtags": "census day"}, "hashtags", "'census day' is not a hashtag"),
        ({"languages": "en, e1"}, "languages", "'e1' is not a language code"),
        ({"name": "  "}, "name", "Give the watch a name."),
        ({"terms": "", "hashtags": "", "accounts": ""}, "terms", "Give at least one term"),
        ({"window_minutes": "0"}, "window_minutes", "A whole number from 1 to 1,440."),
        ({"min_volume": "ten"}, "min_volume", "A whole number."),
        ({"retention_days": "9" * 5000}, "retention_days", "A whole number."),
        ({"networks": ["facebook"]}, "networks", "Choose networks from the list."),
        ({"team": "north"}, "team", "Choose a team from the list."),
    ],
)
def test_a_wrong_value_comes_back_beside_its_field_with_what_was_typed(
    client, org, north_lead, changes, field, message
):
    response = signed_in(client, north_lead).post(
        "/listening/watches/new/", new_watch_data(org, **changes)
    )

    assert response.status_code == 400
    page = html(response)
    error = re.search(rf'<p class="field-error" id="new-{field}-error">([^<]*)</p>', page)
    assert error and message in error.group(1).replace("&#x27;", "'")
    assert f'<a href="#new-{field}">' in page  # the summary links to the field
    if field not in ("networks", "team"):
        assert re.search(rf'id="new-{field}"[^>]*aria-invalid="true"', page)
    typed = changes.get("name", "Census scams")
    assert f'name="name" value="{typed}"' in page
    assert "census form, fake fine</textarea>" in page or field == "terms"
    assert not Watch.objects.exists()


def test_a_team_i_do_not_lead_is_refused_beside_the_team(client, org, author, north_lead):
    response = signed_in(client, author).post("/listening/watches/new/", new_watch_data(org))

    assert response.status_code == 400
    assert "No team with this id that you lead." in html(response)
    assert not Watch.objects.exists()


# The dashboard ---------------------------------------------------------------------------------
def test_the_dashboard_draws_volume_sentiment_and_languages_each_with_its_table(
    client, author, demo
):
    response = signed_in(client, author).get(f"/listening/watches/{demo.pk}/")

    assert response.status_code == 200
    page = html(response)
    # By the hour over the last 24 hours, the current hour included.
    rows = re.findall(r'<tr><th scope="row"><time datetime="([^"]+)">', page)
    assert len(rows) == 2 * 24  # volume and sentiment by the hour
    assert rows[23] == NOW.replace(minute=0, second=0).isoformat()
    charts = re.findall(r'<svg [^>]*role="img" aria-labelledby="([^"]+)"', page)
    assert charts == [
        "chart-volume-title chart-volume-desc",
        "chart-sentiment-title chart-sentiment-desc",
        "chart-languages-title chart-languages-desc",
    ]
    for chart in ("chart-volume", "chart-sentiment", "chart-languages"):
        assert f'<title id="{chart}-title">' in page and f'<desc id="{chart}-desc">' in page
    volume = demo.hits.count()
    assert f'<dd id="figure-posts">{volume}</dd>' in page
    assert f"{volume:,} posts from" in page  # the volume chart's description
    # Sentiments have patterns and a legend, not colour alone.
    assert 'fill="url(#chart-sentiment-negative)"' in page
    for label in ("Negative", "Neutral", "Positive", "Not scored"):
        assert f">{label}</text>" in page
    assert re.search(
        r"<th scope=\"row\">English <span class=\"muted\">\(en\)</span></th>"
        rf"<td class=\"num\">{volume}</td><td class=\"num\">100%</td>",
        page,
    )


def test_the_alerts_are_marked_on_the_charts_with_a_label_and_listed(client, author, demo):
    page = html(signed_in(client, author).get(f"/listening/watches/{demo.pk}/?resolution=minute"))

    marked = Alert.objects.filter(watch=demo).order_by("window_start", "pk")
    # Each alert: a hatched band on both charts over time; markers with labels ("A1", "A2–A3").
    assert page.count('class="alert-band"') == 2 * marked.count()
    labels = re.findall(r'font-weight="700" fill="#8a3b00">([^<]+)</text>', page)
    assert labels and all(label.startswith("A") for label in labels)
    assert "".join(labels).count("A1") == 2
    listed = re.findall(r'<li><strong>A(\d)</strong>: <a href="/listening/alerts/(\d+)/">', page)
    assert [(int(n), int(pk)) for n, pk in listed] == [
        (n, alert.pk) for n, alert in enumerate(marked, start=1)
    ]
    assert "Alerts marked: A1:" in page  # and in the charts' descriptions


@pytest.mark.parametrize(
    ("query", "buckets", "first"),
    [
        ("resolution=minute", 60, NOW.replace(second=0) - 59 * MINUTE),
        ("resolution=minute&range=6h", 360, NOW.replace(second=0) - 359 * MINUTE),
        ("resolution=hour&range=7d", 168, NOW.replace(minute=0, second=0) - timedelta(hours=167)),
        ("resolution=day", 30, NOW.replace(hour=0, minute=0, second=0) - timedelta(days=29)),
        ("resolution=day&range=90d", 90, NOW.replace(hour=0, minute=0, second=0) - timedelta(89)),
    ],
)
def test_the_resolution_and_range_choose_the_buckets(client, author, demo, query, buckets, first):
    page = html(signed_in(client, author).get(f"/listening/watches/{demo.pk}/?{query}"))

    rows = re.findall(r'<tr><th scope="row"><time datetime="([^"]+)">', page)
    assert len(rows) == 2 * buckets
    assert rows[0] == first.isoformat()
    assert f"/listening/watches/{demo.pk}/measures.csv?resolution=" in page


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("resolution=week", "resolution", "Choose minute, hour or day."),
        ("range=2y", "range", "Choose a range from the list."),
        ("resolution=minute&range=7d", "range", "By the minute, at most 800 minutes"),
        ("resolution=day&range=6h", "range", "By the day, choose a range of whole days."),
    ],
)
def test_a_wrong_range_is_named_and_the_rest_of_the_page_stays(
    client, author, demo, query, field, message
):
    response = signed_in(client, author).get(f"/listening/watches/{demo.pk}/?{query}")

    assert response.status_code == 400
    page = html(response)
    assert message in page and f'href="#span-{field}"' in page
    assert "<svg" not in page
    assert "Known false claims" in page and "The census fines" in page
    csv_response = client.get(f"/listening/watches/{demo.pk}/measures.csv?{query}")
    assert csv_response.status_code == 400 and message in csv_response.content.decode()


def test_top_posts_and_authors_with_the_publics_text_escaped(client, author, watch):
    services.posts_store(
        watch=watch,
        network="x",
        posts=[
            public(
                "census <script>alert(1)</script>",
                at=NOW - 10 * MINUTE,
                author_handle="mallory",
                author_name="<b>Mallory</b>",
                url="https://x.example/mallory/1",
                likes=5,
                reposts=40,
            ),
            public("census form done", at=NOW - 9 * MINUTE, author_handle="amira", likes=90),
            public("census again", at=NOW - 8 * MINUTE, author_handle="amira", url="javascript:x"),
        ],
    )

    page = html(signed_in(client, author).get(f"/listening/watches/{watch.pk}/"))

    top = re.search(r'<table class="top-posts".*?</table>', page, re.S).group(0)
    assert "<script>alert(1)</script>" not in page
    assert "census &lt;script&gt;alert(1)&lt;/script&gt;" in top
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in top
    # By reposts, then likes.
    assert top.index("Mallory") < top.index("census form done") < top.index("census again")
    assert 'href="https://x.example/mallory/1"' in top and "javascript:" not in page
    authors = re.search(r'<table class="top-authors".*?</table>', page, re.S).group(0)
    assert re.findall(
        r'<th scope="row">([^<]+)</th><td>X</td><td class="num">(\d+)</td>', authors
    ) == [
        ("amira", "2"),
        ("mallory", "1"),
    ]


def test_the_exports_give_the_dashboards_figures_as_csv_and_json(client, author, demo):
    signed_in(client, author)

    response = client.get(f"/listening/watches/{demo.pk}/measures.csv?resolution=minute&range=1h")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(f'attachment; filename="watch-{demo.pk}-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 60 and rows[-1]["start"] == NOW.strftime("%Y-%m-%dT%H:%M:00Z")
    total = sum(int(row["volume"]) for row in rows)
    assert total == sum(int(row["lang_en"]) for row in rows) > 60

    response = client.get(f"/listening/watches/{demo.pk}/measures.json?resolution=hour")
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert (body["watch"], body["resolution"], len(body["buckets"])) == (demo.pk, "hour", 24)
    assert sum(bucket["volume"] for bucket in body["buckets"]) == demo.hits.count()


def test_the_sources_show_their_last_read_and_problem(client, author, watch):
    Source.objects.filter(watch=watch).update(
        last_run_at=NOW - MINUTE, last_error="X answered 429: too many requests", failures=3
    )

    page = text_of(signed_in(client, author).get(f"/listening/watches/{watch.pk}/"))

    assert "Search: census X" in page
    assert "X answered 429: too many requests (3 failed reads in a row)" in page


def test_a_drafter_sees_the_dashboard_without_the_leads_forms(client, author, demo):
    page = html(signed_in(client, author).get(f"/listening/watches/{demo.pk}/"))

    assert "Settings" not in page and "Name a false claim" not in page
    assert "Pause listening" not in page


def test_a_lead_changes_the_watch_and_it_is_audited(client, north_lead, watch):
    data = {
        "name": "Census and scams",
        "terms": "census, scam",
        "exclude": "",
        "hashtags": "",
        "accounts": "",
        "languages": "en",
        "networks": ["x"],
        "window_minutes": "30",
        "baseline_hours": "24",
        "min_volume": "10",
        "retention_days": "30",
    }
    response = signed_in(client, north_lead).post(f"/listening/watches/{watch.pk}/edit/", data)

    assert response.status_code == 302
    watch.refresh_from_db()
    assert (watch.name, watch.terms, watch.languages) == (
        "Census and scams",
        ["census", "scam"],
        ["en"],
    )
    assert watch.window_minutes == 30
    assert set(watch.sources.values_list("query", flat=True)) == {"census", "scam"}
    assert AuditEvent.objects.filter(action="listening.watch_changed").count() == 1
    page = html(client.get(f"/listening/watches/{watch.pk}/"))
    assert "Saved the changes to “Census and scams”." in page
    assert '<textarea id="edit-terms" name="terms"' in page and "census\nscam</textarea>" in page


def test_a_wrong_setting_comes_back_beside_its_field(client, north_lead, watch):
    response = signed_in(client, north_lead).post(
        f"/listening/watches/{watch.pk}/edit/",
        {"name": "Census", "terms": "census", "languages": "e!", "window_minutes": "15"},
    )

    assert response.status_code == 400
    page = html(response)
    assert re.search(r'id="edit-languages-error">[^<]*is not a language code', page)
    assert "e!</textarea>" in page
    watch.refresh_from_db()
    assert watch.languages == []


def test_only_a_lead_changes_pauses_or_adds_a_claim_to_a_watch(client, author, watch):
    signed_in(client, author)

    edit = client.post(f"/listening/watches/{watch.pk}/edit/", {"name": "Mine", "terms": "x"})
    pause = client.post(f"/listening/watches/{watch.pk}/active/", {"active": "0"})
    claim = client.post(f"/listening/watches/{watch.pk}/claims/", {"claim": "c", "terms": "t"})

    assert (edit.status_code, pause.status_code, claim.status_code) == (403, 403, 403)
    assert "Only a lead of the watch" in html(edit)
    assert "Only a lead of the watch" in html(pause)
    assert "Only a lead of the watch" in html(claim)
    watch.refresh_from_db()
    assert (watch.name, watch.active) == ("Census", True)
    assert not FalseClaim.objects.exists()


def test_a_lead_pauses_and_resumes_a_watch(client, north_lead, watch):
    signed_in(client, north_lead)

    response = client.post(f"/listening/watches/{watch.pk}/active/", {"active": "0"})
    watch.refresh_from_db()
    assert response.status_code == 302 and not watch.active
    assert not watch.sources.exists()
    page = html(client.get(f"/listening/watches/{watch.pk}/"))
    assert "Paused “Census”: it reads nothing until resumed." in page
    assert "Resume listening" in page

    client.post(f"/listening/watches/{watch.pk}/active/", {"active": "1"})
    watch.refresh_from_db()
    assert watch.active and watch.sources.exists()

    wrong = client.post(f"/listening/watches/{watch.pk}/active/", {"active": "maybe"})
    assert wrong.status_code == 400 and "Choose pause or resume." in html(wrong)


def test_a_lead_names_a_false_claim_and_a_wrong_one_comes_back_beside_its_field(
    client, north_lead, watch
):
    signed_in(client, north_lead)

    response = client.post(
        f"/listening/watches/{watch.pk}/claims/",
        {"claim": "Census texts ask for bank details", "terms": "bank details\npay a fine"},
    )
    assert response.status_code == 302
    claim = FalseClaim.objects.get()
    assert (claim.watch, claim.terms) == (watch, ["bank details", "pay a fine"])
    page = html(client.get(f"/listening/watches/{watch.pk}/"))
    assert "Census texts ask for bank details" in page and "Terms: bank details, pay a fine" in page

    refused = client.post(
        f"/listening/watches/{watch.pk}/claims/", {"claim": "Another claim", "terms": " , "}
    )
    assert refused.status_code == 400
    page = html(refused)
    assert re.search(r'id="claim-terms-error">Give at least one term', page)
    assert "Another claim</textarea>" in page
    assert FalseClaim.objects.count() == 1


def test_a_watch_i_may_not_see_is_a_404_for_every_page_and_action(client, outsider, demo):
    signed_in(client, outsider)
    base = f"/listening/watches/{demo.pk}"
    for url in (f"{base}/", f"{base}/measures.csv", f"{base}/measures.json"):
        assert client.get(url).status_code == 404, url
    for url in (f"{base}/edit/", f"{base}/active/", f"{base}/claims/"):
        assert client.post(url, {"active": "0", "name": "x"}).status_code == 404, url
    assert client.get("/listening/watches/999999/").status_code == 404
    demo.refresh_from_db()
    assert demo.active


# An alert ---------------------------------------------------------------------------------------
def test_an_alerts_page_says_its_evidence_in_words(client, author, demo):
    signed_in(client, author)
    spike, sentiment, claim = (
        alert_of(demo, kind) for kind in ("spike", "sentiment", "false_claim")
    )

    page = text_of(client.get(f"/listening/alerts/{spike.pk}/"))
    assert "Spike in volume on “Census demo”" in page
    observed = spike.evidence["observed"]
    assert f"{observed} posts from " in page and "were expected from the baseline" in page
    assert f"Baseline: {spike.evidence['baseline']['volume']} posts from" in page
    assert "Status Open" in page and "Acknowledged Not yet" in page
    posts = re.findall(
        r"<li>\s*<p class=\"entry-meta\">", html(client.get(f"/listening/alerts/{spike.pk}/"))
    )
    assert len(posts) == len(spike.evidence["top_posts"]) == 5

    page = text_of(client.get(f"/listening/alerts/{sentiment.pk}/"))
    assert "scored posts from" in page and "are negative" in page and "in the baseline" in page

    page = text_of(client.get(f"/listening/alerts/{claim.pk}/"))
    assert "repeat the false claim “The census fines”" in page
    assert "The claim’s terms: fine." in page


def test_a_lead_acknowledges_then_closes_an_alert_with_a_note(client, north_lead, demo):
    alert = alert_of(demo, "spike")
    signed_in(client, north_lead)
    page = html(client.get(f"/listening/alerts/{alert.pk}/"))
    assert 'id="alert-acknowledge"' in page and 'id="alert-close"' in page

    response = client.post(f"/listening/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302 and response["Location"] == f"/listening/alerts/{alert.pk}/"
    page = text_of(client.get(response["Location"]))
    assert "You acknowledged the alert" in page
    assert "Status Acknowledged" in page and "Acknowledged By nora" in page
    assert 'id="alert-acknowledge"' not in html(client.get(f"/listening/alerts/{alert.pk}/"))

    response = client.post(f"/listening/alerts/{alert.pk}/close/", {"note": "Press line out."})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.closed_by, alert.close_note) == (
        "closed",
        north_lead,
        "Press line out.",
    )
    page = text_of(client.get(f"/listening/alerts/{alert.pk}/"))
    assert "Closed the alert." in page and "Closed By nora" in page and "Press line out." in page
    assert "Closed: a new surge on this watch raises a new alert." in page
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"listening.alert_acknowledged", "listening.alert_closed"} <= actions


def test_acting_on_an_alert_in_the_wrong_state_is_a_409_shown_as_a_message(
    client, north_lead, demo
):
    alert = alert_of(demo, "spike")
    alerts.alert_close(alert=alert, by=north_lead)
    signed_in(client, north_lead)

    again = client.post(f"/listening/alerts/{alert.pk}/acknowledge/")
    close = client.post(f"/listening/alerts/{alert.pk}/close/", {"note": "twice"})

    assert (again.status_code, close.status_code) == (409, 409)
    assert "This alert is closed; it cannot be made acknowledged." in html(again)
    assert "This alert is closed; it cannot be made closed." in html(close)
    assert 'class="message-error"' in html(close)


def test_someone_who_is_not_a_lead_sees_no_buttons_and_is_refused_with_a_403(client, author, demo):
    alert = alert_of(demo, "spike")
    signed_in(client, author)

    page = text_of(client.get(f"/listening/alerts/{alert.pk}/"))
    response = client.post(f"/listening/alerts/{alert.pk}/acknowledge/")

    assert "Acknowledge" not in page.replace("Acknowledged", "")
    assert "Leads of the team “North” (or a team above it) acknowledge and close" in page
    assert response.status_code == 403
    assert "Only a lead of the watch's team can do this to its alerts." in html(response).replace(
        "&#x27;", "'"
    )
    assert alert_of(demo, "spike").status == AlertStatus.OPEN


def test_a_lead_of_a_team_above_acts_on_the_alert(client, lead, demo):
    alert = alert_of(demo, "sentiment")

    signed_in(client, lead).post(f"/listening/alerts/{alert.pk}/acknowledge/")

    assert alert_of(demo, "sentiment").acknowledged_by == lead


def test_an_alert_i_may_not_see_is_a_404_for_its_page_and_actions(client, outsider, demo):
    alert = alert_of(demo, "spike")
    signed_in(client, outsider)

    assert client.get(f"/listening/alerts/{alert.pk}/").status_code == 404
    assert client.post(f"/listening/alerts/{alert.pk}/acknowledge/").status_code == 404
    assert client.post(f"/listening/alerts/{alert.pk}/close/").status_code == 404
    assert client.get("/listening/alerts/999999/").status_code == 404
    assert alert_of(demo, "spike").status == AlertStatus.OPEN


# Queries ----------------------------------------------------------------------------------------
def _watches(org, by, count: int, *, start: int = 0) -> list[Watch]:
    """`count` watches of North, each with an open alert, an acknowledged one and posts."""
    made = []
    for n in range(start, start + count):
        watch = services.watch_create(
            by=by, team_id=org["north"].pk, values={"name": f"Watch {n}", "terms": [f"w{n}"]}
        )
        services.posts_store(
            watch=watch,
            network="x",
            posts=[public(f"w{n} post {k}", at=NOW - k * MINUTE) for k in range(3)],
        )
        for kind, status in (("spike", "open"), ("sentiment", "acknowledged")):
            Alert.objects.create(
                watch=watch,
                kind=kind,
                key=kind,
                status=status,
                window_start=NOW - 15 * MINUTE,
                window_end=NOW,
                evidence={"observed": 3},
                acknowledged_by=by if status == "acknowledged" else None,
            )
        made.append(watch)
    return made


def test_the_list_costs_the_same_queries_for_2_and_12_watches(
    client, org, north_lead, django_assert_num_queries
):
    _watches(org, north_lead, 2)
    signed_in(client, north_lead)
    with CaptureQueriesContext(connection) as baseline:
        response = client.get("/listening/")
    assert response.status_code == 200 and html(response).count('id="watch-row-') == 2

    _watches(org, north_lead, 10, start=2)
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get("/listening/")
    page = html(response)
    assert page.count('id="watch-row-') == 12 and page.count('id="alert-row-') == 24


def test_the_dashboard_costs_the_same_queries_for_few_and_many_posts_and_alerts(
    client, org, north_lead, watch, django_assert_num_queries
):
    services.posts_store(watch=watch, network="x", posts=[public("census one", at=NOW - MINUTE)])
    signed_in(client, north_lead)
    with CaptureQueriesContext(connection) as baseline:
        assert client.get(f"/listening/watches/{watch.pk}/").status_code == 200

    services.posts_store(
        watch=watch,
        network="x",
        posts=[
            public(f"census {n}", at=NOW - n * 7 * MINUTE, language=("en", "fr", "de")[n % 3])
            for n in range(1, 150)
        ],
    )
    for n in range(5):
        services.claim_create(by=north_lead, watch=watch, claim=f"Claim {n}", terms=[f"t{n}"])
        Alert.objects.create(
            watch=watch,
            kind="false_claim",
            key=f"false_claim:{n}",
            window_start=NOW - (n + 1) * timedelta(hours=2),
            window_end=NOW - n * timedelta(hours=2),
            evidence={"observed": 2},
        )
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get(f"/listening/watches/{watch.pk}/")
    assert html(response).count('class="alert-band"') == 2 * 5


def test_an_alerts_page_costs_the_same_queries_whatever_its_evidence(
    client, north_lead, demo, django_assert_num_queries
):
    small = Alert.objects.create(
        watch=demo,
        kind="spike",
        key="spike-small",
        status="closed",
        window_start=NOW - MINUTE,
        window_end=NOW,
        evidence={},
        acknowledged_by=north_lead,
        closed_by=north_lead,
    )
    big = alert_of(demo, "false_claim")
    signed_in(client, north_lead)
    with CaptureQueriesContext(connection) as baseline:
        client.get(f"/listening/alerts/{small.pk}/")
    with django_assert_num_queries(len(baseline.captured_queries)):
        response = client.get(f"/listening/alerts/{big.pk}/")
    assert response.status_code == 200


def test_the_list_shows_the_watches_summed_by_the_hour_and_exports_them(
    org, lead, north_lead, watch, client
):
    other = services.watch_create(
        by=lead, team_id=org["south"].pk, values={"name": "South", "terms": ["census"]}
    )
    now = timezone.now()
    for target, count in ((watch, 3), (other, 2)):
        services.posts_store(
            watch=Watch.objects.get(pk=target.pk),
            network="x",
            posts=[public(f"census news {n}", at=now - timedelta(minutes=5)) for n in range(count)],
        )

    client.force_login(lead)  # HQ's lead sees both watches
    page = client.get("/listening/")
    assert page.status_code == 200
    assert b"Across your watches" in page.content
    assert b"(5 posts;" in page.content
    rows = list(csv.reader(io.StringIO(client.get("/listening/measures.csv").content.decode())))
    assert sum(int(row[1]) for row in rows[1:]) == 5
    assert json.loads(client.get("/listening/measures.json").content)["summed"] is True
    # North's lead sees North's watch only.
    client.force_login(north_lead)
    rows = list(csv.reader(io.StringIO(client.get("/listening/measures.csv").content.decode())))
    assert sum(int(row[1]) for row in rows[1:]) == 3
    assert client.get("/listening/measures.csv?resolution=minute&range=90d").status_code == 400


def test_the_dashboard_says_what_each_network_it_reads_cannot_see(client, north_lead, watch):
    client.force_login(north_lead)

    page = client.get(f"/listening/watches/{watch.pk}/").content.decode()

    assert 'id="blind-spots"' in page
    assert "X" in page and "7 days" in page  # X's recent search sees a week
