"""The agency's approved responses: lines a team's leads have cleared for answering the public,
offered to the team and the teams below it. Kept by leads, audited; a draft made from one goes
through the usual approvals like any other."""

from django.db import transaction
from django.db.models import QuerySet

from accounts.models import Role, Team, User
from accounts.selectors import teams_for
from audit.services import record
from cxhub.errors import ApplicationError, NotAllowed

from .models import ApprovedResponse

TITLE_MAX = 200
BODY_MAX = 5000


def _field_error(name: str, message: str) -> ApplicationError:
    return ApplicationError(message, {"fields": {name: [message]}})


def _clean(title: object, body: object) -> tuple[str, str]:
    title = " ".join(str(title or "").split())
    body = str(body or "").strip()
    if not title:
        raise _field_error("title", "Give the response a title.")
    if len(title) > TITLE_MAX:
        raise _field_error("title", f"At most {TITLE_MAX} characters.")
    if not body:
        raise _field_error("body", "Write the response.")
    if len(body) > BODY_MAX:
        raise _field_error("body", f"At most {BODY_MAX:,} characters.")
    return title, body


def responses_for(*, team: Team) -> QuerySet[ApprovedResponse]:
    """The active responses offered to `team`: its own and those of the teams above it."""
    paths = [team.path[:end] for end in range(team.steplen, len(team.path) + 1, team.steplen)]
    return ApprovedResponse.objects.filter(team__path__in=paths, active=True).select_related("team")


def _may_keep(user: User, team_id: int) -> bool:
    return teams_for(user=user, roles=[Role.LEAD]).filter(pk=team_id).exists()


@transaction.atomic
def response_create(*, by: User, team_id: object, title: object, body: object) -> ApprovedResponse:
    """A new approved response of a team `by` leads."""
    team = (
        teams_for(user=by, roles=[Role.LEAD]).filter(pk=team_id).first()
        if isinstance(team_id, int) and not isinstance(team_id, bool)
        else None
    )
    if team is None:
        raise _field_error("team", "No team with this id that you lead.")
    title, body = _clean(title, body)
    response = ApprovedResponse.objects.create(team=team, title=title, body=body, created_by=by)
    record(
        actor=by,
        action="inbox.response_created",
        obj=response,
        team=team,
        data={"title": title, "body": body},
    )
    return response


@transaction.atomic
def response_update(
    *,
    by: User,
    response: ApprovedResponse,
    title: object = None,
    body: object = None,
    active: bool | None = None,
) -> ApprovedResponse:
    """Change a response's words, or withdraw it (`active`): a lead of its team."""
    if not _may_keep(by, response.team_id):
        raise NotAllowed("Only a lead of the response's team can change it.")
    response = ApprovedResponse.objects.select_for_update().get(pk=response.pk)
    before = {"title": response.title, "body": response.body, "active": response.active}
    new_title, new_body = _clean(
        response.title if title is None else title, response.body if body is None else body
    )
    response.title, response.body = new_title, new_body
    if active is not None:
        if not isinstance(active, bool):
            raise _field_error("active", "true or false.")
        response.active = active
    response.save()
    after = {"title": response.title, "body": response.body, "active": response.active}
    record(
        actor=by,
        action="inbox.response_changed",
        obj=response,
        team=response.team,
        data={"changed": {k: [before[k], after[k]] for k in after if before[k] != after[k]}},
    )
    return response
