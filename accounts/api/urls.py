from django.urls import path

from . import views

urlpatterns = [
    path("auth/token/", views.TokenObtainApi.as_view(), name="api-token"),
    path("auth/tokens/", views.ApiTokenListApi.as_view(), name="api-tokens"),
    path(
        "auth/tokens/<int:token_id>/revoke/",
        views.ApiTokenRevokeApi.as_view(),
        name="api-token-revoke",
    ),
    path("me/", views.MeApi.as_view(), name="api-me"),
    path("notifications/", views.NotificationListApi.as_view(), name="api-notifications"),
    path(
        "notifications/read/", views.NotificationsReadApi.as_view(), name="api-notifications-read"
    ),
    path("teams/", views.TeamListApi.as_view(), name="api-teams"),
    path("teams/<int:team_id>/", views.TeamDetailApi.as_view(), name="api-team"),
]
