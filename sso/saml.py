"""SAML 2.0 through djangosaml2 / pysaml2: the service provider's configuration built from the
environment (sso.config), the backend that hands a verified assertion to sso.services, and the
views around djangosaml2's that audit each outcome.

Deprovisioning: SAML has no back channel to ask the identity provider whether a person still
exists. A person removed there loses access when their session ends (CXHUB_SAML_SESSION_SECONDS
when set, else CXHUB_SESSION_SECONDS) or earlier by the provider's Single Logout (answered at
/sso/saml/ls/), and at their next sign-in attempt, which the provider refuses. A person still
there whose attributes no longer match any rule keeps no SSO-given role after their next
sign-in."""

import copy
import threading
import time

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from djangosaml2 import views as saml_views
from djangosaml2.backends import Saml2Backend
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import SPConfig

from cxhub.errors import ApplicationError

from . import doors, services
from .config import ProviderUnavailable, SamlConfig, saml_config
from .models import Identity, Provider

# Loaded configurations (with the identity provider's metadata), by public address and
# settings; remote metadata is fetched again after this long.
CONFIG_SECONDS = 3600
_loaded: dict[tuple, tuple[float, SPConfig]] = {}
_lock = threading.Lock()


def _base_url(request) -> str:
    if settings.CXHUB_PUBLIC_URL:
        return settings.CXHUB_PUBLIC_URL
    if request is None:
        raise Http404("SAML needs CXHUB_PUBLIC_URL outside a request.")
    return request.build_absolute_uri("/").rstrip("/")


def sp_settings(config: SamlConfig, base: str) -> dict:
    """pysaml2's configuration of cxhub as a service provider."""
    metadata = (
        {"remote": [{"url": config.metadata_url}]}
        if config.metadata_url
        else {"local": [config.metadata_file]}
    )
    return {
        "xmlsec_binary": config.xmlsec_binary,
        "entityid": config.sp_entity_id or f"{base}/sso/saml/metadata/",
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "name": "cxhub",
                "endpoints": {
                    "assertion_consumer_service": [(f"{base}/sso/saml/acs/", BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (f"{base}/sso/saml/ls/", BINDING_HTTP_REDIRECT),
                        (f"{base}/sso/saml/ls/post/", BINDING_HTTP_POST),
                    ],
                },
                # Only answers to our own requests (no unsolicited, IdP-initiated sign-in).
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
            }
        },
        "metadata": metadata,
        "key_file": config.key_file,
        "cert_file": config.cert_file,
        "encryption_keypairs": [{"key_file": config.key_file, "cert_file": config.cert_file}],
    }


def sp_config(request=None) -> SPConfig:
    """djangosaml2's SAML_CONFIG_LOADER: the loaded configuration, kept for CONFIG_SECONDS."""
    config = saml_config()
    if config is None:
        raise Http404("SAML is not configured.")
    base = _base_url(request)
    key = (base, config)
    now = time.monotonic()
    with _lock:
        cached = _loaded.get(key)
        if cached and now - cached[0] < CONFIG_SECONDS:
            return cached[1]
    loaded = SPConfig()
    try:
        loaded.load(copy.deepcopy(sp_settings(config, base)))
    except Exception as exc:  # pysaml2 raises many types for metadata it cannot fetch or read
        raise ProviderUnavailable(
            f"The identity provider's metadata cannot be loaded ({type(exc).__name__}: {exc})."
        ) from None
    with _lock:
        _loaded[key] = (now, loaded)
    return loaded


def _first(value) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "")


class SamlBackend(Saml2Backend):
    """Answers only djangosaml2's assertion consumer, with an assertion pysaml2 verified."""

    def authenticate(
        self,
        request,
        session_info=None,
        attribute_mapping=None,
        create_unknown_user=True,
        assertion_info=None,
        **kwargs,
    ):
        config = saml_config()
        if session_info is None or request is None or config is None:
            return None
        subject = getattr(session_info.get("name_id"), "text", "") or ""
        claims = {**(session_info.get("ava") or {}), "name_id": subject}
        if config.username_attribute and config.username_attribute in claims:
            claims["_username"] = _first(claims[config.username_attribute])
        try:
            return services.sso_sign_in(
                provider=Provider.SAML,
                issuer=str(session_info.get("issuer") or ""),
                subject=subject,
                claims=claims,
                address=doors.client_address(request),
                username_claim="_username" if "_username" in claims else "name_id",
            )
        except ApplicationError as exc:
            request.sso_failure = (exc.message, subject)
            return None


def _failed(request, *, reason: str, status: int = 403, subject: str = ""):
    """A sign-in that did not happen: audited, through the common door, and said plainly."""
    services.sso_sign_in_failed(
        provider=Provider.SAML,
        reason=reason,
        address=doors.client_address(request),
        subject=subject,
    )
    doors.sign_in_failed(request=request, username=subject, method="saml")
    config = saml_config()
    return render(
        request,
        "sso/failed.html",
        {"provider_name": config.name if config else "SAML", "reason": reason},
        status=status,
    )


def _configured(view):
    def checked(self, request, *args, **kwargs):
        if saml_config() is None:
            raise Http404("SAML is not configured.")
        try:
            return view(self, request, *args, **kwargs)
        except ProviderUnavailable as exc:
            return _failed(request, reason=exc.message, status=502)

    return checked


class SamlLoginView(saml_views.LoginView):
    get = _configured(saml_views.LoginView.get)


class SamlAcsView(saml_views.AssertionConsumerServiceView):
    """The identity provider's answer. pysaml2 checks the signature, the audience, the time
    window and that it answers a request of ours; anything refused is audited."""

    post = _configured(saml_views.AssertionConsumerServiceView.post)

    def handle_acs_failure(self, request, exception=None, status=403, **kwargs):
        refused = getattr(request, "sso_failure", None)
        if refused:
            reason, subject = refused
        else:
            reason = f"{type(exception).__name__}: {exception}" if exception else "unverified"
            subject = ""
        return _failed(request, reason=reason, status=status, subject=subject)

    def post_login_hook(self, request, user, session_info):
        identity_id = (
            Identity.objects.filter(
                provider=Provider.SAML,
                issuer=str(session_info.get("issuer") or ""),
                subject=getattr(session_info.get("name_id"), "text", ""),
            )
            .values_list("pk", flat=True)
            .first()
        )
        request.session["sso"] = {
            "provider": Provider.SAML,
            "identity": identity_id,
            "checked_at": time.time(),
        }
        if settings.CXHUB_SAML_SESSION_SECONDS:
            request.session.set_expiry(
                min(settings.CXHUB_SAML_SESSION_SECONDS, settings.SESSION_COOKIE_AGE)
            )
        doors.sign_in_succeeded(request=request, user=user, method="saml")


class SamlLogoutView(saml_views.LogoutView):
    """Single Logout: the identity provider's logout request ends the session here."""

    @_configured
    def do_logout_service(self, request, data, binding, *args, **kwargs):
        user = request.user if request.user.is_authenticated else None
        response = super().do_logout_service(request, data, binding, *args, **kwargs)
        if user is not None and not request.user.is_authenticated:
            doors.signed_out(request=request, user=user)
        return response


class SamlMetadataView(saml_views.MetadataView):
    get = _configured(saml_views.MetadataView.get)
