"""What a person may see of listening: the watches of the teams they hold a role on (and the
teams below), and those watches' alerts."""

from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from accounts.models import User
from accounts.selectors import teams_for

from .models import Alert, Measure, Resolution, Watch


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


def alerts_in(status: str) -> Coalesce:
    """An annotation of a watch: how many of its alerts are in `status` (a subquery on the
    (watch, status) index, so that counts never multiply one another as joins would)."""
    return Coalesce(
        Subquery(
            Alert.objects.filter(watch=OuterRef("pk"), status=status)
            .order_by()
            .values("watch")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )


def posts_since(since: datetime) -> Coalesce:
    """An annotation of a watch: its posts from `since` (a whole minute) on, from its minute
    figures."""
    return Coalesce(
        Subquery(
            Measure.objects.filter(
                watch=OuterRef("pk"), resolution=Resolution.MINUTE, start__gte=since
            )
            .order_by()
            .values("watch")
            .annotate(n=Sum("volume"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )
