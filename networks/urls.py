"""The pages of the social accounts: the list, connecting, reconnecting and disconnecting."""

from django.urls import path

from . import views

urlpatterns = [
    path("accounts/", views.social_account_list, name="social-accounts"),
    path("accounts/connect/", views.connect_index, name="connect"),
    # Before the network pages: "callback" and "choose" are not network names.
    path("accounts/connect/callback/", views.connect_callback, name="connect-callback"),
    path("accounts/connect/choose/<str:key>/", views.connect_choose, name="connect-choose"),
    path("accounts/connect/<slug:channel>/", views.connect_network, name="connect-network"),
    path(
        "accounts/<int:account_id>/reconnect/",
        views.social_account_reconnect,
        name="social-account-reconnect",
    ),
    path(
        "accounts/<int:account_id>/disconnect/",
        views.social_account_disconnect,
        name="social-account-disconnect",
    ),
]
