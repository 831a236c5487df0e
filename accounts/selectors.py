"""Reads of people, teams and API tokens, always scoped to the user asking.

Every selector here costs a fixed number of queries whatever the size of the organisation: the
role check is a correlated EXISTS against the user's memberships, using the team's materialised
path ("a role on a team holds for every team below it"), so it runs inside the one query that
fetches the rows.
"""

from collections.abc import Iterable

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.lookups import StartsWith

from .models import ApiToken, Membership, Role, Team, User

ALL_ROLES = tuple(Role.values)


def role_names(roles: str | Iterable[str] | None) -> tuple[str, ...]:
    """The roles asked for, as a tuple: every role when None."""
    if roles is None:
        return ALL_ROLES
    if isinstance(roles, str):
        return (roles,)
    return tuple(roles)


def _active(user) -> bool:
    """Signed in and not deactivated: anyone else holds no role anywhere."""
    return bool(user.is_authenticated and user.is_active)


def holds_role_over(user: User, roles: tuple[str, ...], path_ref: str) -> Exists:
    """EXISTS a membership of `user` with one of `roles` on the team at `path_ref` or above it."""
    return Exists(
        Membership.objects.filter(user=user, role__in=roles).filter(
            StartsWith(OuterRef(path_ref), F("team__path"))
        )
    )


def teams_for(*, user: User, roles: str | Iterable[str] | None = None) -> QuerySet[Team]:
    """The teams on which `user` holds one of `roles` (all roles when None), directly or from a
    team above. One query."""
    if not _active(user):
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(holds_role_over(user, role_names(roles), "path"))


def team_get(*, user: User, team_id: int, roles: str | Iterable[str] | None = None) -> Team | None:
    """One team if `user` may see it with `roles`, else None (the caller answers 404)."""
    return teams_for(user=user, roles=roles).filter(pk=team_id).first()


def memberships_of(*, user: User) -> QuerySet[Membership]:
    """The user's own memberships with their teams. One query."""
    if not _active(user):
        return Membership.objects.none()
    memberships = Membership.objects.filter(user=user).select_related("team")
    return memberships.order_by("team__path", "role")


def roles_of(*, user: User) -> set[str]:
    """Every role the user holds somewhere (for navigation). One query."""
    if not _active(user):
        return set()
    if user.is_superuser:
        return set(ALL_ROLES)
    return set(Membership.objects.filter(user=user).values_list("role", flat=True).distinct())


def user_has_role(*, user: User, team: Team, role: str) -> bool:
    """Whether `user` holds `role` on `team` or a team above it. One query."""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(
        user=user, role=role, team__path__in=_ancestor_paths(team)
    ).exists()


def _ancestor_paths(team: Team) -> list[str]:
    """The paths of a team and all its ancestors, computed from its own path (no query)."""
    steplen = team.steplen
    return [team.path[:end] for end in range(steplen, len(team.path) + 1, steplen)]


# API tokens ---------------------------------------------------------------------------------------
def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first (revoked and expired ones too). One query."""
    if not _active(user):
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-id")


def api_tokens_managed_by(*, user: User) -> QuerySet[ApiToken]:
    """Tokens of other people that `user` may see and revoke as an administrator: every token
    for a superuser; for a team admin, those of people all of whose memberships lie in the
    admin's subtree (see _managed_scope). The owner is joined in. One query."""
    if not _active(user):
        return ApiToken.objects.none()
    tokens = ApiToken.objects.select_related("user").exclude(user=user).order_by("-id")
    if user.is_superuser:
        return tokens
    return tokens.filter(_managed_scope(user))


def _managed_scope(user: User) -> Q:
    """Tokens whose owner is under the admin `user`: the owner is no superuser, holds at least
    one membership, and every one of them is on a team at or below a team where `user` is an
    admin (an admin of North cannot touch someone who also works for South). The owner's
    memberships are read inside the query (nested EXISTS), so a list costs one query however
    many people it covers."""
    admin_over_it = Membership.objects.filter(user=user, role=Role.ADMIN).filter(
        StartsWith(OuterRef("team__path"), F("team__path"))
    )
    outside = Membership.objects.filter(user=OuterRef("user")).filter(~Exists(admin_over_it))
    return Q(
        Exists(Membership.objects.filter(user=OuterRef("user"))),
        ~Exists(outside),
        user__is_superuser=False,
    )


def api_token_may_manage(*, user: User, token_id: int) -> bool:
    """Whether `user` may revoke the token: it is theirs, or they administer its owner. One
    query."""
    return api_token_get(user=user, token_id=token_id) is not None


def api_token_get(*, user: User, token_id: int) -> ApiToken | None:
    """One token `user` may see: their own, or one they administer; else None (a 404). One
    query."""
    if not _active(user):
        return None
    tokens = ApiToken.objects.select_related("user").filter(pk=token_id)
    if not user.is_superuser:
        tokens = tokens.filter(Q(user=user) | _managed_scope(user))
    return tokens.first()
