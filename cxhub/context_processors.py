"""Navigation for the base template: which sections the signed-in user's roles open, how many
approval steps wait for them and how many notifications they have not read. It reads several
apps (accounts, approvals), so it lives with the wiring on top of them."""

import functools

from accounts.models import Notification
from accounts.selectors import roles_of
from approvals.selectors import inbox_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_roles": set()}

    # Counted when a template first asks (templates call callables), once, one query each:
    # fragments and pages without the navigation cost nothing.
    @functools.cache
    def approvals_waiting() -> int:
        return inbox_for(user=user).count()

    @functools.cache
    def unread() -> int:
        return Notification.objects.filter(user=user, read_at__isnull=True).count()

    return {
        "nav_roles": roles_of(user=user),
        "nav_approvals_waiting": approvals_waiting,
        "nav_unread": unread,
    }
