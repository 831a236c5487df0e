from django.urls import path

from . import views

urlpatterns = [
    path("listening/measures.csv", views.across_csv, name="listening-across-csv"),
    path("listening/measures.json", views.across_json, name="listening-across-json"),
    path("listening/", views.listening, name="listening"),
    path("listening/watches/new/", views.watch_new, name="listening-watch-new"),
    path("listening/watches/<int:watch_id>/", views.watch_dashboard, name="listening-watch"),
    path("listening/watches/<int:watch_id>/edit/", views.watch_edit, name="listening-watch-edit"),
    path(
        "listening/watches/<int:watch_id>/active/",
        views.watch_active,
        name="listening-watch-active",
    ),
    path(
        "listening/watches/<int:watch_id>/webhook/",
        views.watch_webhook,
        name="listening-watch-webhook",
    ),
    path("listening/watches/<int:watch_id>/claims/", views.claim_new, name="listening-claim-new"),
    path(
        "listening/watches/<int:watch_id>/measures.csv",
        views.measures_csv,
        name="listening-measures-csv",
    ),
    path(
        "listening/watches/<int:watch_id>/measures.json",
        views.measures_json,
        name="listening-measures-json",
    ),
    path("listening/alerts/<int:alert_id>/", views.alert_detail, name="listening-alert"),
    path(
        "listening/alerts/<int:alert_id>/acknowledge/",
        views.alert_acknowledge,
        name="listening-alert-acknowledge",
    ),
    path(
        "listening/alerts/<int:alert_id>/close/",
        views.alert_close,
        name="listening-alert-close",
    ),
    path(
        "listening/alerts/<int:alert_id>/draft/",
        views.alert_draft,
        name="listening-alert-draft",
    ),
    path(
        "listening/alerts/<int:alert_id>/freeze/",
        views.alert_freeze,
        name="listening-alert-freeze",
    ),
    path(
        "listening/alerts/<int:alert_id>/reply/",
        views.alert_reply,
        name="listening-alert-reply",
    ),
]
