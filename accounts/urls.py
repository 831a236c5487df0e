from django.urls import include, path

from . import token_views, views
from .mfa import views as mfa_views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.password_change, name="password-change"),
    path("password/reset/", views.password_reset, name="password-reset"),
    path("password/reset/sent/", views.password_reset_sent, name="password-reset-sent"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.password_reset_confirm,
        name="password-reset-confirm",
    ),
    path("login/verify/", mfa_views.verify, name="mfa-verify"),
    path("security/", mfa_views.security, name="mfa-security"),
    path("security/totp/", mfa_views.totp_add, name="mfa-totp-add"),
    path("security/recovery-codes/", mfa_views.recovery_codes, name="mfa-recovery-codes"),
    path(
        "security/devices/<slug:kind>/<int:device_id>/remove/",
        mfa_views.device_remove,
        name="mfa-device-remove",
    ),
    path("security/passkeys/", include("accounts.mfa.webauthn")),
    path("teams/", views.team_list, name="teams"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/people/", token_views.token_people, name="tokens-people"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token-revoke"),
]
