"""The verify page of an event (linked from the audit trail and the timeline): the event, its leaf,
the checkpoint and the proof, checked on the server with the standalone verifier's functions;
the proof and the verifier to download."""

import json
from pathlib import Path

from audit.models import AuditEvent
from audit.verifier import NoteVerifier, verify_export
from tests.settings import TEST_AUDIT_VERIFIER_KEY

VERIFIER = Path(__file__).resolve().parents[2] / "audit" / "verifier.py"


def url(event) -> str:
    return f"/audit/events/{event.seq}/verify/"


def test_the_page_shows_the_event_verified(client, lead, trail):
    event = trail["north_centre.post_created"]
    client.force_login(lead)

    response = client.get(url(event))

    assert response.status_code == 200
    html = response.content.decode()
    size = AuditEvent.objects.count()
    assert (
        f"verified: included in the tree of {size} events signed by cxhub.test/audit+0ae2332e"
        in html
    )
    assert "Hello North" in html
    assert f'href="/audit/events/{event.seq}/proof.json"' in html
    assert 'href="/audit/verifier.py"' in html
    assert "<script" not in html.split("<main", 1)[-1]  # nothing inline for the strict CSP


def test_an_event_rewritten_in_the_database_is_not_verified(client, lead, trail, dba_sql):
    event = trail["north_centre.post_created"]
    client.force_login(lead)
    client.get(url(event))  # sealed and signed as it was
    dba_sql("UPDATE audit_auditevent SET actor_name = %s WHERE seq = %s", ["mallory", event.seq])

    html = client.get(url(event)).content.decode()

    assert "Not verified:" in html
    assert f"leaf {AuditEvent.objects.get(seq=event.seq).leaf.index} is not in the tree" in html


def test_another_subtrees_event_is_a_404(client, south_lead, author, trail):
    event = trail["north_centre.post_created"]
    client.force_login(south_lead)

    assert client.get(url(event)).status_code == 404
    assert client.get(f"/audit/events/{event.seq}/proof.json").status_code == 404
    assert client.get("/audit/events/99999999/verify/").status_code == 404
    assert client.get(f"/audit/events/{2**70}/verify/").status_code == 404
    client.force_login(author)
    assert client.get(url(event)).status_code == 404


def test_the_proof_downloads_as_a_file_the_verifier_accepts(client, lead, trail):
    event = trail["south.post_created"]
    client.force_login(lead)

    response = client.get(f"/audit/events/{event.seq}/proof.json")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-proof-{event.seq}.json"'
    )
    report = verify_export(
        response.content.decode(), [NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)]
    )
    assert report.ok and report.proven == 1, report.problems
    assert json.loads(response.content)["event"]["seq"] == event.seq


def test_the_verifier_itself_downloads(client, lead):
    client.force_login(lead)

    response = client.get("/audit/verifier.py")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="verifier.py"'
    assert b"".join(response.streaming_content) == VERIFIER.read_bytes()


def test_the_audit_trail_links_each_event_to_its_verify_page(client, lead, trail):
    client.force_login(lead)

    html = client.get("/audit/").content.decode()

    for name, event in trail.items():
        if name != "login_failed":
            assert f'href="{url(event)}"' in html
