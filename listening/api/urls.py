from django.urls import path

from . import views

urlpatterns = [
    path("watches/", views.WatchListApi.as_view(), name="api-watches"),
    path("watches/<int:watch_id>/", views.WatchDetailApi.as_view(), name="api-watch"),
    path(
        "watches/<int:watch_id>/measures/",
        views.WatchMeasuresApi.as_view(),
        name="api-watch-measures",
    ),
    path(
        "watches/<int:watch_id>/webhook/",
        views.WatchWebhookApi.as_view(),
        name="api-watch-webhook",
    ),
    path(
        "watches/<int:watch_id>/claims/",
        views.WatchClaimListApi.as_view(),
        name="api-watch-claims",
    ),
    path(
        "watches/<int:watch_id>/claims/<int:claim_id>/",
        views.WatchClaimApi.as_view(),
        name="api-watch-claim",
    ),
    path("alerts/", views.AlertListApi.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/", views.AlertDetailApi.as_view(), name="api-alert"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        views.AlertAcknowledgeApi.as_view(),
        name="api-alert-acknowledge",
    ),
    path("alerts/<int:alert_id>/close/", views.AlertCloseApi.as_view(), name="api-alert-close"),
    path("alerts/<int:alert_id>/draft/", views.AlertDraftApi.as_view(), name="api-alert-draft"),
    path("alerts/<int:alert_id>/freeze/", views.AlertFreezeApi.as_view(), name="api-alert-freeze"),
    path("alerts/<int:alert_id>/reply/", views.AlertReplyApi.as_view(), name="api-alert-reply"),
]
