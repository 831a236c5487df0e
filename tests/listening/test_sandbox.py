"""The demo's listening (listening/sandbox.py, `manage.py sandbox_surge`): the demo watch has a
day of steady talk and raises nothing on it; a surge of a made-up scam fires its alerts at once;
the command refuses what it cannot do with a clear message."""

import io

import pytest
from django.core.management import CommandError, call_command

from cxhub.demo import seed_demo
from listening import sandbox, services
from listening.models import Alert, Hit, Watch

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    return seed_demo()


def test_the_demo_watch_has_a_day_behind_it_and_no_alert(demo):
    [listed] = demo["watches"]
    watch = Watch.objects.get(pk=listed["id"])

    assert watch.sandbox and watch.claims.count() == 1
    assert not watch.sources.exists()  # it reads the sandbox, not the networks
    assert Hit.objects.filter(watch=watch).count() > 500
    assert sandbox.stream_tick() >= 0
    assert not Alert.objects.exists()
    # A second seed adds nothing.
    again = seed_demo()
    assert again["watches"] == demo["watches"]
    assert Watch.objects.count() == 1


def test_a_surge_fires_the_demo_watch_s_alerts(demo):
    watch_id = demo["watches"][0]["id"]
    out = io.StringIO()

    call_command("sandbox_surge", "--watch", str(watch_id), "--posts", "80", stdout=out)

    kinds = set(Alert.objects.filter(watch_id=watch_id).values_list("kind", flat=True))
    assert kinds == {"spike", "sentiment", "false_claim"}
    assert "80 posts added" in out.getvalue()
    assert out.getvalue().count("raised") == 3
    # Again at once: the alerts are open, so none is raised twice.
    call_command("sandbox_surge", "--watch", str(watch_id), stdout=io.StringIO())
    assert Alert.objects.filter(watch_id=watch_id).count() == 3


def test_the_surge_command_refuses_a_watch_it_cannot_surge(org, lead, demo):
    real = services.watch_create(
        by=lead, team_id=org["north"].pk, values={"name": "Real", "terms": ["x"]}
    )
    with pytest.raises(CommandError, match="No watch with id 999999"):
        call_command("sandbox_surge", "--watch", "999999")
    with pytest.raises(CommandError, match="reads real networks"):
        call_command("sandbox_surge", "--watch", str(real.pk))
    with pytest.raises(CommandError, match="at least 1"):
        call_command("sandbox_surge", "--watch", str(real.pk), "--posts", "0")
