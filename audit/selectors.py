"""Reads of the audit trail, scoped to the lead asking."""

from django.db.models import QuerySet

from accounts.models import Role, User
from accounts.selectors import teams_for

from .models import AuditEvent


def events_for(*, user: User) -> QuerySet[AuditEvent]:
    """Events of the teams the user leads (and the teams below them), newest first.

    One query per page: the scope is a subquery and actor and team are joined in. Events with no
    team (sign-ins, organisation-wide changes) are for the installation's operators only.
    """
    events = AuditEvent.objects.select_related("actor", "team").order_by("-seq")
    if user.is_superuser:
        return events
    return events.filter(team__in=teams_for(user=user, roles=[Role.LEAD]))
