"""Every write of teams and memberships: one function per use case, each in a transaction and
each recording its audit event."""

from django.db import transaction
from django.utils.text import slugify

from audit.services import record
from cxhub.errors import ApplicationError

from .models import Membership, Role, Team, User


# Teams and memberships ---------------------------------------------------------------------------
@transaction.atomic
def team_create(*, name: str, parent: Team | None = None, slug: str = "", by: User | None) -> Team:
    name = name.strip()
    if not name:
        raise ApplicationError("A team needs a name.", {"fields": {"name": ["Required."]}})
    slug = slugify(slug or name)
    if parent is not None:
        # Lock the parent: two children added at once would otherwise compute the same path.
        parent = Team.objects.select_for_update().get(pk=parent.pk)
    if Team.objects.filter(slug=slug).exists():
        raise ApplicationError(
            f"A team with the slug {slug!r} exists already.", {"fields": {"slug": ["Taken."]}}
        )
    fields = {"name": name, "slug": slug}
    if parent is None:
        team = Team.objects.add_root(create_kwargs=fields)
    else:
        team = Team.objects.add_child(parent, create_kwargs=fields)
    record(
        actor=by,
        action="team.created",
        obj=team,
        team=team,
        data={"name": name, "slug": slug, "parent": parent.pk if parent else None},
    )
    return team


@transaction.atomic
def membership_grant(*, user: User, team: Team, role: str, by: User | None) -> Membership:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}.", {"fields": {"role": [f"One of {', '.join(Role.values)}."]}}
        )
    membership, created = Membership.objects.get_or_create(user=user, team=team, role=role)
    if created:
        record(
            actor=by,
            action="membership.granted",
            obj=membership,
            team=team,
            data={"user": user.pk, "username": user.username, "role": role},
        )
    return membership


@transaction.atomic
def membership_revoke(*, membership: Membership, by: User | None) -> None:
    data = {
        "user": membership.user_id,
        "username": membership.user.username,
        "role": membership.role,
    }
    team = membership.team
    object_id = membership.pk
    membership.delete()
    record(
        actor=by,
        action="membership.revoked",
        object_type="accounts.membership",
        object_id=str(object_id),
        team=team,
        data=data,
    )
