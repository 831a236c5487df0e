"""The page where leads keep the agency's approved responses (/inbox/responses/): the responses
a person may read, a form to add one to a team they lead, and withdraw and restore buttons.

Views parse the form, call one service and render. A service's ApplicationError comes back on
the page beside the field it names, with its status (400 bad input, 403 not a lead of the
response's team); a response the person may not read is a 404. The page costs the same number of
queries however many responses and teams there are."""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role, User
from accounts.selectors import teams_for
from cxhub.errors import ApplicationError

from . import responses
from .forms import ResponseActiveForm, ResponseForm
from .selectors import responses_seen_by

_MAX_ID = 2**63 - 1


@dataclass
class Sent:
    """The new-response form as it came back with errors: what was typed, and the messages by
    field."""

    message: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> list[tuple[str, str]]:
        return [(name, " ".join(found)) for name, found in self.errors.items()]


def _fields(error: ApplicationError) -> dict[str, list[str]]:
    found = error.extra.get("fields") if isinstance(error.extra, dict) else None
    if not isinstance(found, dict):
        return {}
    return {
        str(name): [str(m) for m in (said if isinstance(said, list) else [said])]
        for name, said in found.items()
    }


def _lead_teams(user: User) -> list:
    teams = list(teams_for(user=user, roles=[Role.LEAD]).order_by("path"))
    top = min((team.depth for team in teams), default=1)
    for team in teams:
        team.indent = "— " * (team.depth - top)
    return teams


def _context(request, sent: Sent | None = None) -> dict:
    lead_teams = _lead_teams(request.user)
    led = {team.pk for team in lead_teams}
    rows = list(
        responses_seen_by(user=request.user)
        .select_related("created_by")
        .order_by("team__path", "-active", "title", "pk")
    )
    for row in rows:
        row.may_keep = row.team_id in led
    return {
        "rows": rows,
        "lead_teams": lead_teams,
        "new": sent or Sent(),
        "title_max": responses.TITLE_MAX,
        "body_max": responses.BODY_MAX,
    }


def _again(request, sent: Sent | None, status: int):
    return render(request, "inbox/responses.html", _context(request, sent), status=status)


@login_required
@require_GET
def responses_page(request):
    return render(request, "inbox/responses.html", _context(request))


@login_required
@require_POST
def response_new(request):
    """A lead adds a response to a team they lead; the errors come back beside the fields."""
    form = ResponseForm(request.POST)
    typed = {name: request.POST.get(name, "") for name in ("team", "title", "body")}
    try:
        if not form.is_valid():
            raise ApplicationError(
                "Wrong values.",
                {"fields": {name: list(found) for name, found in form.errors.items()}},
            )
        kept = responses.response_create(
            by=request.user,
            team_id=form.cleaned_data["team"],
            title=form.cleaned_data["title"],
            body=form.cleaned_data["body"],
        )
    except ApplicationError as error:
        fields = _fields(error)
        message = (
            "The response was not added: correct what is named below."
            if fields
            else f"The response was not added: {error.message}"
        )
        return _again(request, Sent(message, fields, typed), error.status)
    messages.success(
        request, f"Added “{kept.title}”: it is offered to {kept.team.name} and the teams below."
    )
    return redirect("inbox-responses")


@login_required
@require_POST
def response_active(request, response_id: int):
    """A lead of the response's team withdraws it, or offers it again."""
    kept = (
        responses_seen_by(user=request.user).filter(pk=response_id).first()
        if response_id <= _MAX_ID
        else None
    )
    if kept is None:
        raise Http404
    form = ResponseActiveForm(request.POST)
    try:
        if not form.is_valid():
            raise ApplicationError(" ".join(m for found in form.errors.values() for m in found))
        kept = responses.response_update(
            by=request.user, response=kept, active=form.cleaned_data["active"]
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return _again(request, None, error.status)
    if kept.active:
        messages.success(request, f"“{kept.title}” is offered again.")
    else:
        messages.success(request, f"Withdrew “{kept.title}”: it is offered no more.")
    return redirect("inbox-responses")
