"""Social accounts: one account on one network run by one team, its encrypted tokens and
per-account grants, and cxhub's client registrations with the servers of a network."""

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from accounts.crypto import decrypt_token, encrypt_token
from accounts.models import Team


class Channel(models.TextChoices):
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    X = "x", "X"
    FACEBOOK = "facebook", "Facebook Page"
    INSTAGRAM = "instagram", "Instagram"
    LINKEDIN = "linkedin", "LinkedIn"
    # The organisation's own sites, reached by a signed webhook.
    WEBHOOK = "webhook", "Webhook"
    # Publishes nowhere: keeps what would have gone out (demo and training accounts).
    SANDBOX = "sandbox", "Sandbox"


class HttpsURLField(models.URLField):
    """A URL field whose form assumes https for an address typed without a scheme."""

    def formfield(self, **kwargs):
        return super().formfield(**{"assume_scheme": "https", **kwargs})


class AccountStatus(models.TextChoices):
    # Tokens are valid; posts may be scheduled and published.
    CONNECTED = "connected", "Connected"
    # A refresh was refused: scheduled posts are held until someone reconnects.
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    # Disconnected on purpose; nothing publishes.
    DISCONNECTED = "disconnected", "Disconnected"


class SocialAccount(models.Model):
    """One account on one network, run by one team. OAuth tokens are encrypted at rest."""

    Status = AccountStatus

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="social_accounts")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    handle = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    base_url = HttpsURLField(max_length=500, blank=True)
    access_token_encrypted = models.TextField(blank=True, editable=False)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    # A training account: drafted, previewed and checked by its network's rules, but what it
    # "publishes" stays in cxhub's sandbox feed and never reaches the network.
    sandbox = models.BooleanField(default=False)
    # What the network told us at connect (channels.base.Identity.settings), e.g. a Mastodon
    # server's own limits under "instance", and which registration ("oauth_client_id") the
    # tokens were issued to. Never a secret.
    network_settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "handle"]
        permissions = [("draft_socialaccount", "Can draft posts for this account")]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "base_url", "handle"], name="unique_account_per_network"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=Channel.values), name="socialaccount_channel_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AccountStatus.values),
                name="socialaccount_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["team", "channel"])]

    def __str__(self) -> str:
        return f"{self.handle} ({self.get_channel_display()})"

    # Tokens: set through these, never by touching the *_encrypted columns.
    def set_tokens(self, *, access_token: str, refresh_token: str = "") -> None:
        self.access_token_encrypted = encrypt_token(access_token) if access_token else ""
        self.refresh_token_encrypted = encrypt_token(refresh_token) if refresh_token else ""

    @property
    def access_token(self) -> str:
        """The plaintext token; raises TokenCipherError (with a clear message) on a wrong key."""
        return decrypt_token(self.access_token_encrypted) if self.access_token_encrypted else ""

    @property
    def refresh_token(self) -> str:
        return decrypt_token(self.refresh_token_encrypted) if self.refresh_token_encrypted else ""

    @property
    def has_tokens(self) -> bool:
        return bool(self.access_token_encrypted)


class OAuthApp(models.Model):
    """cxhub's client registration with one server of a network that registers clients
    dynamically (a Mastodon server: POST /api/v1/apps). Made once per server and callback
    address, on the first connect; the secret is encrypted at rest like the tokens."""

    channel = models.CharField(max_length=20, choices=Channel.choices)
    base_url = HttpsURLField(max_length=500)
    redirect_uri = models.URLField(max_length=500)
    client_id = models.CharField(max_length=500)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "base_url", "redirect_uri"], name="unique_oauth_app_per_server"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=Channel.values), name="oauthapp_channel_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"cxhub on {self.base_url} ({self.get_channel_display()})"

    def set_client_secret(self, secret: str) -> None:
        self.client_secret_encrypted = encrypt_token(secret) if secret else ""

    @property
    def client_secret(self) -> str:
        return decrypt_token(self.client_secret_encrypted) if self.client_secret_encrypted else ""


class SocialAccountUserObjectPermission(UserObjectPermissionBase):
    """Per-account grants to one person (direct foreign key: stays fast at scale)."""

    content_object = models.ForeignKey(SocialAccount, on_delete=models.CASCADE)


class SocialAccountGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(SocialAccount, on_delete=models.CASCADE)
