"""Every write of single sign-on: sign-ins (finding or creating the person, then setting their
SSO-given roles to what the rules give now), failures, the provider's re-check and
deprovisioning, and the rules themselves. Each in a transaction, each recording its event."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Membership, Role, Team, User
from accounts.rotation import rotate_encrypted_fields
from accounts.tokens import api_tokens_revoke_all
from audit.services import record
from cxhub.errors import ApplicationError, NotAllowed

from .models import Grant, Identity, Operator, Provider, RoleRule
from .selectors import claims_without_secrets, roles_from_rules, sso_grants_of

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


class SignInRefused(NotAllowed):
    """The provider vouched for the person but cxhub will not let them in."""


# Sign-in -----------------------------------------------------------------------------------------
@dataclass
class RolesChange:
    granted: list[tuple[int, str]] = field(default_factory=list)
    revoked: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.granted or self.revoked)

    def as_data(self) -> dict:
        return {
            "granted": [{"team": team, "role": role} for team, role in self.granted],
            "revoked": [{"team": team, "role": role} for team, role in self.revoked],
        }


def _username_for(claims: dict, subject: str, username_claim: str) -> str:
    """A free username from the provider's preferred name, else the e-mail, else the subject."""
    base = ""
    for candidate in (claims.get(username_claim) if username_claim else None, claims.get("email")):
        if isinstance(candidate, list):
            candidate = candidate[0] if candidate else None
        if isinstance(candidate, str) and candidate.strip():
            base = candidate.strip()
            break
    base = _USERNAME_UNSAFE.sub("-", base or subject)[:140] or "sso-user"
    username, n = base, 1
    while User.objects.filter(username__iexact=username).exists():
        n += 1
        username = f"{base}-{n}"
    return username


def _text(claims: dict, name: str) -> str:
    value = claims.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.strip() if isinstance(value, str) else ""


def _profile(claims: dict) -> dict:
    """The user fields the provider is the source of, where it says them."""
    fields = {
        "email": _text(claims, "email") or _text(claims, "mail"),
        "first_name": _text(claims, "given_name") or _text(claims, "givenName"),
        "last_name": _text(claims, "family_name") or _text(claims, "sn"),
        "display_name": _text(claims, "name") or _text(claims, "displayName"),
    }
    limits = {"email": 254, "first_name": 150, "last_name": 150, "display_name": 150}
    return {key: value[: limits[key]] for key, value in fields.items() if value}


def _link_by_email(claims: dict) -> User | None:
    email = _text(claims, "email")
    if not settings.CXHUB_SSO_LINK_BY_EMAIL or not email or claims.get("email_verified") is False:
        return None
    matches = list(User.objects.filter(email__iexact=email)[:2])
    return matches[0] if len(matches) == 1 else None


def _apply_rules(*, identity: Identity, claims: dict) -> RolesChange:
    """Set the memberships this identity's rules gave to exactly what the rules give now.
    Memberships given by hand, or through another identity, are left alone."""
    user = identity.user
    wanted = {o.key: o for o in roles_from_rules(claims=claims, provider=identity.provider)}
    ours = sso_grants_of(identity=identity)
    held = set(Membership.objects.filter(user=user).values_list("team_id", "role"))
    change = RolesChange()
    for key, outcome in wanted.items():
        if key in held:
            continue
        membership = accounts.membership_grant(
            user=user, team=outcome.team, role=outcome.role, by=None
        )
        Grant.objects.create(membership=membership, identity=identity)
        change.granted.append(key)
    for key, grant in ours.items():
        if key not in wanted:
            accounts.membership_revoke(membership=grant.membership, by=None)
            change.revoked.append(key)
    return change


class FirstSignInRace(ApplicationError):
    """Two different people's first sign-ins wanted the same username at the same moment."""

    status = 409

    def __init__(self):
        super().__init__("Another first sign-in took this name at the same moment; sign in again.")


def _identity_first(
    *, provider: str, issuer: str, subject: str, claims: dict, username_claim: str
) -> tuple[Identity, bool]:
    """A person's first sign-in through this provider: linked to the cxhub person with the same
    verified e-mail, or created just in time. True when a person was created."""
    created = False
    user = _link_by_email(claims)
    if user is None:
        username = _username_for(claims, subject, username_claim)
        user = User(username=username, **_profile(claims))
        user.set_unusable_password()
        user.save()
        created = True
        record(
            actor=None,
            action="sso.user_created",
            obj=user,
            data={"username": username, "provider": provider, "issuer": issuer},
        )
    identity = Identity.objects.create(user=user, provider=provider, issuer=issuer, subject=subject)
    return identity, created


