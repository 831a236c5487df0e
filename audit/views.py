"""The audit trail page of communications leads (first slice: newest first, by action)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from accounts.models import Role
from accounts.selectors import roles_of

from .selectors import events_for

PAGE_SIZE = 50


@login_required
def audit_log(request):
    user = request.user
    if not user.is_superuser and Role.LEAD not in roles_of(user=user):
        raise Http404
    events = events_for(user=user)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action=action)
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(seq__lt=int(before))
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return render(
        request,
        "audit/log.html",
        {
            "events": page,
            "action": action,
            "next_before": page[-1].seq if has_more else None,
        },
    )
