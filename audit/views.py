"""The audit trail page of communications leads: the events of their subtree, filtered, newest
first, a keyset page at a time, with downloads of the same selection from the API."""

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from cxhub.errors import ApplicationError

from . import selectors
from .filters import FILTER_FIELDS, EventFilters, parse_event_filters

PAGE_SIZE = 50
_MAX_SEQ = 2**63 - 1


@login_required
def audit_log(request):
    user = request.user
    # One query gives the right to read, the team select's options and the team filter's scope.
    scope = selectors.audit_scope(user=user)
    if not scope.may_read:
        raise Http404
    top = min((team.depth for team in scope.teams), default=1)
    for team in scope.teams:
        team.indent = "— " * (team.depth - top)
    context = {"teams": scope.teams, "errors": {}, "events": []}
    try:
        filters = parse_event_filters(request.GET)
    except ApplicationError as error:
        context.update(errors=error.extra["fields"], given=_given(request.GET))
        return render(request, "audit/log.html", context, status=400)

    try:
        team = scope.team(filters.team_id) if filters.team_id else None
    except selectors.TeamNotFound:
        raise Http404 from None
    events = selectors.events_for(user=user, scope=scope, team=team, **filters.selector_kwargs())
    before = request.GET.get("before", "")
    if before.isdecimal() and before.isascii() and int(before) <= _MAX_SEQ:
        events = events.filter(seq__lt=int(before))
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    for event in page:
        event.data_json = json.dumps(event.data, ensure_ascii=False, sort_keys=True)
    context.update(
        given=filters.given,
        events=page,
        filtered=bool(filters.given),
        **_links(filters, next_before=page[-1].seq if has_more else None),
    )
    return render(request, "audit/log.html", context)


def _given(params) -> dict[str, str]:
    """The values as typed, to show them again beside their errors."""
    return {name: params.get(name, "") for name in FILTER_FIELDS}


def _links(filters: EventFilters, *, next_before: int | None) -> dict:
    query = list(filters.given.items())
    api = reverse("api-audit-events")
    return {
        "older_url": f"?{urlencode([*query, ('before', next_before)])}" if next_before else None,
        "csv_url": f"{api}?{urlencode([*query, ('format', 'csv')])}",
        "jsonl_url": f"{api}?{urlencode([*query, ('format', 'jsonl')])}",
    }
