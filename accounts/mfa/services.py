"""Writes of the second factor: adding and removing devices, recovery codes, and checking a
code. Every one records its audit event; a check that fails commits its throttle count and
its event before the caller refuses (a refusal must not roll back the count)."""

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential
from rest_framework import status

from audit.services import record
from cxhub.errors import ApplicationError

from ..models import (
    AuthenticatorApp,
    RecoveryCode,
    RecoveryCodeDevice,
    User,
    normalise_recovery_code,
    recovery_code_hash,
)
from ..rotation import rotate_encrypted_fields
from . import report, selectors

RECOVERY_CODE_COUNT = 10
# 16 characters of Crockford's base32 (no i, l, o, u to misread): 80 random bits each.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class SecondFactorMissing(ApplicationError):
    """No code was given where one is due (400)."""


class SecondFactorWrong(ApplicationError):
    status = status.HTTP_401_UNAUTHORIZED


class SecondFactorNotEnrolled(ApplicationError):
    status = status.HTTP_403_FORBIDDEN


class SecondFactorThrottled(ApplicationError):
    status = status.HTTP_429_TOO_MANY_REQUESTS


@dataclass(frozen=True)
class Verification:
    """The outcome of a code check: the device that took it, or the seconds to wait before the
    devices that could take it accept another try (0: the code was wrong)."""

    device: object | None
    wait: int = 0

    @property
    def ok(self) -> bool:
        return self.device is not None


def _device_label(device) -> dict:
    kind = {
        AuthenticatorApp: "totp",
        WebAuthnCredential: "passkey",
        RecoveryCodeDevice: "recovery",
    }.get(type(device), type(device).__name__)
    return {"kind": kind, "device_id": device.pk, "name": device.name}


def _wait(devices) -> int:
    now = timezone.now()
    waits = []
    for device in devices:
        allowed, data = device.verify_is_allowed()
        if allowed:
            return 0
        until = (data or {}).get("locked_until")
        waits.append(max(1, int((until - now).total_seconds()) + 1) if until else 1)
    return min(waits) if waits else 0


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


@transaction.atomic
def mfa_code_verify(*, user: User, method: str, code: str) -> Verification:
    """Check a TOTP code (`method="totp"`) or a recovery code (`"recovery"`) against the
    person's devices, each with django-otp's own back-off (1, 2, 4 … s after successive
    failures, per device): a wrong guess slows the next one on that device only and never
    shuts out another device. Records mfa.verified (and mfa.recovery_code_used), or
    mfa.failed."""
    if method == "totp":
        devices = list(
            AuthenticatorApp.objects.select_for_update().filter(user=user, confirmed=True)
        )
    elif method == "recovery":
        devices = list(
            RecoveryCodeDevice.objects.select_for_update().filter(user=user, confirmed=True)
        )
    else:
        raise ApplicationError(
            f"Unknown method {method!r}.", {"fields": {"method": ["One of totp, recovery."]}}
        )
    wait = _wait(devices)
    verified = None
    if not wait:
        for device in devices:
            if device.verify_token(code):
                verified = device
                break
    if verified is None:
        record(
            actor=user,
            action="mfa.failed",
            obj=user,
            data={"method": method, "throttled": bool(wait), "devices": len(devices)},
        )
        return Verification(device=None, wait=wait)
    if method == "recovery":
        record(
            actor=user,
            action="mfa.recovery_code_used",
            obj=user,
            data={"remaining": verified.remaining()},
        )
    record(actor=user, action="mfa.verified", obj=user, data={"method": method})
    return Verification(device=verified)


@transaction.atomic
def mfa_totp_confirm(*, user: User, key: str, code: str, name: str = "") -> AuthenticatorApp:
    """Add an authenticator app once it proved it holds `key` (hex) by giving a current code."""
    device = AuthenticatorApp(user=user, name=name or "Authenticator app", confirmed=True)
    device.set_key(key)
    if not device.check_first_code(code.strip()):
        raise ApplicationError(
            "That code does not match: check the app's clock and type the code it shows now.",
            {"fields": {"code": ["That code does not match."]}},
        )
    device.save()
    record(actor=user, action="mfa.device_added", obj=user, data=_device_label(device))
    return device


