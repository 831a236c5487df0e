"""Navigation for the base template: which sections the signed-in user's roles open."""

from .selectors import roles_of


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_roles": set()}
    return {"nav_roles": roles_of(user=user)}