@transaction.atomic
def sso_sign_in(
    *,
    provider: str,
    issuer: str,
    subject: str,
    claims: dict,
    address: str | None,
    username_claim: str = "preferred_username",
    refresh_token: str = "",
) -> User:
    """A sign-in the provider vouched for: the person is found by (provider, issuer, subject),
    or linked or created (just in time); their profile follows the provider; their SSO-given
    roles become what the rules give now. Raises SignInRefused for a person disabled in cxhub
    by hand or by an admin's deprovisioning; one the provider's own removal deprovisioned comes
    back when the provider accepts them again."""
    if provider not in Provider.values:
        raise ApplicationError(f"Unknown provider {provider!r}.")
    subject = (subject or "").strip()
    if not subject or not issuer:
        raise ApplicationError("The provider named nobody.", {"fields": {"subject": ["Empty."]}})
    claims = claims_without_secrets(claims)
    now = timezone.now()
    identity = (
        Identity.objects.select_for_update()
        .select_related("user")
        .filter(provider=provider, issuer=issuer, subject=subject)
        .first()
    )
    created = reactivated = False
    if identity is None:
        try:
            with transaction.atomic():  # a savepoint: a lost race undoes only this
                identity, created = _identity_first(
                    provider=provider,
                    issuer=issuer,
                    subject=subject,
                    claims=claims,
                    username_claim=username_claim,
                )
        except IntegrityError:
            # The same person's first sign-in, at the same moment in another request, made the
            # identity (or took the username) first: take theirs.
            identity = (
                Identity.objects.select_for_update()
                .select_related("user")
                .filter(provider=provider, issuer=issuer, subject=subject)
                .first()
            )
            if identity is None:
                raise FirstSignInRace() from None
    user = identity.user
    if not user.is_active:
        if identity.deprovisioned_at is None:
            raise SignInRefused(f"The account {user.username} is disabled in cxhub.")
        user.is_active = True
        reactivated = True
    profile = _profile(claims)
    changed = [name for name, value in profile.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, profile[name])
    if changed or reactivated:
        user.save(update_fields=[*changed, *(["is_active"] if reactivated else [])])
    identity.claims = claims
    identity.last_login_at = identity.checked_at = now
    identity.deprovisioned_at = None
    identity.set_refresh_token(refresh_token)
    identity.save(
        update_fields=[
            "claims",
            "last_login_at",
            "checked_at",
            "deprovisioned_at",
            "refresh_token_encrypted",
        ]
    )
    roles = _apply_rules(identity=identity, claims=claims)
    if roles:
        record(
            actor=None,
            action="sso.roles_changed",
            obj=user,
            data={**roles.as_data(), "at": "sign-in"},
        )
    record(
        actor=user,
        action="sso.login",
        obj=user,
        data={
            "provider": provider,
            "issuer": issuer,
            "subject": subject,
            "address": address,
            "created": created,
            "reactivated": reactivated,
            "profile_changed": sorted(changed),
        },
    )
    return user


@transaction.atomic
def sso_sign_in_failed(
    *, provider: str, reason: str, address: str | None, subject: str = ""
) -> None:
    """A sign-in through a provider that did not end with a person signed in: what was tried
    and why it failed. (The common door, sso.doors, counts it as the door policy says; no SSO
    sign-in ever waits for the password lockout.)"""
    record(
        actor=None,
        action="sso.login_failed",
        object_type="sso.identity",
        object_id=subject[:200] or provider,
        data={"provider": provider, "reason": reason[:500], "address": address},
    )


# The provider's re-check and deprovisioning -----------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """What the provider said of a person: "active" (with fresh claims), "gone" (refused:
    removed or disabled there), or "unknown" (unreachable: nothing is concluded)."""

    status: str
    claims: dict = field(default_factory=dict)
    detail: str = ""


def _revoke_api_tokens(*, user: User, by: User | None) -> int:
    """The person's API tokens die with them (each revoked and audited; an inactive person's
    would be refused anyway)."""
    return api_tokens_revoke_all(user=user, by=by, reason="deprovisioned")


def sso_refresh_tokens_rotate(*, by: User | None = None, batch_size: int = 500) -> int:
    """Re-encrypt every identity's OpenID Connect refresh token under the newest key of
    CXHUB_TOKEN_KEYS (`manage.py rotate_token_keys`), in batches, as the network tokens are
    (accounts/rotation.py). Returns how many it rewrote."""
    return rotate_encrypted_fields(
        queryset=Identity.objects.exclude(refresh_token_encrypted=""),
        fields=("refresh_token_encrypted",),
        action="sso.refresh_tokens_rotated",
        data_key="identities",
        by=by,
        batch_size=batch_size,
    )


@transaction.atomic
def sso_user_deprovision(*, identity: Identity, reason: str, by: User | None = None) -> User:
    """The provider no longer knows the person: they are deactivated (every session ends at its
    next request, every API token with it) and lose the roles SSO gave them; memberships given
    by hand are kept for whoever reactivates them. `by` None: the provider's doing, undone by a
    later sign-in it accepts; an admin's stays until an admin reactivates the person."""
    identity = Identity.objects.select_for_update().select_related("user").get(pk=identity.pk)
    user = identity.user
    roles = RolesChange()
    for key, grant in sso_grants_of(identity=identity).items():
        accounts.membership_revoke(membership=grant.membership, by=by)
        roles.revoked.append(key)
    tokens = _revoke_api_tokens(user=user, by=by)
    was_active = user.is_active
    if was_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    # Only the provider's word is undone by the provider: a person an admin deprovisioned stays
    # out until an admin lets them in again.
    identity.deprovisioned_at = timezone.now() if by is None else None
    identity.set_refresh_token("")
    identity.save(update_fields=["deprovisioned_at", "refresh_token_encrypted"])
    record(
        actor=by,
        action="sso.deprovisioned",
        obj=user,
        data={
            "provider": identity.provider,
            "subject": identity.subject,
            "reason": reason[:500],
            "was_active": was_active,
            "tokens_revoked": tokens,
            **roles.as_data(),
        },
    )
    return user


