from django.urls import path

from . import oidc, saml

urlpatterns = [
    path("sso/oidc/login/", oidc.OidcLoginView.as_view(), name="sso-oidc-login"),
    path("sso/oidc/callback/", oidc.OidcCallbackView.as_view(), name="sso-oidc-callback"),
    path("sso/saml/login/", saml.SamlLoginView.as_view(), name="sso-saml-login"),
    path("sso/saml/acs/", saml.SamlAcsView.as_view(), name="sso-saml-acs"),
    path("sso/saml/ls/", saml.SamlLogoutView.as_view(), name="sso-saml-ls"),
    path("sso/saml/ls/post/", saml.SamlLogoutView.as_view(), name="sso-saml-ls-post"),
    path("sso/saml/metadata/", saml.SamlMetadataView.as_view(), name="sso-saml-metadata"),
    # djangosaml2 reverses its own name when it needs the login address.
    path("sso/saml/login/", saml.SamlLoginView.as_view(), name="saml2_login"),
]
