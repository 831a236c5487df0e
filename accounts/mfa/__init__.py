"""The second factor: TOTP apps, passkeys (WebAuthn) and single-use recovery codes, required
for the roles CXHUB_MFA_REQUIRED_ROLES names (or everyone, CXHUB_MFA_REQUIRED_FOR_ALL) on every
way in: pages and the admin (middleware.py), and token issuance (check_for_token).

Built on django-otp (devices, per-device throttling, the verified session) and
django-otp-webauthn (passkey ceremonies and their scripts)."""


def check_for_token(*, request, user, code: str | None) -> None:
    """Token issuance for a person who passed the password: returns when no second factor is
    due or `code` (TOTP or recovery code) is right; raises an ApplicationError naming `otp`
    otherwise. Passkeys cannot be used here (no browser to run the ceremony)."""
    from .services import mfa_token_check  # the package is imported before the app registry

    mfa_token_check(request=request, user=user, code=code)
