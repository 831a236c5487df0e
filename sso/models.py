"""Single sign-on: who signed in through which identity provider, the rules that turn their
claims into team roles, and which memberships those rules gave."""

from django.db import models

from accounts.crypto import decrypt_token, encrypt_token
from accounts.models import Membership, Role, Team, User


class Provider(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    SAML = "saml", "SAML 2.0"


class Identity(models.Model):
    """A person's account at an identity provider, linked to their cxhub user. Found again by
    (provider, issuer, subject) at each sign-in, never by a name or an address the provider
    lets people change."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sso_identities")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    # The OpenID Connect issuer, or the SAML identity provider's entity id.
    issuer = models.CharField(max_length=500)
    # `sub`, or the SAML NameID.
    subject = models.CharField(max_length=500)
    # What the provider said at the last sign-in, without tokens or secrets: the rules preview
    # offers them.
    claims = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    # OpenID Connect: the latest refresh token (encrypted like the social accounts' tokens), with
    # which cxhub asks the provider whether the person is still there, and when it last asked.
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True)
    # Set when the provider said the person is gone (and cxhub deactivated them); cleared by a
    # later sign-in that the provider accepts again.
    deprovisioned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "identities"
        ordering = ["-last_login_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "issuer", "subject"], name="unique_sso_identity"
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=Provider.values), name="sso_identity_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.get_provider_display()} ({self.subject})"

    def set_refresh_token(self, token: str) -> None:
        self.refresh_token_encrypted = encrypt_token(token) if token else ""

    @property
    def refresh_token(self) -> str:
        return decrypt_token(self.refresh_token_encrypted) if self.refresh_token_encrypted else ""


class Operator(models.TextChoices):
    # A text claim equal to the value, or a list claim with an item equal to it.
    EQUALS = "equals", "equals"
    # A text claim with the value in it, or a list claim with an item that has it in it.
    CONTAINS = "contains", "contains"


class RoleRule(models.Model):
    """ "Claim X equals/contains V → role R on team T", applied at each sign-in: the person's
    SSO-given memberships become exactly what the rules give then."""

    provider = models.CharField(
        max_length=10,
        choices=Provider.choices,
        blank=True,
        help_text="Only sign-ins through this provider; blank: any.",
    )
    claim = models.CharField(
        max_length=200,
        help_text="The claim or SAML attribute, e.g. groups; a dotted path reaches into an "
        "object (realm_access.roles).",
    )
    operator = models.CharField(max_length=10, choices=Operator.choices, default=Operator.EQUALS)
    value = models.CharField(max_length=500, help_text="Compared exactly (case matters).")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="sso_rules")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SSO role rule"
        ordering = ["claim", "value", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "claim", "operator", "value", "team", "role"],
                name="unique_sso_role_rule",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="sso_rule_role_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(operator__in=Operator.values), name="sso_rule_operator_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=[*Provider.values, ""]),
                name="sso_rule_provider_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.claim} {self.operator} {self.value!r} → {self.role} on {self.team}"


class Grant(models.Model):
    """Marks a membership as given by the rules through one identity: at the next sign-in it
    goes when the rules no longer give it. Memberships without one were given by hand and SSO
    never touches them."""

    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, related_name="sso_grant"
    )
    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="grants")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.membership} (from {self.identity.get_provider_display()})"