def sso_identity_recheck(*, identity: Identity, check: Callable[[Identity], CheckResult]) -> str:
    """Ask the provider about a signed-in person (`check` talks to it) and act on the answer:
    gone → deprovisioned; active → SSO roles follow the fresh claims; unknown → nothing.
    Returns the status."""
    result = check(identity)
    if result.status == "gone":
        sso_user_deprovision(identity=identity, reason=result.detail or "refused by the provider")
    elif result.status == "active":
        with transaction.atomic():
            locked = Identity.objects.select_for_update().select_related("user").get(pk=identity.pk)
            roles = _apply_rules(identity=locked, claims=claims_without_secrets(result.claims))
            if roles:
                record(
                    actor=None,
                    action="sso.roles_changed",
                    obj=locked.user,
                    data={**roles.as_data(), "at": "re-check"},
                )
    return result.status


# Rules -------------------------------------------------------------------------------------------
def _rule_fields(*, provider: str, claim: str, operator: str, value: str, role: str) -> dict:
    errors: dict[str, list[str]] = {}
    claim, value = claim.strip(), value.strip()
    if provider not in ("", *Provider.values):
        errors["provider"] = [f"One of {', '.join(Provider.values)}, or blank for any."]
    if not claim:
        errors["claim"] = ["Required."]
    if operator not in Operator.values:
        errors["operator"] = [f"One of {', '.join(Operator.values)}."]
    if not value:
        errors["value"] = ["Required."]
    if role not in Role.values:
        errors["role"] = [f"One of {', '.join(Role.values)}."]
    if errors:
        raise ApplicationError("The rule is incomplete.", {"fields": errors})
    return {
        "provider": provider,
        "claim": claim,
        "operator": operator,
        "value": value,
        "role": role,
    }


def _rule_data(rule: RoleRule) -> dict:
    return {
        "provider": rule.provider,
        "claim": rule.claim,
        "operator": rule.operator,
        "value": rule.value,
        "team": rule.team_id,
        "role": rule.role,
    }


def _check_unique(fields: dict, team: Team, exclude: int | None = None) -> None:
    clash = RoleRule.objects.filter(team=team, **fields)
    if exclude:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ApplicationError("The same rule exists already.", {"fields": {"value": ["Taken."]}})


@transaction.atomic
def sso_rule_create(
    *,
    claim: str,
    value: str,
    team: Team,
    role: str,
    by: User | None,
    operator: str = Operator.EQUALS,
    provider: str = "",
) -> RoleRule:
    fields = _rule_fields(provider=provider, claim=claim, operator=operator, value=value, role=role)
    _check_unique(fields, team)
    rule = RoleRule.objects.create(team=team, **fields)
    record(actor=by, action="sso.rule_created", obj=rule, team=team, data=_rule_data(rule))
    return rule


@transaction.atomic
def sso_rule_update(
    *,
    rule: RoleRule,
    claim: str,
    value: str,
    team: Team,
    role: str,
    by: User | None,
    operator: str = Operator.EQUALS,
    provider: str = "",
) -> RoleRule:
    """Takes effect at each person's next sign-in (or re-check), not at once."""
    fields = _rule_fields(provider=provider, claim=claim, operator=operator, value=value, role=role)
    rule = RoleRule.objects.select_for_update().get(pk=rule.pk)
    _check_unique(fields, team, exclude=rule.pk)
    before = _rule_data(rule)
    for name, new in fields.items():
        setattr(rule, name, new)
    rule.team = team
    after = _rule_data(rule)
    if before == after:
        return rule
    rule.save()
    record(
        actor=by,
        action="sso.rule_changed",
        obj=rule,
        team=team,
        data={"before": before, "after": after},
    )
    return rule


@transaction.atomic
def sso_rule_delete(*, rule: RoleRule, by: User | None) -> None:
    data, team, object_id = _rule_data(rule), rule.team, rule.pk
    rule.delete()
    record(
        actor=by,
        action="sso.rule_deleted",
        object_type="sso.rolerule",
        object_id=str(object_id),
        team=team,
        data=data,
    )