@transaction.atomic
def mfa_passkey_added(*, user: User, device: WebAuthnCredential) -> None:
    """Record a passkey that django-otp-webauthn's registration ceremony stored, naming it when
    the authenticator did not say what it is."""
    if not device.name:
        count = WebAuthnCredential.objects.filter(user=user).count()
        device.name = f"Passkey {count}"
        device.save(update_fields=["name"])
    record(actor=user, action="mfa.device_added", obj=user, data=_device_label(device))


@transaction.atomic
def mfa_passkey_verified(*, user: User, device: WebAuthnCredential) -> None:
    record(actor=user, action="mfa.verified", obj=user, data={"method": "passkey"})


@transaction.atomic
def mfa_passkey_failed(*, user: User, reason: str) -> None:
    record(actor=user, action="mfa.failed", obj=user, data={"method": "passkey", "reason": reason})


@transaction.atomic
def mfa_recovery_codes_generate(*, user: User) -> list[str]:
    """A new set of single-use codes (the old set stops working), returned once: only their
    hashes are kept."""
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(
        user=user, name="Recovery codes", confirmed=True, salt=secrets.token_hex(16)
    )
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=recovery_code_hash(salt=device.salt, code=code))
        for code in codes
    )
    record(
        actor=user,
        action="mfa.recovery_codes_generated",
        obj=user,
        data={"count": len(codes)},
    )
    return codes


@transaction.atomic
def mfa_device_remove(*, user: User, device) -> None:
    """Remove one of the person's devices. Without an app or passkey left, the recovery codes
    go too (they back up an enrolment, they are not one)."""
    if device.user_id != user.pk:
        raise ApplicationError("No such device.", {"fields": {"device": ["No such device."]}})
    label = _device_label(device)
    device.delete()
    if not selectors.has_primary_device(user=user):
        label["recovery_codes_removed"] = RecoveryCodeDevice.objects.filter(user=user).delete()[0]
    record(actor=user, action="mfa.device_removed", obj=user, data=label)


def mfa_app_keys_rotate(*, by: User | None = None, batch_size: int = 500) -> int:
    """Re-encrypt every authenticator app's key under the newest key of CXHUB_TOKEN_KEYS, in
    batches, as the OAuth tokens are (accounts/rotation.py). Returns how many apps it rewrote."""
    return rotate_encrypted_fields(
        queryset=AuthenticatorApp.objects.all(),
        fields=("key_encrypted",),
        action="mfa.app_keys_rotated",
        data_key="apps",
        by=by,
        batch_size=batch_size,
    )


def mfa_token_check(*, request, user: User, code: str | None) -> None:
    """The second factor of token issuance, for one who passed the password: nothing when none
    is held nor required; else `code` must be a current TOTP code or an unused recovery code."""
    enrolled = selectors.has_primary_device(user=user)
    if not enrolled and not selectors.mfa_required_for(user=user):
        return
    if not enrolled:
        raise SecondFactorNotEnrolled(
            "Your role needs a second factor: add an authenticator app on the security page "
            "before asking for a token.",
            {"fields": {"otp": ["Add an authenticator app first (/security/)."]}},
        )
    code = (code or "").strip()
    if not code:
        raise SecondFactorMissing(
            "Give the code from your authenticator app, or a recovery code, as `otp` (passkeys "
            "cannot be used to get a token).",
            {"fields": {"otp": ["This field is required."]}},
        )
    method = "recovery" if len(normalise_recovery_code(code)) == 16 else "totp"
    outcome = mfa_code_verify(user=user, method=method, code=code)
    if outcome.ok:
        return
    report.failed(request=request, user=user, method=method)
    if outcome.wait:
        raise SecondFactorThrottled(
            f"Too many wrong codes: try again in {outcome.wait} second(s).",
            {"fields": {"otp": ["Too many wrong codes."]}, "retry_after_seconds": outcome.wait},
        )
    raise SecondFactorWrong(
        "Wrong or expired code.", {"fields": {"otp": ["Wrong or expired code."]}}
    )
