from django.urls import include, path

from . import connect_views, token_views, views
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
    path("", views.dashboard, name="dashboard"),
    path("teams/", views.team_list, name="teams"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/people/", token_views.token_people, name="tokens-people"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token-revoke"),
    path("accounts/", connect_views.social_account_list, name="social-accounts"),
    path("accounts/connect/", connect_views.connect_index, name="connect"),
    # Before the network pages: "callback" and "choose" are not network names.
    path("accounts/connect/callback/", connect_views.connect_callback, name="connect-callback"),
    path("accounts/connect/choose/<str:key>/", connect_views.connect_choose, name="connect-choose"),
    path("accounts/connect/<slug:channel>/", connect_views.connect_network, name="connect-network"),
    path(
        "accounts/<int:account_id>/reconnect/",
        connect_views.social_account_reconnect,
        name="social-account-reconnect",
    ),
    path(
        "accounts/<int:account_id>/disconnect/",
        connect_views.social_account_disconnect,
        name="social-account-disconnect",
    ),
]
