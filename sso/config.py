"""The identity providers as configured (cxhub/settings.py, from the environment), read when
asked so that a changed setting takes effect at once; None when a provider is not configured."""

from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.cache import cache

from cxhub.errors import ApplicationError

DISCOVERY_CACHE_SECONDS = 3600


class ProviderUnavailable(ApplicationError):
    """The identity provider could not be reached or answered nonsense."""

    status = 502


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scopes: str
    sign_algo: str
    username_claim: str
    endpoints: dict


def oidc_config() -> OidcConfig | None:
    if not (settings.CXHUB_OIDC_ISSUER and settings.CXHUB_OIDC_CLIENT_ID):
        return None
    return OidcConfig(
        issuer=settings.CXHUB_OIDC_ISSUER.rstrip("/"),
        client_id=settings.CXHUB_OIDC_CLIENT_ID,
        client_secret=settings.CXHUB_OIDC_CLIENT_SECRET,
        name=settings.CXHUB_OIDC_NAME,
        scopes=settings.CXHUB_OIDC_SCOPES,
        sign_algo=settings.CXHUB_OIDC_SIGN_ALGO,
        username_claim=settings.CXHUB_OIDC_USERNAME_CLAIM,
        endpoints={k: v for k, v in settings.CXHUB_OIDC_ENDPOINTS.items() if v},
    )


def oidc_endpoint(config: OidcConfig, name: str) -> str:
    """One endpoint of the provider: as configured, else from its discovery document (kept for
    an hour). Raises ProviderUnavailable when it cannot be had."""
    if name in config.endpoints:
        return config.endpoints[name]
    key = f"sso:oidc-discovery:{config.issuer}"
    document = cache.get(key)
    if document is None:
        url = f"{config.issuer}/.well-known/openid-configuration"
        try:
            answer = requests.get(url, timeout=settings.CXHUB_SSO_TIMEOUT_SECONDS)
            answer.raise_for_status()
            document = answer.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"The sign-in provider cannot be reached ({exc}).") from None
        if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != (
            config.issuer
        ):
            raise ProviderUnavailable(
                "The sign-in provider's discovery document names another issuer."
            )
        cache.set(key, document, DISCOVERY_CACHE_SECONDS)
    value = document.get(name)
    if not value and name != "end_session_endpoint":
        raise ProviderUnavailable(f"The sign-in provider publishes no {name}.")
    return value or ""


@dataclass(frozen=True)
class SamlConfig:
    name: str
    metadata_url: str
    metadata_file: str
    sp_entity_id: str
    key_file: str
    cert_file: str
    username_attribute: str
    xmlsec_binary: str


def saml_config() -> SamlConfig | None:
    if not (settings.CXHUB_SAML_IDP_METADATA_URL or settings.CXHUB_SAML_IDP_METADATA_FILE):
        return None
    return SamlConfig(
        name=settings.CXHUB_SAML_NAME,
        metadata_url=settings.CXHUB_SAML_IDP_METADATA_URL,
        metadata_file=settings.CXHUB_SAML_IDP_METADATA_FILE,
        sp_entity_id=settings.CXHUB_SAML_SP_ENTITY_ID,
        key_file=settings.CXHUB_SAML_SP_KEY_FILE,
        cert_file=settings.CXHUB_SAML_SP_CERT_FILE,
        username_attribute=settings.CXHUB_SAML_USERNAME_ATTRIBUTE,
        xmlsec_binary=settings.CXHUB_SAML_XMLSEC_BINARY,
    )
