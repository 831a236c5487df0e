"""`?format=csv|jsonl`: the whole filtered trail, streamed in constant memory, neutralised for
spreadsheets, and recorded as an event of its own before the first row goes out."""

import csv
import io
import json

import pytest
from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import audit_exported, record
from desk.exports import CSV_COLUMNS

URL = "/api/v1/audit/events/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def content(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content(response))))


def test_the_csv_holds_the_header_and_every_event_of_the_subtree_oldest_first(lead, trail):
    response = api(lead).get(URL, {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="audit-{today}.csv"'
    text = content(response)
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = [event for name, event in trail.items() if name != "login_failed"]
    assert [int(row["seq"]) for row in rows] == [event.seq for event in expected]
    created = rows[1]
    assert created["at"] == "2025-03-02T10:00:00Z"
    assert created["actor_name"] == "alice"
    assert created["team_name"] == "North Centre"
    assert created["data"] == '{"body":"Hello North"}'
    assert created["hash"] == ""  # chain hashes only on the events of the closed chain


def test_the_jsonl_lines_read_as_the_api_shows_each_event(lead, org, trail):
    client = api(lead)
    params = {"team": org["north"].pk}

    response = client.get(URL, {**params, "format": "jsonl"})

    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"].endswith('.jsonl"')
    header, *lines = [json.loads(line) for line in content(response).splitlines()]
    page = client.get(URL, params).json()["results"]
    # The page now starts with the export's own event, which the export itself leaves out.
    assert page[0]["action"] == "audit.exported"
    assert header["checkpoint"].startswith("cxhub.test/audit\n")
    proved = ("leaf_index", "tree_size", "inclusion_proof")
    assert all(line["tree_size"] == header["tree_size"] for line in lines)
    assert [{k: v for k, v in line.items() if k not in proved} for line in lines] == list(
        reversed(page[1:])
    )
    assert len(lines) == 3


def test_the_export_keeps_the_filters(lead, trail):
    rows = csv_rows(api(lead).get(URL, {"format": "csv", "action": "post.*", "actor": "alice"}))

    assert [row["action"] for row in rows] == ["post.created", "post.submitted"]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(lead, org):
    dangerous = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1:A2)", "\tTAB", "\rCR"]
    with transaction.atomic():
        for value in dangerous:
            record(
                actor=lead,
                action=value,
                object_type="x",
                object_id=value,
                team=org["north"],
                data={"value": value},
            )

    rows = csv_rows(api(lead).get(URL, {"format": "csv"}))

    assert [row["action"] for row in rows] == ["'" + value for value in dangerous]
    assert [row["object_id"] for row in rows] == ["'" + value for value in dangerous]
    # data is one JSON object per cell: it starts with "{" and reads back unchanged.
    assert [json.loads(row["data"])["value"] for row in rows] == dangerous
    assert {row["object_type"] for row in rows} == {"x"}


def test_the_jsonl_export_is_not_altered_for_spreadsheets(lead, org):
    with transaction.atomic():
        record(actor=lead, action="=cmd", team=org["north"])

    lines = content(api(lead).get(URL, {"format": "jsonl"})).splitlines()

    assert json.loads(lines[1])["action"] == "=cmd"  # after the header line


def test_each_export_is_recorded_before_the_first_row_goes_out(lead, org, trail):
    response = api(lead).get(
        URL, {"format": "csv", "team": org["north"].pk, "action": "post.*", "cursor": "x"}
    )

    # Not a byte has been read yet, and the event is there.
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == lead
    assert exported.team == org["north"]
    assert exported.data == {
        "format": "csv",
        "filters": {"team": str(org["north"].pk), "action": "post.*"},
    }
    # The export covers the trail up to itself, not its own event.
    seqs = [int(row["seq"]) for row in csv_rows(response)]
    assert exported.seq not in seqs
    assert len(seqs) == 2


def test_the_export_event_commits_in_a_transaction_of_its_own(lead):
    # Inside someone else's transaction it would commit (or roll back) with theirs, after rows
    # had already gone out.
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        audit_exported(by=lead, fmt="csv", filters={})


def test_an_unfiltered_export_is_recorded_with_no_team(lead, trail):
    content(api(lead).get(URL, {"format": "jsonl"}))

    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.team, exported.data) == (None, {"format": "jsonl", "filters": {}})


def test_events_written_during_an_export_are_left_out(lead, org, trail, settings):
    settings.AUDIT_EXPORT_BATCH_SIZE = 2
    chunks = iter(api(lead).get(URL, {"format": "jsonl"}).streaming_content)
    first = next(chunks)

    with transaction.atomic():
        record(actor=lead, action="late.event", team=org["north"])
    rest = b"".join(chunks)

    assert b"late.event" not in first + rest
    assert len((first + rest).splitlines()) == 1 + 6  # the header, the events


def test_the_csv_streams_a_batch_at_a_time(lead, org, settings, django_assert_num_queries):
    with transaction.atomic():
        for n in range(10):
            record(actor=lead, action="test.event", team=org["north"], data={"n": n})
    settings.AUDIT_EXPORT_BATCH_SIZE = 2

    response = api(lead).get(URL, {"format": "csv"})
    assert isinstance(response, StreamingHttpResponse)
    chunks = iter(response.streaming_content)

    # The header goes out before any row is read, the first rows after one batch query and one
    # for the nodes of the batch's proofs.
    with django_assert_num_queries(0):
        header = next(chunks)
    with django_assert_num_queries(2):
        first_rows = next(chunks)
    assert header.decode().startswith("seq,at,actor,")
    assert len(list(csv.reader(io.StringIO(first_rows.decode())))) == 2
    # The other four batches (two queries each), and the empty one that ends it (one; the
    # export's own event, sealed too, is left out).
    with django_assert_num_queries(4 * 2 + 1):
        rest = list(chunks)
    assert len(rest) == 4


def test_an_empty_export_has_the_header_only(lead, trail):
    response = api(lead).get(URL, {"format": "csv", "action": "nothing.matches"})

    assert content(response).splitlines() == [",".join(CSV_COLUMNS)]


def test_an_export_with_accept_text_csv_is_served(lead, trail):
    response = api(lead).get(URL, {"format": "csv"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert len(csv_rows(response)) == 6


def test_an_export_of_another_subtree_is_a_404_and_is_not_recorded(south_lead, org, trail):
    response = api(south_lead).get(URL, {"format": "csv", "team": org["north"].pk})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_a_south_leads_export_holds_south_only(south_lead, trail):
    rows = csv_rows(api(south_lead).get(URL, {"format": "csv"}))

    assert {row["team_name"] for row in rows} == {"South", "South Centre"}


def test_people_who_lead_nothing_cannot_export(author, trail):
    for fmt in ("csv", "jsonl"):
        assert api(author).get(URL, {"format": fmt}).status_code == 404
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize("params", [{"since": "soon"}, {"team": "x"}])
def test_an_export_with_bad_filters_is_a_400_and_is_not_recorded(lead, trail, params):
    response = api(lead).get(URL, {"format": "csv", **params})

    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_a_session_signed_in_lead_can_download_from_the_page_link(client, lead, trail):
    client.force_login(lead)

    response = client.get(URL, {"format": "csv"})

    assert response.status_code == 200
    assert len(csv_rows(response)) == 6
