"""Reads of single sign-on: what the rules give for a set of claims (used at sign-in and by the
preview), and the recent sign-ins an admin may preview with."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, OuterRef, Q

from accounts.models import ApiToken, Membership, Team, User

from .models import Grant, Identity, Operator, RoleRule

# Claims never stored or shown: tokens and one-time values a provider may echo.
SECRET_CLAIMS = frozenset(
    {
        "access_token",
        "id_token",
        "refresh_token",
        "code",
        "nonce",
        "at_hash",
        "c_hash",
        "s_hash",
        "password",
        "client_secret",
    }
)


def claims_without_secrets(claims: dict) -> dict:
    return {
        str(key): value
        for key, value in claims.items()
        if str(key).lower() not in SECRET_CLAIMS and "secret" not in str(key).lower()
    }


def _claim(claims: dict, path: str):
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _texts(value) -> list[str] | None:
    """A claim as the list of texts a rule compares with (a text is a list of one); None for
    what no rule can match (missing, an object)."""
    if value is None or isinstance(value, dict):
        return None
    items = value if isinstance(value, list | tuple) else [value]
    texts = []
    for item in items:
        if isinstance(item, bool):
            texts.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            texts.append(str(item))
    return texts


def rule_matches(rule: RoleRule, claims: dict, provider: str) -> bool:
    if rule.provider and rule.provider != provider:
        return False
    texts = _texts(_claim(claims, rule.claim))
    if not texts:
        return False
    if rule.operator == Operator.EQUALS:
        return rule.value in texts
    return any(rule.value in text for text in texts)


@dataclass
class Outcome:
    """One role the rules give, with the rules that give it."""

    team: Team
    role: str
    rules: list[RoleRule] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str]:
        return (self.team.pk, self.role)


def roles_from_rules(
    *, claims: dict, provider: str, rules: Iterable[RoleRule] | None = None
) -> list[Outcome]:
    """The (team, role) pairs the rules give for these claims, in team-tree order. One query
    (the rules with their teams) unless `rules` are given."""
    if rules is None:
        rules = RoleRule.objects.select_related("team").order_by("id")
    outcomes: dict[tuple[int, str], Outcome] = {}
    for rule in rules:
        if rule_matches(rule, claims, provider):
            outcome = outcomes.setdefault(
                (rule.team_id, rule.role), Outcome(team=rule.team, role=rule.role)
            )
            outcome.rules.append(rule)
    return sorted(outcomes.values(), key=lambda o: (o.team.path, o.role))


@dataclass
class Preview:
    """Who the claims would sign in as, and what they would hold afterwards."""

    outcomes: list[Outcome]
    identity: Identity | None
    user: User | None
    granted: list[tuple[Team, str]]
    revoked: list[tuple[Team, str]]
    kept_by_hand: list[Membership]


def rules_preview(*, claims: dict, provider: str, issuer: str = "", subject: str = "") -> Preview:
    """What a sign-in with these claims would do, changing nothing: the roles the rules give,
    and for a person known by (provider, issuer, subject) what would be granted and revoked."""
    outcomes = roles_from_rules(claims=claims, provider=provider)
    identity = (
        Identity.objects.select_related("user")
        .filter(provider=provider, issuer=issuer, subject=subject)
        .first()
        if subject
        else None
    )
    if identity is None:
        granted = [(o.team, o.role) for o in outcomes]
        return Preview(outcomes, None, None, granted, [], [])
    memberships = list(
        Membership.objects.filter(user=identity.user).select_related("team", "sso_grant")
    )
    ours = {
        (m.team_id, m.role): m
        for m in memberships
        if getattr(m, "sso_grant", None) is not None and m.sso_grant.identity_id == identity.pk
    }
    held = {(m.team_id, m.role) for m in memberships}
    wanted = {o.key for o in outcomes}
    granted = [(o.team, o.role) for o in outcomes if o.key not in held]
    revoked = [(m.team, m.role) for key, m in ours.items() if key not in wanted]
    by_hand = [m for m in memberships if not hasattr(m, "sso_grant") or m.sso_grant is None]
    return Preview(outcomes, identity, identity.user, granted, revoked, by_hand)


def recent_identities(*, limit: int = 20) -> list[Identity]:
    """The latest sign-ins, for the preview's "use the claims of" choice (one query)."""
    return list(Identity.objects.select_related("user").filter(last_login_at__isnull=False)[:limit])


def sso_grants_of(*, identity: Identity) -> dict[tuple[int, str], Grant]:
    return {
        (g.membership.team_id, g.membership.role): g
        for g in Grant.objects.filter(identity=identity).select_related("membership")
    }


def identities_due_for_recheck(*, now, interval_seconds: int, limit: int) -> list[Identity]:
    """OpenID Connect identities of active people who hold a live API token and were not asked
    about within the interval (or never), oldest check first: the people no browser session
    re-checks. One query; only those with a refresh token can be asked."""
    live_token = ApiToken.objects.filter(
        user=OuterRef("user"), revoked_at__isnull=True, expires_at__gt=now
    )
    due = Q(checked_at__isnull=True) | Q(checked_at__lt=now - timedelta(seconds=interval_seconds))
    return list(
        Identity.objects.filter(due, provider="oidc", user__is_active=True)
        .exclude(refresh_token_encrypted="")
        .filter(Exists(live_token))
        .order_by("checked_at", "pk")[:limit]
    )
