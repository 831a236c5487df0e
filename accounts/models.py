"""People and organisation: users, the team tree, memberships with roles, and the ways in (sign-in
throttles, notifications, API tokens, second factors)."""

import hashlib
import hmac
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP
from treebeard.mp_tree import MP_Node

from .crypto import decrypt_token, encrypt_token


class User(AbstractUser):
    """A person who signs in. Their powers come from memberships, never from flags on the user
    (bar `is_superuser` for the installation's own operators)."""

    display_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class Team(MP_Node):
    """A node of the organisation tree (HQ → regions → centres → programmes).

    The materialised path makes "this team and everything below it" one indexed prefix query:
    `Team.objects.filter(path__startswith=team.path)`.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # A post approved after its time goes out at once only within this many minutes of it.
    late_approval_grace_minutes = models.PositiveIntegerField(default=15)

    node_order_by = ["name"]

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    # Creates and edits drafts for the team's accounts, and submits them.
    DRAFTER = "drafter", "Drafter"
    # Decides approval steps routed to the team.
    APPROVER = "approver", "Approver"
    # Sees and exports the audit trail and reports; freezes publishing; break-glass.
    LEAD = "lead", "Communications lead"
    # Manages members, social accounts and approval policies.
    ADMIN = "admin", "Administrator"


class Membership(models.Model):
    """A role held on a team; it holds for every team below it too."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team", "role"], name="unique_membership_role"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["user", "role"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.team}"


class LoginFailure(models.Model):
    """A failed password try, kept (for the door policy's window only) to throttle guessing
    across every web process: counted per (username, address) pair and per address."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)
    # The way in that was tried: "password" (the sign-in page), "token", "password_change", …
    method = models.CharField(max_length=30, default="password")

    class Meta:
        indexes = [
            models.Index(fields=["address", "at"]),
            models.Index(fields=["username", "address", "at"], name="loginfailure_pair_at"),
        ]

    def __str__(self) -> str:
        return f"failed sign-in as {self.username} from {self.address or 'unknown'}"


class PasswordResetRequest(models.Model):
    """A request for a password reset link, kept for the throttle's window only. The e-mail
    address is kept as a SHA-256 digest: the row must not tell who asked for what."""

    email_digest = models.CharField(max_length=64)
    address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["email_digest", "at"]),
            models.Index(fields=["address", "at"]),
        ]

    def __str__(self) -> str:
        return f"password reset asked from {self.address or 'unknown'} at {self.at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    """A message to one person: shown in the app, and e-mailed by a task (the outbox row comes
    first, so a failed send can be seen and retried)."""

    class EmailStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        NONE = "none", "Not e-mailed"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=50)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    post_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"to {self.user_id}: {self.title}"


class ApiToken(models.Model):
    """A key to the API for one person, kept only as the SHA-256 of its secret: the secret is
    shown once, when it is made, and cannot be read back from the database or a dump of it.

    The secret is 32 random bytes, so a plain SHA-256 is enough (there is nothing to guess that a
    slow hash would protect). `prefix` is not secret: it names the token in lists, and tokens of
    the current format (`cxh_<prefix>_<secret>`) are found by it before their hash is compared.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Reads only: any request that could change something is refused with 403.
    read_only = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now=None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())

    @property
    def state(self) -> str:
        """ "active", "expired" or "revoked", for lists."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.is_active() else "expired"


class AuthenticatorApp(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of
    tolerance either way), as a django-otp device.

    Its key is encrypted at rest like the OAuth tokens (CXHUB_TOKEN_KEYS, rotated by
    `manage.py rotate_token_keys`): a copy of the database alone yields no codes. (django-otp's
    own TOTP device keeps the key in clear.)
    """

    STEP = 30
    DIGITS = 6
    TOLERANCE = 1

    key_encrypted = models.TextField()
    # The last time step a code was accepted for: a code is never taken twice.
    last_t = models.BigIntegerField(default=-1)
    # Steps the app's clock is off by, learnt from accepted codes.
    drift = models.SmallIntegerField(default=0)

    def set_key(self, hex_key: str) -> None:
        self.key_encrypted = encrypt_token(hex_key)

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(decrypt_token(self.key_encrypted))

    def _totp(self) -> TOTP:
        totp = TOTP(self.bin_key, self.STEP, 0, self.DIGITS, self.drift)
        totp.time = time.time()
        return totp

    def config_url(self, *, issuer: str) -> str:
        """The otpauth:// address an app scans (as a QR code) to add this account."""
        secret = b32encode(self.bin_key).decode().rstrip("=")
        label = quote(f"{issuer}:{self.user.get_username()}")
        query = urlencode(
            {"secret": secret, "issuer": issuer, "digits": self.DIGITS, "period": self.STEP}
        )
        return f"otpauth://totp/{label}?{query}"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def check_first_code(self, token: str) -> bool:
        """Before the app is saved: does it show a current code for this key?"""
        try:
            number = int(token)
        except (TypeError, ValueError):
            return False
        totp = self._totp()
        if not totp.verify(number, self.TOLERANCE):
            return False
        self.last_t = totp.t()
        return True

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            number = int(token)
        except (TypeError, ValueError):
            number = None
        totp = self._totp()
        if number is not None and totp.verify(number, self.TOLERANCE, self.last_t + 1):
            self.last_t = totp.t()
            self.drift = totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment()
        return False


def normalise_recovery_code(code: str) -> str:
    """What a person types, as stored: case, spaces and dashes do not matter."""
    return "".join(code.split()).replace("-", "").lower()


def recovery_code_hash(*, salt: str, code: str) -> str:
    return hmac.new(
        salt.encode(), normalise_recovery_code(code).encode(), hashlib.sha256
    ).hexdigest()


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A person's set of single-use recovery codes, as one django-otp device.

    Only hashes are kept: each code carries 80 random bits, so a keyed SHA-256 (the key is this
    set's salt) cannot be reversed from a copy of the database, and checking one is one indexed
    lookup. A new set replaces the old one.
    """

    salt = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user"], name="one_recovery_code_set_per_user")
        ]

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_RECOVERY_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed or not isinstance(token, str):
            return False
        with transaction.atomic():
            code = (
                self.codes.select_for_update()
                .filter(code_hash=recovery_code_hash(salt=self.salt, code=token), used_at=None)
                .first()
            )
            if code is None:
                self.throttle_increment()
                return False
            code.used_at = timezone.now()
            code.save(update_fields=["used_at"])
            self.throttle_reset()
        return True

    def remaining(self) -> int:
        return self.codes.filter(used_at=None).count()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="unique_recovery_code")
        ]

    def __str__(self) -> str:
        return f"recovery code {self.pk} of set {self.device_id}"
