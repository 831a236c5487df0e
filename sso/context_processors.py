"""The "Sign in with …" buttons of the login page: one per configured identity provider."""

from django.urls import reverse

from .config import oidc_config, saml_config


def sign_in_options(request):
    options = []
    if (oidc := oidc_config()) is not None:
        options.append({"name": oidc.name, "url": reverse("sso-oidc-login"), "key": "oidc"})
    if (saml := saml_config()) is not None:
        options.append({"name": saml.name, "url": reverse("sso-saml-login"), "key": "saml"})
    return {"sso_options": options}
