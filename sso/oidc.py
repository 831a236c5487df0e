"""OpenID Connect through mozilla-django-oidc: its views and backend, fed from sso.config
instead of OIDC_* settings (so endpoints may be discovered, and nothing is read before it is
needed), with the checks it leaves out (audience, issuer, userinfo's subject), and the
provider's re-check that deprovisioning rests on.

Why a back-channel re-check rather than the library's SessionRefresh middleware (a silent
prompt=none redirect): it also covers POSTs and API calls made with the session, needs no
browser round trip, and a refused refresh token is a clear "this person is gone"."""

import logging
import time
from datetime import timedelta

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.crypto import TokenCipherError
from cxhub.errors import ApplicationError

from . import doors, services
from .config import OidcConfig, ProviderUnavailable, oidc_config, oidc_endpoint
from .models import Identity, Provider
from .services import CheckResult

log = logging.getLogger("cxhub.sso")

# Claims of the ID token that say nothing about the person.
_TECHNICAL = frozenset(
    {"iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "at_hash", "c_hash", "azp", "jti"}
)
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def oidc_setting(attr: str, *default):
    """mozilla-django-oidc's settings, answered from the configured provider."""
    config = oidc_config()
    if config is None:
        return import_from_settings(attr, *default)
    if attr in _ENDPOINTS:
        return oidc_endpoint(config, _ENDPOINTS[attr])
    values = {
        "OIDC_RP_CLIENT_ID": config.client_id,
        "OIDC_RP_CLIENT_SECRET": config.client_secret,
        "OIDC_RP_SCOPES": config.scopes,
        "OIDC_RP_SIGN_ALGO": config.sign_algo,
        "OIDC_RP_IDP_SIGN_KEY": None,
        "OIDC_USE_NONCE": True,
        "OIDC_USE_PKCE": True,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "sso-oidc-callback",
        "OIDC_TIMEOUT": settings.CXHUB_SSO_TIMEOUT_SECONDS,
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
        "OIDC_CREATE_USER": True,
    }
    if attr in values:
        return values[attr]
    return import_from_settings(attr, *default)


def _failed(request, *, reason: str, status: int = 403, subject: str = ""):
    """A sign-in that did not happen: audited, through the common door, and said plainly."""
    services.sso_sign_in_failed(
        provider=Provider.OIDC,
        reason=reason,
        address=doors.client_address(request),
        subject=subject,
    )
    doors.sign_in_failed(request=request, username=subject, method="oidc")
    config = oidc_config()
    return render(
        request,
        "sso/failed.html",
        {"provider_name": config.name if config else "single sign-on", "reason": reason},
        status=status,
    )


class OidcBackend(OIDCAuthenticationBackend):
    """Answers only the OpenID Connect callback, and only when a provider is configured."""

    get_settings = staticmethod(oidc_setting)
    OIDC_RP_IDP_SIGN_KEY = None

    def __init__(self, *args, **kwargs):
        # The library reads every endpoint here; ours are read when used (discovery is a call).
        self.UserModel = get_user_model()
        self.config: OidcConfig | None = oidc_config()
        self.refresh_token = ""

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self):  # noqa: N802 (the library's names)
        return oidc_endpoint(self.config, "token_endpoint")

    @property
    def OIDC_OP_USER_ENDPOINT(self):  # noqa: N802
        return oidc_endpoint(self.config, "userinfo_endpoint")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self):  # noqa: N802
        return oidc_endpoint(self.config, "jwks_uri")

    @property
    def OIDC_RP_CLIENT_ID(self):  # noqa: N802
        return self.config.client_id

    @property
    def OIDC_RP_CLIENT_SECRET(self):  # noqa: N802
        return self.config.client_secret

    @property
    def OIDC_RP_SIGN_ALGO(self):  # noqa: N802
        return self.config.sign_algo

    def authenticate(self, request, **kwargs):
        if self.config is None or request is None or "nonce" not in kwargs:
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        # The library's get_user lets a deactivated person's session live on.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_token(self, payload):
        answer = super().get_token(payload)
        self.refresh_token = answer.get("refresh_token") or ""
        return answer

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.config.client_id not in audiences:
            raise SuspiciousOperation("The ID token is for another client.")
        if str(payload.get("iss", "")).rstrip("/") != self.config.issuer:
            raise SuspiciousOperation("The ID token is from another issuer.")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer names another person.")
        claims = {k: v for k, v in payload.items() if k not in _TECHNICAL} | userinfo
        try:
            return services.sso_sign_in(
                provider=Provider.OIDC,
                issuer=self.config.issuer,
                subject=str(payload.get("sub") or ""),
                claims=claims,
                address=doors.client_address(self.request),
                username_claim=self.config.username_claim,
                refresh_token=self.refresh_token,
            )
        except ApplicationError as exc:
            self.request.sso_failure = (exc.message, str(payload.get("sub") or ""))
            return None


