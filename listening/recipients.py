"""Who hears of a watch's alerts, and where they read them: the leads of the watch's team or a
team above it, and the alert's page."""

from django.urls import NoReverseMatch, reverse

from accounts.models import Membership, Role

from .models import Alert, Watch


def lead_ids(watch: Watch) -> list[int]:
    """Leads of the watch's team or a team above it. One query."""
    team = watch.team
    paths = [team.path[:end] for end in range(team.steplen, len(team.path) + 1, team.steplen)]
    return sorted(
        set(
            Membership.objects.filter(
                role=Role.LEAD, team__path__in=paths, user__is_active=True
            ).values_list("user_id", flat=True)
        )
    )


def alert_url(alert: Alert) -> str:
    try:
        return reverse("listening-alert", kwargs={"alert_id": alert.pk})
    except NoReverseMatch:  # an API-only deployment
        return f"/api/v1/alerts/{alert.pk}/"
