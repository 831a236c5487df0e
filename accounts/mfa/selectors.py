"""Reads about second factors: who must have one, and which a person holds."""

from django.conf import settings
from django.db.models import Q
from django_otp_webauthn.models import WebAuthnCredential

from ..models import AuthenticatorApp, Membership, RecoveryCodeDevice, Role, User


def mfa_required_for(*, user: User) -> bool:
    """Whether the settings demand a second factor of this person: everyone when
    CXHUB_MFA_REQUIRED_FOR_ALL, else holders of CXHUB_MFA_REQUIRED_ROLES on any team. Staff and
    superusers count as admins (they reach the Django admin). One query at most."""
    if settings.CXHUB_MFA_REQUIRED_FOR_ALL:
        return True
    roles = settings.CXHUB_MFA_REQUIRED_ROLES
    if not roles:
        return False
    if Role.ADMIN in roles and (user.is_superuser or user.is_staff):
        return True
    return Membership.objects.filter(user=user, role__in=roles).exists()


def totp_devices(*, user: User) -> list[AuthenticatorApp]:
    return list(AuthenticatorApp.objects.filter(user=user, confirmed=True).order_by("id"))


def passkeys(*, user: User) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("id"))


def recovery_device(*, user: User) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def has_primary_device(*, user: User) -> bool:
    """Enrolled: a confirmed authenticator app or passkey (recovery codes alone are a backup,
    not an enrolment). One query."""
    return User.objects.filter(
        Q(pk=user.pk),
        Q(authenticatorapp__confirmed=True) | Q(webauthncredential__confirmed=True),
    ).exists()


def devices_of(*, user: User) -> dict:
    """Everything the security page shows: apps, passkeys, and how many recovery codes are
    left (None: no set). Four queries."""
    recovery = recovery_device(user=user)
    return {
        "totp": totp_devices(user=user),
        "passkeys": passkeys(user=user),
        "recovery_remaining": recovery.remaining() if recovery else None,
    }