class OidcLoginView(OIDCAuthenticationRequestView):
    """Sends the person to the provider (state, nonce and PKCE kept in their session)."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        config = oidc_config()
        if config is None:
            raise Http404("OpenID Connect is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_endpoint(config, "authorization_endpoint")
        except ProviderUnavailable as exc:
            return _failed(request, reason=exc.message, status=502)
        self.OIDC_RP_CLIENT_ID = config.client_id
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer: the code is exchanged, the ID token checked, the person signed
    in through sso.services.sso_sign_in; anything else is a failure, audited."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request):
        if oidc_config() is None:
            raise Http404("OpenID Connect is not configured.")
        try:
            return super().get(request)
        except (
            SuspiciousOperation,
            ApplicationError,
            requests.RequestException,
            jwt.PyJWTError,
            KeyError,
            ValueError,
        ) as exc:
            reason = getattr(exc, "message", "") or str(exc) or type(exc).__name__
            log.warning("OpenID Connect sign-in failed: %s", reason)
            return _failed(request, reason=reason)

    def login_success(self):
        response = super().login_success()
        identity_id = (
            Identity.objects.filter(user=self.user, provider=Provider.OIDC)
            .order_by("-last_login_at")
            .values_list("pk", flat=True)
            .first()
        )
        self.request.session["sso"] = {
            "provider": Provider.OIDC,
            "identity": identity_id,
            "checked_at": time.time(),
        }
        doors.sign_in_succeeded(request=self.request, user=self.user, method="oidc")
        return response

    def login_failure(self):
        error = self.request.GET.get("error")
        refused = getattr(self.request, "sso_failure", None)
        if error:
            reason = f"the provider answered {error}"
            description = self.request.GET.get("error_description")
            if description:
                reason += f": {description[:200]}"
        elif refused:
            return _failed(self.request, reason=refused[0], subject=refused[1])
        else:
            reason = "the provider's answer could not be verified"
        return _failed(self.request, reason=reason)


# The re-check --------------------------------------------------------------------------------
def _ask_provider(config: OidcConfig, identity: Identity) -> tuple[CheckResult, str]:
    """Spend the refresh token, then read userinfo with the new access token. Returns what the
    provider said and the refresh token to keep."""
    try:
        refresh_token = identity.refresh_token
    except TokenCipherError:
        # Encrypted under a key no longer configured: the next sign-in stores a new one.
        return CheckResult("unknown", detail="the refresh token cannot be decrypted"), ""
    if not refresh_token:
        return CheckResult("unknown", detail="no refresh token (ask for offline_access)"), ""
    timeout = settings.CXHUB_SSO_TIMEOUT_SECONDS
    try:
        answer = requests.post(
            oidc_endpoint(config, "token_endpoint"),
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
            timeout=timeout,
        )
        if answer.status_code in (400, 401):
            error = _json(answer).get("error", "")
            if error == "invalid_grant":
                return CheckResult("gone", detail="the provider refused the refresh token"), ""
            return CheckResult(
                "unknown", detail=f"token endpoint said {error or answer.status_code}"
            ), refresh_token
        answer.raise_for_status()
        tokens = _json(answer)
        kept = tokens.get("refresh_token") or refresh_token
        info = requests.get(
            oidc_endpoint(config, "userinfo_endpoint"),
            headers={"Authorization": f"Bearer {tokens.get('access_token', '')}"},
            timeout=timeout,
        )
        if info.status_code in (401, 403):
            return CheckResult("gone", detail="the provider refused userinfo"), ""
        info.raise_for_status()
        claims = _json(info)
    except (requests.RequestException, ProviderUnavailable) as exc:
        return CheckResult("unknown", detail=f"provider unreachable: {exc}"), refresh_token
    if claims.get("sub") != identity.subject:
        return CheckResult("gone", detail="userinfo names another person"), ""
    return CheckResult("active", claims=claims), kept


def _json(answer) -> dict:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def check_with_provider(identity: Identity) -> CheckResult:
    """One re-check of one person at a time: the identity row stays locked while the provider
    is asked (a rotating refresh token spent twice would look like a removed person), and a
    check another request has just made is not repeated."""
    config = oidc_config()
    if config is None:
        return CheckResult("unknown", detail="OpenID Connect is not configured")
    interval = timedelta(seconds=settings.CXHUB_SSO_RECHECK_SECONDS)
    with transaction.atomic():
        row = Identity.objects.select_for_update().get(pk=identity.pk)
        if row.checked_at and interval and timezone.now() - row.checked_at < interval:
            return CheckResult("fresh")
        result, kept = _ask_provider(config, row)
        # Bookkeeping of the token exchange, not an event: what the provider said is recorded
        # by the service acting on it.
        row.set_refresh_token(kept)
        row.checked_at = timezone.now()
        row.save(update_fields=["refresh_token_encrypted", "checked_at"])
    if result.status == "unknown":
        log.warning("OpenID Connect re-check of identity %s: %s", identity.pk, result.detail)
    return result
