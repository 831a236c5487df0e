"""Reads of social accounts, always scoped to the user asking: those of the teams where they hold
a role (a role on a team holds for every team below it), plus those granted to them one by one,
and what they may do to each. Each costs a fixed number of queries whatever the size of the
organisation (accounts/selectors.py says how)."""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Role, User
from accounts.selectors import holds_role_over, memberships_of, role_names

from .channels import all_channels
from .models import AccountStatus, SocialAccount, SocialAccountUserObjectPermission


def social_accounts_for(
    *, user: User, roles: str | Iterable[str] | None = None, include_grants: bool = True
) -> QuerySet[SocialAccount]:
    """Social accounts of teams where `user` holds one of `roles`, plus (with `include_grants`)
    accounts granted to them one by one through django-guardian's `draft_socialaccount`.

    One query; `team` is joined in (select_related) so listing them costs no more.
    """
    if not (user.is_authenticated and user.is_active):
        return SocialAccount.objects.none()
    accounts = SocialAccount.objects.select_related("team")
    if user.is_superuser:
        return accounts
    scope = Q(holds_role_over(user, role_names(roles), "team__path"))
    if include_grants and (roles is None or Role.DRAFTER in role_names(roles)):
        scope |= Q(
            Exists(
                SocialAccountUserObjectPermission.objects.filter(
                    user=user,
                    content_object=OuterRef("pk"),
                    permission__codename="draft_socialaccount",
                )
            )
        )
    return accounts.filter(scope)


def social_account_get(
    *, user: User, account_id: int, roles: str | Iterable[str] | None = None
) -> SocialAccount | None:
    return social_accounts_for(user=user, roles=roles).filter(pk=account_id).first()


def social_account_powers(*, user: User, accounts: list[SocialAccount]) -> bool:
    """Mark what `user` may do to each account (may_reconnect, may_disconnect) from their
    memberships and grants, read once (two queries): the list costs the same for 2 or 2,000.
    The one statement of the rule: admins of the account's team or a team above connect,
    disconnect and reconnect; those who draft for it (role or grant) reconnect it too, unless it
    was disconnected on purpose. Returns whether they may connect accounts at all."""
    connectable = {c.name for c in all_channels() if c.connect_method != "none"}
    if user.is_superuser:
        admin_paths: list[str] = [""]
        drafter_paths: list[str] = [""]
        granted: set[int] = set()
    else:
        memberships = list(memberships_of(user=user))
        admin_paths = [m.team.path for m in memberships if m.role == Role.ADMIN]
        drafter_paths = [m.team.path for m in memberships if m.role == Role.DRAFTER]
        granted = set(
            SocialAccountUserObjectPermission.objects.filter(
                user=user, permission__codename="draft_socialaccount"
            ).values_list("content_object_id", flat=True)
        )
    for account in accounts:
        path = account.team.path
        admin = any(path.startswith(p) for p in admin_paths)
        drafter = any(path.startswith(p) for p in drafter_paths) or account.pk in granted
        account.may_disconnect = admin and account.status != AccountStatus.DISCONNECTED
        account.may_reconnect = account.channel in connectable and (
            admin or (drafter and account.status != AccountStatus.DISCONNECTED)
        )
    return bool(admin_paths)
