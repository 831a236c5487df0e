"""What a session knows about its second factor, beyond django-otp's verified device: whether a
sign-in is waiting for one, and when it was last passed (removing a device needs a fresh one)."""

import time

import django_otp
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from . import selectors

PENDING = "cxhub_mfa_pending"
VERIFIED_AT = "cxhub_mfa_verified_at"
TOTP_KEY = "cxhub_mfa_totp_key"  # the secret of an authenticator app being added

VERIFY = "verify"  # has a second factor, has not passed it in this session
ENROL = "enrol"  # must have one and has none


def is_verified(user) -> bool:
    """django-otp's user.is_verified(), also for a user object that django.contrib.auth.login()
    just put on the request (OTPMiddleware only equips the one it found)."""
    return getattr(user, "otp_device", None) is not None


def signed_in(*, request: HttpRequest, user) -> None:
    """At every password sign-in (any door: the login page, the admin's, SSO): one who holds a
    second factor passes it before anything else."""
    if selectors.has_primary_device(user=user):
        request.session[PENDING] = True


def on_user_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        signed_in(request=request, user=user)


def state(request: HttpRequest) -> str | None:
    """VERIFY, ENROL, or None when this session may go anywhere its user may."""
    user = request.user
    if not user.is_authenticated or is_verified(user):
        return None
    if request.session.get(PENDING):
        return VERIFY
    if selectors.mfa_required_for(user=user):
        return VERIFY if selectors.has_primary_device(user=user) else ENROL
    return None


def mark_verified(request: HttpRequest, device) -> bool:
    """Record that this session passed `device`; True when it was not verified before (a
    sign-in completed, not a re-check)."""
    was_verified = is_verified(request.user)
    django_otp.login(request, device)
    request.session[VERIFIED_AT] = time.time()
    request.session.pop(PENDING, None)
    return not was_verified


def is_fresh(request: HttpRequest) -> bool:
    at = request.session.get(VERIFIED_AT)
    return (
        is_verified(request.user)
        and at is not None
        and time.time() - at <= settings.CXHUB_MFA_FRESH_SECONDS
    )


def safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


def verify_url(next_url: str | None = None) -> str:
    url = reverse("mfa-verify")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
