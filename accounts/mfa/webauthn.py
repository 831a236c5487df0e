"""Passkeys through django-otp-webauthn: its ceremonies and scripts, with the relying party
taken from the settings or the request, and every registration and verification audited and
reported to the door policy like the codes are."""

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.middleware import csrf
from django.urls import path, reverse
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from . import report, services, session


def rp_id(request: HttpRequest) -> str:
    """The domain passkeys are bound to: CXHUB_WEBAUTHN_RP_ID, else the host of
    CXHUB_PUBLIC_URL, else the host this request came to (validated against ALLOWED_HOSTS)."""
    if settings.CXHUB_WEBAUTHN_RP_ID:
        return settings.CXHUB_WEBAUTHN_RP_ID
    if settings.CXHUB_PUBLIC_URL:
        return urlsplit(settings.CXHUB_PUBLIC_URL).hostname or ""
    return split_domain_port(request.get_host())[0]


def expected_origins(request: HttpRequest) -> list[str]:
    if settings.OTP_WEBAUTHN_ALLOWED_ORIGINS:
        return list(settings.OTP_WEBAUTHN_ALLOWED_ORIGINS)
    if settings.CXHUB_PUBLIC_URL:
        return [settings.CXHUB_PUBLIC_URL]
    return [f"{request.scheme}://{request.get_host()}"]


class Helper(WebAuthnHelper):
    def get_relying_party_domain(self) -> str:
        return rp_id(self.request)

    def get_allowed_origins(self) -> list[str]:
        return expected_origins(self.request)


def script_config(request: HttpRequest) -> dict:
    """What the library's scripts read from the page, rendered with json_script (data, not
    code: no inline script, so a CSP without 'unsafe-inline' holds)."""
    return {
        "autocompleteLoginFieldSelector": None,
        "nextFieldSelector": "input[name='next']",
        "csrfToken": csrf.get_token(request),
        "beginAuthenticationUrl": reverse("otp_webauthn:credential-authentication-begin"),
        "completeAuthenticationUrl": reverse("otp_webauthn:credential-authentication-complete"),
        "beginRegistrationUrl": reverse("otp_webauthn:credential-registration-begin"),
        "completeRegistrationUrl": reverse("otp_webauthn:credential-registration-complete"),
    }


class RegistrationComplete(webauthn_views.CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        was_verified = session.is_verified(self.request.user)
        response = super().post(*args, **kwargs)
        device = WebAuthnCredential.objects.get(pk=json.loads(response.content)["id"])
        services.mfa_passkey_added(user=self.request.user, device=device)
        if not was_verified:
            # The first device of one who had none: the ceremony just proved it is theirs.
            session.mark_verified(self.request, device)
        return response


class AuthenticationComplete(webauthn_views.CompleteCredentialAuthenticationView):
    def complete_auth(self, device):
        completing_sign_in = not session.is_verified(self.request.user)
        super().complete_auth(device)
        session.mark_verified(self.request, device)
        services.mfa_passkey_verified(user=self.request.user, device=device)
        if completing_sign_in:
            report.succeeded(request=self.request, user=self.request.user, method="passkey")

    def handle_exception(self, exc):
        user = self.request.user
        if isinstance(exc, exceptions.OTPWebAuthnApiError) and user.is_authenticated:
            services.mfa_passkey_failed(user=user, reason=exc.code)
            report.failed(request=self.request, user=user, method="passkey")
        return super().handle_exception(exc)


app_name = "otp_webauthn"
urlpatterns = [
    path(
        "registration/begin/",
        webauthn_views.BeginCredentialRegistrationView.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        RegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn_views.BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        AuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
