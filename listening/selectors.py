"""What a person may see of listening: the watches of the teams they hold a role on (and the
teams below), and those watches' alerts."""

from django.db.models import QuerySet

from accounts.models import User
from accounts.selectors import teams_for

from .models import Alert, Watch


def watches_for(*, user: User) -> QuerySet[Watch]:
    return Watch.objects.filter(team__in=teams_for(user=user)).select_related("team")


def watch_get(*, user: User, watch_id: int) -> Watch | None:
    return watches_for(user=user).filter(pk=watch_id).first()


def alerts_for(*, user: User) -> QuerySet[Alert]:
    return Alert.objects.filter(watch__team__in=teams_for(user=user)).select_related(
        "watch__team", "claim", "acknowledged_by", "closed_by"
    )


def alert_get(*, user: User, alert_id: int) -> Alert | None:
    return alerts_for(user=user).filter(pk=alert_id).first()
