"""The audit page's integrity box (desk/integrity.py): the tree, the latest checkpoint, the
window and the witnesses, as a lead reads them."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from audit.models import AuditWitnessDelivery
from audit.sealer import seal


def box(client) -> str:
    page = client.get("/audit/").content.decode()
    start = page.index('id="integrity"')
    return page[start : page.index("</section>", start)]


def test_it_shows_the_tree_and_the_latest_checkpoint(client, lead, chain):
    client.force_login(lead)
    assert "waiting for the sealer" in box(client)

    seal()
    shown = box(client)

    assert "events sealed into the Merkle tree" in shown and "waiting" not in shown
    assert "Latest signed checkpoint: 5 events" in shown
    assert "log <code>cxhub.test/audit</code>" in shown
    assert "within 60 s of its commit" in shown
    assert "No witness is configured" in shown


def test_it_warns_when_an_event_waited_beyond_the_window(client, lead, chain, settings):
    settings.CXHUB_AUDIT_CHECKPOINT_WINDOW_SECONDS = 60
    client.force_login(lead)

    with time_machine.travel(timezone.now() + timedelta(seconds=125), tick=False):
        shown = box(client)

    assert 'class="warning"' in shown
    assert "beyond the window of 60 s" in shown


def test_it_lists_each_witness_with_its_last_delivery_and_what_waits(client, lead, chain, author):
    first = seal().checkpoint
    AuditWitnessDelivery.objects.create(
        checkpoint=first, witness="directory", attempts=1, delivered_at=timezone.now()
    )
    AuditWitnessDelivery.objects.create(
        checkpoint=first,
        witness="webhook",
        attempts=3,
        last_error="HTTP 503 from the records system",
    )
    client.force_login(lead)

    shown = box(client)

    assert "directory: last sent" in shown
    assert "webhook: nothing sent yet; 1 waiting (HTTP 503 from the records system)" in shown
