from django.urls import path

from . import views

urlpatterns = [
    path("posts/", views.PostListCreateApi.as_view(), name="api-posts"),
    path("posts/<int:post_id>/", views.PostDetailApi.as_view(), name="api-post"),
    path("posts/<int:post_id>/submit/", views.PostSubmitApi.as_view(), name="api-post-submit"),
    path("posts/<int:post_id>/cancel/", views.PostCancelApi.as_view(), name="api-post-cancel"),
    path(
        "posts/<int:post_id>/duplicate/",
        views.PostDuplicateApi.as_view(),
        name="api-post-duplicate",
    ),
    path("posts/<int:post_id>/metrics/", views.PostMetricsApi.as_view(), name="api-post-metrics"),
    path(
        "posts/<int:post_id>/preflight/",
        views.PostPreflightApi.as_view(),
        name="api-post-preflight",
    ),
    path(
        "posts/<int:post_id>/targets/<int:target_id>/decide/",
        views.PostTargetDecideApi.as_view(),
        name="api-post-target-decide",
    ),
    path("media/", views.MediaListCreateApi.as_view(), name="api-media"),
    path("media/<int:media_id>/", views.MediaDetailApi.as_view(), name="api-media-detail"),
]
