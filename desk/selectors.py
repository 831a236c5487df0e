"""Reads of the audit trail, scoped to the lead asking.

Leads see the events of the teams they lead and of the teams below them; superusers (the
installation's operators) see everything, including events with no team (sign-ins).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Subquery

from accounts.models import Role, Team, User
from accounts.selectors import teams_for
from audit.models import AuditEvent
from audit.object_types import object_type_names
from cxhub.errors import ApplicationError


class TeamNotFound(ApplicationError):
    """A team filter naming a team the user does not lead (or that does not exist: the answer is
    the same, so it confirms nothing)."""

    status = 404

    def __init__(self) -> None:
        message = "No team with this id among the teams you lead."
        super().__init__(message, {"fields": {"team": [message]}})


@dataclass(frozen=True)
class AuditScope:
    """The teams whose events a user may read, in tree order: those they lead and the teams below
    them; every team for a superuser, who also reads the events of no team (`everything`)."""

    teams: list[Team]
    everything: bool = False

    @property
    def may_read(self) -> bool:
        return self.everything or bool(self.teams)

    def team(self, team_id: int) -> Team:
        """A team to filter on, or TeamNotFound (a 404)."""
        for team in self.teams:
            if team.pk == team_id:
                return team
        raise TeamNotFound

    def team_ids(self, *, under: Team | None = None) -> list[int]:
        return [team.pk for team in self.teams if under is None or team.path.startswith(under.path)]


def audit_scope(*, user: User) -> AuditScope:
    """Whose events `user` may read. One query (none for someone signed out or deactivated).

    Fetched as values rather than used as a subquery: PostgreSQL misestimates the subquery and
    then reads every event of the scope to sort out one page; with the ids as values it walks
    the seq index and stops after the page.
    """
    teams = list(teams_for(user=user, roles=[Role.LEAD]).order_by("path"))
    return AuditScope(teams=teams, everything=bool(user.is_superuser and user.is_active))


def events_for(
    *,
    user: User,
    scope: AuditScope | None = None,
    team: Team | None = None,
    actor: int | str | None = None,
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Events the user may read, newest first, narrowed by the filters.

    - `scope`: the user's `audit_scope`, if the caller has it already (else it is fetched here).
    - `team`: that team and the teams below it; take it from `scope.team(id)`, which answers 404
      for a team out of scope (a team from elsewhere only narrows the result, to nothing).
    - `actor`: a user id, or a username: the person's current one, which finds their events from
      before a rename too (the events keep the name of the time in `actor_name`).
    - `action`: exact, or a prefix when it ends with "." or "*" (`post.*`, `post.`).
    - `object_type` (and `object_id`): the object acted on, "app_label.model" and its id; the
      former name of a model that moved to another app finds the same events as its new one.
    - `since` (inclusive) and `until` (exclusive): aware datetimes.

    Two queries whatever the size of a page: the scope (unless given), then the page, with the
    team joined in (select_related) for its name, and a username looked up inside it.
    """
    if scope is None:
        scope = audit_scope(user=user)
    events = AuditEvent.objects.select_related("team").order_by("-seq")
    if team is not None or not scope.everything:
        # An empty list matches nothing, without a query.
        events = events.filter(team_id__in=scope.team_ids(under=team))
    if isinstance(actor, int):
        events = events.filter(actor_id=actor)
    elif actor:
        # A scalar subquery: PostgreSQL runs it first and then walks the (actor, -seq) index.
        person = User.objects.filter(username=actor).values("pk")[:1]
        events = events.filter(actor_id=Subquery(person))
    if action.endswith("*"):
        action = action[:-1]
        if action:
            events = events.filter(action__startswith=action)
    elif action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    if object_type:
        # Its events from before a move of its model to another app too (audit.object_types).
        events = events.filter(object_type__in=object_type_names(object_type))
        if object_id:
            events = events.filter(object_id=object_id)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    return events


EXPORT_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "team_id",
    "team__name",
    "data",
    "prev_hash",
    "hash",
    "leaf__index",  # the event's leaf in the Merkle tree (None until sealed): its proof's key
)


def event_batches(
    events: QuerySet[AuditEvent], *, batch_size: int, below_seq: int | None = None
) -> Iterator[list[tuple]]:
    """The rows of `events` as tuples of EXPORT_FIELDS, in chain order (oldest first), a batch
    at a time, each batch fetched only when the one before has been used.

    Keyset on the unique seq: each batch is one indexed range scan that costs the same however
    deep it is (no OFFSET), and memory holds one batch whatever the total. `below_seq` fixes the
    end, so events written meanwhile do not stretch an export.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rows = events.order_by("seq").values_list(*EXPORT_FIELDS)
    if below_seq is not None:
        rows = rows.filter(seq__lt=below_seq)
    page = rows
    while True:
        batch = list(page[:batch_size])
        if batch:
            yield batch
        if len(batch) < batch_size:
            return
        page = rows.filter(seq__gt=batch[-1][0])


def event_for(*, user: User, seq: int, scope: AuditScope | None = None) -> AuditEvent | None:
    """The event ``seq`` if ``user`` may read it (None otherwise, or when there is none: the
    same answer, so it confirms nothing). Two queries: the scope (unless given), the event."""
    if scope is None:
        scope = audit_scope(user=user)
    if not scope.may_read:
        return None
    return events_for(user=user, scope=scope).filter(seq=seq).first()
