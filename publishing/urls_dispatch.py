"""URLs of the dispatch engine: the freeze API and pages, and the sandbox feed."""

from django.urls import path

from . import freeze_api, freeze_views

urlpatterns = [
    path("api/v1/freezes/", freeze_api.FreezeListCreateApi.as_view(), name="api-freezes"),
    path(
        "api/v1/freezes/<int:freeze_id>/lift/",
        freeze_api.FreezeLiftApi.as_view(),
        name="api-freeze-lift",
    ),
    path("freezes/", freeze_views.freezes, name="freezes"),
    path("freezes/<int:freeze_id>/lift/", freeze_views.freeze_lift, name="freeze-lift"),
    path(
        "freezes/held/<int:post_id>/reschedule/",
        freeze_views.held_reschedule,
        name="held-reschedule",
    ),
    path(
        "api/v1/posts/<int:post_id>/reschedule-held/",
        freeze_api.HeldRescheduleApi.as_view(),
        name="api-held-reschedule",
    ),
    path("sandbox/<int:account_id>/", freeze_views.sandbox_feed, name="sandbox-feed"),
]
