"""Mastodon's paths (no trailing slashes), answered by django-oauth-toolkit's views and ours."""

from django.urls import path
from oauth2_provider import views as oauth

from . import views

urlpatterns = [
    path("login/", views.sign_in),
    path("oauth/authorize", oauth.AuthorizationView.as_view()),
    path("oauth/token", oauth.TokenView.as_view()),
    path("oauth/revoke", oauth.RevokeTokenView.as_view()),
    path("api/v1/apps", views.create_app),
    path("api/v1/accounts/verify_credentials", views.verify_credentials),
    path("api/v2/instance", views.instance),
]
